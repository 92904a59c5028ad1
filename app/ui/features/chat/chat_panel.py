"""The chat column: model banner, error line, conversation view, prompt box, Send/Stop."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent, QTextDocumentFragment
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout,
                               QWidget)

from app.ui.banners import error_label
from app.ui.features.chat.chat_view import ChatView


class PromptEdit(QPlainTextEdit):
    """Multi-line input; Ctrl+Enter sends (plain Enter makes a new line, as in GPT4All)."""

    submitted = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key_Return, Qt.Key_Enter) and event.modifiers() & Qt.ControlModifier:
            self.submitted.emit()
            return
        super().keyPressEvent(event)


class ChatPanel(QWidget):
    send_requested = Signal(str)
    stop_requested = Signal()
    banner_link = Signal(str)  # href of a link in the banner

    def __init__(self, parent=None):
        super().__init__(parent)
        self.banner = QLabel()
        self.banner.setObjectName("modelBanner")
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("background:#fff4ce; color:#5c4400; padding:6px; border-radius:4px;")
        self.banner.setTextFormat(Qt.RichText)
        self.banner.linkActivated.connect(self.banner_link)
        self.banner.hide()
        self.error = error_label("errorBanner")
        self.view = ChatView()
        self.input = PromptEdit()
        self.input.setPlaceholderText("Ask a coding question… (Ctrl+Enter to send)")
        self.input.setMaximumHeight(120)
        self.send_button = QPushButton("Send")
        self.send_button.setDefault(True)
        self.send_button.setToolTip("Send (Ctrl+Enter)")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)

        buttons = QVBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch()
        row = QHBoxLayout()
        row.addWidget(self.input, 1)
        row.addLayout(buttons)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.banner)
        lay.addWidget(self.error)
        lay.addWidget(self.view, 1)
        lay.addLayout(row)

        self.send_button.clicked.connect(self._send)
        self.input.submitted.connect(self._send)
        self.stop_button.clicked.connect(self.stop_requested)
        self._can_send = False
        self._busy = False

    def _send(self) -> None:
        text = self.input.toPlainText().strip()
        if not text or not self._can_send or self._busy:
            return
        self.input.clear()
        self.send_requested.emit(text)

    def set_ready(self, ready: bool) -> None:
        """Whether a model is loaded and questions can be sent."""
        self._can_send = ready
        self._sync()

    def set_busy(self, busy: bool) -> None:
        """Whether an answer is being generated."""
        self._busy = busy
        self._sync()

    def _sync(self) -> None:
        self.send_button.setEnabled(self._can_send and not self._busy)
        self.stop_button.setEnabled(self._busy)

    def show_banner(self, text: str | None, link: tuple[str, str] | None = None) -> None:
        """Plain ``text``, optionally followed by a link (href, label)."""
        body = html.escape(text or "")
        if text and link:
            body += f' <a href="{html.escape(link[0])}">{html.escape(link[1])}</a>'
        self.banner.setText(body)
        self.banner.setVisible(bool(text))

    def banner_text(self) -> str:
        return self.banner.text() and QTextDocumentFragment.fromHtml(self.banner.text()).toPlainText()

    def show_error(self, text: str | None) -> None:
        self.error.setText(text or "")
        self.error.setVisible(bool(text))

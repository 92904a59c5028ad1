"""The chat column: model banner, error line, the conversation view (or, while the
conversation is empty, the first screen in its place), prompt box, Send/Stop.

Files dropped (or pasted) onto the prompt box are not inserted as their paths: ``urls_dropped``
hands them to the window, which attaches a file's text (``attach``) or opens a folder.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QKeyEvent, QTextCursor, QTextDocumentFragment
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QStackedWidget, QVBoxLayout,
                               QWidget)

from app.ui.banners import error_label
from app.ui.features.chat.chat_view import ChatView
from app.ui.features.chat.first_screen import EXAMPLE_QUESTION, FirstScreen


class PromptEdit(QPlainTextEdit):
    """Multi-line input; Ctrl+Enter sends (plain Enter makes a new line, as in GPT4All)."""

    submitted = Signal()
    urls_dropped = Signal(list)  # list[QUrl] dropped or pasted: files to attach, a folder to open

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key_Return, Qt.Key_Enter) and event.modifiers() & Qt.ControlModifier:
            self.submitted.emit()
            return
        super().keyPressEvent(event)

    def canInsertFromMimeData(self, source: QMimeData) -> bool:
        return _local_files(source) or super().canInsertFromMimeData(source)

    def insertFromMimeData(self, source: QMimeData) -> None:
        if _local_files(source):
            self.urls_dropped.emit(list(source.urls()))
            return
        super().insertFromMimeData(source)  # text, and a web address as its text


def _local_files(source: QMimeData) -> bool:
    """Files or folders on this computer (a file manager's drag or copy), not a browser's link."""
    return source.hasUrls() and all(u.isLocalFile() for u in source.urls())


class ChatPanel(QWidget):
    send_requested = Signal(str)
    stop_requested = Signal()
    banner_link = Signal(str)  # href of a link in the banner
    urls_dropped = Signal(list)  # list[QUrl] dropped onto the prompt box
    open_project_requested = Signal()  # the first screen's "Open a project" starter
    first_screen_toggled = Signal(bool)  # the first screen took the view's place (True) or gave it back

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
        self.first_screen = FirstScreen()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.first_screen)
        self.input = PromptEdit()
        self.input.setPlaceholderText("Ask a coding question… (Ctrl+Enter to send; drop a file here to attach it)")
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
        lay.addWidget(self.stack, 1)
        lay.addLayout(row)

        self.send_button.clicked.connect(self._send)
        self.input.submitted.connect(self._send)
        self.input.urls_dropped.connect(self.urls_dropped)
        self.stop_button.clicked.connect(self.stop_requested)
        self.first_screen.starter.connect(self._starter)
        # The view says when the conversation is empty: whatever fills or clears it (a new chat,
        # another conversation, the first question) switches the first screen with it.
        self.view.textChanged.connect(lambda: self.show_first_screen(self.view.document().isEmpty()))
        self._can_send = False
        self._busy = False
        self.show_first_screen(self.view.document().isEmpty())

    # ---- the first screen ----------------------------------------------------------------------
    def show_first_screen(self, on: bool) -> None:
        """The first screen in the view's place (the conversation is empty), or the view."""
        if on == self.first_screen_shown:
            return
        self.stack.setCurrentWidget(self.first_screen if on else self.view)
        self.first_screen_toggled.emit(on)

    @property
    def first_screen_shown(self) -> bool:
        return self.stack.currentWidget() is self.first_screen

    def _starter(self, kind: str) -> None:
        if kind == "project":
            self.open_project_requested.emit()
            return
        self.input.setPlainText(EXAMPLE_QUESTION if kind == "ask" else "/code ")
        self.input.moveCursor(QTextCursor.End)
        self.input.setFocus()

    # ---- attachments ---------------------------------------------------------------------------
    def attach(self, block: str) -> None:
        """Add a file's fenced text (``app.core.drops.attachment``) at the end of the question."""
        text = self.input.toPlainText()
        sep = "" if not text.strip() else ("\n" if text.endswith("\n\n") else "\n\n" if not text.endswith("\n") else "\n")
        self.input.moveCursor(QTextCursor.End)
        self.input.insertPlainText(sep + block)
        self.input.setFocus()

    def question_bytes(self) -> int:
        """The question's size so far (attachments share one budget)."""
        return len(self.input.toPlainText().encode("utf-8"))

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

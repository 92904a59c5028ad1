"""The Review panel (a dock): a progress line ("Security (2/6)…"), one collapsible section
per role filled as tokens stream, the synthesis highlighted, notes (e.g. the director refused
while offline), Cancel. It only shows; ``feature.ReviewFeature`` runs the review.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSizePolicy, QToolButton,
                               QVBoxLayout, QWidget)

from app.core.review.roles import DIRECTOR, STEPS, SYNTHESIS, ReviewResult, ReviewSubject, Role, role_by_key
from app.ui.banners import error_label

SYNTHESIS_STYLE = "QFrame#reviewSynthesis { background:#e8f4ea; border:1px solid #9cc9a5; border-radius:4px; }"
NOTE_STYLE = "background:#fff4ce; color:#5c4400; padding:6px; border-radius:4px;"


class RoleSection(QFrame):
    """A role's header (click to fold) and its text."""

    def __init__(self, role: Role, parent=None):
        super().__init__(parent)
        self.role = role
        self._text = ""
        self.header = QToolButton()
        self.header.setCheckable(True)
        self.header.setChecked(True)
        self.header.setArrowType(Qt.DownArrow)
        self.header.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.header.setAutoRaise(True)
        self.header.setText(role.title)
        self.header.setStyleSheet("QToolButton { font-weight: bold; border: none; }")
        self.body = QLabel("")
        self.body.setWordWrap(True)
        self.body.setTextFormat(Qt.PlainText)
        self.body.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.body.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Minimum)
        self.body.setContentsMargins(18, 0, 4, 6)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 2)
        lay.setSpacing(0)
        lay.addWidget(self.header)
        lay.addWidget(self.body)
        self.header.toggled.connect(self.set_expanded)
        if role is SYNTHESIS:
            self.setObjectName("reviewSynthesis")
            self.setStyleSheet(SYNTHESIS_STYLE)

    def set_expanded(self, on: bool) -> None:
        if self.header.isChecked() != on:
            self.header.setChecked(on)  # comes back here through toggled
            return
        self.header.setArrowType(Qt.DownArrow if on else Qt.RightArrow)
        self.body.setVisible(on)

    def is_expanded(self) -> bool:
        return self.header.isChecked()

    def append(self, text: str) -> None:
        self._text += text
        self.body.setText(self._text)

    def set_text(self, text: str) -> None:
        self._text = text
        self.body.setText(text)

    def text(self) -> str:
        return self._text

    def finish(self, suffix: str = "") -> None:
        """Show the finished text as markdown (bullets, code), with a note in the header."""
        if suffix:
            self.header.setText(f"{self.role.title} — {suffix}")
        if not self._text.strip():
            self.body.setTextFormat(Qt.PlainText)
            self.body.setText("(nothing written)")
            return
        self.body.setTextFormat(Qt.MarkdownText)
        self.body.setText(self._text)


class ReviewPanel(QWidget):
    cancel_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumWidth(360)
        self.subject = QLabel("Review a question (Tools → Review question) or a pending change (Review on the "
                              "Changes pane): five reviewers in turn, then one recommendation.")
        self.subject.setWordWrap(True)
        self.progress = QLabel("")
        self.progress.setObjectName("reviewProgress")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.error = error_label("reviewError")
        self.note = QLabel("")
        self.note.setObjectName("reviewNote")
        self.note.setWordWrap(True)
        self.note.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.note.setStyleSheet(NOTE_STYLE)
        self.note.hide()
        self._sections: dict[str, RoleSection] = {}
        self._current: RoleSection | None = None
        self._list = QWidget()
        self._list_lay = QVBoxLayout(self._list)
        self._list_lay.setContentsMargins(0, 0, 0, 0)
        self._list_lay.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self._list)
        self.scroll = scroll

        top = QHBoxLayout()
        top.addWidget(self.progress, 1)
        top.addWidget(self.cancel_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.subject)
        lay.addLayout(top)
        lay.addWidget(self.error)
        lay.addWidget(self.note)
        lay.addWidget(scroll, 1)
        self.cancel_button.clicked.connect(self.cancel_requested)

    # ---- what the controller drives ------------------------------------------------------------
    def begin(self, subject: ReviewSubject) -> None:
        for s in self._sections.values():
            s.setParent(None)
            s.deleteLater()
        self._sections.clear()
        self._current = None
        self.subject.setText(f"<b>Review</b> · {html.escape(subject.title)}")
        self.progress.setText("Starting…")
        self.error.hide()
        self.note.setText("")
        self.note.hide()
        self.cancel_button.setEnabled(True)

    def role_started(self, index: int, role: Role, detail: str = "") -> None:
        if self._current is not None and self._current.role.key != role.key:
            self._current.finish()
        section = self._sections.get(role.key)
        if section is None:
            section = RoleSection(role)
            self._sections[role.key] = section
            self._list_lay.insertWidget(self._list_lay.count() - 1, section)
        self._current = section
        self.progress.setText(f"{role.title} ({index + 1}/{STEPS})…" + (f" {detail}" if detail else ""))

    def append(self, key: str, text: str) -> None:
        section = self._sections.get(key)
        if section is None:  # a token before its start: should not happen, but never lose text
            self.role_started(len(self._sections), role_by_key(key))
            section = self._sections[key]
        section.append(text)

    def add_note(self, text: str) -> None:
        now = self.note.text()
        self.note.setText(f"{now}\n{text}" if now else text)
        self.note.show()

    def finish(self, result: ReviewResult, director_host: str = "") -> None:
        self.cancel_button.setEnabled(False)
        for o in result.outputs:
            s = self._sections.get(o.role)
            if s is not None:
                s.set_text(o.text)
                s.finish("stopped" if o.cancelled else "")
        syn = self._sections.get(SYNTHESIS.key)
        if syn is not None:
            syn.set_text(result.synthesis)
            if result.synthesis_by == DIRECTOR:
                syn.finish(f"recommendation by the director{f' ({director_host})' if director_host else ''}")
            else:
                syn.finish("recommendation by the local model" + (" (stopped)" if result.cancelled else ""))
        if result.cancelled:
            where = self._current.role.title if self._current is not None else "the start"
            n = len(self._sections)
            self.progress.setText(f"Cancelled during {where} ({n}/{STEPS}); later reviewers did not run.")
        else:
            by = "the director" if result.synthesis_by == DIRECTOR else "the local model"
            self.progress.setText(f"Done: {len(result.outputs)} reviewers, recommendation by {by}.")
        self._current = None

    def fail(self, message: str) -> None:
        self.cancel_button.setEnabled(False)
        if self._current is not None:
            self._current.finish("stopped")
            self._current = None
        self.progress.setText("Review stopped.")
        self.error.setText(message)
        self.error.show()

    def set_cancelling(self) -> None:
        self.cancel_button.setEnabled(False)
        self.progress.setText(self.progress.text().rstrip("…") + " — cancelling…")

    # ---- what tests and screen readers read ----------------------------------------------------
    def section_keys(self) -> list[str]:
        return [self._list_lay.itemAt(i).widget().role.key for i in range(self._list_lay.count() - 1)]

    def section(self, key: str) -> RoleSection:
        return self._sections[key]

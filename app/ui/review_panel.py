"""Review (consilium) in the window: the Review panel (a dock), the director settings dialog,
and ``ReviewController``, which owns the review job and wires the actions.

The panel only shows: a progress line ("Security (2/6)…"), one collapsible section per role
filled as tokens stream, the synthesis highlighted, notes (e.g. the director refused while
offline), Cancel. The work is ``app.core.review.run_review`` on a ``Job``.
"""

from __future__ import annotations

import dataclasses
import html
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QFrame, QHBoxLayout,
                               QLabel, QLineEdit, QMenu, QPushButton, QScrollArea, QSizePolicy, QToolButton,
                               QVBoxLayout, QWidget)

from app.core import secrets
from app.core.director import KEY_NAME, Director, DirectorError, director_from_settings
from app.core.net import policy
from app.core.review import (DIRECTOR, STEPS, SYNTHESIS, ReviewError, ReviewResult, ReviewSubject, Role,
                             install_user_checklists, load_checklists, review_params, review_subject_from_changes,
                             review_subject_from_question, role_by_key, run_review)
from app.core.settings import DirectorSettings
from app.ui.banners import error_label
from app.ui.workers import Job

SYNTHESIS_STYLE = "QFrame#reviewSynthesis { background:#e8f4ea; border:1px solid #9cc9a5; border-radius:4px; }"
NOTE_STYLE = "background:#fff4ce; color:#5c4400; padding:6px; border-radius:4px;"
SHUTDOWN_WAIT_MS = 5000


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


class DirectorDialog(QDialog):
    """Settings → Review director…: switch it on, where it is, which model. The key is kept in
    Settings → Keys (the OS keyring), never here."""

    def __init__(self, settings: DirectorSettings, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Settings — Review director")
        self.setMinimumWidth(520)
        self.enabled = QCheckBox("Let a remote director write the review's recommendation")
        self.enabled.setChecked(settings.enabled)
        self.base_url = QLineEdit(settings.base_url)
        self.base_url.setPlaceholderText("https://api.openai.com/v1  or  http://127.0.0.1:8080/v1")
        self.model = QLineEdit(settings.model)
        self.model.setPlaceholderText("gpt-4o-mini")
        self.timeout = QDoubleSpinBox()
        self.timeout.setRange(5, 600)
        self.timeout.setSuffix(" s")
        self.timeout.setValue(settings.timeout_s if settings.timeout_s > 0 else 60)
        about = QLabel("Any OpenAI-compatible endpoint. When it is on, the question or diff and the five reviewers' "
                       "notes are sent there; the reviewers themselves always run on the local model. It is refused "
                       "while Offline mode is on (the local model then writes the recommendation). Its API key "
                       "goes in Settings → Keys (“Review director API key”); a local server may need none.")
        about.setWordWrap(True)
        self.error = error_label("directorError")
        form = QFormLayout()
        form.addRow(self.enabled)
        form.addRow("Base URL", self.base_url)
        form.addRow("Model", self.model)
        form.addRow("Timeout", self.timeout)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(about)
        lay.addWidget(self.error)
        lay.addLayout(form)
        lay.addWidget(buttons)

    def value(self) -> DirectorSettings:
        return DirectorSettings(self.enabled.isChecked(), self.base_url.text().strip(), self.model.text().strip(),
                                float(self.timeout.value()))

    def accept(self) -> None:
        v = self.value()
        if v.enabled:
            try:
                Director(v.base_url, v.model).endpoint()
                if not v.model:
                    raise DirectorError("Name the model the endpoint should use (e.g. gpt-4o-mini).")
            except DirectorError as e:
                self.error.setText(str(e))
                self.error.show()
                return
        super().accept()


def _menu(window, title: str, before: str | None = None) -> QMenu:
    """The window's menu called ``title`` (another part of the app may have made it), else a new one."""
    bar = window.menuBar()
    for a in bar.actions():
        if a.menu() is not None and a.text().replace("&", "") == title.replace("&", ""):
            return a.menu()
    anchor = next((a for a in bar.actions() if before and a.text().replace("&", "") == before.replace("&", "")), None)
    menu = QMenu(title, bar)
    if anchor is not None:
        bar.insertMenu(anchor, menu)
    else:
        bar.addMenu(menu)
    return menu


class ReviewController(QObject):
    """Owns the review job; connects the menu actions, the Changes pane's Review button and the panel."""

    started = Signal(object)   # ReviewSubject
    finished = Signal(object)  # ReviewResult (a cancelled one too)
    failed = Signal(str)       # the message shown

    def __init__(self, window):
        super().__init__(window)
        self.w = window
        self.job: Job | None = None
        self._director_host = ""
        self.panel = ReviewPanel()
        self.dock = window._dock("Review", self.panel, Qt.RightDockWidgetArea)
        self.panel.cancel_requested.connect(self.cancel)
        window.changes_panel.review_requested.connect(self.review_changes)
        # Opens the checklist folder in the file manager; tests replace it.
        self.open_folder = lambda path: QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))

        self.review_question_action = QAction("Review &question", window)
        self.review_question_action.setShortcut(QKeySequence("Ctrl+Shift+R"))
        self.review_question_action.setToolTip("Five reviewers (developer, security, QA, architect, UX) read the "
                                               "question in the chat box, or the last one asked, then one recommendation")
        self.review_question_action.triggered.connect(self.review_question)
        self.panel_action = self.dock.toggleViewAction()
        self.panel_action.setText("Review panel")
        tools = _menu(window, "&Tools", before="&Help")
        tools.addAction(self.review_question_action)
        tools.addAction(self.panel_action)
        self.director_action = QAction("Review &director…", window)
        self.director_action.triggered.connect(self.show_director_settings)
        self.checklists_action = QAction("Edit review &checklists…", window)
        self.checklists_action.setToolTip("Copy the reviewers' checklists to your data folder (never over your "
                                          "edits) and open it; your copies replace the defaults")
        self.checklists_action.triggered.connect(self.edit_checklists)
        settings_menu = _menu(window, "&Settings", before="&Help")
        settings_menu.addAction(self.director_action)
        settings_menu.addAction(self.checklists_action)
        self.director_dialog: DirectorDialog | None = None

    # ---- starting ------------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self.job is not None and self.job.is_running()

    def review_question(self) -> None:
        text = self.w.chat_panel.input.toPlainText().strip()
        if not text and self.w.current_id is not None:
            asked = [m for m in self.w.ctx.storage.messages(self.w.current_id) if m.role == "user"]
            text = asked[-1].content if asked else ""
        self._start(lambda: review_subject_from_question(text))

    def review_changes(self, changeset=None) -> None:
        cs = changeset if changeset is not None else self.w.changes_panel.changes
        self._start(lambda: review_subject_from_changes(cs))

    def _refuse(self, message: str) -> None:
        self.dock.show()
        self.panel.fail(message)
        self.failed.emit(message)

    def _start(self, make_subject) -> None:
        if self.is_running():
            self.w.statusBar().showMessage("A review is running: cancel it first.", 5000)
            return
        answer = getattr(self.w, "answer_job", None)
        if answer is not None and answer.is_running():
            return self._refuse("An answer is being written: stop it first, then start the review.")
        if self.w.engine is None:
            return self._refuse("The model is not loaded yet; start the review when it is ready.")
        try:
            subject = make_subject()
        except ReviewError as e:
            return self._refuse(str(e))
        engine, paths = self.w.engine, self.w.ctx.paths
        params = review_params(self.w.chat.params())
        director_settings = dataclasses.replace(self.w.ctx.settings.director)
        self._director_host = ""

        def job(ctx):
            checklists = load_checklists(paths)
            director = director_from_settings(director_settings, secrets.get_key)  # reads the keyring
            if director is not None:
                ctx.partial(("director", director.host))
            return run_review(engine, subject, checklists, params,
                              on_role_start=lambda i, role: ctx.partial(("start", i, role)),
                              on_token=lambda key, text: ctx.partial(("token", key, text)),
                              on_note=lambda note: ctx.partial(("note", note)),
                              cancelled=ctx.cancelled, director=director)

        self.panel.begin(subject)
        self.dock.show()
        self.dock.raise_()
        self.started.emit(subject)
        self.job = (Job(job, name="review", parent=self)
                    .on_partial(self._partial)
                    .on_success(self._done)
                    .on_failure(self._failed)
                    .start())

    # ---- while it runs ---------------------------------------------------------------------------
    def _partial(self, item) -> None:
        kind = item[0]
        if kind == "start":
            _, index, role = item
            detail = ""
            if role is SYNTHESIS and self._director_host:
                detail = ("(Offline is on: the local model writes it)" if policy.is_offline()
                          else f"(asking the director at {self._director_host})")
            self.panel.role_started(index, role, detail)
        elif kind == "token":
            self.panel.append(item[1], item[2])
        elif kind == "note":
            self.panel.add_note(item[1])
        elif kind == "director":
            self._director_host = item[1]

    def cancel(self) -> None:
        if self.is_running():
            self.job.cancel()
            self.panel.set_cancelling()

    def shutdown(self) -> None:
        """Stop a running review before the window closes the engine."""
        if self.is_running():
            self.job.cancel()
            self.job.wait(SHUTDOWN_WAIT_MS)

    def _done(self, result: ReviewResult) -> None:
        self.job = None  # over: its thread may still be winding down, a new review may start
        self.panel.finish(result, self._director_host)
        self.finished.emit(result)

    def _failed(self, e: BaseException) -> None:
        from app.ui.main_window import describe_error  # the window's one way to word errors

        self.job = None
        message = str(e) if isinstance(e, (ReviewError, DirectorError)) else describe_error(e)
        self.panel.fail(message)
        self.failed.emit(message)

    # ---- settings ------------------------------------------------------------------------------
    def show_director_settings(self) -> DirectorDialog:
        dlg = self.director_dialog = DirectorDialog(self.w.ctx.settings.director, self.w)
        dlg.accepted.connect(lambda: self._save_director(dlg.value()))
        dlg.show()
        return dlg

    def _save_director(self, value: DirectorSettings) -> None:
        self.w.ctx.settings.director = value
        self.w.ctx.settings.save(self.w.ctx.paths.settings_file)
        if value.enabled and secrets.get_key(KEY_NAME) is None:
            self.w.statusBar().showMessage("Review director on. If the endpoint needs a key, add it in Settings → Keys.",
                                           8000)

    def edit_checklists(self) -> Path | None:
        try:
            folder, _copied = install_user_checklists(self.w.ctx.paths)
        except ReviewError as e:
            self._refuse(str(e))
            return None
        self.open_folder(folder)
        self.w.statusBar().showMessage(f"Review checklists: {folder} (your copies replace the defaults; "
                                       "delete one to get the default back).", 10000)
        return folder

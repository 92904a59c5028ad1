"""Review (consilium): Tools → Review question, the Changes pane's Review button, the Review
panel, Settings → Review director… and Edit review checklists….

The work is ``app.core.review.roles.run_review`` on a job that holds the engine (the engine service
refuses it while an answer is written, and refuses answers while it runs).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence

from app.core import secrets
from app.core.review.director import KEY_NAME, director_from_settings
from app.core.net import policy
from app.core.review.roles import (SYNTHESIS, ReviewError, ReviewResult, install_user_checklists, load_checklists,
                             review_params, review_subject_from_changes, review_subject_from_question, run_review)
from app.core.settings import DirectorSettings
from app.ui.errors import describe_error
from app.ui.features.base import Feature
from app.ui.features.review.director_dialog import DirectorDialog
from app.ui.features.review.review_panel import ReviewPanel
from app.ui.workers import Job

REVIEWING = "A review is running: cancel it first."


class ReviewFeature(Feature):
    name = "review"
    started = Signal(object)   # ReviewSubject
    finished = Signal(object)  # ReviewResult (a cancelled one too)
    failed = Signal(str)       # the message shown

    def __init__(self, host):
        super().__init__(host)
        self.job: Job | None = None
        self._director_host = ""
        self.panel = ReviewPanel()
        self.dock = host.add_dock("Review", self.panel, Qt.RightDockWidgetArea)
        self.panel.cancel_requested.connect(self.cancel)
        # Opens the checklist folder in the file manager; tests replace it.
        self.open_folder = lambda path: QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))
        self.review_question_action = QAction("Review &question", self)
        self.review_question_action.setShortcut(QKeySequence("Ctrl+Shift+R"))
        self.review_question_action.setToolTip("Five reviewers (developer, security, QA, architect, UX) read the "
                                               "question in the chat box, or the last one asked, then one recommendation")
        self.review_question_action.triggered.connect(self.review_question)
        self.panel_action = self.dock.toggleViewAction()
        self.panel_action.setText("Review panel")
        self.director_action = QAction("Review &director…", self)
        self.director_action.triggered.connect(self.show_director_settings)
        self.checklists_action = QAction("Edit review &checklists…", self)
        self.checklists_action.setToolTip("Copy the reviewers' checklists to your data folder (never over your "
                                          "edits) and open it; your copies replace the defaults")
        self.checklists_action.triggered.connect(self.edit_checklists)
        self.director_dialog: DirectorDialog | None = None

    def start(self) -> None:
        self.host.features.changes.panel.review_requested.connect(self.review_changes)

    # ---- starting ------------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self.job is not None and self.job.is_running()

    def review_question(self) -> None:
        chat = self.host.features.chat
        text = chat.panel.input.toPlainText().strip()
        if not text and chat.current_id is not None:
            asked = [m for m in self.ctx.storage.messages(chat.current_id) if m.role == "user"]
            text = asked[-1].content if asked else ""
        self._start(lambda: review_subject_from_question(text))

    def review_changes(self, changeset=None) -> None:
        cs = changeset if changeset is not None else self.host.features.changes.panel.changes
        self._start(lambda: review_subject_from_changes(cs))

    def _refuse(self, message: str) -> None:
        self.dock.show()
        self.panel.fail(message)
        self.failed.emit(message)

    def _start(self, make_subject) -> None:
        service = self.host.engine
        if self.is_running():
            self.host.notify(REVIEWING)
            return
        busy = service.busy_text()
        if busy:
            return self._refuse(f"{busy.rstrip('.')}, then start the review.")
        if service.engine is None:
            return self._refuse("The model is not loaded yet; start the review when it is ready.")
        try:
            subject = make_subject()
        except ReviewError as e:
            return self._refuse(describe_error(e))
        engine, paths = service.engine, self.ctx.paths
        params = review_params(self.host.features.chat.service.params())
        director_settings = dataclasses.replace(self.ctx.settings.director)
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

        job_ = Job(job, name="review", parent=self).on_partial(self._partial).on_success(self._done)
        job_.on_failure(self._failed)
        self.panel.begin(subject)
        self.dock.show()
        self.dock.raise_()
        self.started.emit(subject)
        self.job = service.start_exclusive(job_, REVIEWING, self.jobs, kind="review")

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

    def _done(self, result: ReviewResult) -> None:
        self.job = None  # over: its thread may still be winding down, a new review may start
        self.panel.finish(result, self._director_host)
        self.finished.emit(result)

    def _failed(self, e: BaseException) -> None:
        self.job = None
        message = describe_error(e)
        self.panel.fail(message)
        self.failed.emit(message)

    # ---- settings ------------------------------------------------------------------------------
    def show_director_settings(self) -> DirectorDialog:
        dlg = self.director_dialog = DirectorDialog(self.ctx.settings.director, self.host.window)
        dlg.accepted.connect(lambda: self._save_director(dlg.value()))
        dlg.show()
        return dlg

    def _save_director(self, value: DirectorSettings) -> None:
        self.ctx.settings.director = value
        self.ctx.save_settings()
        if value.enabled and secrets.get_key(KEY_NAME) is None:
            self.host.notify("Review director on. If the endpoint needs a key, add it in Settings → Keys.", 8000)

    def edit_checklists(self) -> Path | None:
        try:
            folder, _copied = install_user_checklists(self.ctx.paths)
        except ReviewError as e:
            self._refuse(describe_error(e))
            return None
        self.open_folder(folder)
        self.host.notify(f"Review checklists: {folder} (your copies replace the defaults; "
                         "delete one to get the default back).", 10000)
        return folder

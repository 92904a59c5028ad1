"""Feedback: the thumbs under answers (and the implicit rating of applied or discarded changes),
the standing rules (the Rules panel and ``/remember``), and File → Export training data.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction

from app.core.chat.rules import RuleError, parse_remember
from app.core.storage import Storage
from app.core.learn.training_export import ExportFilter, export_training_data
from app.ui.errors import describe_error
from app.ui.features.base import Feature
from app.ui.features.feedback.export_dialog import ExportDialog
from app.ui.features.feedback.rules_panel import RulesPanel
from app.ui.workers import Job


class FeedbackFeature(Feature):
    name = "feedback"
    rated = Signal(int, object)  # message id, the Rating stored for that answer

    def __init__(self, host):
        super().__init__(host)
        self.export_dialog: ExportDialog | None = None
        self.export_job: Job | None = None
        self.panel = p = RulesPanel()
        self.dock = host.add_dock("Rules", p, Qt.RightDockWidgetArea)
        self.panel_action = self.dock.toggleViewAction()
        self.panel_action.setText("Rules")
        self.panel_action.setToolTip("Standing rules that go into every prompt (/remember adds one)")
        p.add_requested.connect(self.add_rule)
        p.edit_requested.connect(self.edit_rule)
        p.remove_requested.connect(self.remove_rule)
        p.scope_requested.connect(self.set_rule_scope)
        self.export_action = QAction("&Export training data…", self)
        self.export_action.setToolTip("Write your well-rated conversations as JSONL for the fine-tuning notebook")
        self.export_action.triggered.connect(self.show_export)

    def start(self) -> None:
        f = self.host.features
        f.chat.view.rated.connect(self.rate_answer)
        f.changes.applied_from.connect(lambda mid: self._implicit_rating(mid, "applied"))
        f.changes.discarded_from.connect(lambda mid: self._implicit_rating(mid, "rejected"))
        f.project.project_opened.connect(lambda _root: self.refresh_rules())
        self.refresh_rules()

    @property
    def project(self) -> Path | None:
        return self.host.features.project.root

    # ---- ratings -------------------------------------------------------------------------------
    def rate_answer(self, message_id: int, value: int) -> None:
        """A thumb under an answer: +1, -1, or 0 to take the rating back."""
        try:
            rating = self.ctx.storage.rate(message_id, value)
        except ValueError as e:
            self.host.features.chat.panel.show_error(describe_error(e))
            return
        self.host.features.chat.view.set_rating(message_id, rating)
        self.rated.emit(message_id, rating)

    def _implicit_rating(self, message_id: int | None, source: str) -> None:
        """Changes applied (+1) or discarded (-1): a signal on the answer that proposed them."""
        if message_id is None:
            return
        try:
            rating = self.ctx.storage.rate(message_id, 0, source)
        except ValueError:
            return  # its conversation was deleted meanwhile: nothing left to rate
        self.host.features.chat.view.set_rating(message_id, rating)
        self.rated.emit(message_id, rating)

    # ---- rules -------------------------------------------------------------------------------
    def remember(self, rest: str, text: str) -> None:
        """/remember <rule> (every project) or /remember --project <rule> (the open one)."""
        chat = self.host.features.chat
        try:
            rule_text, for_project = parse_remember(rest)
            if for_project and self.project is None:
                raise RuleError("Open a project first (File → Open Project…), or leave out --project "
                                "to remember this for every project.")
            rule = self.ctx.storage.add_rule(rule_text, self.project if for_project else None)
        except ValueError as e:
            chat.panel.input.setPlainText(text)  # nothing typed is lost
            chat.panel.show_error(describe_error(e))
            return
        chat.panel.show_error(None)
        where = f"for {self.project.name}" if rule.project else "for every project"
        chat.add_note(f"Remembered {where}: {rule.text}\nIt goes into every prompt until you remove it in the "
                      "Rules panel.", {"tool": "remember", "rule_id": rule.id})
        self.refresh_rules()

    def refresh_rules(self) -> None:
        self.panel.set_rules(self.ctx.storage.rules(), str(self.project) if self.project else None)

    def add_rule(self, text: str, for_project: bool) -> None:
        try:
            self.ctx.storage.add_rule(text, self.project if for_project else None)
        except ValueError as e:
            self.panel.show_error(describe_error(e))
            return
        self.panel.show_error(None)
        self.panel.added()
        self.refresh_rules()

    def edit_rule(self, rule_id: int, text: str) -> None:
        """An edited rule's text (this runs inside the list item's own signal: no rebuild)."""
        old = self.ctx.storage.rule(rule_id)
        try:
            rule = self.ctx.storage.update_rule(rule_id, text)
        except ValueError as e:
            self.panel.show_error(describe_error(e))
            if old is not None:
                self.panel.set_text(rule_id, old.text)
            return
        self.panel.show_error(None)
        self.panel.set_text(rule_id, rule.text)

    def remove_rule(self, rule_id: int) -> None:
        self.ctx.storage.remove_rule(rule_id)
        self.refresh_rules()

    def set_rule_scope(self, rule_id: int, for_project: bool) -> None:
        if for_project and self.project is None:
            self.panel.show_error("Open a project first: a rule can only be limited to an open project.")
            return
        try:
            self.ctx.storage.update_rule(rule_id, project=self.project if for_project else None)
        except ValueError as e:
            self.panel.show_error(describe_error(e))
            return
        self.panel.show_error(None)
        self.refresh_rules()

    # ---- export --------------------------------------------------------------------------------
    def show_export(self) -> ExportDialog:
        default = self.ctx.paths.data_dir / "exports" / f"chats-{time.strftime('%Y%m%d')}.jsonl"
        self.export_dialog = ExportDialog(default, self.ctx.storage.projects(), parent=self.host.window)
        self.export_dialog.export_requested.connect(self.export_training)
        self.export_dialog.show()
        return self.export_dialog

    def export_training(self, path: str, filt: ExportFilter) -> None:
        """Write the training file on a worker, with its own database connection."""
        dialog = self.export_dialog
        if dialog is None or (self.export_job is not None and self.export_job.is_running()):
            return
        db, system = self.ctx.storage.path, self.ctx.settings.system_prompt

        def job(_ctx):
            storage = Storage(db)  # SQLite connections belong to their thread
            try:
                return export_training_data(storage, Path(path), filt, system_prompt=system)
            finally:
                storage.close()

        self.export_job = self.jobs.start(
            Job(job, name="export-training", parent=self)
            .on_success(lambda report: (dialog.show_report(report), self.host.notify(report.summary(), 8000)))
            .on_failure(lambda e: dialog.show_error(describe_error(e))))

"""The Changes pane: an answer's edits to the project's files, planned, picked per hunk,
applied atomically with an undo record, and undone.

Planning, applying and undoing are separate jobs (a plan started during an apply no longer
replaces the job that shutdown waits for: the group waits for both). The answer whose changes
are shown is remembered, so applying (+1) or discarding (-1) rates it (``applied_from``,
``discarded_from``; the feedback feature stores the rating).
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QMessageBox

from app.core.edits.prompt import guess_target
from app.core.edits import ChangeSet, StaleFileError, UndoConflict, UndoRecord, UndoStore, apply_changes, plan_changes, undo
from app.ui.errors import describe_error
from app.ui.features.base import Feature
from app.ui.features.changes.changes_panel import ChangesPanel
from app.ui.workers import Job


class ChangesFeature(Feature):
    name = "changes"
    changes_planned = Signal(object)  # ChangeSet proposed by the last answer (or recomputed)
    changes_applied = Signal(object)  # UndoRecord
    changes_undone = Signal(object)   # list of restored paths
    edit_failed = Signal(str)         # apply/undo refused, with the message shown
    applied_from = Signal(object)     # the stored answer whose changes were applied (id or None)
    discarded_from = Signal(object)   # ... whose changes were discarded

    def __init__(self, host):
        super().__init__(host)
        self.panel = p = ChangesPanel()
        p.hide()  # shown once a project is open
        self.undo_store = UndoStore(self.ctx.paths.data_dir / "undo")
        self.undo_record: UndoRecord | None = None  # what Undo would put back (newest applied)
        self._target: str | None = None  # the file an unlabelled code block is taken for
        self.source_id: int | None = None  # the answer whose changes the pane shows
        self._applying_source: int | None = None
        # Asked before an undo that would throw away later changes; tests answer it.
        self.confirm_force_undo = lambda message: QMessageBox.question(
            host.window, "Undo", message) == QMessageBox.Yes
        p.apply_requested.connect(self.apply_picks)
        p.undo_requested.connect(self.undo_last)
        p.recompute_requested.connect(self.recompute)
        p.discarded.connect(self._discarded)

    def start(self) -> None:
        f = self.host.features
        f.project.project_opened.connect(self._project_opened)
        f.chat.answer_stored.connect(self._answer_stored)

    @property
    def root(self):
        return self.host.features.project.root

    def _project_opened(self, _root) -> None:
        self.panel.show()
        self.panel.set_changes(None)
        self._sync_undo()

    def _answer_stored(self, item) -> None:
        pending, result, stored_id = item
        if self.root is not None and result.text.strip():
            edit = pending.edit
            self.show_changes(result.text, guess_target(edit.request, pending.files_shown) if edit else None,
                              stored_id)

    # ---- planning ---------------------------------------------------------------------------
    def show_changes(self, answer: str, target: str | None, source_id: int | None = None) -> None:
        """Read an answer for edits to the project's files (on a worker: it reads files).
        ``source_id``: the stored answer, rated by what the user does with its changes."""
        if self.root is None:
            return
        root = self.root
        self._target = target
        self.jobs.start(Job(lambda _ctx: plan_changes(root, answer, target), name="plan-changes", parent=self)
                        .on_success(lambda cs: self._planned(cs, source_id))
                        .on_failure(lambda e: self.panel.show_problems([describe_error(e)])))

    def _planned(self, cs: ChangeSet, source_id: int | None = None) -> None:
        if cs or self.panel.changes is None:
            self.panel.set_changes(cs)
            self.source_id = source_id
        self.changes_planned.emit(cs)

    def recompute(self) -> None:
        cs = self.panel.changes
        if cs is not None:
            self.show_changes(cs.answer, self._target, self.source_id)

    def _discarded(self) -> None:
        source, self.source_id = self.source_id, None
        self.discarded_from.emit(source)

    # ---- applying and undoing ------------------------------------------------------------------
    def _sync_undo(self) -> None:
        """Find the newest undoable apply of the project: it reads every undo record, so on a worker."""
        self._set_undo(None)
        if self.root is None:
            return
        root, store = self.root, self.undo_store
        self.jobs.start(Job(lambda _ctx: store.last_undoable(root), name="undo-scan", parent=self)
                        .on_success(lambda record: root == self.root and self._set_undo(record)))

    def _set_undo(self, record: UndoRecord | None) -> None:
        self.undo_record = record
        self.panel.set_undo_available(record is not None, ", ".join(record.paths) if record else "")

    def apply_picks(self, picks) -> None:
        if self.root is None or not picks:
            return
        root, store = self.root, self.undo_store
        label = self.panel.changes.answer[:80] if self.panel.changes else ""
        self._applying_source = self.source_id
        self.panel.set_busy(True)
        self.jobs.start(Job(lambda _ctx: apply_changes(root, picks, store, label), name="apply-changes", parent=self)
                        .on_success(self._applied)
                        .on_failure(self._edit_failed))

    def _applied(self, record: UndoRecord) -> None:
        self.panel.set_busy(False)
        self.panel.set_changes(None)
        self.panel.info.setText(f"Applied: {', '.join(record.paths)}. Undo puts them back.")
        self.host.notify(f"Applied changes to {len(record.files)} file(s)")
        self._set_undo(record)
        self.applied_from.emit(self._applying_source)
        self.source_id = None
        self.changes_applied.emit(record)

    def _edit_failed(self, e: BaseException) -> None:
        self.panel.set_busy(False)
        message = describe_error(e)
        self.panel.show_problems([message], stale=isinstance(e, StaleFileError))
        self.edit_failed.emit(message)

    def undo_last(self, force: bool = False) -> None:
        record, store = self.undo_record, self.undo_store
        if record is None:
            return
        self.panel.set_busy(True)
        self.jobs.start(Job(lambda _ctx: undo(store, record, force), name="undo-changes", parent=self)
                        .on_success(self._undone)
                        .on_failure(lambda e: self._undo_failed(e, force)))

    def _undone(self, paths: list[str]) -> None:
        self.panel.set_busy(False)
        self.panel.info.setText(f"Undone: {', '.join(paths)} restored.")
        self._sync_undo()
        self.changes_undone.emit(paths)

    def _undo_failed(self, e: BaseException, forced: bool) -> None:
        self.panel.set_busy(False)
        if isinstance(e, UndoConflict) and e.paths and not forced and self.confirm_force_undo(str(e)):
            self.undo_last(force=True)
            return
        message = describe_error(e)
        self.panel.show_problems([message])
        self.edit_failed.emit(message)

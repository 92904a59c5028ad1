"""The Changes pane: an answer's edits to the project's files, planned, picked per hunk,
applied atomically with an undo record, and undone.

Around it: the files the model saw for a /code request (``files_box``: untick, add, ask
again), syntax marks on hunks, the git line and a warning before applying over uncommitted
edits, an optional commit per apply, and the checks after Apply (``checks``: cancellable, each
failure with "Ask for a fix"). The work is ``app.core.edits.workflow`` and ``app.core.checks``.

Planning, applying and undoing are separate jobs (a plan started during an apply no longer
replaces the job that shutdown waits for: the group waits for both). The answer whose changes
are shown is remembered, so applying (+1) or discarding (-1) rates it (``applied_from``,
``discarded_from``; the feedback feature stores the rating).
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialog, QMessageBox

from app.core.checks import checks_after_apply, detect, load_project_settings, project_settings_path, \
    save_project_settings
from app.core.edits.git import repo_state, warn_before_apply
from app.core.edits.prompt import guess_target
from app.core.edits.workflow import Applied, apply_and_commit, syntax_marks, texts_before, undo_change
from app.core.edits import ChangeSet, StaleFileError, UndoConflict, UndoRecord, UndoStore, plan_changes
from app.core.project import project_files
from app.ui.errors import describe_error
from app.ui.features.base import Feature
from app.ui.features.changes.changes_panel import ChangesPanel
from app.ui.features.changes.checks_dialog import ChecksDialog
from app.ui.workers import Job


class ChangesFeature(Feature):
    name = "changes"
    changes_planned = Signal(object)  # ChangeSet proposed by the last answer (or recomputed)
    changes_applied = Signal(object)  # UndoRecord
    changes_undone = Signal(object)   # list of restored paths
    checks_done = Signal(object)      # list of CheckResult after an apply
    edit_failed = Signal(str)         # apply/undo refused, with the message shown
    applied_from = Signal(object)     # the stored answer whose changes were applied (id or None)
    discarded_from = Signal(object)   # ... whose changes were discarded
    pane_wanted = Signal()            # the pane has something to show (changes, a result, a problem)

    def __init__(self, host):
        super().__init__(host)
        self.panel = p = ChangesPanel()
        p.hide()  # shown when it has something to show (pane_wanted; the window places it)
        self.undo_store = UndoStore(self.ctx.paths.data_dir / "undo")
        self.undo_record: UndoRecord | None = None  # what Undo would put back (newest applied)
        self._target: str | None = None  # the file an unlabelled code block is taken for
        self._complete = False  # the shown answer ended by itself (not stopped or cut)
        self.source_id: int | None = None  # the answer whose changes the pane shows
        self._applying_source: int | None = None
        # Asked before an undo that would throw away later changes; tests answer it.
        self.confirm_force_undo = lambda message: QMessageBox.question(
            host.window, "Undo", message) == QMessageBox.Yes
        # Asked before applying over uncommitted edits (or in a merge); tests answer it.
        self.confirm_apply = lambda message: QMessageBox.question(
            host.window, "Apply", message) == QMessageBox.Yes
        self.git = None        # RepoState of the project (None: not a repository), read while planning
        self.settings = None   # the project's check settings, read while planning
        self.request = ""      # the /code request whose answer is shown (for the commit message)
        self.checks_job: Job | None = None
        self.checks_dialog_factory = ChecksDialog  # tests replace it to tick its boxes
        p.apply_requested.connect(self.apply_picks)
        p.undo_requested.connect(self.undo_last)
        p.recompute_requested.connect(self.recompute)
        p.discarded.connect(self._discarded)
        p.files_box.reask_requested.connect(lambda request, files: host.features.chat.ask_change(request, files))
        p.checks.fix_requested.connect(self._ask_fix)
        p.checks.cancel_requested.connect(self.cancel_checks)
        p.checks_settings_requested.connect(self.open_checks_settings)

    def start(self) -> None:
        f = self.host.features
        f.project.project_opened.connect(self._project_opened)
        f.chat.answer_stored.connect(self._answer_stored)

    @property
    def root(self):
        return self.host.features.project.root

    def _project_opened(self, root) -> None:
        self.panel.set_changes(None)
        self.panel.files_box.clear()
        self.panel.checks.clear()
        self.git = self.settings = None
        self._sync_undo()
        self.jobs.start(Job(lambda _ctx: (project_files(root), repo_state(root)), name="project-files", parent=self)
                        .on_success(lambda out: root == self.root and self._project_read(*out)))

    def _project_read(self, files, git) -> None:
        self.panel.files_box.set_project_files(files)
        self.git = git
        self.panel.set_git_line(git.line() if git else "")

    def _answer_stored(self, item) -> None:
        pending, result, stored_id = item
        if self.root is not None and result.text.strip():
            edit = pending.edit
            if edit is not None:
                self.request = edit.request
                self.panel.files_box.show_files(edit.request, [(f, edit.reasons.get(f, "")) for f in edit.files],
                                                pending.files_shown or [])
                self.panel.files_box.show_problems(edit.problems)
                self.pane_wanted.emit()  # a change was asked for: what the model saw, and ask again
            self.show_changes(result.text, guess_target(edit.request, pending.files_shown) if edit else None,
                              stored_id, complete=result.finish_reason == "stop")

    # ---- planning ---------------------------------------------------------------------------
    def show_changes(self, answer: str, target: str | None, source_id: int | None = None,
                     complete: bool = False) -> None:
        """Read an answer for edits to the project's files (on a worker: it reads files), with
        the syntax problems they would bring, the project's check settings and its git state.
        ``source_id``: the stored answer, rated by what the user does with its changes;
        ``complete``: the model finished by itself (a last block without its closing fence is used)."""
        if self.root is None:
            return
        root, data = self.root, self.ctx.paths.data_dir
        self._target, self._complete = target, complete

        def job(_ctx):
            cs = plan_changes(root, answer, target, complete=complete)
            settings, _problem = load_project_settings(project_settings_path(data, root))
            git = repo_state(root)
            line = git.line([c.path for c in cs.changes]) if git else ""
            return cs, syntax_marks(cs) if settings.syntax_check else {}, settings, (git, line)

        self.jobs.start(Job(job, name="plan-changes", parent=self)
                        .on_success(lambda out: self._planned(*out, source_id=source_id))
                        .on_failure(lambda e: self._show_problem(describe_error(e))))

    def _show_problem(self, message: str) -> None:
        self.panel.show_problems([message])
        self.pane_wanted.emit()

    def _planned(self, cs: ChangeSet, marks=None, settings=None, git=None, source_id: int | None = None) -> None:
        if settings is not None:
            self.settings, (self.git, line) = settings, git
            self.panel.set_git_line(line)
        if cs or self.panel.changes is None:
            self.panel.set_changes(cs, marks)
            self.source_id = source_id
        if cs:
            self.pane_wanted.emit()
        self.changes_planned.emit(cs)

    def recompute(self) -> None:
        cs = self.panel.changes
        if cs is not None:
            self.show_changes(cs.answer, self._target, self.source_id, complete=self._complete)

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

    def apply_picks(self, picks, confirmed: bool = False) -> None:
        """Apply the ticked hunks: first a look at git (uncommitted edits in those files, a merge
        or rebase under way: the user confirms), then the apply (and the commit) on a worker."""
        if self.root is None or not picks:
            return
        root = self.root
        committing = bool(self.settings and self.settings.commit_after_apply)
        self.panel.set_busy(True)
        if not confirmed:
            paths = [c.path for c, _ in picks]
            self.jobs.start(Job(lambda _ctx: warn_before_apply(repo_state(root), paths, committing),
                                name="git-look", parent=self)
                            .on_success(lambda warning: self._looked(picks, warning))
                            .on_failure(lambda e: self._looked(picks, describe_error(e))))
            return
        store, answer = self.undo_store, self.panel.changes.answer if self.panel.changes else ""
        label, request = answer[:80], self.request
        before = texts_before(picks)
        self._applying_source = self.source_id
        self.jobs.start(Job(lambda _ctx: apply_and_commit(root, picks, store, label, commit=committing,
                                                          request=request, answer=answer),
                            name="apply-changes", parent=self)
                        .on_success(lambda applied: self._applied(applied, before))
                        .on_failure(self._edit_failed))

    def _looked(self, picks, warning: str | None) -> None:
        if warning and not self.confirm_apply(warning + "\n\nApply anyway?"):
            self.panel.set_busy(False)
            return
        self.apply_picks(picks, confirmed=True)

    def _applied(self, applied: Applied, before: dict | None = None) -> None:
        record = applied.record
        self.panel.set_busy(False)
        self.panel.set_changes(None)
        self.panel.files_box.clear()
        committed = f" Committed as {applied.commit[:7]}." if applied.commit else ""
        self.panel.info.setText(f"Applied: {', '.join(record.paths)}.{committed} Undo puts them back.")
        if applied.notes:
            self.panel.show_problems(applied.notes)
        self.host.notify(f"Applied changes to {len(record.files)} file(s)")
        self._set_undo(record)
        self.applied_from.emit(self._applying_source)
        self.source_id = None
        self.changes_applied.emit(record)
        self.run_checks(record.paths, before or {})

    def _edit_failed(self, e: BaseException) -> None:
        self.panel.set_busy(False)
        message = describe_error(e)
        self.panel.show_problems([message], stale=isinstance(e, StaleFileError))
        self.pane_wanted.emit()
        self.edit_failed.emit(message)

    # ---- checks after Apply --------------------------------------------------------------------
    def run_checks(self, paths: list[str], before: dict) -> None:
        """Syntax, linters and (when chosen) tests of the change just applied, on a worker that
        Cancel stops; the results go under the applied change."""
        if self.root is None:
            return
        self.cancel_checks()
        root, data, label = self.root, self.ctx.paths.data_dir, ", ".join(paths)
        self.panel.checks.running(label)
        job = Job(lambda ctx: checks_after_apply(data, root, paths, cancel=ctx.cancel_event,
                                                 on_progress=ctx.partial, before=before),
                  name="checks", parent=self)
        self.checks_job = self.jobs.start(job.on_partial(self.panel.checks.show_progress)
                                          .on_success(lambda results: self._checked(label, results))
                                          .on_failure(lambda e: self._checked(label, [], describe_error(e))))

    def _checked(self, label: str, results: list, error: str = "") -> None:
        self.checks_job = None
        if error:
            self.panel.checks.clear()
            self.panel.show_problems([error])
            return
        self.panel.checks.show_results(label, results)
        self.checks_done.emit(results)

    def cancel_checks(self) -> None:
        if self.checks_job is not None and self.checks_job.is_running():
            self.checks_job.cancel()

    def _ask_fix(self, result) -> None:
        """"Ask for a fix" under a failed check: its real output as a change request, with the
        files it names (else the ones just applied) shown to the model."""
        files = list(result.files) or (list(self.undo_record.paths) if self.undo_record else [])
        self.host.features.chat.ask_change(result.fix_text, files)

    def open_checks_settings(self) -> None:
        """Changes → Checks…: read what the project has on a worker, then the dialog."""
        root, path = self.root, None
        if root is None:
            return
        path = project_settings_path(self.ctx.paths.data_dir, root)

        def job(_ctx):
            settings, problem = load_project_settings(path)
            return settings, problem, detect(root, settings), repo_state(root) is not None

        self.jobs.start(Job(job, name="checks-settings", parent=self)
                        .on_success(lambda out: self._settings_dialog(path, root, *out)))

    def _settings_dialog(self, path, root, settings, problem, detection, is_repo) -> None:
        dlg = self.checks_dialog_factory(settings, detection, is_repo, str(problem or ""), self.host.window)
        if dlg.exec() != QDialog.Accepted:
            return
        chosen = dlg.chosen()
        try:
            save_project_settings(path, chosen, root)
        except ValueError as e:
            self.panel.show_problems([describe_error(e)])
            return
        self.settings = chosen

    # ---- undoing -----------------------------------------------------------------------------
    def undo_last(self, force: bool = False) -> None:
        record, store = self.undo_record, self.undo_store
        if record is None:
            return
        self.panel.set_busy(True)
        self.jobs.start(Job(lambda _ctx: undo_change(store, record, force), name="undo-changes", parent=self)
                        .on_success(self._undone)
                        .on_failure(lambda e: self._undo_failed(e, force)))

    def _undone(self, out) -> None:
        paths, warning = out
        self.panel.set_busy(False)
        self.panel.checks.clear()
        self.panel.info.setText(f"Undone: {', '.join(paths)} restored.")
        if warning:
            self.panel.show_problems([warning])
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

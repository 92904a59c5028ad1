"""The main window: conversations on the left, the chat on the right.

It wires widgets to app.core and runs every long job (model load, generation) through
``ui.workers.Job``. It decides nothing about prompts or storage: ChatService does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from pathlib import Path

from PySide6.QtCore import QCoreApplication, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QKeySequence
from PySide6.QtWidgets import QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QSplitter

from app import APP_NAME, __version__
from app.core.adapters.errors import AdapterError
from app.core.adapters.importer import ImportProgress, ModelChoice, candidate_models, import_adapter
from app.core.adapters.manifest import ModelShape
from app.core.adapters.store import AdapterStore, StoredAdapter
from app.core.adapters.verdict import Verdict, evaluate_stored
from app.core.learn.fim import fim_style_for
from app.core.learn.project_set import default_output
from app.core.chat import ChatService, PendingAnswer, answer_reserve, build_messages
from app.core.fix import CodeBlock, fix_request, last_runnable, runnable_blocks
from app.core.project_tests import FixTarget, has_tests, parse_fix
from app.core.intent import network_note, route
from app.core.net.policy import OfflineError
from app.core.sandbox import RunResult, SandboxError, run_code
from app.core.secrets import KeyringUnavailable
from app.core.web import SearchError
from app.core.edit_prompt import EditRequest, guess_target, strip_command
from app.core.edits import (ApplyError, ChangeSet, StaleFileError, UndoConflict, UndoRecord, UndoStore,
                            apply_changes, plan_changes, undo)
from app.core.engine import Engine, EngineConfig, EngineError, EvaluationCancelled, GenerationResult
from app.core.index.context import PROMPT_CHUNKS
from app.core.index.embed import Embedder, EmbedderError
from app.core.index.indexer import IndexDiskFull, IndexProgress, IndexStats, ProjectIndex, index_dir_for
from app.core.index.rank import RankWeights
from app.core.index.snippet import Snippet, SnippetError, read_snippet
from app.core.index.watch import ProjectWatcher
from app.core.models.active import ActiveModel, active_model
from app.core.models.embedded import StarterModelMissing
from app.core.models.registry import ModelRegistry
from app.core.net import policy
from app.core.net.audit import LOG, ConnectionPoller, FirewallWatcher
from app.core.net.firewall.client import FirewallClient
from app.core.net.firewall.linux_nft import FirewallStatus
from app.core.net.verify import VerifyResult, verify
from app.core.project import remember_recent
from app.core.render import parse_citation
from app.core.paths import AppPaths
from app.core.settings import Settings
from app.core.storage import Storage
from app.core.rules import parse_remember
from app.core.training_export import ExportFilter, export_training_data
from app.ui.adapters_panel import AdaptersPanel
from app.ui.project_set_dialog import ProjectSetDialog
from app.ui.keys_dialog import KeysDialog
from app.ui.changes_panel import ChangesPanel
from app.ui.chat_panel import ChatPanel
from app.ui.conversations_panel import ConversationsPanel
from app.ui.doctor_dialog import show_system_check
from app.ui.models_dialog import ModelsDialog
from app.ui.network_panel import NetworkPanel
from app.ui.project_panel import ProjectPanel
from app.ui.review_panel import ReviewController
from app.ui.export_dialog import ExportDialog
from app.ui.rules_panel import RulesPanel
from app.ui.test_fix import TestFixer
from app.ui.workers import Job

SHUTDOWN_WAIT_MS = 5000


@dataclass
class AppContext:
    """What the window needs from the outside: where data lives and the user's settings."""

    paths: AppPaths
    settings: Settings
    storage: Storage
    # The OS firewall (through the privileged helper); None: not managed (tests, other OSes).
    firewall: FirewallClient | None = None

    @classmethod
    def open(cls, paths: AppPaths) -> "AppContext":
        paths.ensure()
        return cls(paths, Settings.load(paths.settings_file), Storage(paths.database))


def describe_error(e: BaseException) -> str:
    """One line a user can act on; exception class names only for unexpected errors. Each is
    logged (redacted; an unexpected one with its traceback)."""
    from app.core.logs import log
    if isinstance(e, (EngineError, StarterModelMissing, ValueError, ApplyError, UndoConflict, EmbedderError,
                      SnippetError, IndexDiskFull, AdapterError, OfflineError, SearchError, SandboxError,
                      KeyringUnavailable)):
        log.warning("shown: %s", e)
        return str(e)
    log.error("unexpected error shown: %s: %s\n%s", type(e).__name__, e, getattr(e, "__traceback_text__", ""))
    return f"{type(e).__name__}: {e}"


class MainWindow(QMainWindow):
    model_ready = Signal()        # a model finished loading
    model_failed = Signal(str)    # loading failed for good (no fallback left), with the message shown
    answer_finished = Signal(object)  # GenerationResult of the last answer
    changes_planned = Signal(object)  # ChangeSet proposed by the last answer (or recomputed)
    changes_applied = Signal(object)  # UndoRecord
    changes_undone = Signal(object)   # list of restored paths
    edit_failed = Signal(str)         # apply/undo refused, with the message shown
    firewall_changed = Signal(object)  # FirewallStatus read back from the OS (or an Exception)
    verified = Signal(object)          # VerifyResult
    index_finished = Signal(object)    # IndexStats of an indexing run
    search_finished = Signal(object)   # list[Hit] shown in the Project panel
    snippet_shown = Signal(object)     # Snippet shown for a clicked citation
    files_changed = Signal(object)     # set of paths, from the file watcher's thread
    tool_finished = Signal(object)     # /search: the results shown (markdown)
    tool_failed = Signal(str)          # a tool refused or failed, with the message shown
    code_ran = Signal(object)          # (runs, last RunResult) of Run, /run or /fix
    adapter_imported = Signal(object)  # StoredAdapter
    adapter_failed = Signal(str)       # an import or apply refused, with the message shown
    adapters_applied = Signal(object)  # [(file, scale)] now on the engine
    adapter_evaluated = Signal(object)  # Verdict stored with an adapter
    rated = Signal(int, object)        # message id, the Rating stored for that answer

    def __init__(self, ctx: AppContext):
        super().__init__()
        self.ctx = ctx
        self.chat = ChatService(ctx.storage, ctx.settings)
        self.engine: Engine | None = None
        self.model: ActiveModel | None = None
        self.load_job: Job | None = None
        self.answer_job: Job | None = None
        self._pending: PendingAnswer | None = None
        self.models_dialog: ModelsDialog | None = None
        self.hardware_probe = None  # tests inject a fake machine here
        self.current_id: int | None = None
        self.project: Path | None = None
        self.undo_store = UndoStore(ctx.paths.data_dir / "undo")
        self.edit_job: Job | None = None
        self.undo_scan_job: Job | None = None
        self.undo_record: UndoRecord | None = None  # what Undo would put back (newest applied)
        self._plan_target: str | None = None  # the file an unlabelled code block is taken for
        # Asked before an undo that would throw away later changes; tests answer it.
        self.confirm_force_undo = lambda message: QMessageBox.question(
            self, "Undo", message) == QMessageBox.Yes

        self.setWindowTitle(APP_NAME)
        self.resize(1280, 760)
        self.conversations = ConversationsPanel()
        self.chat_panel = ChatPanel()
        self.changes_panel = ChangesPanel()
        self.changes_panel.hide()
        split = QSplitter(Qt.Horizontal)
        split.addWidget(self.conversations)
        split.addWidget(self.chat_panel)
        split.addWidget(self.changes_panel)
        split.setStretchFactor(1, 1)
        split.setSizes([220, 620, 440])
        self.setCentralWidget(split)
        self.model_label = QLabel()
        self.project_label = QLabel()
        self.stats_label = QLabel()
        self.statusBar().addWidget(self.model_label, 1)
        self.statusBar().addPermanentWidget(self.project_label)
        self.statusBar().addPermanentWidget(self.stats_label)
        self._build_menu()
        self._build_network()
        self._build_project()
        self._build_adapters()
        self.review = ReviewController(self)
        self._build_feedback()
        self.test_fixer = TestFixer(self)

        self.conversations.new_requested.connect(self.new_conversation)
        self.conversations.selected.connect(self.open_conversation)
        self.conversations.rename_requested.connect(self.rename_conversation)
        self.conversations.delete_requested.connect(self.delete_conversation)
        self.chat_panel.send_requested.connect(self.send)
        self.chat_panel.stop_requested.connect(self.stop)
        self.chat_panel.banner_link.connect(lambda _href: self.show_models().select_recommended())
        self.chat_panel.view.citation_clicked.connect(self.show_citation)
        self.chat_panel.view.run_requested.connect(self.run_block)
        # Asked before shell code runs (Python runs at once); tests answer it.
        self.confirm_shell = lambda code: QMessageBox.question(
            self, "Run shell code?", "Run this shell code in the sandbox (no network, a temporary folder, "
            f"10 s)?\n\n{code[:800]}") == QMessageBox.Yes
        self.chat_panel.view.copied.connect(
            lambda code: self.statusBar().showMessage(f"Copied {len(code.splitlines())} lines", 3000))
        self.changes_panel.apply_requested.connect(self.apply_picks)
        self.changes_panel.undo_requested.connect(self.undo_last)
        self.changes_panel.recompute_requested.connect(self.recompute_changes)

        convs = ctx.storage.conversations()
        self.current_id = convs[0].id if convs else None
        self._refresh_list()
        self._show_conversation()
        if ctx.settings.project_dir and Path(ctx.settings.project_dir).is_dir():
            self.open_project(Path(ctx.settings.project_dir))
        self.load_model()

    def _build_menu(self) -> None:
        self.models_action = QAction("&Models…", self)
        self.models_action.setToolTip("Choose, download or import a model")
        self.models_action.triggered.connect(self.show_models)
        toolbar = self.toolbar = self.addToolBar("Main")
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(False)
        toolbar.addAction(self.models_action)
        file_menu = self.file_menu = self.menuBar().addMenu("&File")
        new = QAction("&New chat", self)
        new.setShortcut(QKeySequence.New)
        new.triggered.connect(self.new_conversation)
        quit_ = QAction("&Quit", self)
        quit_.setShortcut(QKeySequence.Quit)
        quit_.triggered.connect(self.close)
        self.open_project_action = QAction("Open &Project…", self)
        self.open_project_action.setShortcut(QKeySequence("Ctrl+Shift+O"))
        self.open_project_action.triggered.connect(self.choose_project)
        self.recent_menu = None
        file_menu.addAction(new)
        file_menu.addAction(self.open_project_action)
        self.recent_menu = file_menu.addMenu("Recent projects")
        self._fill_recent()
        self.project_set_action = QAction("&Training set from this project…", self)
        self.project_set_action.setToolTip("Instruction/response pairs from the open project's own code, "
                                           "as JSONL for the fine-tuning notebook")
        self.project_set_action.setEnabled(False)  # until a project is open
        self.project_set_action.triggered.connect(self.show_project_set)
        self.project_set_dialog: ProjectSetDialog | None = None
        file_menu.addAction(self.project_set_action)
        file_menu.addAction(self.models_action)
        file_menu.addSeparator()
        file_menu.addAction(quit_)
        settings_menu = self.menuBar().addMenu("&Settings")
        self.keys_action = QAction("&Keys…", self)
        self.keys_action.setToolTip("Web search provider and API keys (kept in the OS keyring)")
        self.keys_action.triggered.connect(self.show_keys)
        settings_menu.addAction(self.keys_action)
        self.keys_dialog: KeysDialog | None = None
        help_menu = self.menuBar().addMenu("&Help")
        self.system_check_action = QAction("System &check", self)
        self.system_check_action.setToolTip("Check models, llama.cpp, offline mode, the index and storage")
        self.system_check_action.triggered.connect(lambda: show_system_check(self))
        help_menu.addAction(self.system_check_action)
        about = QAction("&About", self)
        about.triggered.connect(lambda: QMessageBox.about(
            self, APP_NAME, f"{APP_NAME} {__version__}\nA coding assistant that runs a local model offline.\n"
                            f"Data: {self.ctx.paths.data_dir}"))
        help_menu.addAction(about)

    def _dock(self, title: str, panel, area) -> QDockWidget:
        """A hidden dock holding ``panel`` (shown from the toolbar or when it has news)."""
        dock = QDockWidget(title, self)
        dock.setObjectName(f"{title.lower()}Dock")
        dock.setWidget(panel)
        self.addDockWidget(area, dock)
        dock.hide()
        return dock

    # ---- offline mode and the network panel ------------------------------------------------------
    def _build_network(self) -> None:
        self.network_panel = NetworkPanel()
        self.network_dock = self._dock("Network", self.network_panel, Qt.BottomDockWidgetArea)
        self.offline_action = QAction("Offline", self)
        self.offline_action.setCheckable(True)
        self.offline_action.setToolTip("Block every connection of the app and its child processes (OS firewall)")
        self.network_action = self.network_dock.toggleViewAction()
        self.network_action.setText("Network")
        self.toolbar.addAction(self.offline_action)
        self.toolbar.addAction(self.network_action)
        self._unsubscribe = LOG.subscribe(self.network_panel.event_arrived.emit)
        for e in LOG.events()[-200:]:
            self.network_panel.add_event(e)
        self.poller = ConnectionPoller(LOG, firewall_active=lambda: self.firewall_status is not None
                                       and self.firewall_status.active)
        self.firewall_watcher = FirewallWatcher(LOG)
        self.firewall_status: FirewallStatus | None = None
        self.net_job: Job | None = None
        self._polls = 0
        self.poll_timer = QTimer(self)
        self.poll_timer.setInterval(1000)
        self.poll_timer.timeout.connect(self.poll_network)
        self.poll_timer.start()
        self.network_panel.verify_requested.connect(self.verify_block)
        self.network_panel.export_requested.connect(self.export_network_log)
        self.offline_action.setChecked(self.ctx.settings.offline)
        self.offline_action.toggled.connect(self.set_offline)
        self.set_offline(self.ctx.settings.offline)

    def set_offline(self, on: bool) -> None:
        """Switch offline mode: the app's own check at once, the OS firewall on a worker."""
        policy.set_offline(on)
        if self.ctx.settings.offline != on:
            self.ctx.settings.offline = on
            self.ctx.settings.save(self.ctx.paths.settings_file)
        if self.offline_action.isChecked() != on:
            self.offline_action.setChecked(on)
        fw = self.ctx.firewall
        if fw is None:
            self.network_panel.set_firewall_status(
                "Firewall: not managed in this session; the app's own guard "
                + ("blocks every non-loopback connection." if on else "is recording connections."))
            return
        self.network_panel.set_firewall_status("Firewall: changing…")
        self.net_job = (Job(lambda _ctx: fw.on() if on else fw.off(), name="firewall", parent=self)
                        .on_success(self._firewall_read)
                        .on_failure(self._firewall_read)
                        .start())

    def _firewall_read(self, status) -> None:
        if isinstance(status, BaseException):
            self.network_panel.set_firewall_status(
                f"Firewall: could not be changed ({status}). The app's own guard still "
                + ("blocks connections." if policy.is_offline() else "records connections."))
        else:
            self.firewall_status = status
            self.firewall_watcher.update(status)
            self.network_panel.set_firewall_status(status.detail)
        self.firewall_changed.emit(status)

    def poll_network(self) -> None:
        """Each second: the process tree's connections; every fifth, the firewall's own report
        (when reading it needs no password; otherwise it is read after each on/off)."""
        if self.net_job is not None and self.net_job.is_running():
            return
        self._polls += 1
        fw = self.ctx.firewall
        if self._polls % 5 or fw is None or not fw.quiet_status:
            fw = None
        poller = self.poller

        def job(_ctx):
            poller.poll()
            return fw.status() if fw is not None else None

        self.net_job = (Job(job, name="network-poll", parent=self)
                        .on_success(lambda st: st is not None and self._firewall_read(st))
                        .on_failure(lambda e: self.network_panel.set_firewall_status(f"Firewall: cannot read ({e})"))
                        .start())

    def verify_block(self) -> None:
        target = self.ctx.settings.verify_target
        fw = self.ctx.firewall
        read = fw.status if fw is not None and fw.quiet_status else None
        self.network_panel.verify_label.setText(f"Verifying: connecting to {target} (a documentation address "
                                                "nobody answers) from a child process…")
        Job(lambda _ctx: verify(target, read), name="verify", parent=self) \
            .on_success(self._verified) \
            .on_failure(lambda e: self._verified(VerifyResult("inconclusive", target, describe_error(e)))) \
            .start()

    def _verified(self, result: VerifyResult) -> None:
        self.network_panel.verify_label.setText(result.message)
        self.verified.emit(result)

    def export_network_log(self, path: str) -> None:
        try:
            Path(path).write_text(LOG.to_csv(), encoding="utf-8")
        except OSError as e:
            self.network_panel.verify_label.setText(f"Could not export: {e.strerror or e}")
            return
        self.statusBar().showMessage(f"Network log exported to {path}", 5000)

    # ---- project index ---------------------------------------------------------------------
    def _build_project(self) -> None:
        self.project_panel = ProjectPanel()
        self.project_dock = self._dock("Project", self.project_panel, Qt.RightDockWidgetArea)
        self.project_action = self.project_dock.toggleViewAction()
        self.project_action.setText("Project")
        self.toolbar.addAction(self.project_action)
        self.index: ProjectIndex | None = None  # searchable once the opening job has made it
        self.index_job: Job | None = None
        self.search_job: Job | None = None
        self.snippet_job: Job | None = None
        # What the opening job made for the current project (index, watcher), for closing it
        # whichever job or generation still runs.
        self._opened: dict = {}
        self._embedder: Embedder | None = None
        self._index_generation = 0
        self._reindex_again = False
        self.project_panel.search_requested.connect(self.search_project)
        self.project_panel.cancel_requested.connect(self.cancel_index)
        self.project_panel.reindex_requested.connect(self.update_index)
        self.project_panel.open_requested.connect(
            lambda path, _line: self.project and QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.project / path))))
        self.files_changed.connect(lambda _paths: self.update_index())
        self.project_panel.use_project.setChecked(self.ctx.settings.retrieval.use_project)
        self.project_panel.use_project_changed.connect(self._set_use_project)

    def _set_use_project(self, on: bool) -> None:
        self.ctx.settings.retrieval.use_project = on
        self.ctx.settings.save(self.ctx.paths.settings_file)

    def _open_index(self) -> None:
        """Open (or create) the project's index and bring it up to date, all on a worker;
        keyword search works from the moment the index object arrives."""
        self._close_index()
        root = self.project
        self.project_panel.set_project(str(root))
        self.project_dock.show()
        try:
            if self._embedder is None:
                self._embedder = Embedder(threads=max(1, min(4, self.ctx.settings.n_threads or 2)))
        except EmbedderError as e:
            self.project_panel.show_error(str(e))
            return
        self.project_panel.show_error(None)
        emb, index_dir = self._embedder, index_dir_for(root, self.ctx.paths.cache_dir)
        opened = self._opened = {}
        changed = self.files_changed.emit

        def job(ctx):
            # on the worker: opening reads the database and graph, and the watcher walks the tree
            opened["index"] = pi = ProjectIndex(root, index_dir, emb)
            try:
                opened["watcher"] = ProjectWatcher(root, changed).start()
            except OSError as e:  # e.g. the inotify watch limit
                opened["watch_error"] = e
            ctx.partial(pi)
            return pi.update(progress=ctx.partial, cancelled=ctx.cancelled)

        self._run_index(job)

    def _run_index(self, fn) -> None:
        self._index_generation += 1
        gen = self._index_generation
        self.project_panel.set_indexing(True)
        self.index_job = (Job(fn, name="index", parent=self)
                          .on_partial(lambda obj: self._index_partial(obj, gen))
                          .on_success(lambda stats: self._indexed(stats, gen))
                          .on_failure(lambda e: self._index_failed(e, gen)))
        self.index_job.finished.connect(lambda: self._index_job_over(gen))
        self.index_job.start()

    def _index_partial(self, obj, gen: int) -> None:
        if isinstance(obj, ProjectIndex):
            if gen != self._index_generation:
                return  # the project was switched meanwhile; that job closes it when done
            self.index = obj
            problems = list(obj.notices)
            if "watch_error" in self._opened:
                problems.append(f"Changes to files are not followed ({self._opened['watch_error']}); "
                                "use Update index.")
            if problems:
                self.project_panel.show_error("\n".join(problems))
            retrieval = self.ctx.settings.retrieval
            self.chat.retriever = lambda q, pi=obj: pi.search(q, PROMPT_CHUNKS, RankWeights.from_settings(retrieval))
        elif isinstance(obj, IndexProgress) and gen == self._index_generation:
            self.project_panel.show_progress(obj)

    def _indexed(self, stats: IndexStats, gen: int) -> None:
        if gen != self._index_generation:
            return
        self.project_panel.set_indexing(False)
        self.project_panel.show_stats(stats)
        self.index_finished.emit(stats)

    def _index_job_over(self, gen: int) -> None:
        """Changes that arrived while the job ran get their own run now."""
        if gen == self._index_generation and self._reindex_again:
            self._reindex_again = False
            self.update_index()

    def cancel_index(self) -> None:
        self._reindex_again = False
        if self.index_job is not None:
            self.index_job.cancel()

    def _index_failed(self, e: BaseException, gen: int) -> None:
        if gen != self._index_generation:
            return
        self.project_panel.set_indexing(False)
        self.project_panel.show_error(f"Indexing failed: {describe_error(e)}")

    def update_index(self) -> None:
        """Re-index what changed (the watcher calls this; so does Update index)."""
        if self.index is None:
            return
        if self.index_job is not None and self.index_job.is_running():
            self._reindex_again = True
            return
        pi = self.index
        self._run_index(lambda ctx: pi.update(progress=ctx.partial, cancelled=ctx.cancelled))

    def _close_index(self) -> None:
        self.chat.retriever = None
        self.index = None
        opened, job, self._opened = self._opened, self.index_job, {}
        self._index_generation += 1
        if job is not None and job.is_running():
            job.cancel()
            job.finished.connect(lambda: _release(opened))  # the worker may still use the index
        else:
            _release(opened)

    def search_project(self, query: str) -> None:
        if self.index is None or not query.strip():
            return
        pi = self.index
        self.search_job = (Job(lambda _ctx: pi.search(query, 20), name="search", parent=self)
                           .on_success(self._searched)
                           .on_failure(lambda e: self.project_panel.show_error(describe_error(e)))
                           .start())

    def _searched(self, hits) -> None:
        self.project_panel.show_results(hits)
        self.search_finished.emit(hits)

    def show_citation(self, citation: str) -> None:
        """Show the lines a citation in an answer points at, read from the file as it is now."""
        parsed = parse_citation(citation)
        if parsed is None or self.project is None:
            self.statusBar().showMessage("Open the project to see cited code.", 4000)
            return
        root = self.project
        self.snippet_job = (Job(lambda _ctx: read_snippet(root, *parsed), name="snippet", parent=self)
                            .on_success(self._snippet_read)
                            .on_failure(lambda e: self.project_panel.show_error(describe_error(e)))
                            .start())

    def _snippet_read(self, s: Snippet) -> None:
        self.project_dock.show()
        self.project_panel.show_error(None)
        self.project_panel.show_snippet(s.path, s.start, s.end, s.text, s.language)
        self.snippet_shown.emit(s)

    # ---- project and changes -----------------------------------------------------------------
    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for folder in self.ctx.settings.recent_projects:
            act = self.recent_menu.addAction(folder)
            act.triggered.connect(lambda _=False, f=folder: self.open_project(Path(f)))
        self.recent_menu.setEnabled(bool(self.ctx.settings.recent_projects))

    def choose_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open project folder", self.ctx.settings.project_dir)
        if folder:
            self.open_project(Path(folder))

    def open_project(self, folder: Path) -> None:
        """Make ``folder`` the project: answers are read for edits to its files."""
        if not folder.is_dir():
            self.chat_panel.show_error(f"{folder} is not a folder (it may have been moved or deleted).")
            return
        self.project = self.chat.project = folder.resolve()
        s = self.ctx.settings
        s.project_dir = str(self.project)
        s.recent_projects = remember_recent(s.recent_projects, self.project)
        s.save(self.ctx.paths.settings_file)
        self._fill_recent()
        self.project_label.setText(f"Project: {self.project.name}")
        self.project_set_action.setEnabled(True)
        self.project_label.setToolTip(str(self.project))
        self.changes_panel.show()
        self.changes_panel.set_changes(None)
        self._sync_undo()
        self._refresh_rules()
        self._open_index()

    def _sync_undo(self) -> None:
        """Find the newest undoable apply of the project: it reads every undo record, so on a worker."""
        self._set_undo(None)
        if self.project is None:
            return
        root, store = self.project, self.undo_store
        self.undo_scan_job = (Job(lambda _ctx: store.last_undoable(root), name="undo-scan", parent=self)
                              .on_success(lambda record: root == self.project and self._set_undo(record))
                              .start())

    def _set_undo(self, record: UndoRecord | None) -> None:
        self.undo_record = record
        self.changes_panel.set_undo_available(record is not None, ", ".join(record.paths) if record else "")

    def show_changes(self, answer: str, target: str | None, source_id: int | None = None) -> None:
        """Read an answer for edits to the project's files (on a worker: it reads files).
        ``source_id``: the stored answer, rated by what the user does with its changes."""
        if self.project is None:
            return
        root = self.project
        self._plan_target = target
        self.edit_job = (Job(lambda _ctx: plan_changes(root, answer, target), name="plan-changes", parent=self)
                         .on_success(lambda cs: self._changes_planned(cs, source_id))
                         .on_failure(lambda e: self.changes_panel.show_problems([describe_error(e)]))
                         .start())

    def _changes_planned(self, cs: ChangeSet, source_id: int | None = None) -> None:
        if cs or self.changes_panel.changes is None:
            self.changes_panel.set_changes(cs)
            self._changes_source = source_id
        self.changes_planned.emit(cs)

    def recompute_changes(self) -> None:
        cs = self.changes_panel.changes
        if cs is not None:
            self.show_changes(cs.answer, self._plan_target, self._changes_source)

    def apply_picks(self, picks) -> None:
        if self.project is None or not picks:
            return
        root, store = self.project, self.undo_store
        label = self.changes_panel.changes.answer[:80] if self.changes_panel.changes else ""
        self._applying_source = self._changes_source
        self.changes_panel.set_busy(True)
        self.edit_job = (Job(lambda _ctx: apply_changes(root, picks, store, label), name="apply-changes", parent=self)
                         .on_success(self._applied)
                         .on_failure(self._edit_failed)
                         .start())

    def _applied(self, record: UndoRecord) -> None:
        self.changes_panel.set_busy(False)
        self.changes_panel.set_changes(None)
        self.changes_panel.info.setText(f"Applied: {', '.join(record.paths)}. Undo puts them back.")
        self.statusBar().showMessage(f"Applied changes to {len(record.files)} file(s)", 5000)
        self._set_undo(record)
        self._implicit_rating(self._applying_source, "applied")
        self._changes_source = None
        self.changes_applied.emit(record)

    def _edit_failed(self, e: BaseException) -> None:
        self.changes_panel.set_busy(False)
        self.changes_panel.show_problems([describe_error(e)], stale=isinstance(e, StaleFileError))
        self.edit_failed.emit(describe_error(e))

    def undo_last(self, force: bool = False) -> None:
        record, store = self.undo_record, self.undo_store
        if record is None:
            return
        self.changes_panel.set_busy(True)
        self.edit_job = (Job(lambda _ctx: undo(store, record, force), name="undo-changes", parent=self)
                         .on_success(self._undone)
                         .on_failure(lambda e: self._undo_failed(e, force))
                         .start())

    def _undone(self, paths: list[str]) -> None:
        self.changes_panel.set_busy(False)
        self.changes_panel.info.setText(f"Undone: {', '.join(paths)} restored.")
        self._sync_undo()
        self.changes_undone.emit(paths)

    def _undo_failed(self, e: BaseException, forced: bool) -> None:
        self.changes_panel.set_busy(False)
        if isinstance(e, UndoConflict) and e.paths and not forced and self.confirm_force_undo(str(e)):
            self.undo_last(force=True)
            return
        self.changes_panel.show_problems([describe_error(e)])
        self.edit_failed.emit(describe_error(e))

    # ---- keys ----------------------------------------------------------------------------------
    def show_keys(self) -> KeysDialog:
        self.keys_dialog = KeysDialog(self.ctx.settings.search_provider, parent=self)
        self.keys_dialog.provider_changed.connect(self._set_search_provider)
        self.keys_dialog.show()
        return self.keys_dialog

    def _set_search_provider(self, name: str) -> None:
        self.ctx.settings.search_provider = name
        self.ctx.settings.save(self.ctx.paths.settings_file)

    # ---- LoRA adapters -----------------------------------------------------------------------
    def _build_adapters(self) -> None:
        self.adapter_store = AdapterStore(self.ctx.paths.data_dir / "adapters")
        self.adapter_store.clean()  # staging folders a crash may have left
        self.adapters_panel = AdaptersPanel()
        self.adapters_dock = self._dock("Adapters", self.adapters_panel, Qt.RightDockWidgetArea)
        self.adapters_action = self.adapters_dock.toggleViewAction()
        self.adapters_action.setText("Adapters")
        self.adapters_action.setToolTip("Fine-tuned LoRA adapters: import, switch on or off, set strength")
        self.toolbar.addAction(self.adapters_action)
        self.import_adapter_action = QAction("Import &adapter…", self)
        self.import_adapter_action.triggered.connect(lambda: (self.adapters_dock.show(), self.adapters_panel.choose_zip()))
        self.file_menu.insertAction(self.models_action, self.import_adapter_action)
        self.adapter_job: Job | None = None
        self.apply_job: Job | None = None
        self._reapply = False
        self.confirm_delete_adapter = lambda name: QMessageBox.question(
            self, "Delete adapter", f"Delete the adapter {name}? Its converted file is removed.") == QMessageBox.Yes
        p = self.adapters_panel
        p.import_requested.connect(self.import_adapter)
        self.verdict_job: Job | None = None
        p.cancel_requested.connect(lambda: [j.cancel() for j in (self.adapter_job, self.verdict_job) if j is not None])
        p.evaluate_requested.connect(self.evaluate_adapter)
        p.enabled_changed.connect(self.set_adapter_enabled)
        p.scale_changed.connect(self.set_adapter_scale)
        p.delete_requested.connect(self.delete_adapter)
        self.refresh_adapters()

    def _model_key(self) -> str | None:
        return ModelShape.from_gguf(self.engine.model.info).key if self.engine is not None else None

    def _adapter_names(self) -> list[str]:
        """The adapters on the engine now, as 'name ×scale'."""
        if self.engine is None or not self.engine.adapters:
            return []
        by_file = {str(a.file.resolve()): a.name for a in self.adapter_store.list()}
        return [f"{by_file.get(str(p), p.parent.name)} ×{s:.2f}" for p, s in self.engine.adapters]

    def refresh_adapters(self) -> None:
        name = self.model.name if self.model is not None else "the loaded model"
        self.adapters_panel.set_adapters(self.adapter_store.list(), self._model_key(), name)

    def import_adapter(self, path: str) -> None:
        if self.adapter_job is not None and self.adapter_job.is_running():
            return
        store, loaded, models_dir = self.adapter_store, self.model, self.ctx.paths.models_dir
        panel = self.adapters_panel
        panel.show_error(None)
        panel.set_busy(True)
        self.adapters_dock.show()

        def job(ctx):
            # reads model headers and hashes the starter: not on the GUI thread
            models = candidate_models(ModelChoice(loaded.name, Path(loaded.path)) if loaded else None, models_dir)
            return import_adapter(Path(path), store, models, cancelled=ctx.cancelled, progress=ctx.partial)

        self.adapter_job = (Job(job, name="import-adapter", parent=self)
                            .on_partial(panel.show_progress)
                            .on_success(self._adapter_imported)
                            .on_failure(self._adapter_failed)
                            .start())

    def _adapter_imported(self, a: StoredAdapter) -> None:
        self.adapters_panel.set_busy(False)
        self.refresh_adapters()
        item = self.adapters_panel.item(a.id)
        if item is not None:
            self.adapters_panel.tree.setCurrentItem(item)
        fits = a.model_key == self._model_key()
        self.statusBar().showMessage(
            f"Adapter {a.name} imported" + (": tick it to use it." if fits else f" for {a.model_label}."), 8000)
        self.adapter_imported.emit(a)
        if a.validation_file is not None and fits:  # the zip's validation split: measure it now
            self.evaluate_adapter(a.id, str(a.validation_file))

    def _adapter_failed(self, e: BaseException) -> None:
        self.adapters_panel.set_busy(False)
        self.adapters_panel.show_error(describe_error(e))
        self.adapter_failed.emit(describe_error(e))

    def set_adapter_enabled(self, adapter_id: str, on: bool) -> None:
        self.adapter_store.set_enabled(adapter_id, on)
        self.apply_adapters()

    def set_adapter_scale(self, adapter_id: str, scale: float) -> None:
        self.adapter_store.set_scale(adapter_id, scale)
        self.apply_adapters()

    def delete_adapter(self, adapter_id: str) -> None:
        a = self.adapter_store.get(adapter_id)
        if a is None or not self.confirm_delete_adapter(a.name):
            return
        self.adapter_store.remove(adapter_id)
        self.refresh_adapters()
        self.apply_adapters()

    def apply_adapters(self) -> None:
        """Put the store's enabled adapters on the live engine (no reload), one job at a time:
        a change made while a job runs is applied when it ends, so the last change wins."""
        engine = self.engine
        if engine is None:
            return
        if self.apply_job is not None and self.apply_job.is_running():
            self._reapply = True
            return
        self._reapply = False
        store, key = self.adapter_store, self._model_key()

        def job(_ctx):
            wanted = store.active(key)
            engine.set_adapters(wanted)  # waits for a running answer to finish
            return wanted

        self.apply_job = (Job(job, name="apply-adapters", parent=self)
                          .on_success(self._adapters_applied)
                          .on_failure(self._adapter_failed))
        self.apply_job.finished.connect(lambda: self._reapply and self.apply_adapters())
        self.apply_job.start()

    def _adapters_applied(self, wanted) -> None:
        self._show_model_label()
        names = self._adapter_names()
        self.statusBar().showMessage("Adapters: " + (", ".join(names) if names else "none (base model)"), 5000)
        self.adapters_applied.emit(wanted)

    def _evaluating(self) -> bool:
        """An adapter evaluation holds the engine: the model cannot be closed under it."""
        if self.verdict_job is not None and self.verdict_job.is_running():
            self.statusBar().showMessage("An adapter is being evaluated: wait for it or cancel it first.", 5000)
            return True
        return False

    def evaluate_adapter(self, adapter_id: str, path: str) -> None:
        """Measure an adapter against the base model on ``path`` (chat JSONL) with the loaded
        engine, on a worker; the verdict is stored with the adapter and shown in the list."""
        engine, store, panel = self.engine, self.adapter_store, self.adapters_panel
        if engine is None or self._evaluating():
            return
        panel.show_error(None)
        panel.set_busy(True, "Evaluating")
        self.adapters_dock.show()

        def job(ctx):
            return evaluate_stored(engine, store, adapter_id, Path(path), cancelled=ctx.cancelled,
                                   progress=lambda done, total: ctx.partial(ImportProgress("Evaluating", done, total)))

        self.verdict_job = (Job(job, name="evaluate-adapter", parent=self)
                            .on_partial(panel.show_progress)
                            .on_success(self._adapter_evaluated)
                            .on_failure(self._verdict_failed)
                            .start())

    def _adapter_evaluated(self, verdict: Verdict) -> None:
        self.adapters_panel.set_busy(False)
        self.refresh_adapters()
        self.statusBar().showMessage(verdict.text, 10000)
        self.adapter_evaluated.emit(verdict)

    def _verdict_failed(self, e: BaseException) -> None:
        self.adapters_panel.set_busy(False)
        if isinstance(e, EvaluationCancelled):
            self.statusBar().showMessage("Evaluation cancelled; the adapter is kept, not evaluated.", 5000)
            return
        self.adapters_panel.show_error(describe_error(e))
        self.adapter_failed.emit(describe_error(e))

    # ---- learning from the project -----------------------------------------------------------
    def show_project_set(self) -> ProjectSetDialog | None:
        """File → Training set from this project…"""
        if self.project is None:
            return None
        from app.core.dataset import Scrubber
        from app.core.training_export import accepted_edits
        info = self.engine.model.info if self.engine is not None else None
        extra = accepted_edits(self.ctx.storage, str(self.project), Scrubber())  # short SQLite reads
        self.project_set_dialog = ProjectSetDialog(self.project, default_output(self.ctx.paths.data_dir, self.project),
                                                   fim_style_for(info), extra=extra, parent=self)
        self.project_set_dialog.show()
        return self.project_set_dialog

    # ---- model -----------------------------------------------------------------------------
    def show_models(self) -> ModelsDialog:
        if self.models_dialog is None:
            self.models_dialog = ModelsDialog(ModelRegistry(self.ctx.paths.models_dir),
                                              self.ctx.settings.model_path, self.ctx.settings.n_ctx,
                                              hardware=self.hardware_probe, parent=self)
            self.models_dialog.model_chosen.connect(self.switch_model)
        self.models_dialog.show()
        self.models_dialog.raise_()
        return self.models_dialog

    def switch_model(self, path: str) -> None:
        """Use another model; if it fails to load, go back to the one before."""
        if self._busy_guard() or self._evaluating():
            return
        previous = self.ctx.settings.model_path
        self.ctx.settings.model_path = path
        self.ctx.settings.save(self.ctx.paths.settings_file)
        self.load_model(fallback=previous)

    def load_model(self, fallback: str | None = None, notice: str | None = None) -> None:
        """Load the active model on a worker; the window stays usable meanwhile.

        The old model is closed first, so its memory is back before the new one loads. If
        ``fallback`` is given and loading fails, the setting reverts and that model loads.
        ``notice`` stays on show after a successful load (why we fell back).
        """
        self.chat_panel.set_ready(False)
        self.model_label.setText("Loading the model…")
        settings = self.ctx.settings
        config = EngineConfig(n_ctx=settings.n_ctx, n_threads=settings.n_threads)
        old, self.engine = self.engine, None
        if old is not None:
            old.close()

        store = self.adapter_store

        def job(_ctx):
            # Resolving the starter model checks its sha256 (0.1 s): worker thread, not GUI.
            model = active_model(settings)
            engine = Engine(model.path, config)
            note = notice
            try:  # the enabled adapters for this model, before the first answer
                engine.set_adapters(store.active(ModelShape.from_gguf(engine.model.info).key))
            except EngineError as e:
                note = f"{e} The model runs without adapters."
            return model, engine, note

        self.load_job = (Job(job, name="load-model", parent=self)
                         .on_success(lambda loaded: self._model_loaded(*loaded))
                         .on_failure(lambda e: self._model_failed(e, fallback))
                         .start())

    def _model_loaded(self, model: ActiveModel, engine: Engine, notice: str | None = None) -> None:
        self.engine, self.model = engine, model
        self.chat_panel.show_error(notice)
        self.chat_panel.show_banner(model.banner, ("models:recommended", "Open Models…") if model.is_starter else None)
        self._show_model_label()
        self.refresh_adapters()
        self.chat_panel.set_ready(True)
        self.model_ready.emit()

    def _show_model_label(self) -> None:
        engine, model = self.engine, self.model
        if engine is None or model is None:
            return
        self.model_label.setText(
            f"Model: {model.name}{_adapter_note(self._adapter_names())} · context {engine.n_ctx} · "
            f"{engine.model.n_threads} threads · loaded in {engine.model.load_s:.1f} s")

    def _model_failed(self, e: BaseException, fallback: str | None = None) -> None:
        self.model_label.setText("No model loaded")
        self.chat_panel.set_ready(False)
        if fallback is not None and fallback != self.ctx.settings.model_path:
            self.ctx.settings.model_path = fallback
            self.ctx.settings.save(self.ctx.paths.settings_file)
            if self.models_dialog is not None:
                self.models_dialog.active_path = fallback
                self.models_dialog.refresh()
            self.load_model(notice=f"{describe_error(e)} Went back to the previous model.")
            return
        self.chat_panel.show_error(describe_error(e))
        self.model_failed.emit(describe_error(e))

    # ---- conversations -----------------------------------------------------------------------
    def _refresh_list(self) -> None:
        self.conversations.set_conversations(self.ctx.storage.conversations(), self.current_id)

    def _show_conversation(self) -> None:
        msgs = self.ctx.storage.messages(self.current_id) if self.current_id is not None else []
        ratings = self.ctx.storage.ratings(self.current_id) if self.current_id is not None else {}
        self.chat_panel.view.set_messages([(_shown_role(m), m.content, _note(m.meta), m.meta.get("sources", []),
                                            _rateable(m), ratings.get(m.id)) for m in msgs])

    def new_conversation(self) -> None:
        if self._busy_guard():
            return
        self.current_id = self.ctx.storage.create_conversation().id
        self._refresh_list()
        self._show_conversation()
        self.chat_panel.input.setFocus()

    def open_conversation(self, conversation_id: int) -> None:
        if conversation_id == self.current_id:
            return
        if self._busy_guard():
            self._refresh_list()  # put the selection back
            return
        self.current_id = conversation_id
        self._show_conversation()

    def rename_conversation(self, conversation_id: int, title: str) -> None:
        self.ctx.storage.rename_conversation(conversation_id, title)
        conv = self.ctx.storage.conversation(conversation_id)
        if conv is not None:
            # Not a list rebuild: this runs inside the edited item's own signal.
            self.conversations.set_title(conversation_id, conv.title)

    def delete_conversation(self, conversation_id: int, confirm: bool = True) -> None:
        conv = self.ctx.storage.conversation(conversation_id)
        if conv is None:
            return
        if self._pending is not None and self._pending.conversation_id == conversation_id:
            self.statusBar().showMessage("Stop the answer before deleting its conversation.", 5000)
            return
        if confirm and QMessageBox.question(
                self, "Delete conversation", f"Delete “{conv.title}” and all its messages?") != QMessageBox.Yes:
            return
        self.ctx.storage.delete_conversation(conversation_id)
        if self.current_id == conversation_id:
            convs = self.ctx.storage.conversations()
            self.current_id = convs[0].id if convs else None
            self._show_conversation()
        self._refresh_list()

    def _busy_guard(self) -> bool:
        if self.answer_job is not None and self.answer_job.is_running():
            self.statusBar().showMessage("An answer is being written: stop it first.", 5000)
            return True
        if self.review.is_running():
            self.statusBar().showMessage("A review is running: cancel it first.", 5000)
            return True
        return False

    # ---- asking ------------------------------------------------------------------------------
    def send(self, text: str) -> None:
        intent = route(text)
        if intent.kind in ("offline", "online"):  # needs no model, and works while an answer runs
            return self.switch_network(intent.kind == "offline")
        if self.engine is None or self._busy_guard() or self._evaluating():
            return
        if self.current_id is None:
            self.current_id = self.ctx.storage.create_conversation().id
        if intent.kind == "remember":
            return self.remember(intent.text, text)
        if intent.kind == "search":
            return self.web_search(text, intent.text)
        if intent.kind == "web":
            return self.web_answer(text, intent.text)
        self.test_fixer.drop()  # a new message ends a /fix on the tests that waits for an apply
        if intent.kind in ("fix", "run"):
            return self.fix(text, intent.text, rounds=1 if intent.kind == "run" else self.ctx.settings.fix_rounds,
                            run_only=intent.kind == "run")
        edit = None
        if self.project is not None:
            is_code, request = strip_command(text)
            if is_code:
                if not request:
                    self.chat_panel.show_error("Say what to change after /code, e.g. /code add a docstring to fetch().")
                    return
                edit = EditRequest(self.project, request)
        pending = self._start_turn(text, edit)
        if pending is None:
            return
        self._generate(pending)

    def _generate(self, pending: PendingAnswer) -> None:
        """Write the answer to a stored question on a worker; _answer_done keeps it."""
        self._pending = pending
        view = self.chat_panel.view
        view.begin_stream()
        engine, params, chat = self.engine, self.chat.params(), self.chat

        def job(ctx):
            messages = chat.prompt(engine, pending)
            return engine.chat(messages, params, on_token=ctx.partial, cancelled=ctx.cancelled)

        self.stats_label.setText("Thinking…")
        self.answer_job = (Job(job, name="generate", parent=self)
                           .on_partial(view.append_stream)
                           .on_success(self._answer_done)
                           .on_failure(self._answer_failed)
                           .start())

    def stop(self) -> None:
        if self.answer_job is not None:
            self.answer_job.cancel()
            self.stats_label.setText("Stopping…")

    def _answer_done(self, result: GenerationResult) -> None:
        pending, self._pending = self._pending, None
        meta = {"finish_reason": result.finish_reason, "tokens_per_s": result.tokens_per_s}
        stored = None
        if pending is not None:
            stored = self.chat.finish(pending, result, self.model.name if self.model else "",
                                      self._adapter_names())
            meta = stored.meta if stored else meta
        self.chat_panel.view.end_stream(_note(meta), meta.get("sources", []), stored.id if stored else None)
        self.chat_panel.set_busy(False)
        self.stats_label.setText(
            f"{result.completion_tokens} tokens · {result.tokens_per_s:.1f} tok/s · "
            f"first token {result.time_to_first_token_s or 0:.2f} s"
            + (" · stopped" if result.cancelled else ""))
        self._refresh_list()
        if self.project is not None and pending is not None and result.text.strip():
            edit = pending.edit
            self.show_changes(result.text, guess_target(edit.request, pending.files_shown) if edit else None,
                              stored.id if stored else None)
        self.answer_finished.emit(result)

    def _answer_failed(self, e: BaseException) -> None:
        self._pending = None
        self.test_fixer.drop(force=True)
        self.chat_panel.view.end_stream()
        self.chat_panel.set_busy(False)
        self.stats_label.setText("")
        self.chat_panel.show_error(describe_error(e))


    # ---- tools: web search, sandbox runs, /fix ---------------------------------------------------
    def _provider(self):
        """The chosen search provider; reads the keyring, so call it on a worker."""
        from app.core import secrets
        from app.core.web import provider_for
        name = self.ctx.settings.search_provider
        return provider_for(name, secrets.get_key("tavily") if name == "tavily" else None)

    def _start_turn(self, text: str, edit: EditRequest | None = None) -> PendingAnswer | None:
        """Store and show the user's message (a question or a tool request) and mark the chat busy."""
        try:
            pending = self.chat.ask(self.current_id, text, edit)
        except ValueError as e:
            self.chat_panel.show_error(str(e))
            return None
        self._refresh_list()
        self.chat_panel.show_error(None)
        self.chat_panel.view.add_message("user", pending.question.content)
        self.chat_panel.set_busy(True)
        return pending

    def _tool_failed(self, e: BaseException) -> None:
        self._answer_failed(e)
        self.tool_failed.emit(describe_error(e))

    def web_search(self, text: str, query: str) -> None:
        """/search: the provider's results as a list of links (no model involved)."""
        if not query:
            self.chat_panel.show_error("Say what to search for, e.g. /search asyncio timeout.")
            return
        pending = self._start_turn(text)
        if pending is None:
            return
        self.chat_panel.view.begin_stream()
        self.stats_label.setText("Searching…")

        def job(_ctx):
            from app.core.web import format_results_markdown
            results = self._provider().search(query)
            return format_results_markdown(results, query), [r.url for r in results]

        def done(out) -> None:
            md, urls = out
            self.chat_panel.view.append_stream(md)
            self.chat_panel.view.end_stream("web search")
            self.ctx.storage.add_message(pending.conversation_id, "assistant", md, {"tool": "search", "links": urls})
            self.chat_panel.set_busy(False)
            self.stats_label.setText(f"{len(urls)} results")
            self.tool_finished.emit(md)

        self.answer_job = (Job(job, name="web-search", parent=self)
                           .on_success(done).on_failure(self._tool_failed).start())

    def web_answer(self, text: str, task: str) -> None:
        """/web (or "search the web for …"): search, read the top pages, answer citing them."""
        if not task:
            self.chat_panel.show_error("Say what to find out, e.g. /web what changed in Python 3.13?")
            return
        pending = self._start_turn(text)
        if pending is None:
            return
        pending.history = pending.history[:-1] + [{"role": "user", "content": task}]
        self._pending = pending
        view = self.chat_panel.view
        view.begin_stream()
        engine, params, chat = self.engine, self.chat.params(), self.chat
        budget_chars = self.ctx.settings.retrieval.context_tokens * 4  # ~4 characters a token

        def job(ctx):
            from app.core.web import read_pages, web_context
            ctx.partial(("status", "Searching the web…"))
            results = self._provider().search(task)
            ctx.partial(("status", f"Reading {min(3, len(results))} pages…"))
            pages = read_pages(results, on_page=lambda p: ctx.partial(("status", f"Read {p.url}")))
            good = [p for p in pages if p.ok]
            if not good:
                reasons = "; ".join(f"{p.url}: {p.error}" for p in pages[:3])
                raise SearchError(f"None of the top pages could be read ({reasons}).")
            pending.web, pending.web_urls = web_context(task, good, budget_chars), [p.url for p in good]
            ctx.partial(("status", "Thinking…"))
            messages = chat.prompt(engine, pending)
            return engine.chat(messages, params, on_token=lambda t: ctx.partial(("token", t)),
                               cancelled=ctx.cancelled)

        def partial(item) -> None:
            kind, value = item
            if kind == "token":
                view.append_stream(value)
            else:
                self.stats_label.setText(value)

        self.answer_job = (Job(job, name="web-answer", parent=self)
                           .on_partial(partial).on_success(self._answer_done).on_failure(self._tool_failed).start())

    def run_block(self, code: str, language: str) -> None:
        """A code block's Run link: one round of the sandbox, output streamed into the chat."""
        from app.core.sandbox import language_of
        if self._busy_guard():
            return
        lang = language_of(language) or "python"
        if lang == "shell" and not self.confirm_shell(code):
            return
        if self.current_id is None:
            self.current_id = self.ctx.storage.create_conversation().id
        self.chat_panel.show_error(None)
        self.chat_panel.set_busy(True)
        self._start_fix([], CodeBlock(code, lang), rounds=1, note="")

    def fix(self, text: str, note: str, rounds: int, run_only: bool = False) -> None:
        """/fix: run the newest runnable code; while it fails, show the model the error and run
        its correction, up to ``rounds`` runs, every step shown and stored. /run: one run.

        With a project open, ``/fix`` (nothing else) and ``/fix tests [pytest args]`` run the
        project's tests instead (see ui/test_fix.py); ``/fix code`` always means the code block."""
        target = FixTarget("code", [], note) if run_only else parse_fix(note)
        if target.kind == "tests" or (target.kind == "auto" and not target.note and self.project is not None
                                      and has_tests(self.project)):
            if self.project is None:
                self.chat_panel.show_error("Open a project first (File → Open Project…): /fix tests runs its tests.")
                return
            return self.test_fixer.start(text, target.args, rounds)
        note = target.note
        msgs = self.ctx.storage.messages(self.current_id)
        block = last_runnable([m.content for m in msgs if m.role == "assistant"])
        if block is None:
            hint = " With a project open, /fix tests runs the project's tests." if self.project is None else ""
            self.chat_panel.show_error("There is no Python or shell code block in this conversation to run yet." + hint)
            return
        if block.language == "shell" and not self.confirm_shell(block.code):
            return
        pending = self._start_turn(text)
        if pending is None:
            return
        history = pending.history[:-1]
        self._start_fix(history, block, rounds, note)

    def _start_fix(self, history: list, block: CodeBlock, rounds: int, note: str) -> None:
        engine, params = self.engine, self.chat.params()
        conv, view, storage = self.current_id, self.chat_panel.view, self.ctx.storage
        chat, rules = self.chat, self.chat.rules_now()

        def job(ctx):
            nonlocal block
            result: RunResult | None = None
            for n in range(1, rounds + 1):
                ctx.partial(("begin", "output"))
                result = run_code(block.code, block.language, cancelled=ctx.cancelled, confirmed_shell=True,
                                  on_output=lambda _stream, text: ctx.partial(("text", text)))
                ctx.partial(("ran", result))
                if result.exit_code == 0 or result.cancelled or n == rounds:
                    return n, result
                request = fix_request(block, result, note)
                ctx.partial(("request", request))
                reserve = answer_reserve(engine.n_ctx, params.max_tokens)
                messages = build_messages(chat.base_system(engine, rules, engine.n_ctx - reserve)[0],
                                          history + [{"role": "user", "content": request}],
                                          engine.n_ctx - reserve, engine.count_message_tokens)
                ctx.partial(("begin", "assistant"))
                answer = engine.chat(messages, params, on_token=lambda t: ctx.partial(("text", t)),
                                     cancelled=ctx.cancelled)
                ctx.partial(("answered", answer.text))
                history.extend([{"role": "user", "content": request}, {"role": "assistant", "content": answer.text}])
                blocks = runnable_blocks(answer.text)
                if answer.cancelled or not blocks:
                    return n, result
                block = blocks[-1]
            return rounds, result

        def partial(item) -> None:
            kind, value = item
            if kind == "begin":
                view.begin_stream(value)
            elif kind == "text":
                view.append_stream(value)
            elif kind == "ran":
                note_ = value.summary() + ("" if value.isolation == "netns" else " · network blocked in Python only")
                output = (value.stdout + value.stderr) or "(no output)"
                if not view.streaming_text.strip():
                    view.append_stream(output)
                view.end_stream(note_)
                storage.add_message(conv, "system", output, {"tool": "run", "summary": value.summary(),
                                                            "exit_code": value.exit_code})
            elif kind == "request":
                view.add_message("user", value)
                storage.add_message(conv, "user", value, {"tool": "fix"})
            elif kind == "answered":
                kept = storage.add_message(conv, "assistant", value, {"tool": "fix"}) if value.strip() else None
                view.end_stream("fix", message_id=kept.id if kept else None)

        def done(out) -> None:
            n, result = out
            self.chat_panel.set_busy(False)
            ok = result is not None and result.exit_code == 0
            self.stats_label.setText(("Runs cleanly" if ok else "Still failing") + f" after {n} run{'s' if n > 1 else ''}")
            self._refresh_list()
            self.code_ran.emit(out)

        self.chat_panel.set_busy(True)
        self.answer_job = (Job(job, name="sandbox", parent=self)
                           .on_partial(partial).on_success(done).on_failure(self._tool_failed).start())

    # ---- feedback: ratings, standing rules, training export -----------------------------------
    def _build_feedback(self) -> None:
        self._changes_source: int | None = None    # the answer whose changes the Changes pane shows
        self._applying_source: int | None = None   # ... and the one being applied
        self.export_job: Job | None = None
        self.export_dialog: ExportDialog | None = None
        self.chat_panel.view.rated.connect(self.rate_answer)
        self.changes_panel.discarded.connect(self._changes_discarded)
        self.rules_panel = p = RulesPanel()
        self.rules_dock = self._dock("Rules", p, Qt.RightDockWidgetArea)
        self.rules_action = self.rules_dock.toggleViewAction()
        self.rules_action.setText("Rules")
        self.rules_action.setToolTip("Standing rules that go into every prompt (/remember adds one)")
        self.toolbar.addAction(self.rules_action)
        p.add_requested.connect(self.add_rule)
        p.edit_requested.connect(self.edit_rule)
        p.remove_requested.connect(self.remove_rule)
        p.scope_requested.connect(self.set_rule_scope)
        self.export_action = QAction("&Export training data…", self)
        self.export_action.setToolTip("Write your well-rated conversations as JSONL for the fine-tuning notebook")
        self.export_action.triggered.connect(self.show_export)
        self.file_menu.insertAction(self.models_action, self.export_action)
        self._refresh_rules()

    def rate_answer(self, message_id: int, value: int) -> None:
        """A thumb under an answer: +1, -1, or 0 to take the rating back."""
        try:
            rating = self.ctx.storage.rate(message_id, value)
        except ValueError as e:
            self.chat_panel.show_error(str(e))
            return
        self.chat_panel.view.set_rating(message_id, rating)
        self.rated.emit(message_id, rating)

    def _implicit_rating(self, message_id: int | None, source: str) -> None:
        """Changes applied (+1) or discarded (-1): a signal on the answer that proposed them."""
        if message_id is None:
            return
        try:
            rating = self.ctx.storage.rate(message_id, 0, source)
        except ValueError:
            return  # its conversation was deleted meanwhile: nothing left to rate
        self.chat_panel.view.set_rating(message_id, rating)
        self.rated.emit(message_id, rating)

    def _changes_discarded(self) -> None:
        source, self._changes_source = self._changes_source, None
        self._implicit_rating(source, "rejected")

    def switch_network(self, offline: bool) -> None:
        """/offline and /online: what the toolbar toggle does, said in the chat."""
        note = network_note(offline, policy.is_offline())
        self.set_offline(offline)
        if self.current_id is None:
            self.current_id = self.ctx.storage.create_conversation().id
        self.ctx.storage.add_message(self.current_id, "system", note, {"tool": "network", "offline": offline})
        self.chat_panel.view.add_message("system", note)
        self._refresh_list()

    def remember(self, rest: str, text: str) -> None:
        """/remember <rule> (every project) or /remember --project <rule> (the open one)."""
        try:
            rule_text, for_project = parse_remember(rest)
            if for_project and self.project is None:
                raise ValueError("Open a project first (File → Open Project…), or leave out --project "
                                 "to remember this for every project.")
            rule = self.ctx.storage.add_rule(rule_text, self.project if for_project else None)
        except ValueError as e:
            self.chat_panel.input.setPlainText(text)  # nothing typed is lost
            self.chat_panel.show_error(str(e))
            return
        self.chat_panel.show_error(None)
        where = f"for {self.project.name}" if rule.project else "for every project"
        note = (f"Remembered {where}: {rule.text}\n"
                "It goes into every prompt until you remove it in the Rules panel.")
        self.ctx.storage.add_message(self.current_id, "system", note, {"tool": "remember", "rule_id": rule.id})
        self.chat_panel.view.add_message("system", note)
        self._refresh_list()
        self._refresh_rules()

    def _refresh_rules(self) -> None:
        self.rules_panel.set_rules(self.ctx.storage.rules(), str(self.project) if self.project else None)

    def add_rule(self, text: str, for_project: bool) -> None:
        try:
            self.ctx.storage.add_rule(text, self.project if for_project else None)
        except ValueError as e:
            self.rules_panel.show_error(str(e))
            return
        self.rules_panel.show_error(None)
        self.rules_panel.added()
        self._refresh_rules()

    def edit_rule(self, rule_id: int, text: str) -> None:
        """An edited rule's text (this runs inside the list item's own signal: no rebuild)."""
        old = self.ctx.storage.rule(rule_id)
        try:
            rule = self.ctx.storage.update_rule(rule_id, text)
        except ValueError as e:
            self.rules_panel.show_error(str(e))
            if old is not None:
                self.rules_panel.set_text(rule_id, old.text)
            return
        self.rules_panel.show_error(None)
        self.rules_panel.set_text(rule_id, rule.text)

    def remove_rule(self, rule_id: int) -> None:
        self.ctx.storage.remove_rule(rule_id)
        self._refresh_rules()

    def set_rule_scope(self, rule_id: int, for_project: bool) -> None:
        if for_project and self.project is None:
            self.rules_panel.show_error("Open a project first: a rule can only be limited to an open project.")
            return
        try:
            self.ctx.storage.update_rule(rule_id, project=self.project if for_project else None)
        except ValueError as e:
            self.rules_panel.show_error(str(e))
            return
        self.rules_panel.show_error(None)
        self._refresh_rules()

    def show_export(self) -> ExportDialog:
        default = self.ctx.paths.data_dir / "exports" / f"chats-{time.strftime('%Y%m%d')}.jsonl"
        self.export_dialog = ExportDialog(default, self.ctx.storage.projects(), parent=self)
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

        self.export_job = (Job(job, name="export-training", parent=self)
                           .on_success(lambda report: (dialog.show_report(report),
                                                       self.statusBar().showMessage(report.summary(), 8000)))
                           .on_failure(lambda e: dialog.show_error(describe_error(e)))
                           .start())

    # ---- shutdown ----------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        self.review.shutdown()  # cancel a running review before the engine closes
        self.poll_timer.stop()
        self._unsubscribe()
        if "watcher" in self._opened:
            self._opened.pop("watcher").stop()  # no more change signals to a closing window
        for job in (self.answer_job, self.load_job, self.edit_job, self.net_job, self.undo_scan_job,
                    self.index_job, self.search_job, self.snippet_job, self.adapter_job, self.apply_job,
                    self.verdict_job,
                    self.export_job):
            if job is not None and job.is_running():
                job.cancel()
                job.wait(SHUTDOWN_WAIT_MS)
        # Deliver the jobs' last queued signals, so a stopped answer is stored like any other.
        QCoreApplication.sendPostedEvents()
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        self.index = None
        _release(self._opened)
        super().closeEvent(event)


def _release(opened: dict) -> None:
    """Stop the watcher and close the index an opening job made (either may be missing)."""
    if "watcher" in opened:
        opened.pop("watcher").stop()
    if "index" in opened:
        opened.pop("index").close()


def _shown_role(m) -> str:
    """Sandbox output is stored as a system message (never part of a prompt) and shown as Output."""
    return "output" if m.role == "system" and m.meta.get("tool") == "run" else m.role


def _rateable(m) -> int | None:
    """The id of an answer the user can rate (a model's answer; not a list of search results)."""
    return m.id if m.role == "assistant" and m.meta.get("tool") != "search" else None


def _adapter_note(names: list[str]) -> str:
    return f" + {', '.join(names)}" if names else ""


def _note(meta: dict) -> str:
    if not meta:
        return ""
    parts = []
    if meta.get("finish_reason") == "cancelled":
        parts.append("stopped")
    elif meta.get("finish_reason") == "length":
        parts.append("cut at the length limit")
    if meta.get("tokens_per_s"):
        parts.append(f"{meta['tokens_per_s']:.1f} tok/s")
    if meta.get("rules_left_out"):
        n = meta["rules_left_out"]
        parts.append(f"{n} older rule{'s' * (n != 1)} left out (no room in the prompt)")
    return " · ".join(parts)

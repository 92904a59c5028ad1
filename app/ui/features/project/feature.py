"""The open project: File → Open Project and Recent projects, its index (opened, updated by
the file watcher, searched), the Project panel, and the code a citation points at.

Opening a project emits ``project_opened``; the chat, the Changes pane, the rules and the
training set follow it from there. The index lives on a worker from the moment it opens;
keyword search works as soon as the index object arrives, vectors follow.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMenu

from app.core.index.context import PROMPT_CHUNKS
from app.core.index.embed import Embedder, EmbedderError
from app.core.index.indexer import IndexProgress, IndexStats, ProjectIndex, index_dir_for
from app.core.index.rank import RankWeights
from app.core.index.snippet import Snippet, read_snippet
from app.core.index.watch import ProjectWatcher
from app.core.models.speed import code_budget
from app.core.project import remember_recent
from app.core.chat.render import parse_citation
from app.ui.errors import describe_error
from app.ui.features.base import Feature
from app.ui.features.project.project_panel import ProjectPanel
from app.ui.workers import Job


class ProjectFeature(Feature):
    name = "project"
    project_opened = Signal(object)    # the project folder (Path)
    index_finished = Signal(object)    # IndexStats of an indexing run
    search_finished = Signal(object)   # list[Hit] shown in the Project panel
    snippet_shown = Signal(object)     # Snippet shown for a clicked citation
    files_changed = Signal(object)     # set of paths, from the file watcher's thread

    def __init__(self, host):
        super().__init__(host)
        self.root: Path | None = None
        self.index: ProjectIndex | None = None  # searchable once the opening job has made it
        self.index_job: Job | None = None
        self._opened: dict = {}  # what the opening job made (index, watcher), for closing it
        self._embedder: Embedder | None = None
        self._generation = 0
        self._reindex_again = False
        self.label = host.status_label("project")
        self.panel = p = ProjectPanel()
        self.dock = host.add_dock("Project", p, Qt.RightDockWidgetArea)
        self.panel_action = self.dock.toggleViewAction()
        self.panel_action.setText("Project")
        self.open_action = QAction("Open &Project…", self)
        self.open_action.setShortcut(QKeySequence("Ctrl+Shift+O"))
        self.open_action.triggered.connect(self.choose)
        self.recent_menu = QMenu("Recent projects")
        self._fill_recent()
        p.search_requested.connect(self.search)
        p.cancel_requested.connect(self.cancel_index)
        p.reindex_requested.connect(self.update_index)
        p.open_requested.connect(
            lambda path, _line: self.root and QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.root / path))))
        self.files_changed.connect(lambda _paths: self.update_index())
        p.use_project.setChecked(self.ctx.settings.retrieval.use_project)
        p.use_project_changed.connect(self._set_use_project)
        host.features.chat.view.citation_clicked.connect(self.show_citation)
        host.engine.loaded.connect(lambda _lm: self.show_budget())
        host.features.chat.answer_finished.connect(lambda _r: self.show_budget())

    def show_budget(self) -> None:
        """How much project code a question carries with the loaded model, in tokens and seconds."""
        model = self.host.engine.model
        if model is None:
            return
        sp, r = self.ctx.speeds.speed(model.path), self.ctx.settings.retrieval
        tokens = code_budget(sp, r.first_answer_s, 48, r.context_tokens)
        how = "measured" if sp.measured else "estimated from its size"
        self.panel.set_budget(
            f"Code per question: up to {tokens:,} tokens, about {sp.seconds_to_read(tokens):.0f} s to read at "
            f"{sp.prompt_tps:.0f} tokens/s ({how}), so the first answer starts within about "
            f"{r.first_answer_s:g} s. The best piece always goes in.")

    def restore(self) -> None:
        folder = self.ctx.settings.project_dir
        if folder and Path(folder).is_dir():
            self.open(Path(folder))

    def _set_use_project(self, on: bool) -> None:
        self.ctx.settings.retrieval.use_project = on
        self.ctx.save_settings()

    # ---- opening ------------------------------------------------------------------------------
    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for folder in self.ctx.settings.recent_projects:
            act = self.recent_menu.addAction(folder)
            act.triggered.connect(lambda _=False, f=folder: self.open(Path(f)))
        self.recent_menu.setEnabled(bool(self.ctx.settings.recent_projects))

    def choose(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.host.window, "Open project folder", self.ctx.settings.project_dir)
        if folder:
            self.open(Path(folder))

    def open(self, folder: Path) -> None:
        """Make ``folder`` the project: answers are read for edits to its files."""
        if not folder.is_dir():
            self.host.features.chat.panel.show_error(f"{folder} is not a folder (it may have been moved or deleted).")
            return
        self.root = folder.resolve()
        self.host.features.chat.service.project = self.root
        s = self.ctx.settings
        s.project_dir = str(self.root)
        s.recent_projects = remember_recent(s.recent_projects, self.root)
        self.ctx.save_settings()
        self._fill_recent()
        self.label.setText(f"Project: {self.root.name}")
        self.label.setToolTip(str(self.root))
        self.project_opened.emit(self.root)
        self._open_index()

    # ---- the index ----------------------------------------------------------------------------
    def _open_index(self) -> None:
        """Open (or create) the project's index and bring it up to date, all on a worker."""
        self._close_index()
        root = self.root
        self.panel.set_project(str(root))
        self.dock.show()
        try:
            if self._embedder is None:
                self._embedder = Embedder(threads=max(1, min(4, self.ctx.settings.n_threads or 2)))
        except EmbedderError as e:
            self.panel.show_error(describe_error(e))
            return
        self.panel.show_error(None)
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
        self._generation += 1
        gen = self._generation
        self.panel.set_indexing(True)
        job = (Job(fn, name="index", parent=self)
               .on_partial(lambda obj: self._index_partial(obj, gen))
               .on_success(lambda stats: self._indexed(stats, gen))
               .on_failure(lambda e: self._index_failed(e, gen)))
        job.finished.connect(lambda: self._index_job_over(gen))
        self.index_job = self.jobs.start(job)

    def _index_partial(self, obj, gen: int) -> None:
        if isinstance(obj, ProjectIndex):
            if gen != self._generation:
                return  # the project was switched meanwhile; that job closes it when done
            self.index = obj
            problems = list(obj.notices)
            if "watch_error" in self._opened:
                problems.append(f"Changes to files are not followed ({self._opened['watch_error']}); "
                                "use Update index.")
            if problems:
                self.panel.show_error("\n".join(problems))
            retrieval = self.ctx.settings.retrieval
            self.host.features.chat.service.retriever = (
                lambda q, pi=obj: pi.search(q, PROMPT_CHUNKS, RankWeights.from_settings(retrieval)))
        elif isinstance(obj, IndexProgress) and gen == self._generation:
            self.panel.show_progress(obj)

    def _indexed(self, stats: IndexStats, gen: int) -> None:
        if gen != self._generation:
            return
        self.panel.set_indexing(False)
        self.panel.show_stats(stats)
        self.index_finished.emit(stats)

    def _index_job_over(self, gen: int) -> None:
        """Changes that arrived while the job ran get their own run now."""
        if gen == self._generation and self._reindex_again:
            self._reindex_again = False
            self.update_index()

    def indexing(self) -> bool:
        return self.index_job is not None and self.index_job.is_running()

    def cancel_index(self) -> None:
        self._reindex_again = False
        if self.index_job is not None:
            self.index_job.cancel()

    def _index_failed(self, e: BaseException, gen: int) -> None:
        if gen != self._generation:
            return
        self.panel.set_indexing(False)
        self.panel.show_error(f"Indexing failed: {describe_error(e)}")

    def update_index(self) -> None:
        """Re-index what changed (the watcher calls this; so does Update index)."""
        if self.index is None:
            return
        if self.indexing():
            self._reindex_again = True
            return
        pi = self.index
        self._run_index(lambda ctx: pi.update(progress=ctx.partial, cancelled=ctx.cancelled))

    def _close_index(self) -> None:
        self.host.features.chat.service.retriever = None
        self.index = None
        opened, job, self._opened = self._opened, self.index_job, {}
        self._generation += 1
        if job is not None and job.is_running():
            job.cancel()
            job.finished.connect(lambda: release(opened))  # the worker may still use the index
        else:
            release(opened)

    # ---- search and citations -------------------------------------------------------------------
    def search(self, query: str) -> None:
        if self.index is None or not query.strip():
            return
        pi = self.index
        self.jobs.start(Job(lambda _ctx: pi.search(query, 20), name="search", parent=self)
                        .on_success(self._searched)
                        .on_failure(lambda e: self.panel.show_error(describe_error(e))))

    def _searched(self, hits) -> None:
        self.panel.show_results(hits)
        self.search_finished.emit(hits)

    def show_citation(self, citation: str) -> None:
        """Show the lines a citation in an answer points at, read from the file as it is now."""
        parsed = parse_citation(citation)
        if parsed is None or self.root is None:
            self.host.notify("Open the project to see cited code.", 4000)
            return
        root = self.root
        self.jobs.start(Job(lambda _ctx: read_snippet(root, *parsed), name="snippet", parent=self)
                        .on_success(self._snippet_read)
                        .on_failure(lambda e: self.panel.show_error(describe_error(e))))

    def _snippet_read(self, s: Snippet) -> None:
        self.dock.show()
        self.panel.show_error(None)
        self.panel.show_snippet(s.path, s.start, s.end, s.text, s.language)
        self.snippet_shown.emit(s)

    def shutdown(self) -> None:
        if "watcher" in self._opened:
            self._opened.pop("watcher").stop()  # no more change signals to a closing window
        self.jobs.cancel()

    def closed(self) -> None:
        """After every job has ended: close the index."""
        self.index = None
        release(self._opened)


def release(opened: dict) -> None:
    """Stop the watcher and close the index an opening job made (either may be missing)."""
    if "watcher" in opened:
        opened.pop("watcher").stop()
    if "index" in opened:
        opened.pop("index").close()

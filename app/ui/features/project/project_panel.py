"""The Project panel: indexing progress, the index's size, a search box over the project, and
the lines of a chosen chunk or citation. It only shows things and asks; MainWindow runs the
jobs (app.core.index does the work)."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QProgressBar,
                               QPushButton, QSplitter, QTextBrowser, QVBoxLayout, QWidget)

from app.core.index.indexer import Hit, IndexProgress, IndexStats
from app.core.chat.render import render_snippet
from app.ui.banners import error_label


class ProjectPanel(QWidget):
    search_requested = Signal(str)
    cancel_requested = Signal()
    reindex_requested = Signal()
    open_requested = Signal(str, int)   # path relative to the project, line: open in the user's editor
    use_project_changed = Signal(bool)  # answer questions from the project's code, or not

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = QLabel("No project open. File → Open Project…")
        self.title.setWordWrap(True)
        self.status = QLabel("")
        self.status.setObjectName("indexStatus")
        self.status.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress_note = QLabel("")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop indexing; what is done is kept and the rest resumes later")
        self.reindex_button = QPushButton("Update index")
        self.use_project = QCheckBox("Answer from this project's code")
        self.use_project.setToolTip("Put the best-matching code into each question's prompt, with citations")
        self.use_project.setChecked(True)
        self.error = error_label("projectError")
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search the project (words, identifiers or a question)…")
        self.search.setClearButtonEnabled(True)
        self.results = QListWidget()
        self.results.setObjectName("searchResults")
        self.snippet = QTextBrowser()
        self.snippet.setObjectName("snippet")
        self.snippet_title = QLabel("")
        self.open_button = QPushButton("Open in editor")
        self.open_button.setEnabled(False)
        self._shown: tuple[str, int] | None = None

        bar = QHBoxLayout()
        bar.addWidget(self.progress, 1)
        bar.addWidget(self.cancel_button)
        head = QHBoxLayout()
        head.addWidget(self.status, 1)
        head.addWidget(self.reindex_button)
        snip_head = QHBoxLayout()
        snip_head.addWidget(self.snippet_title, 1)
        snip_head.addWidget(self.open_button)
        lower = QWidget()
        low = QVBoxLayout(lower)
        low.setContentsMargins(0, 0, 0, 0)
        low.addLayout(snip_head)
        low.addWidget(self.snippet, 1)
        split = QSplitter(Qt.Vertical)
        split.addWidget(self.results)
        split.addWidget(lower)
        split.setSizes([200, 260])
        lay = QVBoxLayout(self)
        lay.addWidget(self.title)
        lay.addLayout(head)
        lay.addWidget(self.use_project)
        self.budget = QLabel()
        self.budget.setObjectName("codeBudget")
        self.budget.setWordWrap(True)
        self.budget.setStyleSheet("color:#555;")
        lay.addWidget(self.budget)
        lay.addLayout(bar)
        lay.addWidget(self.progress_note)
        lay.addWidget(self.error)
        lay.addWidget(self.search)
        lay.addWidget(split, 1)
        self.set_indexing(False)

        self.search.returnPressed.connect(lambda: self.search_requested.emit(self.search.text()))
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.reindex_button.clicked.connect(self.reindex_requested)
        self.use_project.toggled.connect(self.use_project_changed)
        self.results.currentItemChanged.connect(self._result_chosen)
        self.open_button.clicked.connect(lambda: self._shown and self.open_requested.emit(*self._shown))

    # ---- indexing -------------------------------------------------------------------------
    def set_budget(self, text: str) -> None:
        """How much project code a question carries, in tokens and seconds."""
        self.budget.setText(text)

    def set_project(self, path: str) -> None:
        self.title.setText(f"<b>{html.escape(path)}</b>")
        self.results.clear()
        self.snippet.clear()
        self.snippet_title.setText("")
        self.status.setText("Opening the index…")

    def set_indexing(self, on: bool) -> None:
        for w in (self.progress, self.cancel_button, self.progress_note):
            w.setVisible(on)
        self.reindex_button.setEnabled(not on)
        if on:
            self.progress.setRange(0, 0)
            self.progress_note.setText("Starting…")

    def show_progress(self, p: IndexProgress) -> None:
        if p.phase == "scanning":
            self.progress.setRange(0, max(1, p.files_total))
            self.progress.setValue(p.files_done)
        else:
            self.progress.setRange(0, max(1, p.chunks))
            self.progress.setValue(p.embedded)
        self.progress_note.setText(p.text())

    def show_stats(self, stats: IndexStats) -> None:
        s = stats.summary()
        if stats.cancelled:
            s += " — stopped; the rest is indexed next time"
        self.status.setText(s)
        self.status.setToolTip("\n".join(f"{k}: {v}" for k, v in sorted(stats.skipped.items())))

    def show_error(self, text: str | None) -> None:
        self.error.setText(text or "")
        self.error.setVisible(bool(text))

    # ---- search and snippets ----------------------------------------------------------------
    def show_results(self, hits: list[Hit]) -> None:
        self.results.clear()
        for i, h in enumerate(hits, 1):
            sym = f"  {h.chunk.symbol}" if h.chunk.symbol else ""
            item = QListWidgetItem(f"{i}. {h.citation}{sym}")
            item.setData(Qt.UserRole, h)
            found_by = [n for n, r in (("meaning", h.dense_rank), ("keywords", h.keyword_rank)) if r]
            item.setToolTip(f"score {h.score:.4f} · found by {' and '.join(found_by)}")
            self.results.addItem(item)
        if not hits:
            self.results.addItem(QListWidgetItem("No matches."))

    def result_count(self) -> int:
        return sum(1 for i in range(self.results.count()) if self.results.item(i).data(Qt.UserRole) is not None)

    def _result_chosen(self, item: QListWidgetItem | None, _prev=None) -> None:
        hit = item.data(Qt.UserRole) if item is not None else None
        if hit is not None:
            c = hit.chunk
            self.show_snippet(c.path, c.start_line, c.end_line, c.text, c.language)

    def show_snippet(self, path: str, start: int, end: int, text: str, language: str = "") -> None:
        """Lines start..end of ``path`` (``text`` is exactly those lines), numbered."""
        self.snippet.setHtml(render_snippet(text, start, language))
        self.snippet_title.setText(f"{path}:{start}-{end}")
        self._shown = (path, start)
        self.open_button.setEnabled(True)

    def snippet_text(self) -> str:
        return self.snippet.toPlainText()

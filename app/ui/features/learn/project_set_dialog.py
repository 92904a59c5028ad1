"""File → Training set from this project…: filters, where to write, progress, and what came out.

The dialog asks and shows; ``app.core.learn.project_set`` does the work on a ``Job`` (first a
scan for the languages the project has, then the build), with progress and Cancel."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Sequence

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QDialog, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from app.core.learn.dataset import Example
from app.core.learn.fim import QWEN
from app.core.learn.project_set import (ProjectSetOptions, ProjectSetReport, export_project_set, parse_folders,
                                        scan_languages)
from app.ui.banners import error_label
from app.ui.errors import describe_error
from app.ui.workers import Job


class ProjectSetDialog(QDialog):
    built = Signal(object)    # ProjectSetReport, after the file is written
    failed = Signal(str)      # the message shown

    def __init__(self, root: Path, default_path: Path, fim_style: str, extra: Sequence[Example] = (), parent=None):
        super().__init__(parent)
        self.root, self.fim_style, self.extra = Path(root), fim_style, list(extra)
        self.job: Job | None = None
        self.scan_job: Job | None = None
        self.setWindowTitle("Training set from this project")
        self.resize(660, 520)
        fim = ("Qwen's fill-in-the-middle tokens (the loaded model is a Qwen model)" if fim_style == QWEN
               else "a plain instruction (the loaded model has no FIM tokens we know)")
        intro = QLabel(
            f"Builds chat examples from <b>{html.escape(self.root.name)}</b> for "
            "<i>training/colab_training.ipynb</i> (set <code>MY_CHATS</code> to the file): for each documented "
            "function or class, “write it” → its code, and per file one “fill in the missing definition” → "
            f"that definition, as {fim}. Vendored, generated and minified files are left out; keys, credentials "
            "and home folder paths are removed; near-duplicates are dropped; about 1 file in 10 goes to "
            "validation, all of its examples with it.")
        intro.setWordWrap(True)
        self.languages_box = QWidget()
        self.languages_row = QHBoxLayout(self.languages_box)
        self.languages_row.setContentsMargins(0, 0, 0, 0)
        self.languages_note = QLabel("Looking at the project…")
        self.languages_row.addWidget(self.languages_note)
        self.language_checks: dict[str, QCheckBox] = {}
        self.include = QLineEdit()
        self.include.setPlaceholderText("all folders (or e.g. src, lib/core)")
        self.exclude = QLineEdit()
        self.exclude.setPlaceholderText("none (or e.g. tests, docs/examples)")
        defaults = ProjectSetOptions()
        self.min_chars = QSpinBox()
        self.min_chars.setRange(0, 100_000)
        self.min_chars.setValue(defaults.min_chars)
        self.min_chars.setSuffix(" characters")
        self.min_chars.setToolTip("Leave out code shorter than this (one-liners teach little)")
        self.max_chars = QSpinBox()
        self.max_chars.setRange(200, 1_000_000)
        self.max_chars.setValue(defaults.max_chars)
        self.max_chars.setSuffix(" characters")
        self.max_chars.setToolTip("Leave out longer examples (the notebook trains on 1,024 tokens, ~4,000 characters)")
        self.path = QLineEdit(str(default_path))
        self.choose_button = QPushButton("Choose…")
        self.progress = QProgressBar()
        self.cancel_button = QPushButton("Cancel")
        self.build_button = QPushButton("Build")
        self.build_button.setDefault(True)
        self.close_button = QPushButton("Close")
        self.error = error_label("projectSetError")
        self.result = QLabel("")
        self.result.setObjectName("projectSetResult")
        self.result.setWordWrap(True)

        where = QHBoxLayout()
        where.addWidget(self.path, 1)
        where.addWidget(self.choose_button)
        form = QFormLayout()
        form.addRow("Languages", self.languages_box)
        form.addRow("Only these folders", self.include)
        form.addRow("Not these folders", self.exclude)
        form.addRow("Minimum code length", self.min_chars)
        form.addRow("Maximum example length", self.max_chars)
        form.addRow("Save to", where)
        running = QHBoxLayout()
        running.addWidget(self.progress, 1)
        running.addWidget(self.cancel_button)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.build_button)
        buttons.addWidget(self.close_button)
        lay = QVBoxLayout(self)
        lay.addWidget(intro)
        lay.addLayout(form)
        lay.addLayout(running)
        lay.addWidget(self.error)
        lay.addWidget(self.result, 1)
        lay.addLayout(buttons)
        self._running(False)

        self.choose_button.clicked.connect(self.choose_path)
        self.build_button.clicked.connect(self.build)
        self.cancel_button.clicked.connect(lambda: self.job is not None and self.job.cancel())
        self.close_button.clicked.connect(self.close)
        self._scan()

    # ---- asking ------------------------------------------------------------------------------
    def choose_path(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the training set", self.path.text(), "JSON Lines (*.jsonl)")
        if path:
            self.path.setText(path)

    def options(self) -> ProjectSetOptions:
        chosen = frozenset(lang for lang, box in self.language_checks.items() if box.isChecked())
        return ProjectSetOptions(
            languages=chosen if self.language_checks else None,
            include=parse_folders(self.include.text()), exclude=parse_folders(self.exclude.text()),
            min_chars=self.min_chars.value(), max_chars=self.max_chars.value(), fim_style=self.fim_style)

    # ---- running -----------------------------------------------------------------------------
    def _scan(self) -> None:
        root = self.root
        self.scan_job = (Job(lambda ctx: scan_languages(root, ctx.cancelled), name="scan-languages", parent=self)
                         .on_success(self._scanned)
                         .on_failure(lambda e: self.languages_note.setText(
                             f"Could not look at the project: {describe_error(e)}"))
                         .start())

    def _scanned(self, counts) -> None:
        if not counts:
            self.languages_note.setText("No source files in a language we can parse.")
            return
        self.languages_note.hide()
        for lang, n in counts.most_common():
            box = QCheckBox(f"{lang} ({n})")
            box.setChecked(True)
            self.language_checks[lang] = box
            self.languages_row.addWidget(box)
        self.languages_row.addStretch(1)

    def build(self) -> None:
        if self.job is not None and self.job.is_running():
            return
        path = self.path.text().strip()
        if not path:
            self.show_error("Choose where to save the file.")
            return
        options = self.options()
        if options.languages is not None and not options.languages:
            self.show_error("Tick at least one language.")
            return
        if options.min_chars >= options.max_chars:
            self.show_error("The minimum length must be below the maximum.")
            return
        self.show_error(None)
        self.result.setText("")
        self._running(True)
        root, out, extra = self.root, Path(path).expanduser(), self.extra
        self.job = (Job(lambda ctx: export_project_set(root, out, options, extra=extra, cancelled=ctx.cancelled,
                                                        progress=ctx.progress), name="project-set", parent=self)
                    .on_progress(self._progressed)
                    .on_success(lambda report: (self._running(False), self.show_report(report)))
                    .on_failure(lambda e: (self._running(False), self.show_error(describe_error(e))))
                    .start())

    def _progressed(self, done: int, total: int, note: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"%p%  {note}" if note else "%p%")

    def _running(self, on: bool) -> None:
        self.progress.setVisible(on)
        self.cancel_button.setVisible(on)
        self.build_button.setEnabled(not on)
        if on:
            self.progress.setRange(0, 0)

    # ---- showing -----------------------------------------------------------------------------
    def show_error(self, text: str | None) -> None:
        self.error.setText(text or "")
        self.error.setVisible(bool(text))
        if text:
            self.failed.emit(text)

    def show_report(self, report: ProjectSetReport) -> None:
        lines = report.lines()
        self.result.setText(f"<b>Wrote {html.escape(report.output)}</b><br>{html.escape(lines[0])}<ul>"
                            + "".join(f"<li>{html.escape(ln)}</li>" for ln in lines[1:]) + "</ul>")
        self.built.emit(report)

    def closeEvent(self, event) -> None:
        for job in (self.job, self.scan_job):
            if job is not None and job.is_running():
                job.cancel()
        super().closeEvent(event)

"""Help → System check: every check of ``app.core.doctor`` with a coloured status and, when
it is not OK, what to do; Re-run, and Copy report (the scrubbed text, no keys, no file contents).

The checks run on a ``Job`` (they take seconds: the embedder loads, llama.cpp's build is read in
a child process, a new model is hashed); the window's state they need is read here, on the GUI
thread, before the job starts.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QGuiApplication
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QHeaderView, QLabel, QProgressBar,
                               QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout)

from app.core import doctor
from app.core.doctor import FAIL, OK, WARN, Check
from app.core.doctor.report import summary as summary_line
from app.ui.workers import Job

# (label, text colour, background) per status; FAIL matches the app's error banner.
STYLE = {OK: ("OK", "#1e6b30", "#e3f4e8"), WARN: ("WARN", "#8a5a00", "#fff3dc"), FAIL: ("FAIL", "#8a1c1c", "#fde7e9")}
SHUTDOWN_WAIT_MS = 15_000


class DoctorDialog(QDialog):
    checks_done = Signal(object)   # list[Check] of a finished run
    report_copied = Signal(str)    # the text put on the clipboard

    def __init__(self, inputs: Callable[[], dict], parent=None):
        """``inputs()`` (called on the GUI thread before each run) gives run_checks' keyword
        arguments besides progress and cancel."""
        super().__init__(parent)
        self.setWindowTitle("System check")
        self.resize(980, 560)
        self._inputs = inputs
        self.job: Job | None = None
        self.checks: list[Check] = []
        self.report = ""

        self.summary = QLabel("Checking…")
        self.summary.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.step = QLabel()
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Status", "Check", "Details and what to do"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setWordWrap(True)
        self.table.setTextElideMode(Qt.ElideNone)  # long details wrap instead of ending in "…"
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.Stretch)
        header.sectionResized.connect(lambda *_: self.table.resizeRowsToContents())
        self.rerun_button = QPushButton("Re-run")
        self.copy_button = QPushButton("Copy report")
        self.copy_button.setToolTip("Copies the report as text, without keys or file contents")
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.addButton(self.rerun_button, QDialogButtonBox.ActionRole)
        buttons.addButton(self.copy_button, QDialogButtonBox.ActionRole)
        buttons.rejected.connect(self.reject)
        self.rerun_button.clicked.connect(self.run)
        self.copy_button.clicked.connect(self.copy_report)

        lay = QVBoxLayout(self)
        lay.addWidget(self.summary)
        lay.addWidget(self.progress)
        lay.addWidget(self.step)
        lay.addWidget(self.table, 1)
        lay.addWidget(buttons)

    # ---- running -------------------------------------------------------------------------------
    def run(self) -> None:
        if self.job is not None and self.job.is_running():
            return
        kwargs = self._inputs()

        def job(ctx):
            checks = doctor.run_checks(**kwargs, progress=lambda done, total, note: ctx.progress(done, total, note),
                                       cancelled=ctx.cancelled)
            return checks, doctor.format_report(checks)

        self._set_running(True)
        self.job = (Job(job, name="system-check", parent=self)
                    .on_progress(self._progressed)
                    .on_success(self._done)
                    .on_failure(self._failed))
        self.job.finished.connect(lambda: self._set_running(False))
        self.job.start()

    def is_running(self) -> bool:
        return self.job is not None and self.job.is_running()

    def _set_running(self, on: bool) -> None:
        self.progress.setVisible(on)
        self.step.setVisible(on)
        self.rerun_button.setEnabled(not on)
        self.copy_button.setEnabled(not on and bool(self.report))
        if on:
            self.summary.setText("Checking…")
            self.progress.setRange(0, 0)

    def _progressed(self, done: int, total: int, note: str) -> None:
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
        if note:
            self.step.setText(note if note.endswith("%") else f"Checking: {note}…")

    def _done(self, result) -> None:
        self.checks, self.report = result
        self.table.setRowCount(len(self.checks))
        for row, c in enumerate(self.checks):
            label, fg, bg = STYLE[c.status]
            text = c.detail + (f"\n→ {c.remedy}" if c.status != OK and c.remedy else "")
            status = QTableWidgetItem(label)
            status.setData(Qt.UserRole, c)
            status.setForeground(QBrush(QColor(fg)))
            status.setBackground(QBrush(QColor(bg)))
            status.setTextAlignment(Qt.AlignCenter)
            self.table.setItem(row, 0, status)
            self.table.setItem(row, 1, QTableWidgetItem(c.title))
            self.table.setItem(row, 2, QTableWidgetItem(text))
        self.table.resizeRowsToContents()
        self._set_running(False)
        self.summary.setText(summary_line(self.checks))
        self.checks_done.emit(self.checks)

    def _failed(self, e: BaseException) -> None:
        self._set_running(False)
        self.summary.setText(f"The system check stopped: {e}")

    # ---- report --------------------------------------------------------------------------------
    def copy_report(self) -> None:
        if not self.report:
            return
        QGuiApplication.clipboard().setText(self.report)
        self.step.setText("Report copied: no keys, no file contents.")
        self.step.show()
        self.report_copied.emit(self.report)

    def rows(self) -> list[Check]:
        """The checks as shown, top to bottom."""
        return [self.table.item(i, 0).data(Qt.UserRole) for i in range(self.table.rowCount())]

    # ---- shutdown (the window's closing stops a running check through DoctorFeature) ----------
    def stop(self) -> None:
        if self.is_running():
            self.job.cancel()
            self.job.wait(SHUTDOWN_WAIT_MS)

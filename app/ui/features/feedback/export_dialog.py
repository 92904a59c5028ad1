"""File → Export training data…: the filters, where to write, and what was written.

The dialog only asks and shows; MainWindow runs ``app.core.learn.training_export`` on a Job and
calls ``show_report`` or ``show_error`` with the outcome."""

from __future__ import annotations

import html
from datetime import date
from pathlib import Path

from PySide6.QtCore import QDate, Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDateEdit, QDialog, QFileDialog, QFormLayout, QHBoxLayout,
                               QLabel, QLineEdit, QPushButton, QSpinBox, QVBoxLayout)

from app.core.learn.training_export import ExportFilter, ExportReport
from app.ui.banners import error_label

ALL_PROJECTS = "All conversations"


class ExportDialog(QDialog):
    export_requested = Signal(str, object)  # path, ExportFilter
    exported = Signal(object)               # ExportReport shown

    def __init__(self, default_path: Path, projects: list[str], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Export training data")
        self.resize(620, 360)
        intro = QLabel("Writes your conversations as chat examples (JSON Lines) for "
                       "<i>training/colab_training.ipynb</i> (set <code>MY_CHATS</code> to the file). "
                       "API keys, credentials and home folder paths are removed; duplicates are left out; "
                       "about 1 in 10 conversations goes to validation, the same ones in every export.")
        intro.setWordWrap(True)
        self.only_rated = QCheckBox("Only rated answers: rated 👍 Good, or their changes applied")
        self.only_rated.setChecked(True)
        self.only_rated.setToolTip("Unticked: every answer except those rated down")
        self.min_chars = QSpinBox()
        self.min_chars.setRange(0, 100_000)
        self.min_chars.setSuffix(" characters")
        self.min_chars.setToolTip("Leave out answers shorter than this")
        today = QDate.currentDate()
        self.use_since, self.since = QCheckBox("From"), QDateEdit(today.addMonths(-1))
        self.use_until, self.until = QCheckBox("to"), QDateEdit(today)
        for d in (self.since, self.until):
            d.setCalendarPopup(True)
            d.setDisplayFormat("yyyy-MM-dd")
            d.setEnabled(False)
        self.use_since.toggled.connect(self.since.setEnabled)
        self.use_until.toggled.connect(self.until.setEnabled)
        self.project = QComboBox()
        self.project.addItem(ALL_PROJECTS, None)
        for p in projects:
            self.project.addItem(Path(p).name or p, p)
            self.project.setItemData(self.project.count() - 1, p, Qt.ToolTipRole)
        self.path = QLineEdit(str(default_path))
        self.choose_button = QPushButton("Choose…")
        self.export_button = QPushButton("Export")
        self.export_button.setDefault(True)
        self.close_button = QPushButton("Close")
        self.error = error_label("exportError")
        self.result = QLabel("")
        self.result.setObjectName("exportResult")
        self.result.setWordWrap(True)

        dates = QHBoxLayout()
        for w in (self.use_since, self.since, self.use_until, self.until):
            dates.addWidget(w)
        dates.addStretch(1)
        where = QHBoxLayout()
        where.addWidget(self.path, 1)
        where.addWidget(self.choose_button)
        form = QFormLayout()
        form.addRow("", self.only_rated)
        form.addRow("Minimum answer length", self.min_chars)
        form.addRow("Dates", dates)
        form.addRow("Project", self.project)
        form.addRow("Save to", where)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.close_button)
        lay = QVBoxLayout(self)
        lay.addWidget(intro)
        lay.addLayout(form)
        lay.addWidget(self.error)
        lay.addWidget(self.result)
        lay.addStretch(1)
        lay.addLayout(buttons)

        self.choose_button.clicked.connect(self.choose_path)
        self.export_button.clicked.connect(self._export)
        self.close_button.clicked.connect(self.close)

    def choose_path(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export training data", self.path.text(), "JSON Lines (*.jsonl)")
        if path:
            self.path.setText(path)

    def filter(self) -> ExportFilter:
        return ExportFilter(
            only_rated=self.only_rated.isChecked(),
            min_chars=self.min_chars.value(),
            since=_day(self.since.date()) if self.use_since.isChecked() else None,
            until=_day(self.until.date()) if self.use_until.isChecked() else None,
            project=self.project.currentData())

    def _export(self) -> None:
        path = self.path.text().strip()
        if not path:
            self.show_error("Choose where to save the file.")
            return
        f = self.filter()
        if f.since and f.until and f.since > f.until:
            self.show_error("The start date is after the end date.")
            return
        self.show_error(None)
        self.result.setText("Exporting…")
        self.export_button.setEnabled(False)
        self.export_requested.emit(str(Path(path).expanduser()), f)

    def show_report(self, report: ExportReport) -> None:
        self.export_button.setEnabled(True)
        self.show_error(None)
        text = html.escape(report.summary())
        self.result.setText(text)
        self.exported.emit(report)

    def show_error(self, text: str | None) -> None:
        self.export_button.setEnabled(True)
        if text:
            self.result.setText("")
        self.error.setText(text or "")
        self.error.setVisible(bool(text))


def _day(d: QDate) -> date:
    return date(d.year(), d.month(), d.day())

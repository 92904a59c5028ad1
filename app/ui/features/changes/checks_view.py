"""The checks of an applied change, under it in the Changes pane: syntax, linters, tests.

One line per check (✓ passed, ✗ failed, ⏱ timed out, ⚠ a notice), the output behind a toggle,
and for a failure the code can be blamed for, "Ask for a fix", which sends the check's real
output as a change request. While checks run, the pane says which one and Cancel stops it; the
window is never blocked (the checks run on a worker).
"""

from __future__ import annotations

import html

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from app.core.checks import CANCELLED, ERROR, FAILED, NOTICE, PASSED, TIMED_OUT, CheckResult

MARKS = {PASSED: "✓", FAILED: "✗", TIMED_OUT: "⏱", CANCELLED: "■", ERROR: "⚠", NOTICE: "ℹ"}
COLOURS = {PASSED: "#1a7f37", FAILED: "#b42318", TIMED_OUT: "#9a6700", CANCELLED: "#57606a",
           ERROR: "#9a6700", NOTICE: "#57606a"}


class CheckRow(QWidget):
    """One check: its line, its output (hidden until asked) and, when it can help, Ask for a fix."""

    fix_requested = Signal(object)  # the CheckResult

    def __init__(self, result: CheckResult, parent=None):
        super().__init__(parent)
        self.result = result
        r = result
        took = f" ({r.duration_s:.1f} s)" if r.duration_s >= 0.05 else ""
        summary = r.summary[len(r.name) + 1:].strip() if r.summary.startswith(r.name + ":") else r.summary
        self.line = QLabel(f"<span style='color:{COLOURS.get(r.status, '#57606a')}'>{MARKS.get(r.status, '•')}</span> "
                           f"<b>{html.escape(r.name)}</b>: {html.escape(summary)}{took}")
        self.line.setWordWrap(True)
        self.line.setToolTip(r.command)
        self.output = QPlainTextEdit(r.output)
        self.output.setReadOnly(True)
        self.output.setMaximumHeight(160)
        self.output.setStyleSheet("font-family: monospace;")
        self.output.hide()
        self.output_button = QPushButton("Output")
        self.output_button.setCheckable(True)
        self.output_button.toggled.connect(self.output.setVisible)
        self.output_button.setVisible(bool(r.output))
        self.fix_button = QPushButton("Ask for a fix")
        self.fix_button.setToolTip("Send this check's output to the model as a change request")
        self.fix_button.setVisible(bool(r.fix_text))
        self.fix_button.clicked.connect(lambda: self.fix_requested.emit(self.result))
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.line, 1)
        row.addWidget(self.output_button)
        row.addWidget(self.fix_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(row)
        lay.addWidget(self.output)


class ChecksView(QWidget):
    fix_requested = Signal(object)   # a failed CheckResult
    cancel_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list[CheckRow] = []
        self.title = QLabel()
        self.progress = QLabel()
        self.cancel_button = QPushButton("Cancel checks")
        self.cancel_button.clicked.connect(self.cancel_requested)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.title, 1)
        top.addWidget(self.progress)
        top.addWidget(self.cancel_button)
        self.body = QVBoxLayout()
        self.body.setContentsMargins(8, 0, 0, 0)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addLayout(self.body)
        self.hide()

    def _clear_rows(self) -> None:
        for row in self.rows:
            row.setParent(None)
            row.deleteLater()
        self.rows = []

    def running(self, label: str) -> None:
        """Checks started for the change just applied (``label``: its files)."""
        self._clear_rows()
        self.title.setText(f"<b>Checking</b> {html.escape(label)}")
        self.progress.setText("starting…")
        self.cancel_button.show()
        self.show()

    def show_progress(self, text: str) -> None:
        self.progress.setText(text)

    def show_results(self, label: str, results: list[CheckResult]) -> None:
        self._clear_rows()
        self.cancel_button.hide()
        self.progress.setText("")
        bad = sum(1 for r in results if not r.ok)
        verdict = "all passed" if not bad else f"{bad} need{'s' * (bad == 1)} a look"
        self.title.setText(f"<b>Checks of the applied change</b> ({html.escape(label)}): {verdict}")
        for r in results:
            row = CheckRow(r, self)
            row.fix_requested.connect(self.fix_requested)
            self.body.addWidget(row)
            self.rows.append(row)
        self.show()

    def clear(self) -> None:
        self._clear_rows()
        self.hide()

    def row(self, name: str) -> CheckRow:
        """The row of a check by name (tests and keyboard users)."""
        return next(r for r in self.rows if r.result.name == name)

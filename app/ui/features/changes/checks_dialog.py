"""Changes → Checks…: what runs after Apply in this project, kept in its own small settings
file (in the app's data folder, not in the user's repository).

The linters shown are what the project configures and this computer has (found on a worker
before the dialog opens: finding a venv's tools starts a Python); the user switches the
syntax check, the tests and, in a git repository, the commit per applied change.
"""

from __future__ import annotations

import html

from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QLabel,
                               QVBoxLayout)

from app.core.checks import Detection, ProjectSettings


class ChecksDialog(QDialog):
    def __init__(self, settings: ProjectSettings, detection: Detection, is_repo: bool, problem: str = "",
                 parent=None):
        super().__init__(parent)
        self.setWindowTitle("Checks after Apply")
        self.settings = settings
        found = detection.lines()
        text = ("<b>Linters</b> (what the project configures and this computer has):<br>"
                + ("<br>".join("• " + html.escape(line) for line in found) if found
                   else "none: the project configures no linter this computer has"))
        self.linters = QLabel(text)
        self.linters.setWordWrap(True)
        self.problem = QLabel(html.escape(problem))
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color:#8a1c1c;")
        self.problem.setVisible(bool(problem))
        self.syntax = QCheckBox("Check the syntax of every changed file (before Apply too)")
        self.syntax.setChecked(settings.syntax_check)
        self.tests = QCheckBox("Run the project's tests after Apply (in the sandbox)")
        self.tests.setChecked(settings.run_tests_after_apply)
        self.commit = QCheckBox("Commit each applied change to git (never pushed)")
        self.commit.setChecked(settings.commit_after_apply and is_repo)
        self.commit.setEnabled(is_repo)
        if not is_repo:
            self.commit.setToolTip("The project is not a git repository (or git is not installed)")
        self.timeout = QDoubleSpinBox()
        self.timeout.setRange(5, 3600)
        self.timeout.setSuffix(" s")
        self.timeout.setValue(settings.check_timeout_s)
        self.tests_timeout = QDoubleSpinBox()
        self.tests_timeout.setRange(10, 7200)
        self.tests_timeout.setSuffix(" s")
        self.tests_timeout.setValue(settings.tests_timeout_s)
        form = QFormLayout()
        form.addRow("Each linter stops after", self.timeout)
        form.addRow("The tests stop after", self.tests_timeout)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.problem)
        lay.addWidget(self.linters)
        lay.addWidget(self.syntax)
        lay.addWidget(self.tests)
        lay.addWidget(self.commit)
        lay.addLayout(form)
        lay.addWidget(buttons)

    def chosen(self) -> ProjectSettings:
        """The settings with the user's choices (the once-only flags kept)."""
        s = self.settings
        s.syntax_check = self.syntax.isChecked()
        s.run_tests_after_apply = self.tests.isChecked()
        if self.commit.isEnabled():
            s.commit_after_apply = self.commit.isChecked()
        s.check_timeout_s = float(self.timeout.value())
        s.tests_timeout_s = float(self.tests_timeout.value())
        return s

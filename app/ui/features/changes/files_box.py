"""Which files the model saw for a change request, and why; the user ticks, adds and re-asks.

A small model answers only about the files it is shown, so a wrong choice is the most common
reason a change request goes nowhere. The list says why each file was picked ("named in the
request", "defines retry", "imports net.py") and which did not fit the prompt; the user can
untick files, add one (``@path``, completed from the project's files) and ask again with
exactly those files.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCompleter, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QPushButton, QVBoxLayout, QWidget)

PATH_ROLE = Qt.UserRole


class FilesSeenBox(QWidget):
    reask_requested = Signal(str, object)  # (the request, list of relative paths)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.request = ""
        self._project_files: list[str] = []
        self.title = QLabel()
        self.list = QListWidget()
        self.list.setMaximumHeight(110)
        self.add_edit = QLineEdit()
        self.add_edit.setPlaceholderText("Add a file: @path (Enter)")
        self.add_edit.returnPressed.connect(self._add_typed)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color:#8a1c1c;")
        self.problem.hide()
        self.reask_button = QPushButton("Ask again with these files")
        self.reask_button.setToolTip("Send the same request again, showing the model exactly the ticked files")
        self.reask_button.clicked.connect(self._reask)
        row = QHBoxLayout()
        row.addWidget(self.add_edit, 1)
        row.addWidget(self.reask_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.title)
        lay.addWidget(self.list)
        lay.addWidget(self.problem)
        lay.addLayout(row)
        self.list.itemChanged.connect(lambda *_: self._sync())
        self.hide()

    def set_project_files(self, files: list[str]) -> None:
        """The project's files, offered as completions for the add line."""
        self._project_files = list(files)
        completer = QCompleter(["@" + f for f in files], self.add_edit)
        completer.setCaseSensitivity(Qt.CaseInsensitive)
        completer.setFilterMode(Qt.MatchContains)
        self.add_edit.setCompleter(completer)

    def show_files(self, request: str, chosen: list[tuple[str, str]], shown: list[str]) -> None:
        """``chosen``: (path, why) in the order the model was given them; ``shown``: those that
        fit the prompt (the others are listed, unticked, as "too long to show")."""
        self.request = request
        self.list.clear()
        for path, why in chosen:
            seen = path in shown
            item = QListWidgetItem(f"{path} — {why}" if seen else f"{path} — {why} (not shown: no room in the prompt)")
            item.setData(PATH_ROLE, path)
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(Qt.Checked if seen else Qt.Unchecked)
            self.list.addItem(item)
        n = len(shown)
        self.title.setText(f"<b>The model saw {n} file{'s' * (n != 1)}</b>" if n else
                           "<b>The model saw no file</b>: add one (@path) and ask again")
        self.problem.hide()
        self.setVisible(True)
        self._sync()

    def show_problems(self, problems: list[str]) -> None:
        """What could not be used of the request (an ``@path`` that is not a project file)."""
        self.problem.setText("\n".join(problems))
        self.problem.setVisible(bool(problems))

    def clear(self) -> None:
        self.request = ""
        self.list.clear()
        self.hide()

    def files(self) -> list[str]:
        """The ticked files, in order."""
        return [self.list.item(i).data(PATH_ROLE) for i in range(self.list.count())
                if self.list.item(i).checkState() == Qt.Checked]

    def add_file(self, path: str) -> bool:
        """Add (and tick) a project file; an unknown path is refused with the reason."""
        path = path.strip().lstrip("@").strip()
        if not path:
            return False
        if self._project_files and path not in self._project_files:
            self.problem.setText(f"{path} is not a file of the project (paths are relative to the project folder).")
            self.problem.show()
            return False
        self.problem.hide()
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(PATH_ROLE) == path:
                item.setCheckState(Qt.Checked)
                return True
        item = QListWidgetItem(f"{path} — added by you")
        item.setData(PATH_ROLE, path)
        item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
        item.setCheckState(Qt.Checked)
        self.list.addItem(item)
        self._sync()
        return True

    def _add_typed(self) -> None:
        if self.add_file(self.add_edit.text()):
            self.add_edit.clear()

    def _reask(self) -> None:
        if self.request and self.files():
            self.reask_requested.emit(self.request, self.files())

    def _sync(self) -> None:
        self.reask_button.setEnabled(bool(self.request) and bool(self.files()))

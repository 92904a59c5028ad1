"""The Changes pane: the files an answer would change, each hunk accepted or rejected.

Holds only what the user chose (which files and hunks, edited text); the main window runs
plan/apply/undo from app.core.edits on workers. New and deleted files start unticked: they
need an explicit tick. The diff view always shows what Apply would write.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QPlainTextEdit,
                               QPushButton, QSplitter, QTextBrowser, QTreeWidget, QTreeWidgetItem, QVBoxLayout,
                               QWidget)

from app.core.edits.diff_render import STATUS_WORDS, render_change
from app.core.edits import ChangeSet, FileChange
from app.ui.banners import error_label
from app.ui.features.changes.checks_view import ChecksView
from app.ui.features.changes.files_box import FilesSeenBox

PATH_ROLE = Qt.UserRole
HUNK_ROLE = Qt.UserRole + 1


class EditDialog(QDialog):
    """Edit the new text of one file before applying it."""

    def __init__(self, path: str, text: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"Edit {path}")
        self.resize(760, 560)
        self.editor = QPlainTextEdit(text)
        self.editor.setLineWrapMode(QPlainTextEdit.NoWrap)
        self.editor.setStyleSheet("font-family: monospace;")
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("This text replaces the proposal for this file (you still apply it with Apply)."))
        lay.addWidget(self.editor, 1)
        lay.addWidget(buttons)


class ChangesPanel(QWidget):
    apply_requested = Signal(object)   # list[(FileChange, set[int] | None)]
    undo_requested = Signal()
    recompute_requested = Signal()
    discarded = Signal()
    review_requested = Signal(object)  # the ChangeSet to review (Review: five reviewers, one recommendation)
    checks_settings_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.changes: ChangeSet | None = None
        self._accepted: dict[str, set[int]] = {}
        self._included: dict[str, bool] = {}
        self._filling = False
        self._marks: dict = {}  # path -> hunk index (-1: the whole file) -> syntax problems
        self.edit_dialog_factory = EditDialog  # tests replace it to type into the dialog
        self.files_box = FilesSeenBox()
        self.checks = ChecksView()
        self.git_label = QLabel()
        self.git_label.setObjectName("gitLine")
        self.git_label.hide()
        self.checks_button = QPushButton("Checks…")
        self.checks_button.setToolTip("What runs after Apply in this project: syntax, linters, tests, git commit")
        self.checks_button.clicked.connect(self.checks_settings_requested)

        self.title = QLabel("<b>Changes</b>")
        self.info = QLabel("No changes proposed. Open a project and ask for a change (for example "
                           "<i>/code add a docstring to fetch in net.py</i>).")
        self.info.setWordWrap(True)
        self.problems = error_label("editProblems")
        self._problem_messages: list[str] = []
        self._busy = False
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["File / hunk", "Change"])
        self.tree.setColumnWidth(0, 260)
        self.mode = QComboBox()
        self.mode.addItems(["Unified", "Side by side"])
        self.view = QTextBrowser()
        self.view.setOpenLinks(False)
        self.edit_button = QPushButton("Edit…")
        self.edit_button.setToolTip("Change the proposed text of this file before applying it")
        self.apply_button = QPushButton("Apply")
        self.apply_button.setToolTip("Write the ticked files and hunks (atomically, with an undo copy)")
        self.discard_button = QPushButton("Discard")
        self.review_button = QPushButton("Review")
        self.review_button.setToolTip("Five reviewers (developer, security, QA, architect, UX) read this diff, "
                                      "then one recommendation (Review panel)")
        self.undo_button = QPushButton("Undo last apply")
        self.recompute_button = QPushButton("Recompute")
        self.recompute_button.setToolTip("A file changed on disk: compute the diff again from the same answer")
        self.recompute_button.hide()

        top = QHBoxLayout()
        top.addWidget(self.title)
        top.addWidget(self.git_label, 1)
        top.addWidget(self.checks_button)
        top.addWidget(QLabel("View:"))
        top.addWidget(self.mode)
        buttons = QHBoxLayout()
        for b in (self.edit_button, self.apply_button, self.discard_button, self.review_button, self.recompute_button):
            buttons.addWidget(b)
        buttons.addStretch()
        buttons.addWidget(self.undo_button)
        split = QSplitter(Qt.Vertical)
        split.addWidget(self.tree)
        split.addWidget(self.view)
        split.setSizes([160, 400])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.info)
        lay.addWidget(self.files_box)
        lay.addWidget(self.problems)
        lay.addWidget(self.checks)
        lay.addWidget(split, 1)
        lay.addLayout(buttons)

        self.tree.itemChanged.connect(self._item_changed)
        self.tree.currentItemChanged.connect(lambda *_: self._render())
        self.mode.currentIndexChanged.connect(lambda *_: self._render())
        self.apply_button.clicked.connect(lambda: self.apply_requested.emit(self.picks()))
        self.discard_button.clicked.connect(self._discard)
        self.review_button.clicked.connect(lambda: self.review_requested.emit(self.changes))
        self.undo_button.clicked.connect(self.undo_requested)
        self.recompute_button.clicked.connect(self.recompute_requested)
        self.edit_button.clicked.connect(self.edit_current)
        self.set_undo_available(False)
        self._sync()

    # ---- content -----------------------------------------------------------------------------
    def set_changes(self, changes: ChangeSet | None, marks: dict | None = None) -> None:
        """Show a plan; ``marks``: the syntax problems its hunks would introduce."""
        self.changes = changes
        self._marks = marks or {}
        self._accepted = {c.path: set(range(len(c.hunks))) for c in (changes.changes if changes else [])}
        self._included = {c.path: not c.needs_approval for c in (changes.changes if changes else [])}
        self.recompute_button.hide()
        self._fill()
        if changes is not None and changes.changes:
            n = len(changes.changes)
            self.info.setText(f"{n} file{'s' * (n != 1)} would change. Untick what you do not want, then Apply.")
        elif changes is not None and changes.unchanged:
            self.info.setText("The answer repeats " + ", ".join(changes.unchanged) + " without changes.")
        else:
            self.info.setText("No changes proposed.")
        probs = changes.problems if changes else []
        self.show_problems([p.message for p in probs])

    def show_problems(self, messages: list[str], stale: bool = False) -> None:
        self._problem_messages = list(messages)
        text = "<br>".join(html.escape(m).replace("\n", "<br>") for m in messages)
        self.problems.setText(text)
        self.problems.setVisible(bool(messages))
        self.recompute_button.setVisible(stale)

    def problems_text(self) -> str:
        return "\n".join(self._problem_messages) if self.problems.isVisible() else ""

    def _fill(self) -> None:
        self._filling = True
        self.tree.clear()
        for c in self.changes.changes if self.changes else []:
            item = QTreeWidgetItem([c.path, STATUS_WORDS.get(c.status, f"{len(c.hunks)} hunk" + "s" * (len(c.hunks) != 1))])
            item.setData(0, PATH_ROLE, c.path)
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(0, Qt.Checked if self._included[c.path] else Qt.Unchecked)
            marks = self._marks.get(c.path, {})
            if -1 in marks:
                self._mark(item, marks[-1])
            if c.status not in STATUS_WORDS:
                for h in c.hunks:
                    child = QTreeWidgetItem([f"Hunk {h.index + 1}", f"−{len(h.old)} +{len(h.new)} at line {h.old_start + 1}"])
                    if h.index in marks:
                        self._mark(child, marks[h.index])
                    child.setData(0, PATH_ROLE, c.path)
                    child.setData(0, HUNK_ROLE, h.index)
                    child.setFlags(child.flags() | Qt.ItemIsUserCheckable)
                    child.setCheckState(0, Qt.Checked if h.index in self._accepted[c.path] else Qt.Unchecked)
                    item.addChild(child)
            self.tree.addTopLevelItem(item)
            item.setExpanded(True)
        self._filling = False
        if self.tree.topLevelItemCount():
            self.tree.setCurrentItem(self.tree.topLevelItem(0))
        self._render()
        self._sync()

    @staticmethod
    def _mark(item: QTreeWidgetItem, problems: list) -> None:
        """A hunk (or new file) that would leave its file unparsable: said in the list itself."""
        first = problems[0]
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        item.setText(1, f"{item.text(1)} · ⚠ does not parse: line {first.line}{more}")
        item.setForeground(1, Qt.red)
        item.setToolTip(1, "\n".join(str(p) for p in problems))

    def syntax_note(self, path: str, hunk: int | None = None) -> str:
        """The syntax mark shown for a file's hunk ("" when none): tests read what the user sees."""
        item = self._item(path, hunk)
        return item.text(1) if "⚠" in item.text(1) else ""

    def set_git_line(self, text: str) -> None:
        self.git_label.setText(html.escape(text))
        self.git_label.setVisible(bool(text))

    def _item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if self._filling or column != 0:
            return
        path, hunk = item.data(0, PATH_ROLE), item.data(0, HUNK_ROLE)
        on = item.checkState(0) == Qt.Checked
        if hunk is None:
            self._included[path] = on
        elif on:
            self._accepted[path].add(hunk)
        else:
            self._accepted[path].discard(hunk)
        self._render()
        self._sync()

    def _item(self, path: str, hunk: int | None = None) -> QTreeWidgetItem:
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            if top.data(0, PATH_ROLE) == path:
                if hunk is None:
                    return top
                return top.child(hunk)
        raise KeyError(path)

    # ---- what tests and keyboard users drive -------------------------------------------------
    def set_file_included(self, path: str, on: bool) -> None:
        self._item(path).setCheckState(0, Qt.Checked if on else Qt.Unchecked)

    def set_hunk_accepted(self, path: str, hunk: int, on: bool) -> None:
        self._item(path, hunk).setCheckState(0, Qt.Checked if on else Qt.Unchecked)

    def show_file(self, path: str) -> None:
        self.tree.setCurrentItem(self._item(path))

    def current_change(self) -> FileChange | None:
        item = self.tree.currentItem()
        if item is None or self.changes is None:
            return None
        return self.changes.change(item.data(0, PATH_ROLE))

    def picks(self) -> list[tuple[FileChange, set[int] | None]]:
        """The ticked files with their accepted hunks (what Apply writes)."""
        out = []
        for c in self.changes.changes if self.changes else []:
            if not self._included.get(c.path):
                continue
            if not c.needs_approval and not self._accepted[c.path]:
                continue
            out.append((c, None if c.needs_approval else set(self._accepted[c.path])))
        return out

    def edit_current(self) -> None:
        c = self.current_change()
        if c is None or c.status == "deleted":
            return
        dlg = self.edit_dialog_factory(c.path, c.result_text(self._accepted[c.path]), self)
        if dlg.exec() == QDialog.Accepted:
            self.replace_text(c.path, dlg.editor.toPlainText())

    def replace_text(self, path: str, text: str) -> None:
        """Swap a file's proposal for text the user typed; all its hunks start accepted."""
        assert self.changes is not None
        i = next(k for k, c in enumerate(self.changes.changes) if c.path == path)
        edited = self.changes.changes[i].with_text(text)
        self.changes.changes[i] = edited
        self._accepted[path] = set(range(len(edited.hunks)))
        self._fill()
        self.show_file(path)

    def _discard(self) -> None:
        self.set_changes(None)
        self.discarded.emit()

    def rerender(self) -> None:
        """Draw the diff again (the window's palette switched between light and dark)."""
        self._render()

    def _render(self) -> None:
        c = self.current_change()
        if c is None:
            self.view.setHtml("")
            return
        accepted = self._accepted.get(c.path, set())
        if c.needs_approval and not self._included.get(c.path):
            accepted = set()
        self.view.setHtml(render_change(c, accepted, side_by_side=self.mode.currentIndex() == 1))

    def set_undo_available(self, on: bool, label: str = "") -> None:
        self.undo_button.setEnabled(on)
        self.undo_button.setToolTip(f"Put back: {label}" if label else "Nothing to undo")

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self._sync()

    def _sync(self) -> None:
        ready = bool(self.changes and self.changes.changes) and not self._busy
        self.apply_button.setEnabled(ready and bool(self.picks()))
        self.edit_button.setEnabled(ready)
        self.discard_button.setEnabled(ready)
        self.review_button.setEnabled(ready)

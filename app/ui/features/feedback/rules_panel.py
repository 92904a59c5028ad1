"""The Rules panel: the standing rules the user taught, which go into every prompt.

It lists, adds, edits (double-click the text), removes and re-scopes rules; MainWindow stores
every change (app.core.storage) and calls ``set_rules`` with what is stored."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton, QTreeWidget,
                               QTreeWidgetItem, QVBoxLayout, QWidget)

from app.core.chat.rules import EXAMPLE, RULES_SHARE
from app.core.storage import Rule
from app.ui.banners import error_label

_ID = Qt.UserRole
EVERY_PROJECT = "Every project"
THIS_PROJECT = "This project"


class RulesPanel(QWidget):
    add_requested = Signal(str, bool)      # text, for the open project only
    edit_requested = Signal(int, str)      # rule id, new text
    remove_requested = Signal(int)         # rule id
    scope_requested = Signal(int, bool)    # rule id, for the open project only

    def __init__(self, parent=None):
        super().__init__(parent)
        self.note = QLabel(
            f"Rules go into every prompt (at most {round(RULES_SHARE * 100)}% of it, newest first) until you "
            f"remove them. Double-click a rule to edit it. In the chat: <i>{html.escape(EXAMPLE)}</i>, "
            "or <i>/remember --project …</i> for the open project only.")
        self.note.setWordWrap(True)
        self.error = error_label("rulesError")
        self.tree = QTreeWidget()
        self.tree.setObjectName("ruleList")
        self.tree.setHeaderLabels(["Rule", "Applies to"])
        self.tree.setRootIsDecorated(False)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeToContents)
        self.setMinimumWidth(340)
        self.input = QLineEdit()
        self.input.setPlaceholderText("New rule, e.g. Use pytest, not unittest")
        self.scope = QComboBox()
        self.scope.addItems([EVERY_PROJECT, THIS_PROJECT])
        self.add_button = QPushButton("Add")
        self.remove_button = QPushButton("Remove")
        self.scope_button = QPushButton("")
        self._project: str | None = None
        self._rules: dict[int, Rule] = {}
        self._filling = False

        add_row = QHBoxLayout()
        add_row.addWidget(self.input, 1)
        add_row.addWidget(self.scope)
        add_row.addWidget(self.add_button)
        actions = QHBoxLayout()
        actions.addWidget(self.scope_button)
        actions.addStretch(1)
        actions.addWidget(self.remove_button)
        lay = QVBoxLayout(self)
        lay.addWidget(self.note)
        lay.addWidget(self.error)
        lay.addLayout(add_row)
        lay.addWidget(self.tree, 1)
        lay.addLayout(actions)

        self.add_button.clicked.connect(self._add)
        self.input.returnPressed.connect(self._add)
        self.remove_button.clicked.connect(lambda: self.current_id() is not None
                                           and self.remove_requested.emit(self.current_id()))
        self.scope_button.clicked.connect(self._toggle_scope)
        self.tree.itemChanged.connect(self._item_changed)
        self.tree.currentItemChanged.connect(lambda *_: self._sync())
        self._sync()

    # ---- asking ------------------------------------------------------------------------------
    def _add(self) -> None:
        text = self.input.text().strip()
        if text:
            self.add_requested.emit(text, self.scope.currentText() == THIS_PROJECT)

    def _toggle_scope(self) -> None:
        rule = self._rules.get(self.current_id())
        if rule is not None:
            self.scope_requested.emit(rule.id, rule.project is None)

    def _item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if self._filling or column != 0:
            return
        self.edit_requested.emit(item.data(0, _ID), item.text(0))

    def current_id(self) -> int | None:
        item = self.tree.currentItem()
        return item.data(0, _ID) if item is not None else None

    # ---- showing -----------------------------------------------------------------------------
    def set_rules(self, rules: list[Rule], project: str | None) -> None:
        """Every rule, newest first: those that apply now (global and this project's), then
        other projects' rules, greyed."""
        current = self.current_id()
        self._project = project
        self._rules = {r.id: r for r in rules}
        active = [r for r in rules if r.project is None or r.project == project]
        others = [r for r in rules if r not in active]
        self._filling = True
        self.tree.clear()
        for r in active + others:
            item = QTreeWidgetItem([r.text, self._scope_label(r)])
            item.setData(0, _ID, r.id)
            item.setFlags(item.flags() | Qt.ItemIsEditable)
            item.setToolTip(0, r.text)
            item.setToolTip(1, r.project or "Every project")
            if r in others:
                for col in (0, 1):
                    item.setForeground(col, QBrush(QColor("#999")))
            self.tree.addTopLevelItem(item)
            if r.id == current:
                self.tree.setCurrentItem(item)
        self._filling = False
        self.scope.setEnabled(project is not None)
        if project is None:
            self.scope.setCurrentText(EVERY_PROJECT)
        self._sync()

    def set_text(self, rule_id: int, text: str) -> None:
        """Put a rule's text back in place (an edit was refused); not a rebuild, since this
        may run inside the item's own signal."""
        item = self.item(rule_id)
        if item is not None:
            self._filling = True
            item.setText(0, text)
            self._filling = False

    def added(self) -> None:
        """The typed rule was stored: clear the box for the next one."""
        self.input.clear()

    def item(self, rule_id: int) -> QTreeWidgetItem | None:
        for i in range(self.tree.topLevelItemCount()):
            it = self.tree.topLevelItem(i)
            if it.data(0, _ID) == rule_id:
                return it
        return None

    def texts(self) -> list[str]:
        return [self.tree.topLevelItem(i).text(0) for i in range(self.tree.topLevelItemCount())]

    def show_error(self, text: str | None) -> None:
        self.error.setText(text or "")
        self.error.setVisible(bool(text))

    def _scope_label(self, r: Rule) -> str:
        if r.project is None:
            return "every project"
        name = Path(r.project).name or r.project
        return f"{name} (this project)" if r.project == self._project else name

    def _sync(self) -> None:
        rule = self._rules.get(self.current_id())
        self.remove_button.setEnabled(rule is not None)
        if rule is None or (rule.project is None and self._project is None):
            self.scope_button.setText("Only this project")
            self.scope_button.setEnabled(False)
        elif rule.project is None:
            self.scope_button.setText("Only this project")
            self.scope_button.setEnabled(True)
        else:
            self.scope_button.setText("Every project")
            self.scope_button.setEnabled(True)
        self.scope_button.setToolTip("Change where the selected rule applies")

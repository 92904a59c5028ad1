"""Help → Keyboard shortcuts (F1): every key the window answers to, in this platform's words.

Read from what is live, not from a list kept by hand: each feature's ``shortcuts()`` (keys that
are not actions, such as Ctrl+Enter in the question box) and every action of the window that has
a shortcut and sits in a menu, toolbar or widget. Keys are shown with
``QKeySequence.toString(NativeText)``, so macOS shows ⌘ where others show Ctrl.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout

# Should the chat feature not list its own keys (``ChatFeature.shortcuts()``): the question box's.
TYPING_KEYS = [(QKeySequence("Ctrl+Return"), "Send the question (in the question box)")]


def native(keys) -> str:
    """Keys as this platform writes them: a QKeySequence or standard key converted, text (a
    feature's own, already in native words, "Ctrl+= or Ctrl++" say) as it is."""
    if isinstance(keys, str):
        return keys
    seq = keys if isinstance(keys, QKeySequence) else QKeySequence(keys)
    return seq.toString(QKeySequence.NativeText)


def action_name(action: QAction) -> str:
    """The action's menu text without its mnemonic ampersand and trailing ellipsis."""
    text = action.text().replace("&&", "\x00").replace("&", "").replace("\x00", "&")
    return text.rstrip("…").rstrip(".").strip() or action.toolTip()


def collect_shortcuts(window, features) -> list[tuple[str, str]]:
    """(keys, what) for everything the window answers to, each once. A feature's own words for
    a key win over an action's menu text (it knows where the key works: F2 in the list, say)."""
    rows: list[tuple[str, str]] = []
    listed = False
    for feature in vars(features).values():
        provider = getattr(feature, "shortcuts", None)
        if callable(provider):
            listed = listed or feature.name == "chat"
            rows += [(native(keys), what) for keys, what in provider()]
    if not listed:
        rows += [(native(keys), what) for keys, what in TYPING_KEYS]
    described = {part for keys, _what in rows for part in keys.split(" or ")}
    whats, actions = {what.lower() for _keys, what in rows}, []
    for action in window.findChildren(QAction):
        keys, what = native(action.shortcut()), action_name(action)  # its first keys (F1, not also Help)
        if keys and keys not in described and what.lower() not in whats and action.associatedObjects():
            actions.append((keys, what))  # (an action placed nowhere: its keys do nothing)
    rows += sorted(actions, key=lambda row: row[1].lower())
    seen, out = set(), []
    for keys, what in rows:
        if (keys, what.lower()) not in seen:
            seen.add((keys, what.lower()))
            out.append((keys, what))
    return out


class ShortcutsDialog(QDialog):
    def __init__(self, rows: list[tuple[str, str]], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.setObjectName("shortcutsDialog")
        self.setMinimumSize(480, 420)
        self.table = QTableWidget(len(rows), 2)
        self.table.setObjectName("shortcutsTable")
        self.table.setHorizontalHeaderLabels(["Keys", "What it does"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        for r, (keys, what) in enumerate(rows):
            for c, text in enumerate((keys, what)):
                item = QTableWidgetItem(text)
                item.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable)
                self.table.setItem(r, c, item)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Keys the window answers to (some only where the text says):"))
        lay.addWidget(self.table)
        lay.addWidget(buttons)

    def rows(self) -> list[tuple[str, str]]:
        """What the table shows, row by row."""
        return [(self.table.item(r, 0).text(), self.table.item(r, 1).text()) for r in range(self.table.rowCount())]

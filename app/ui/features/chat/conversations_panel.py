"""The left-hand list of conversations: search (titles and text), new, select, rename (F2 or
double-click), pin (pinned first, in bold), export as Markdown, delete (several at once).

It only shows and asks: every change goes out as a signal and comes back through
``set_conversations`` once the chat feature has stored it."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QKeySequence, QPainter, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QLineEdit, QListWidget, QListWidgetItem, QMenu,
                               QPushButton, QVBoxLayout, QWidget)

from app.core.storage import Conversation

ID_ROLE = Qt.UserRole
PINNED_ROLE = Qt.UserRole + 1


def _pin_icon() -> QIcon:
    """A small dot beside a pinned chat (drawn: not every desktop has a pin emoji or icon)."""
    pix = QPixmap(10, 10)
    pix.fill(Qt.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.Antialiasing)
    p.setBrush(QColor("#c0392b"))
    p.setPen(Qt.NoPen)
    p.drawEllipse(1, 1, 8, 8)
    p.end()
    return QIcon(pix)


class SearchBox(QLineEdit):
    """The search line: Down or Enter goes to the list (Enter opens the first match), Esc clears."""

    to_list = Signal(bool)  # True: open the first match

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key_Down:
            return self.to_list.emit(False)
        if event.key() in (Qt.Key_Return, Qt.Key_Enter):
            return self.to_list.emit(True)
        if event.key() == Qt.Key_Escape and self.text():
            return self.clear()
        super().keyPressEvent(event)


class ConversationsPanel(QWidget):
    selected = Signal(int)
    new_requested = Signal()
    rename_requested = Signal(int, str)
    delete_requested = Signal(list)  # conversation ids (the selected ones)
    pin_requested = Signal(int, bool)  # conversation id, pin (True) or unpin
    export_requested = Signal(int)
    search_changed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.search = SearchBox()
        self.search.setPlaceholderText("Search chats (Ctrl+K)")
        self.search.setClearButtonEnabled(True)
        self.new_button = QPushButton("New chat")
        self.list = QListWidget()
        self.list.setEditTriggers(QAbstractItemView.DoubleClicked | QAbstractItemView.EditKeyPressed)
        self.list.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.list.setContextMenuPolicy(Qt.CustomContextMenu)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.ElideRight)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.search)
        lay.addWidget(self.new_button)
        lay.addWidget(self.list, 1)
        self._pin_icon = _pin_icon()

        self.rename_action = QAction("Rename", self)
        self.rename_action.setShortcut(QKeySequence(Qt.Key_F2))
        self.delete_action = QAction("Delete", self)
        self.delete_action.setShortcut(QKeySequence.Delete)
        self.pin_action = QAction("Pin / unpin", self)
        self.pin_action.setShortcut(QKeySequence("Ctrl+D"))  # as a browser's bookmark
        self.export_action = QAction("Export as Markdown…", self)
        for a in (self.rename_action, self.delete_action, self.pin_action, self.export_action):
            a.setShortcutContext(Qt.WidgetWithChildrenShortcut)
            self.list.addAction(a)

        self.new_button.clicked.connect(self.new_requested)
        self.search.textChanged.connect(self.search_changed)
        self.search.to_list.connect(self._to_list)
        self.list.currentItemChanged.connect(self._on_current)
        self.list.itemChanged.connect(self._on_edited)
        self.list.customContextMenuRequested.connect(self._menu)
        self.rename_action.triggered.connect(self._rename_current)
        self.delete_action.triggered.connect(self._delete_selected)
        self.pin_action.triggered.connect(self._pin_current)
        self.export_action.triggered.connect(self._export_current)
        self._filling = False

    def set_conversations(self, conversations: list[Conversation], current_id: int | None) -> None:
        self._filling = True
        try:
            self.list.clear()
            for c in conversations:
                item = QListWidgetItem(c.title)
                item.setData(ID_ROLE, c.id)
                item.setData(PINNED_ROLE, c.pinned)
                item.setToolTip(c.title + (" (pinned)" if c.pinned else ""))
                item.setFlags(item.flags() | Qt.ItemIsEditable)
                if c.pinned:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                    item.setIcon(self._pin_icon)
                self.list.addItem(item)
                if c.id == current_id:
                    self.list.setCurrentItem(item)
        finally:
            self._filling = False

    def set_title(self, conversation_id: int, title: str) -> None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(ID_ROLE) == conversation_id and item.text() != title:
                self._filling = True
                try:
                    item.setText(title)
                finally:
                    self._filling = False

    def titles(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def ids(self) -> list[int]:
        return [self.list.item(i).data(ID_ROLE) for i in range(self.list.count())]

    def pinned(self) -> list[int]:
        return [self.list.item(i).data(ID_ROLE) for i in range(self.list.count()) if self.list.item(i).data(PINNED_ROLE)]

    def current_id(self) -> int | None:
        item = self.list.currentItem()
        return item.data(ID_ROLE) if item else None

    def selected_ids(self) -> list[int]:
        """The selected chats in list order (the current one if none is selected)."""
        ids = [self.list.item(i).data(ID_ROLE) for i in range(self.list.count()) if self.list.item(i).isSelected()]
        current = self.current_id()
        return ids or ([current] if current is not None else [])

    def focus_search(self) -> None:
        self.search.setFocus(Qt.ShortcutFocusReason)
        self.search.selectAll()

    def _to_list(self, open_first: bool) -> None:
        if self.list.count() == 0:
            return
        self.list.setFocus(Qt.OtherFocusReason)
        if open_first:
            self.list.setCurrentRow(0)  # emits selected for it
        elif self.list.currentItem() is None:
            self.list.setCurrentRow(0)

    def _on_current(self, item: QListWidgetItem | None, _prev=None) -> None:
        if item is not None and not self._filling:
            self.selected.emit(item.data(ID_ROLE))

    def _on_edited(self, item: QListWidgetItem) -> None:
        if not self._filling:
            self.rename_requested.emit(item.data(ID_ROLE), item.text())

    def _rename_current(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self.list.editItem(item)

    def _delete_selected(self) -> None:
        ids = self.selected_ids()
        if ids:
            self.delete_requested.emit(ids)

    def _pin_current(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self.pin_requested.emit(item.data(ID_ROLE), not item.data(PINNED_ROLE))

    def _export_current(self) -> None:
        cid = self.current_id()
        if cid is not None:
            self.export_requested.emit(cid)

    def _menu(self, pos) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        self.pin_action.setText("Unpin" if item.data(PINNED_ROLE) else "Pin")
        menu = QMenu(self)
        for a in (self.rename_action, self.pin_action, self.export_action, self.delete_action):
            menu.addAction(a)
        menu.exec(self.list.mapToGlobal(pos))

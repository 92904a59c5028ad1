"""Settings → Keys: the web search provider and the API keys, which live only in the OS
keyring (app/core/secrets.py). A stored key is never shown again, only "stored"."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QPushButton, QVBoxLayout, QWidget)

from app.core import secrets
from app.ui.banners import error_label

PROVIDERS = [("duckduckgo", "DuckDuckGo (no key needed)"), ("tavily", "Tavily (needs a key)")]


class KeysDialog(QDialog):
    provider_changed = Signal(str)
    key_saved = Signal(str)      # key name (never the value)
    key_removed = Signal(str)

    def __init__(self, provider: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Settings — Keys")
        self.setMinimumWidth(520)
        st = secrets.status()
        self.status = QLabel(st.message)
        self.status.setWordWrap(True)
        self.error = error_label("keysError")
        self.provider = QComboBox()
        for value, label in PROVIDERS:
            self.provider.addItem(label, value)
        self.provider.setCurrentIndex(max(0, self.provider.findData(provider)))
        self.fields: dict[str, QLineEdit] = {}
        self.save_buttons: dict[str, QPushButton] = {}
        self.remove_buttons: dict[str, QPushButton] = {}
        form = QFormLayout()
        form.addRow("Web search", self.provider)
        for name, label in secrets.KNOWN_KEYS.items():
            edit = QLineEdit()
            edit.setEchoMode(QLineEdit.Password)
            save, remove = QPushButton("Save"), QPushButton("Remove")
            row = QWidget()
            lay = QHBoxLayout(row)
            lay.setContentsMargins(0, 0, 0, 0)
            lay.addWidget(edit, 1)
            lay.addWidget(save)
            lay.addWidget(remove)
            form.addRow(label, row)
            self.fields[name], self.save_buttons[name], self.remove_buttons[name] = edit, save, remove
            save.clicked.connect(lambda _=False, n=name: self.save(n))
            remove.clicked.connect(lambda _=False, n=name: self.remove(n))
            for w in (edit, save, remove):
                w.setEnabled(st.usable)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.status)
        lay.addWidget(self.error)
        lay.addLayout(form)
        lay.addWidget(buttons)
        self.provider.currentIndexChanged.connect(lambda _i: self.provider_changed.emit(self.provider.currentData()))
        self._show_stored()

    def _show_stored(self) -> None:
        for name, edit in self.fields.items():
            stored = secrets.get_key(name) is not None
            edit.setPlaceholderText("stored in the OS keyring (type to replace)" if stored else "not set")
            self.remove_buttons[name].setEnabled(stored)

    def save(self, name: str) -> None:
        edit = self.fields[name]
        try:
            secrets.set_key(name, edit.text())
        except (secrets.KeyringUnavailable, ValueError) as e:
            self.error.setText(str(e))
            self.error.show()
            return
        edit.clear()  # the value leaves the widget as soon as it is stored
        self.error.hide()
        self._show_stored()
        self.key_saved.emit(name)

    def remove(self, name: str) -> None:
        try:
            secrets.delete_key(name)
        except secrets.KeyringUnavailable as e:
            self.error.setText(str(e))
            self.error.show()
            return
        self._show_stored()
        self.key_removed.emit(name)

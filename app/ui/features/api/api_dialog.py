"""Settings → Local API: the on/off switch, the port, the key and the addresses to paste into
the editor. The dialog only shows and asks; ``ApiFeature`` starts and stops the server and
tells the dialog what happened (``show_state``), so a refusal (a port in use) is shown here."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QPushButton, QSpinBox, QVBoxLayout, QWidget)

from app.core.api.service import DEFAULT_PORT
from app.ui.banners import error_label


class ApiDialog(QDialog):
    toggled = Signal(bool, int)   # on/off, the port asked for (0: the default, or a free one)
    key_copied = Signal()

    def __init__(self, enabled: bool, port: int, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Settings — Local API")
        self.setMinimumWidth(540)
        self.enabled = QCheckBox("Serve the model to my editor (loopback only)")
        self.enabled.setObjectName("apiEnabled")
        self.enabled.setChecked(enabled)
        self.port = QSpinBox()
        self.port.setObjectName("apiPort")
        self.port.setRange(0, 65535)
        self.port.setSpecialValueText(f"{DEFAULT_PORT} (or a free one when taken)")
        self.port.setValue(port)
        self.key = QLineEdit()
        self.key.setReadOnly(True)
        self.key.setEchoMode(QLineEdit.Password)
        self.show_key = QPushButton("Show key")
        self.show_key.setCheckable(True)
        self.copy_key = QPushButton("Copy key")
        key_row = QWidget()
        lay = QHBoxLayout(key_row)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.key, 1)
        lay.addWidget(self.show_key)
        lay.addWidget(self.copy_key)
        self.addresses = QLabel()
        self.addresses.setObjectName("apiAddresses")
        self.addresses.setWordWrap(True)
        self.addresses.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.error = error_label("apiError")
        form = QFormLayout()
        form.addRow("Port", self.port)
        form.addRow("Key", key_row)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        outer = QVBoxLayout(self)
        outer.addWidget(self.enabled)
        outer.addLayout(form)
        outer.addWidget(self.addresses)
        outer.addWidget(self.error)
        outer.addWidget(buttons)
        self.enabled.toggled.connect(lambda on: self.toggled.emit(on, self.port.value()))
        self.show_key.toggled.connect(self._show_key)
        self.copy_key.clicked.connect(self._copy_key)

    def show_state(self, url: str | None, key: str, error: str = "") -> None:
        """What the feature did: ``url`` when serving (None: off), the key ("" when none can be
        had), and a message for a refusal."""
        self.enabled.blockSignals(True)
        self.enabled.setChecked(url is not None)
        self.enabled.blockSignals(False)
        self.port.setEnabled(url is None)
        self.key.setText(key)
        for b in (self.show_key, self.copy_key):
            b.setEnabled(bool(key))
        if url is None:
            self.addresses.setText("Off: nothing listens. Turn it on to serve the loaded model to programs on "
                                   "this computer (never to the network).")
        else:
            self.addresses.setText(
                f"Listening on {url} (this computer only).\n"
                f"OpenAI-compatible base URL: {url}/v1  (chat: {url}/v1/chat/completions)\n"
                f"Completion / fill-in-the-middle endpoint (llama.vscode): {url}\n"
                "Send the key as: Authorization: Bearer <key>")
        self.error.setText(error)
        self.error.setVisible(bool(error))

    def _show_key(self, on: bool) -> None:
        self.key.setEchoMode(QLineEdit.Normal if on else QLineEdit.Password)
        self.show_key.setText("Hide key" if on else "Show key")

    def _copy_key(self) -> None:
        QGuiApplication.clipboard().setText(self.key.text())
        self.key_copied.emit()

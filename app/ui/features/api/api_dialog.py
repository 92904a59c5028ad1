"""Settings → Local API: the on/off switch, the port, the key and the addresses to paste into
the editor, and the optional completion model. The dialog only shows and asks; ``ApiFeature``
starts and stops the server (on a worker) and tells the dialog what happened (``show_state``),
so a refusal (a port in use) or why the completion model is not loaded is shown here."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QPushButton, QSpinBox, QVBoxLayout, QWidget)

from app.core.api.service import DEFAULT_PORT
from app.ui.banners import error_label


class ApiDialog(QDialog):
    toggled = Signal(bool, int)   # on/off, the port asked for (0: the default, or a free one)
    key_copied = Signal()
    completion_chosen = Signal(str)  # a models-folder id; "" for none

    def __init__(self, enabled: bool, port: int, completion_models: list[tuple[str, str]] = (),
                 completion_model: str = "", parent=None):
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
        self.completion = QComboBox()
        self.completion.setObjectName("apiCompletionModel")
        self.completion.addItem("None: the chat model completes code", "")
        for name, model_id in completion_models:
            self.completion.addItem(name, model_id)
        at = self.completion.findData(completion_model)
        if at < 0 and completion_model:  # chosen once, since deleted: shown, so it can be changed
            self.completion.addItem(f"{completion_model} (not installed)", completion_model)
            at = self.completion.count() - 1
        self.completion.setCurrentIndex(max(at, 0))
        self.completion.setToolTip("A second model for tab completion (fill-in-the-middle) only, loaded beside "
                                   "the chat model while the API is on, if both fit in memory")
        self.completion_note = QLabel()
        self.completion_note.setObjectName("apiCompletionNote")
        self.completion_note.setWordWrap(True)
        self._hint = "" if completion_models else ("For better tab completion, download “Qwen2.5-Coder-1.5B base "
                                                   "(for completion)” in Models…")
        self.completion_note.setText(self._hint)
        self.error = error_label("apiError")
        form = QFormLayout()
        form.addRow("Port", self.port)
        form.addRow("Key", key_row)
        form.addRow("Completion model", self.completion)
        form.addRow("", self.completion_note)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        outer = QVBoxLayout(self)
        outer.addWidget(self.enabled)
        outer.addLayout(form)
        outer.addWidget(self.addresses)
        outer.addWidget(self.error)
        outer.addWidget(buttons)
        self.enabled.toggled.connect(lambda on: self.toggled.emit(on, self.port.value()))
        self.completion.activated.connect(lambda i: self.completion_chosen.emit(self.completion.itemData(i)))
        self.show_key.toggled.connect(self._show_key)
        self.copy_key.clicked.connect(self._copy_key)

    def show_state(self, url: str | None, key: str, error: str = "", note: str = "", busy: bool = False) -> None:
        """What the feature did: ``url`` when serving (None: off), the key ("" when none can be
        had), a message for a refusal, what to know about the completion model, and whether a
        start or stop is under way (the switches wait for it)."""
        self.enabled.blockSignals(True)
        self.enabled.setChecked(url is not None)
        self.enabled.blockSignals(False)
        self.enabled.setEnabled(not busy)
        self.completion.setEnabled(not busy)
        self.port.setEnabled(url is None and not busy)
        self.completion_note.setText(note or self._hint)
        self.key.setText(key)
        for b in (self.show_key, self.copy_key):
            b.setEnabled(bool(key))
        if busy:
            self.addresses.setText("Starting or stopping… (a completion model takes a few seconds to load)")
        elif url is None:
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

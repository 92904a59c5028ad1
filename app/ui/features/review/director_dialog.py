"""Settings → Review director…: the optional remote director that writes the review's
recommendation (any OpenAI-compatible endpoint). Its key lives in Settings → Keys."""

from __future__ import annotations

from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QLabel, QLineEdit,
                               QVBoxLayout)

from app.core.review.director import Director, DirectorError
from app.core.settings import DirectorSettings
from app.ui.banners import error_label


class DirectorDialog(QDialog):
    """Settings → Review director…: switch it on, where it is, which model. The key is kept in
    Settings → Keys (the OS keyring), never here."""

    def __init__(self, settings: DirectorSettings, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Settings — Review director")
        self.setMinimumWidth(520)
        self.enabled = QCheckBox("Let a remote director write the review's recommendation")
        self.enabled.setChecked(settings.enabled)
        self.base_url = QLineEdit(settings.base_url)
        self.base_url.setPlaceholderText("https://api.openai.com/v1  or  http://127.0.0.1:8080/v1")
        self.model = QLineEdit(settings.model)
        self.model.setPlaceholderText("gpt-4o-mini")
        self.timeout = QDoubleSpinBox()
        self.timeout.setRange(5, 600)
        self.timeout.setSuffix(" s")
        self.timeout.setValue(settings.timeout_s if settings.timeout_s > 0 else 60)
        about = QLabel("Any OpenAI-compatible endpoint. When it is on, the question or diff and the five reviewers' "
                       "notes are sent there; the reviewers themselves always run on the local model. It is refused "
                       "while Offline mode is on (the local model then writes the recommendation). Its API key "
                       "goes in Settings → Keys (“Review director API key”); a local server may need none.")
        about.setWordWrap(True)
        self.error = error_label("directorError")
        form = QFormLayout()
        form.addRow(self.enabled)
        form.addRow("Base URL", self.base_url)
        form.addRow("Model", self.model)
        form.addRow("Timeout", self.timeout)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(about)
        lay.addWidget(self.error)
        lay.addLayout(form)
        lay.addWidget(buttons)

    def value(self) -> DirectorSettings:
        return DirectorSettings(self.enabled.isChecked(), self.base_url.text().strip(), self.model.text().strip(),
                                float(self.timeout.value()))

    def accept(self) -> None:
        v = self.value()
        if v.enabled:
            try:
                Director(v.base_url, v.model).endpoint()
                if not v.model:
                    raise DirectorError("Name the model the endpoint should use (e.g. gpt-4o-mini).")
            except DirectorError as e:
                self.error.setText(str(e))
                self.error.show()
                return
        super().accept()

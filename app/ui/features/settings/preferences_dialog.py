"""Settings → Preferences…: the values of ``core.settings.Preferences`` as widgets.

The boxes only hold numbers the file may hold (a negative temperature cannot be typed); what
depends on the model (its trained context, the memory a context size needs) is shown as it is
typed and checked again on OK by ``Preferences.problems``, so a refused value stays in the box
with the reason beside it. OK hands the values to the feature, which asks before a reload and
closes the dialog once they are saved.
"""

from __future__ import annotations

import os
from typing import Callable

from PySide6.QtCore import Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout,
                               QGroupBox, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QSpinBox, QVBoxLayout)

from app.core.hardware import physical_cores
from app.core.settings import (DEFAULT_SYSTEM_PROMPT, LABELS, RANGES, SEARCH_PROVIDERS, ContextMemory, Preferences,
                               context_problem)
from app.ui.banners import error_label

NOTE_STYLE = "background:#fff4ce; color:#5c4400; padding:6px; border-radius:4px;"
WARN_STYLE = "color:#8a1c1c;"


class NonNegativeSpinBox(QSpinBox):
    """Qt lets "-" stand while typing ("-0" reads as a value); here a minus sign is not typed at all."""

    def validate(self, text: str, pos: int):
        if self.minimum() >= 0 and "-" in text:
            return QValidator.Invalid, text, pos
        return super().validate(text, pos)


class NonNegativeDoubleSpinBox(QDoubleSpinBox):
    """The same for decimals (a typed "-0" would otherwise save a temperature of -0.0)."""

    def validate(self, text: str, pos: int):
        if self.minimum() >= 0 and "-" in text:
            return QValidator.Invalid, text, pos
        return super().validate(text, pos)


def _spin(name: str, step: int = 1, suffix: str = "") -> QSpinBox:
    box = NonNegativeSpinBox()
    box.setObjectName(name)
    lo, hi = RANGES[name]
    box.setRange(int(lo), int(hi))
    box.setSingleStep(step)
    box.setSuffix(suffix)
    return box


def _dspin(name: str, step: float, decimals: int = 2, suffix: str = "") -> QDoubleSpinBox:
    box = NonNegativeDoubleSpinBox()
    box.setObjectName(name)
    box.setDecimals(decimals)
    lo, hi = RANGES[name]
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setSuffix(suffix)
    return box


class PreferencesDialog(QDialog):
    submitted = Signal(object)  # Preferences that passed the checks

    def __init__(self, prefs: Preferences, trained_ctx: int | None,
                 memory_for: Callable[[int], ContextMemory | None], model_note: str = "",
                 start_notes: list[str] | None = None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.setObjectName("preferencesDialog")
        self.setMinimumWidth(560)
        self.trained_ctx, self.memory_for = trained_ctx, memory_for
        self.memory: ContextMemory | None = None
        self.temperature = _dspin("temperature", 0.05)
        self.top_p = _dspin("top_p", 0.05)
        self.top_k = _spin("top_k")
        self.top_k.setToolTip("0 leaves every token in (no top-k cut)")
        self.max_tokens = _spin("max_tokens", 64, " tokens")
        self.repeat_penalty = _dspin("repeat_penalty", 0.05)
        self.n_ctx = _spin("n_ctx", 1024, " tokens")
        self.n_threads = _spin("n_threads")
        self.n_threads.setMaximum(os.cpu_count() or 1)
        self.n_threads.setSpecialValueText(f"Automatic ({physical_cores()}, one per physical core)")
        self.trained_line = QLabel(f"This model was trained on up to {trained_ctx:,} tokens." if trained_ctx
                                   else model_note or "This model does not say how long a context it was trained on.")
        self.trained_line.setWordWrap(True)
        self.memory_line = QLabel()
        self.memory_line.setObjectName("memoryLine")
        self.memory_line.setWordWrap(True)
        self.system_prompt = QPlainTextEdit()
        self.system_prompt.setObjectName("system_prompt")
        self.system_prompt.setTabChangesFocus(True)
        self.system_prompt.setMinimumHeight(90)
        self.reset_prompt = QPushButton("Reset to default")
        self.reset_prompt.setAutoDefault(False)
        self.reset_prompt.clicked.connect(lambda: self.system_prompt.setPlainText(DEFAULT_SYSTEM_PROMPT))
        self.first_answer_s = _dspin("first_answer_s", 1.0, 1, " s")
        self.first_answer_s.setToolTip("The first answer should start within this time: it decides how much "
                                       "project code a question carries, at this model's measured reading speed.")
        self.offline = QCheckBox("Block the network (and start that way next time)")
        self.search_provider = QComboBox()
        for value, label in SEARCH_PROVIDERS.items():
            self.search_provider.addItem(label, value)
        self.fix_rounds = _spin("fix_rounds")
        self.fix_rounds.setSuffix(" rounds")
        self.error = error_label("preferencesError")
        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        self.buttons.button(QDialogButtonBox.Ok).setDefault(True)  # Return anywhere but the prompt box
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        self._lay_out(start_notes or [])
        self.set_values(prefs)
        self.n_ctx.valueChanged.connect(self.context_changed)
        self.context_changed(self.n_ctx.value())

    def _lay_out(self, start_notes: list[str]) -> None:
        answers = QGroupBox("Answers (used from the next answer)")
        form = QFormLayout(answers)
        for name in ("temperature", "top_p", "top_k", "max_tokens", "repeat_penalty"):
            form.addRow(LABELS[name], getattr(self, name))
        model = QGroupBox("Model (a change loads it again, after asking)")
        form = QFormLayout(model)
        form.addRow(LABELS["n_ctx"], self.n_ctx)
        form.addRow(LABELS["n_threads"], self.n_threads)
        form.addRow(self.trained_line)
        form.addRow(self.memory_line)
        prompt = QGroupBox(LABELS["system_prompt"])
        col = QVBoxLayout(prompt)
        col.addWidget(self.system_prompt)
        row = QHBoxLayout()
        row.addStretch()
        row.addWidget(self.reset_prompt)
        col.addLayout(row)
        other = QGroupBox("Project, network and tools")
        form = QFormLayout(other)
        form.addRow(LABELS["first_answer_s"], self.first_answer_s)
        form.addRow(LABELS["offline"], self.offline)
        form.addRow(LABELS["search_provider"], self.search_provider)
        form.addRow("/fix rounds at most", self.fix_rounds)
        lay = QVBoxLayout(self)
        if start_notes:
            notes = QLabel("Corrected when the app started (OK writes the corrected file):\n" + "\n".join(start_notes))
            notes.setObjectName("startNotes")
            notes.setWordWrap(True)
            notes.setStyleSheet(NOTE_STYLE)
            lay.addWidget(notes)
        for widget in (answers, model, prompt, other, self.error, self.buttons):
            lay.addWidget(widget)

    def set_values(self, p: Preferences) -> None:
        for name in ("temperature", "top_p", "top_k", "max_tokens", "repeat_penalty", "n_ctx", "n_threads",
                     "first_answer_s", "fix_rounds"):
            getattr(self, name).setValue(getattr(p, name))
        self.system_prompt.setPlainText(p.system_prompt)
        self.offline.setChecked(p.offline)
        if self.search_provider.findData(p.search_provider) < 0:  # a name the list lacks stays as it is
            self.search_provider.addItem(p.search_provider, p.search_provider)
        self.search_provider.setCurrentIndex(self.search_provider.findData(p.search_provider))

    def values(self) -> Preferences:
        return Preferences(
            temperature=self.temperature.value(), top_p=self.top_p.value(), top_k=self.top_k.value(),
            max_tokens=self.max_tokens.value(), repeat_penalty=self.repeat_penalty.value(), n_ctx=self.n_ctx.value(),
            n_threads=self.n_threads.value(), system_prompt=self.system_prompt.toPlainText(),
            first_answer_s=self.first_answer_s.value(), offline=self.offline.isChecked(),
            search_provider=self.search_provider.currentData(), fix_rounds=self.fix_rounds.value())

    def context_changed(self, n_ctx: int) -> None:
        """The memory line for this context size, and the trained-length reason if it is too long."""
        self.memory = self.memory_for(n_ctx)
        self.memory_line.setText(self.memory.words if self.memory else "")
        self.memory_line.setStyleSheet("" if self.memory is None or self.memory.fits else WARN_STYLE)
        self.show_error(context_problem(n_ctx, self.trained_ctx))

    def show_error(self, text: str | None) -> None:
        self.error.setText(text or "")
        self.error.setVisible(bool(text))

    def submit(self) -> None:
        """OK: refused with every reason shown, or handed to the feature (which closes the dialog)."""
        prefs = self.values()
        problems = prefs.problems(self.trained_ctx, self.memory)
        self.show_error(" ".join(problems))
        if not problems:
            self.submitted.emit(prefs)

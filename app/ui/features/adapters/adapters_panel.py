"""The Adapters panel: import a LoRA zip, see what it is and how it measures up (the verdict),
turn it on or off and set its strength. It only shows and asks; MainWindow runs the import
and evaluation jobs and applies the adapters to the engine (app.core.adapters does the work)."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QHeaderView, QLabel, QProgressBar, QPushButton, QSlider, QTreeWidget,
                               QTreeWidgetItem, QVBoxLayout, QWidget)

from app.core.adapters.importer import ImportProgress
from app.core.adapters.store import MAX_SCALE, StoredAdapter
from app.core.adapters.verdict import Verdict
from app.ui.banners import error_label

_ID = Qt.UserRole
_STEPS = 100  # slider steps per 1.0 of scale


class AdaptersPanel(QWidget):
    import_requested = Signal(str)          # path of the chosen zip
    cancel_requested = Signal()
    enabled_changed = Signal(str, bool)     # adapter id, on/off
    scale_changed = Signal(str, float)      # adapter id, strength (0-2)
    delete_requested = Signal(str)
    evaluate_requested = Signal(str, str)   # adapter id, JSONL of chat examples to measure it on

    def __init__(self, parent=None):
        super().__init__(parent)
        self.import_button = QPushButton("Import adapter…")
        self.import_button.setToolTip("Import the <name>-lora.zip made by training/colab_training.ipynb")
        self.progress = QProgressBar()
        self.stage = QLabel("")
        self.cancel_button = QPushButton("Cancel")
        self.error = error_label("adaptersError")
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.tree = QTreeWidget()
        self.tree.setObjectName("adapterList")
        self.tree.setHeaderLabels(["Adapter", "Strength", "Verdict"])
        self.tree.setRootIsDecorated(True)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeToContents)
        self.setMinimumWidth(360)
        self.details = QLabel("Select an adapter to see what it was trained on.")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.scale = QSlider(Qt.Horizontal)
        self.scale.setRange(0, int(MAX_SCALE * _STEPS))
        self.scale.setToolTip("How strongly the adapter changes the model: 0 = not at all, 1 = as trained")
        self.scale_label = QLabel("")
        self.delete_button = QPushButton("Delete")
        self.evaluate_button = QPushButton("Evaluate…")
        self.evaluate_button.setToolTip("Measure the adapter against the base model on validation examples "
                                        "(its own, or a JSONL file you choose, such as a project training set)")
        self._adapters: dict[str, StoredAdapter] = {}
        self._model_key: str | None = None
        self._busy = False
        self._filling = False

        top = QHBoxLayout()
        top.addWidget(self.import_button)
        top.addStretch(1)
        bar = QHBoxLayout()
        bar.addWidget(self.stage)
        bar.addWidget(self.progress, 1)
        bar.addWidget(self.cancel_button)
        strength = QHBoxLayout()
        strength.addWidget(QLabel("Strength"))
        strength.addWidget(self.scale, 1)
        strength.addWidget(self.scale_label)
        strength.addWidget(self.evaluate_button)
        strength.addWidget(self.delete_button)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addLayout(bar)
        lay.addWidget(self.error)
        lay.addWidget(self.note)
        lay.addWidget(self.tree, 1)
        lay.addWidget(self.details)
        lay.addLayout(strength)
        self.set_busy(False)
        self._select(None)

        self.import_button.clicked.connect(self.choose_zip)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.tree.itemChanged.connect(self._item_changed)
        self.tree.currentItemChanged.connect(lambda cur, _prev: self._select(cur.data(0, _ID) if cur else None))
        self.scale.valueChanged.connect(self._scale_moved)
        self.scale.sliderReleased.connect(self._scale_released)
        self.delete_button.clicked.connect(lambda: self.current_id() and self.delete_requested.emit(self.current_id()))
        self.evaluate_button.clicked.connect(self.choose_validation)

    # ---- asking ------------------------------------------------------------------------------
    def choose_zip(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import adapter", "", "LoRA adapter zip (*.zip)")
        if path:
            self.import_requested.emit(path)

    def choose_validation(self) -> None:
        """Ask which examples to evaluate the selected adapter on (its own split is offered first)."""
        a = self._adapters.get(self.current_id() or "")
        if a is None:
            return
        start = str(a.validation_file) if a.validation_file else ""
        path, _ = QFileDialog.getOpenFileName(self, f"Evaluate {a.name} on…", start,
                                              "Chat examples, JSON Lines (*.jsonl)")
        if path:
            self.evaluate_requested.emit(a.id, path)

    def current_id(self) -> str | None:
        item = self.tree.currentItem()
        return item.data(0, _ID) if item is not None else None

    # ---- showing -----------------------------------------------------------------------------
    def set_busy(self, busy: bool, stage: str = "Checking") -> None:
        for w in (self.progress, self.stage, self.cancel_button):
            w.setVisible(busy)
        self.import_button.setEnabled(not busy)
        self._busy = busy
        self._sync_evaluate()
        if busy:
            self.progress.setRange(0, 0)
            self.stage.setText(f"{stage}…")

    def show_progress(self, p: ImportProgress) -> None:
        self.stage.setText(f"{p.stage}…")
        if p.total:
            self.progress.setRange(0, p.total)
            self.progress.setValue(p.done)
        else:
            self.progress.setRange(0, 0)

    def show_error(self, text: str | None) -> None:
        self.error.setText(text or "")
        self.error.setVisible(bool(text))

    def set_adapters(self, adapters: list[StoredAdapter], model_key: str | None, model_name: str) -> None:
        """Group the adapters under the model they fit; only the loaded model's can be switched on."""
        self._filling = True
        keep = self.current_id()
        self.tree.clear()
        self._adapters = {a.id: a for a in adapters}
        self._model_key = model_key
        groups: dict[str, QTreeWidgetItem] = {}
        for a in adapters:
            loaded = a.model_key == model_key
            group = groups.get(a.model_key)
            if group is None:
                title = f"For {model_name} (loaded)" if loaded else f"For another model: {a.model_label}"
                group = groups[a.model_key] = QTreeWidgetItem(self.tree, [title])
                group.setFlags(Qt.ItemIsEnabled)
                group.setFirstColumnSpanned(True)
                group.setExpanded(True)
            verdict = Verdict.from_dict(a.verdict)
            item = QTreeWidgetItem(group, [a.name, f"{a.scale:.2f}×", verdict.short if verdict else "not evaluated"])
            item.setData(0, _ID, a.id)
            item.setToolTip(0, a.summary)
            if verdict is not None:
                item.setToolTip(2, verdict.text)
            else:
                item.setToolTip(2, "Not evaluated yet: " + ("select it and press Evaluate…." if loaded
                                                             else "load the model it is for, then Evaluate…."))
            flags = Qt.ItemIsSelectable | Qt.ItemIsEnabled
            if loaded:
                flags |= Qt.ItemIsUserCheckable
            item.setFlags(flags)
            if loaded:
                item.setCheckState(0, Qt.Checked if a.enabled else Qt.Unchecked)
            if a.id == keep:
                self.tree.setCurrentItem(item)
        if model_key is not None and model_key not in groups:
            hint = QTreeWidgetItem(self.tree, [f"No adapters for {model_name} yet"])
            hint.setFlags(Qt.ItemIsEnabled)
            hint.setFirstColumnSpanned(True)
        self.note.setText("" if adapters else "Train one with training/colab_training.ipynb, then Import adapter….")
        self._filling = False
        self._select(keep if keep in self._adapters else None)

    def item(self, adapter_id: str) -> QTreeWidgetItem | None:
        for i in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(i)
            for j in range(group.childCount()):
                if group.child(j).data(0, _ID) == adapter_id:
                    return group.child(j)
        return None

    def _sync_evaluate(self) -> None:
        a = self._adapters.get(self.current_id() or "")
        self.evaluate_button.setEnabled(a is not None and a.model_key == self._model_key
                                        and not self._busy)

    def _select(self, adapter_id: str | None) -> None:
        a = self._adapters.get(adapter_id) if adapter_id else None
        self.scale.setEnabled(a is not None)
        self.delete_button.setEnabled(a is not None)
        self._sync_evaluate()
        if a is None:
            self.details.setText("Select an adapter to see what it was trained on.")
            self.scale_label.setText("")
            return
        loss = ""
        if a.eval_loss_before is not None and a.eval_loss_after is not None:
            loss = f"<br>Validation loss {a.eval_loss_before:.3f} → {a.eval_loss_after:.3f}"
        verdict = Verdict.from_dict(a.verdict)
        if verdict is not None:
            loss += f"<br><b>{html.escape(verdict.text)}</b><br><small>{html.escape(verdict.details)}</small>"
        else:
            loss += "<br>Not evaluated on this computer yet" + (
                " (its validation split is waiting: Evaluate…)." if a.validation_file else ": Evaluate….")
        self.details.setText(
            f"<b>{html.escape(a.name)}</b> · base {html.escape(a.base_model)}<br>"
            f"Rank {a.rank}, alpha {a.alpha:g} · {html.escape(', '.join(a.target_modules))}<br>"
            f"Trained {html.escape(a.created[:19].replace('T', ' '))} · for {html.escape(a.model_label)} · "
            f"{a.size / 1e6:.1f} MB{loss}")
        self._filling = True
        self.scale.setValue(round(a.scale * _STEPS))
        self._filling = False
        self.scale_label.setText(f"{a.scale:.2f}×")

    # ---- reacting ----------------------------------------------------------------------------
    def _item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        adapter_id = item.data(0, _ID)
        if self._filling or column != 0 or adapter_id is None:
            return
        on = item.checkState(0) == Qt.Checked
        if adapter_id in self._adapters and self._adapters[adapter_id].enabled != on:
            self._adapters[adapter_id].enabled = on
            self.enabled_changed.emit(adapter_id, on)

    def _scale_moved(self, value: int) -> None:
        self.scale_label.setText(f"{value / _STEPS:.2f}×")
        if not self._filling and not self.scale.isSliderDown():
            self._scale_released()  # keyboard or click: apply at once; dragging applies on release

    def _scale_released(self) -> None:
        adapter_id = self.current_id()
        if adapter_id is None or adapter_id not in self._adapters:
            return
        value = self.scale.value() / _STEPS
        if abs(self._adapters[adapter_id].scale - value) > 1e-9:
            self._adapters[adapter_id].scale = value
            item = self.item(adapter_id)
            if item is not None:
                item.setText(1, f"{value:.2f}×")
            self.scale_changed.emit(adapter_id, value)

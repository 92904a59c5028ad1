"""The Models window: this computer, the catalog with fit and a recommendation, downloads with
progress and cancel, Import GGUF…, switching and deleting models.

All decisions (fit, recommendation, verification, registration) are app.core's; this window
shows them and runs the long parts through ``Job``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QFileDialog, QHBoxLayout, QHeaderView,
                               QLabel, QMessageBox, QProgressBar, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout)

from app.core.errors import UserError
from app.core.hardware import Hardware, probe
from app.core.models import download as dl
from app.core.models.catalog import CATALOG, CatalogEntry
from app.core.models.fit import (Recommendation, assess, assess_pair, file_memory_needed, gb, memory_needed,
                                 recommend)
from app.core.llama_backend import loaded_variant
from app.core.models.pick import estimate_entry, pick
from app.core.models.speed import SpeedBook
from app.core.models.speed import probe as probe_speed
from app.core.models.importer import ModelSummary, import_gguf, inspect_gguf, install_from_catalog
from app.core.models.registry import InstalledModel, ModelRegistry
from app.core.models.embedded import starter_model
from app.ui.errors import describe_error
from app.ui.workers import Job

RECOMMENDED = "★ Recommended for this computer"


@dataclass
class Row:
    name: str
    entry: CatalogEntry | None
    installed: InstalledModel | None
    path: Path | None


class ModelsDialog(QDialog):
    model_chosen = Signal(str)  # path of the model to use ("" = starter)

    def __init__(self, registry: ModelRegistry, active_path: str, n_ctx: int,
                 hardware: Callable[[], Hardware] | None = None, parent=None, speeds: SpeedBook | None = None,
                 variant: Callable[[], str | None] | None = None):
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.resize(900, 460)
        self.registry = registry
        self._needed: dict = {}  # (imported model file, n_ctx) -> memory it needs (its header, read once)
        self.active_path = active_path
        self.n_ctx = n_ctx
        self._probe = hardware or (lambda: probe(registry.dir))
        self.variant = variant or loaded_variant  # llama.cpp's CPU code here: it sets reading speeds
        self.job: Job | None = None
        self.speed_job: Job | None = None  # the few-second measurement the speed column starts from
        self.speeds = speeds
        self.rows: list[Row] = []

        self.machine = QLabel()
        self.machine.setWordWrap(True)
        self.warning = QLabel()
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("color:#8a5a00;")
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Model", "Size", "Fits this computer?", "Status", "Speed here"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.Stretch)
        self.progress = QProgressBar()
        self.progress.hide()
        self.progress_note = QLabel()
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.error.setStyleSheet("color:#8a1c1c;")
        self.disk = QLabel()

        self.download_button = QPushButton("Download")
        self.cancel_button = QPushButton("Cancel download")
        self.use_button = QPushButton("Use this model")
        self.delete_button = QPushButton("Delete")
        self.import_button = QPushButton("Import GGUF…")
        buttons = QHBoxLayout()
        for b in (self.download_button, self.cancel_button, self.use_button, self.delete_button):
            buttons.addWidget(b)
        buttons.addStretch()
        buttons.addWidget(self.import_button)

        lay = QVBoxLayout(self)
        lay.addWidget(self.machine)
        lay.addWidget(self.warning)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.progress)
        lay.addWidget(self.progress_note)
        lay.addWidget(self.error)
        lay.addLayout(buttons)
        lay.addWidget(self.disk)

        self.table.itemSelectionChanged.connect(self._sync_buttons)
        self.download_button.clicked.connect(self.download_selected)
        self.cancel_button.clicked.connect(self.cancel_download)
        self.use_button.clicked.connect(self.use_selected)
        self.delete_button.clicked.connect(lambda: self.delete_selected())
        self.import_button.clicked.connect(self.import_clicked)
        self.refresh()

    # ---- content ----------------------------------------------------------------------------
    def refresh(self) -> None:
        hw = self._probe()
        self.hardware = hw
        self.machine.setText(
            f"This computer: {gb(hw.total_ram)} RAM ({gb(hw.available_ram)} available now) · "
            f"{hw.physical_cores} physical cores · {gb(hw.free_disk)} free in {self.registry.dir}")
        installed = self.registry.list()
        by_catalog = {m.catalog_id: m for m in installed if m.catalog_id}
        rec = recommend(hw, self.n_ctx, frozenset(by_catalog))
        try:
            starter_path = starter_model().path
        except FileNotFoundError:
            starter_path = None
        estimates = self._estimates(starter_path)
        if estimates:
            fast = pick([(e, assess(e, hw, self.n_ctx, installed=e.id in by_catalog).fits, estimates[e.id])
                         for e in CATALOG if not e.embedded and e.for_chat])
            if fast is not None:
                rec = Recommendation(fast.entry, fast.reason)
        self.recommendation = rec
        self.warning.setText(rec.warning or "")
        self.warning.setVisible(bool(rec.warning))

        self.rows = []
        for e in CATALOG:
            if e.embedded:
                self.rows.append(Row(e.name, e, None, starter_path))
            else:
                m = by_catalog.get(e.id)
                self.rows.append(Row(e.name, e, m, m.file if m else None))
        for m in installed:
            if not m.catalog_id:
                self.rows.append(Row(m.name, None, m, m.file))

        selected = self.table.currentRow()
        self.table.setRowCount(len(self.rows))
        for i, r in enumerate(self.rows):
            name = r.name + (f"  —  {RECOMMENDED}" if r.entry is not None and r.entry == rec.entry else "")
            size = r.entry.size_bytes if r.entry else (r.installed.size if r.installed else 0)
            if r.entry is not None and not r.entry.for_chat:
                fit = self._fit_beside_active(r.entry, hw)
            elif r.entry is not None:
                fit = assess(r.entry, hw, self.n_ctx, installed=r.installed is not None).reason
            else:
                fit = f"{r.installed.architecture}, {r.installed.quantization} (imported)"
            self._set(i, 0, name, tooltip=r.entry.blurb if r.entry else str(r.path))
            self._set(i, 1, f"{size / 1e9:.2f} GB")
            self._set(i, 2, fit)
            self._set(i, 3, self._status(r))
            est = estimates.get(r.entry.id) if r.entry is not None else None
            self._set(i, 4, est.text() if est else ("measuring…" if self.speed_job else "not measured"))
        if 0 <= selected < len(self.rows):
            self.table.selectRow(selected)
        self.disk.setText(f"Models take {gb(self.registry.disk_usage())} of disk in {self.registry.dir}")
        self._sync_buttons()

    def _estimates(self, path: Path | None) -> dict:
        """Each catalog model's speed here, scaled from the starter's (``path``) measured speed;
        when it has not been measured yet, a few-second measurement starts and the table fills in."""
        starter = next(e for e in CATALOG if e.embedded)
        if path is None or self.speeds is None:
            return {}
        anchor = self.speeds.speed(path)
        if not anchor.measured or anchor.gen_tps <= 0:
            if self.speed_job is None:
                speeds = self.speeds
                self.speed_job = (Job(lambda _ctx: speeds.record(path, *probe_speed(path)), name="model-speed", parent=self)
                                  .on_success(lambda _r: self.refresh())
                                  .on_failure(lambda e: self.progress_note.setText(f"Speed not measured: {describe_error(e)}"))
                                  .start())
            return {}
        variant = self.variant()  # the probe ran on this process's llama.cpp, with this variant
        return {e.id: estimate_entry(e, anchor, starter, variant=variant) for e in CATALOG}

    def _set(self, row: int, col: int, text: str, tooltip: str = "") -> None:
        item = QTableWidgetItem(text)
        if tooltip:
            item.setToolTip(tooltip)
        self.table.setItem(row, col, item)

    def _is_active(self, r: Row) -> bool:
        if r.entry is not None and r.entry.embedded:
            return not self.active_path
        return r.path is not None and bool(self.active_path) and \
            Path(self.active_path).resolve() == r.path.resolve()

    def _fit_beside_active(self, entry: CatalogEntry, hw) -> str:
        """A completion model runs beside the chat model (local API): the two-model rule. A
        catalog model's need comes from the catalog; only an imported file's header is read, once."""
        active = next((r for r in self.rows if self._is_active(r) and r.path is not None), None)
        if active is None:
            return "for the local API"
        if active.entry is not None:
            first = memory_needed(active.entry, self.n_ctx)
        else:
            key = (str(active.path), self.n_ctx)
            if key not in self._needed:
                try:
                    self._needed[key] = file_memory_needed(active.path, self.n_ctx)
                except (OSError, UserError):
                    self._needed[key] = None
            first = self._needed[key]
            if first is None:
                return "for the local API; the active model cannot be read to check the fit"
        return assess_pair(active.path.stem, first, entry.name.split(" (")[0], memory_needed(entry, self.n_ctx),
                           hw).reason

    def _status(self, r: Row) -> str:
        if self._is_active(r):
            return "Active"
        if r.path is not None and r.entry is not None and not r.entry.for_chat:
            return "Installed: choose it in Settings → Local API…"
        if r.path is not None:
            return "Installed"
        part = dl.partial_size(self.registry.dir / r.entry.filename) if r.entry else 0
        if part:
            return f"Paused at {part / 1e6:,.0f} MB (Download resumes)"
        return "Not downloaded"

    def row_names(self) -> list[str]:
        return [self.table.item(i, 0).text() for i in range(self.table.rowCount())]

    def selected_row(self) -> Row | None:
        i = self.table.currentRow()
        return self.rows[i] if 0 <= i < len(self.rows) else None

    def select(self, name_prefix: str) -> None:
        for i, r in enumerate(self.rows):
            if r.name.startswith(name_prefix):
                self.table.selectRow(i)
                return

    def select_recommended(self) -> None:
        self.select(self.recommendation.entry.name)

    def _sync_buttons(self) -> None:
        r = self.selected_row()
        busy = self.job is not None and self.job.is_running()
        self.download_button.setEnabled(not busy and r is not None and r.path is None and r.entry is not None)
        self.cancel_button.setEnabled(busy)
        self.use_button.setEnabled(not busy and r is not None and r.path is not None and not self._is_active(r)
                                   and (r.entry is None or r.entry.for_chat))
        self.delete_button.setEnabled(not busy and r is not None and r.installed is not None
                                      and not self._is_active(r))
        self.import_button.setEnabled(not busy)

    # ---- actions ----------------------------------------------------------------------------
    def _run(self, fn, what: str) -> None:
        self.error.clear()
        self.progress.setRange(0, 0)
        self.progress.show()
        self.progress_note.setText(what)
        self.job = (Job(fn, name="models", parent=self)
                    .on_progress(self._on_progress)
                    .on_success(self._on_done)
                    .on_failure(self._on_failed)
                    .start())
        self.job.finished.connect(self._sync_buttons)
        self._sync_buttons()

    def download_selected(self) -> None:
        r = self.selected_row()
        if r is None or r.entry is None or r.path is not None:
            return
        fit = assess(r.entry, self._probe(), self.n_ctx)
        if not fit.fits_disk:  # checked before a byte is fetched
            self.error.setText(f"Cannot download {r.entry.name}: {fit.reason}.")
            return
        entry, registry = r.entry, self.registry
        self._run(lambda ctx: install_from_catalog(entry, registry, progress=ctx.progress,
                                                   cancelled=ctx.cancelled), f"Downloading {entry.name}…")

    def cancel_download(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def _on_progress(self, done: int, total: int, note: str) -> None:
        if total > 0:
            # Percent, so multi-GB sizes fit QProgressBar's int range.
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(done * 1000 / total))
        self.progress_note.setText(note)

    def _on_done(self, model: InstalledModel) -> None:
        self.progress.hide()
        entry = next((e for e in CATALOG if e.id == model.catalog_id), None)
        self.progress_note.setText(f"{model.name} is ready: choose it in Settings → Local API… (completion)."
                                   if entry is not None and not entry.for_chat else
                                   f"{model.name} is ready. Select it and press “Use this model”.")
        self.refresh()

    def _on_failed(self, e: BaseException) -> None:
        self.progress.hide()
        self.progress_note.clear()
        self.error.setText(describe_error(e))
        self.refresh()

    def use_selected(self) -> None:
        r = self.selected_row()
        if r is None or r.path is None:
            return
        path = "" if (r.entry is not None and r.entry.embedded) else str(r.path)
        self.active_path = path
        self.model_chosen.emit(path)
        self.refresh()

    def delete_selected(self, confirm: bool = True) -> None:
        r = self.selected_row()
        if r is None or r.installed is None or self._is_active(r):
            return
        what = "Forget this model (your file stays where it is)?" if r.installed.source == "link" else \
            f"Delete {r.name} ({r.installed.size / 1e9:.1f} GB) from disk?"
        if confirm and QMessageBox.question(self, "Delete model", what) != QMessageBox.Yes:
            return
        self.registry.remove(r.installed.id)
        self.refresh()

    # ---- import -----------------------------------------------------------------------------
    def import_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a GGUF model", str(Path.home()),
                                              "GGUF models (*.gguf);;All files (*)")
        if not path:
            return
        try:
            summary = inspect_gguf(path)
        except ValueError as e:
            self.error.setText(describe_error(e))
            return
        mode = self.confirm_import(summary)
        if mode:
            self.import_file(path, mode)

    def confirm_import(self, summary: ModelSummary) -> str | None:
        """Show what the file is; the user copies it, references it, or cancels."""
        box = QMessageBox(self)
        box.setWindowTitle("Import model")
        box.setText(f"Import {summary.path.name}?")
        box.setInformativeText("\n".join(summary.lines()))
        copy = box.addButton("Copy into the models folder", QMessageBox.AcceptRole)
        link = box.addButton("Use it where it is", QMessageBox.AcceptRole)
        box.addButton(QMessageBox.Cancel)
        box.exec()
        return "copy" if box.clickedButton() is copy else "link" if box.clickedButton() is link else None

    def import_file(self, path: str, mode: str) -> None:
        registry = self.registry
        self._run(lambda ctx: import_gguf(path, registry, mode=mode, progress=ctx.progress,
                                          cancelled=ctx.cancelled), f"Importing {Path(path).name}…")


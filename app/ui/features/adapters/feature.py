"""LoRA adapters: the Adapters panel, import from a zip (checked, converted, probed in a child),
switching them on and off on the live engine, and the verdict (base vs base+adapter on
validation examples), which holds the engine while it runs.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMessageBox

from app.core.adapters.importer import ImportProgress, ModelChoice, candidate_models, import_adapter
from app.core.adapters.manifest import ModelShape
from app.core.adapters.store import StoredAdapter
from app.core.adapters.verdict import Verdict, evaluate_stored
from app.core.engine import EvaluationCancelled
from app.ui.errors import describe_error
from app.ui.features.adapters.adapters_panel import AdaptersPanel
from app.ui.features.base import Feature
from app.ui.workers import Job

EVALUATING = "An adapter is being evaluated: wait for it or cancel it first."


class AdaptersFeature(Feature):
    name = "adapters"
    adapter_imported = Signal(object)  # StoredAdapter
    adapter_failed = Signal(str)       # an import or apply refused, with the message shown
    adapters_applied = Signal(object)  # [(file, scale)] now on the engine
    adapter_evaluated = Signal(object)  # Verdict stored with an adapter

    def __init__(self, host):
        super().__init__(host)
        self.store = self.ctx.adapters
        self.store.clean()  # staging folders a crash may have left
        self.panel = p = AdaptersPanel()
        self.dock = host.add_dock("Adapters", p, Qt.RightDockWidgetArea)
        self.panel_action = self.dock.toggleViewAction()
        self.panel_action.setText("Adapters")
        self.panel_action.setToolTip("Fine-tuned LoRA adapters: import, switch on or off, set strength")
        self.import_action = QAction("Import &adapter…", self)
        self.import_action.triggered.connect(lambda: (self.dock.show(), p.choose_zip()))
        self.import_job: Job | None = None
        self.apply_job: Job | None = None
        self.verdict_job: Job | None = None
        self._reapply = False
        self.confirm_delete = lambda name: QMessageBox.question(
            host.window, "Delete adapter", f"Delete the adapter {name}? Its converted file is removed.") == QMessageBox.Yes
        p.import_requested.connect(self.import_zip)
        p.cancel_requested.connect(lambda: [j.cancel() for j in (self.import_job, self.verdict_job) if j is not None])
        p.evaluate_requested.connect(self.evaluate)
        p.enabled_changed.connect(self.set_enabled)
        p.scale_changed.connect(self.set_scale)
        p.delete_requested.connect(self.delete)
        host.engine.loaded.connect(lambda _lm: self.refresh())
        self.refresh()

    # ---- what is on the engine ---------------------------------------------------------------
    def model_key(self) -> str | None:
        engine = self.host.engine.engine
        return ModelShape.from_gguf(engine.model.info).key if engine is not None else None

    def names_on_engine(self) -> list[str]:
        """The adapters on the engine now, as 'name ×scale'."""
        engine = self.host.engine.engine
        if engine is None or not engine.adapters:
            return []
        by_file = {str(a.file.resolve()): a.name for a in self.store.list()}
        return [f"{by_file.get(str(p), p.parent.name)} ×{s:.2f}" for p, s in engine.adapters]

    def refresh(self) -> None:
        model = self.host.engine.model
        self.panel.set_adapters(self.store.list(), self.model_key(), model.name if model else "the loaded model")

    # ---- import ------------------------------------------------------------------------------
    def import_zip(self, path: str) -> None:
        if self.import_job is not None and self.import_job.is_running():
            return
        store, loaded, models_dir = self.store, self.host.engine.model, self.ctx.paths.models_dir
        self.panel.show_error(None)
        self.panel.set_busy(True)
        self.dock.show()

        def job(ctx):
            # reads model headers and hashes the starter: not on the GUI thread
            models = candidate_models(ModelChoice(loaded.name, Path(loaded.path)) if loaded else None, models_dir)
            return import_adapter(Path(path), store, models, cancelled=ctx.cancelled, progress=ctx.partial)

        self.import_job = self.jobs.start(Job(job, name="import-adapter", parent=self)
                                          .on_partial(self.panel.show_progress)
                                          .on_success(self._imported)
                                          .on_failure(self._failed))

    def _imported(self, a: StoredAdapter) -> None:
        self.panel.set_busy(False)
        self.refresh()
        item = self.panel.item(a.id)
        if item is not None:
            self.panel.tree.setCurrentItem(item)
        fits = a.model_key == self.model_key()
        self.host.notify(f"Adapter {a.name} imported" + (": tick it to use it." if fits else f" for {a.model_label}."),
                         8000)
        self.adapter_imported.emit(a)
        if a.validation_file is not None and fits:  # the zip's validation split: measure it now
            self.evaluate(a.id, str(a.validation_file))

    def _failed(self, e: BaseException) -> None:
        self.panel.set_busy(False)
        message = describe_error(e)
        self.panel.show_error(message)
        self.adapter_failed.emit(message)

    # ---- on, off, strength, delete -------------------------------------------------------------
    def set_enabled(self, adapter_id: str, on: bool) -> None:
        self.store.set_enabled(adapter_id, on)
        self.apply()

    def set_scale(self, adapter_id: str, scale: float) -> None:
        self.store.set_scale(adapter_id, scale)
        self.apply()

    def delete(self, adapter_id: str) -> None:
        a = self.store.get(adapter_id)
        if a is None or not self.confirm_delete(a.name):
            return
        self.store.remove(adapter_id)
        self.refresh()
        self.apply()

    def apply(self) -> None:
        """Put the store's enabled adapters on the live engine (no reload), one job at a time:
        a change made while a job runs is applied when it ends, so the last change wins."""
        engine = self.host.engine.engine
        if engine is None:
            return
        if self.apply_job is not None and self.apply_job.is_running():
            self._reapply = True
            return
        self._reapply = False
        store, key = self.store, self.model_key()

        def job(_ctx):
            wanted = store.active(key)
            engine.set_adapters(wanted)  # waits for a running answer to finish
            return wanted

        job_ = Job(job, name="apply-adapters", parent=self).on_success(self._applied).on_failure(self._failed)
        job_.finished.connect(lambda: self._reapply and self.apply())
        self.apply_job = self.jobs.start(job_)

    def _applied(self, wanted) -> None:
        names = self.names_on_engine()
        self.host.notify("Adapters: " + (", ".join(names) if names else "none (base model)"))
        self.adapters_applied.emit(wanted)

    # ---- the verdict ---------------------------------------------------------------------------
    def evaluate(self, adapter_id: str, path: str) -> None:
        """Measure an adapter against the base model on ``path`` (chat JSONL) with the loaded
        engine, on a worker; the verdict is stored with the adapter and shown in the list."""
        engine, store, panel = self.host.engine.engine, self.store, self.panel
        if engine is None or self.host.engine.refuse_if_busy():
            return

        def job(ctx):
            return evaluate_stored(engine, store, adapter_id, Path(path), cancelled=ctx.cancelled,
                                   progress=lambda done, total: ctx.partial(ImportProgress("Evaluating", done, total)))

        job_ = (Job(job, name="evaluate-adapter", parent=self)
                .on_partial(panel.show_progress).on_success(self._evaluated).on_failure(self._verdict_failed))
        self.verdict_job = self.host.engine.start_exclusive(job_, EVALUATING, self.jobs, kind="evaluate")
        if self.verdict_job is not None:
            panel.show_error(None)
            panel.set_busy(True, "Evaluating")
            self.dock.show()

    def _evaluated(self, verdict: Verdict) -> None:
        self.panel.set_busy(False)
        self.refresh()
        self.host.notify(verdict.text, 10000)
        self.adapter_evaluated.emit(verdict)

    def _verdict_failed(self, e: BaseException) -> None:
        self.panel.set_busy(False)
        if isinstance(e, EvaluationCancelled):
            self.host.notify("Evaluation cancelled; the adapter is kept, not evaluated.")
            return
        self._failed(e)

"""Models: the Models window (fit per model, download, import, use), switching the active
model through the engine service, and the model line of the status bar.

A download runs in the Models window's job; at close the window's shutdown cancels it and
waits for it with everything else (the partial file stays for the next resume).
"""

from __future__ import annotations

from PySide6.QtGui import QAction

from app.core.models.registry import ModelRegistry
from app.ui.features.base import Feature


class ModelsFeature(Feature):
    name = "models"

    def __init__(self, host):
        super().__init__(host)

        self.dialog = None
        self.hardware_probe = None  # tests inject a fake machine here
        self.variant_probe = None   # ... and the CPU variant llama.cpp runs on it
        self.label = host.status_label("model", permanent=False)
        self.action = QAction("&Models…", self)
        self.action.setToolTip("Choose, download or import a model")
        self.action.triggered.connect(self.show)
        engine = host.engine
        engine.loading.connect(lambda: self.label.setText("Loading the model…"))
        engine.loaded.connect(lambda _lm: (self.show_label(), self._sync_dialog()))
        engine.failed.connect(lambda _m: self.label.setText("No model loaded"))
        engine.failed.connect(lambda _m: self._sync_dialog())
        host.features.chat.panel.banner_link.connect(lambda _href: self.show().select_recommended())

    def start(self) -> None:
        self.host.features.adapters.adapters_applied.connect(lambda _w: self.show_label())

    def show(self):
        from app.ui.features.models.models_dialog import ModelsDialog

        if self.dialog is None:
            s = self.ctx.settings
            self.dialog = ModelsDialog(ModelRegistry(self.ctx.paths.models_dir), s.model_path, s.n_ctx,
                                       hardware=self.hardware_probe, parent=self.host.window, speeds=self.ctx.speeds,
                                       variant=self.variant_probe)
            self.dialog.model_chosen.connect(self.host.engine.switch)
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog

    def _sync_dialog(self) -> None:
        """After a fall back to the previous model, the window shows which one is active."""
        if self.dialog is not None and self.dialog.active_path != self.ctx.settings.model_path:
            self.dialog.active_path = self.ctx.settings.model_path
            self.dialog.refresh()

    def show_label(self) -> None:
        service = self.host.engine
        engine, model = service.engine, service.model
        if engine is None or model is None:
            return
        names = self.host.features.adapters.names_on_engine()
        added = f" + {', '.join(names)}" if names else ""
        self.label.setText(f"Model: {model.name}{added} · context {engine.n_ctx} · "
                           f"{engine.model.n_threads} threads · loaded in {engine.model.load_s:.1f} s")

    def shutdown(self) -> None:
        for job in (self.dialog.job, self.dialog.speed_job) if self.dialog is not None else ():
            if job is not None and job.is_running():
                self.jobs.track(job)  # a download (or the speed measurement): cancelled and waited for
        self.jobs.cancel()

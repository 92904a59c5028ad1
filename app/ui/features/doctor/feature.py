"""Help → System check: the action, the dialog, and what the checks need from the window."""

from __future__ import annotations

from PySide6.QtGui import QAction

from app.ui.features.base import Feature
from app.ui.features.doctor.doctor_dialog import DoctorDialog


def window_inputs(host) -> dict:
    """What the checks need from the window's features, read now (GUI thread)."""
    from app.core.doctor import window_firewall

    ctx, f = host.ctx, host.features
    hw = f.models.hardware_probe
    panel = f.project.panel
    shown = panel.error.text() if panel.error.isVisible() else ""
    error = shown if shown.startswith("Indexing failed") else ""  # the rest are notices the index has
    model = host.engine.model
    return dict(
        paths=ctx.paths, settings=ctx.settings,
        probe=(lambda _path: hw()) if hw is not None else None,
        project_index=f.project.index,
        index_error=error or None,
        indexing=f.project.indexing(),
        firewall=window_firewall(ctx.firewall, f.network.status),
        loaded_model=model.path if model is not None and host.engine.engine is not None else None,
        embedder_dir=None,
    )


class DoctorFeature(Feature):
    """Help → System check."""

    name = "doctor"

    def __init__(self, host):
        super().__init__(host)
        self.action = QAction("System &check", self)
        self.action.setToolTip("Check models, llama.cpp, offline mode, the index and storage")
        self.action.triggered.connect(self.show)
        self.dialog: DoctorDialog | None = None

    def show(self) -> DoctorDialog:
        """Open (or raise) the dialog and run the checks."""
        if self.dialog is None:
            self.dialog = DoctorDialog(lambda: window_inputs(self.host), parent=self.host.window)
        self.dialog.show()
        self.dialog.raise_()
        self.dialog.activateWindow()
        self.dialog.run()
        return self.dialog

    def shutdown(self) -> None:
        if self.dialog is not None and self.dialog.is_running():
            self.jobs.track(self.dialog.job)  # cancelled and waited for with the rest
        self.jobs.cancel()

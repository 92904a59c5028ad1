"""File → Training set from this project…: instruction/response pairs from the open
project's own code (and the user's accepted edits), as JSONL for the fine-tuning notebook."""

from __future__ import annotations

from PySide6.QtGui import QAction

from app.core.learn.fim import fim_style_for
from app.core.learn.project_set import default_output
from app.ui.features.base import Feature


class LearnFeature(Feature):
    name = "learn"

    def __init__(self, host):
        super().__init__(host)
        self.action = QAction("&Training set from this project…", self)
        self.action.setToolTip("Instruction/response pairs from the open project's own code, "
                               "as JSONL for the fine-tuning notebook")
        self.action.setEnabled(False)  # until a project is open
        self.action.triggered.connect(self.show)
        self.dialog = None

    def start(self) -> None:
        self.host.features.project.project_opened.connect(lambda _root: self.action.setEnabled(True))

    def show(self):
        """The dialog for the open project (None without one)."""
        from app.core.learn.dataset import Scrubber
        from app.core.learn.training_export import accepted_edits
        from app.ui.features.learn.project_set_dialog import ProjectSetDialog

        root = self.host.features.project.root
        if root is None:
            return None
        engine = self.host.engine.engine
        info = engine.model.info if engine is not None else None
        extra = accepted_edits(self.ctx.storage, str(root), Scrubber())  # short SQLite reads
        self.dialog = ProjectSetDialog(root, default_output(self.ctx.paths.data_dir, root), fim_style_for(info),
                                       extra=extra, parent=self.host.window)
        self.dialog.show()
        return self.dialog

    def shutdown(self) -> None:
        for job in (getattr(self.dialog, "job", None), getattr(self.dialog, "scan_job", None)):
            if job is not None and job.is_running():
                self.jobs.track(job)  # cancelled and waited for with the rest
        self.jobs.cancel()

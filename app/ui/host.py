"""The small interface a feature has to the window: say something, add a dock, a status-bar
label, the engine service, and the other features. (Features make their actions; the window
places them in its menus and toolbar, so their order is decided in one place.)

Why not the window itself: a feature that can reach everything reaches into everything (the
old window's helpers were called from other modules through their underscores). This is what
a feature may use; the window implements the Qt side and nothing else.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QLabel

from app.core.context import AppContext

if TYPE_CHECKING:
    from PySide6.QtWidgets import QMainWindow, QWidget

    from app.ui.engine_service import EngineService


class Host:
    def __init__(self, window: "QMainWindow", ctx: AppContext, engine: "EngineService"):
        self.window = window
        self.ctx = ctx
        self.engine = engine
        self.features = SimpleNamespace()  # name -> Feature, filled by the window in order
        self._labels: dict[str, QLabel] = {}

    def notify(self, text: str, ms: int = 5000) -> None:
        """A line in the status bar."""
        self.window.statusBar().showMessage(text, ms)

    def add_dock(self, title: str, panel: "QWidget", area=Qt.RightDockWidgetArea) -> QDockWidget:
        """A hidden dock holding ``panel`` (shown from the toolbar or when it has news)."""
        dock = QDockWidget(title, self.window)
        dock.setObjectName(f"{title.lower()}Dock")
        dock.setWidget(panel)
        self.window.addDockWidget(area, dock)
        dock.hide()
        return dock

    def status_label(self, name: str, permanent: bool = True) -> QLabel:
        """A label of the status bar, made on first use ("model" stretches on the left)."""
        if name not in self._labels:
            label = self._labels[name] = QLabel()
            label.setObjectName(f"{name}Status")
            if permanent:
                self.window.statusBar().addPermanentWidget(label)
            else:
                self.window.statusBar().addWidget(label, 1)
        return self._labels[name]

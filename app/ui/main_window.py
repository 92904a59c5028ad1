"""The main window: it hosts the features and decides nothing itself.

Layout (conversations | chat | Changes pane: ``shell.Columns``), the menus and toolbar (the
features' actions, placed here so their order is in one place), the status bar, what the window
does itself (first screen facts, drag and drop, theme, saved layout: ``shell.WindowShell``), and
two loops over the features: ``start()`` once all exist (then ``restore()``), and at close
``shutdown()``, then one bounded wait for every feature's jobs, so a closing window loses no
running answer, apply, index or download.
Each feature lives in ``app/ui/features/<name>/``; see docs/architecture.md.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QCoreApplication
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMessageBox

from app import APP_NAME, __version__
from app.core.context import AppContext
from app.core.engine import Engine
from app.ui.engine_service import EngineService
from app.ui.features.adapters.feature import AdaptersFeature
from app.ui.features.api.feature import ApiFeature
from app.ui.features.changes.feature import ChangesFeature
from app.ui.features.chat.feature import ChatFeature
from app.ui.features.doctor.feature import DoctorFeature
from app.ui.features.feedback.feature import FeedbackFeature
from app.ui.features.keys.feature import KeysFeature
from app.ui.features.learn.feature import LearnFeature
from app.ui.features.models.feature import ModelsFeature
from app.ui.features.network.feature import NetworkFeature
from app.ui.features.project.feature import ProjectFeature
from app.ui.features.review.feature import ReviewFeature
from app.ui.features.settings.feature import SettingsFeature
from app.ui.features.tools.feature import ToolsFeature
from app.ui.errors import describe_error
from app.ui.host import Host
from app.ui.shell import Columns, WindowShell
from app.ui.workers import Job

__all__ = ["AppContext", "MainWindow"]

SHUTDOWN_WAIT_S = 10.0
# In this order: a feature may use the ones before it while it is built.
FEATURES = (ChatFeature, NetworkFeature, ProjectFeature, ChangesFeature, AdaptersFeature, ModelsFeature,
            ToolsFeature, FeedbackFeature, ReviewFeature, LearnFeature, DoctorFeature, KeysFeature,
            ApiFeature, SettingsFeature)


class MainWindow(QMainWindow):
    def __init__(self, ctx: AppContext):
        super().__init__()
        self.ctx = ctx
        self.setWindowTitle(APP_NAME)
        self.resize(1280, 760)
        self.engine_service = EngineService(ctx, self)
        self.host = Host(self, ctx, self.engine_service)
        self.engine_service.notice.connect(lambda text: self.host.notify(text))
        # A job nobody listens to for failure still shows its error (describe_error logged it).
        self._show_failure = lambda e: self.host.notify(describe_error(e), 10000)
        Job.default_failure = self._show_failure
        for name in ("model", "project", "stats"):  # left to right
            self.host.status_label(name, permanent=name != "model")
        self.features = self.host.features
        self._all = []
        for cls in FEATURES:
            feature = cls(self.host)
            setattr(self.features, cls.name, feature)
            self._all.append(feature)
        f = self.features
        self.columns = Columns({"conversations": f.chat.conversations, "chat": f.chat.panel,
                                "changes": f.changes.panel}, [220, 1060, 0])
        self.setCentralWidget(self.columns)
        self._build_menus()
        self.shell = WindowShell(self, f, self.columns)
        for feature in self._all:
            feature.start()
        for feature in self._all:
            feature.restore()
        self.shell.restore_layout()  # after restore(): the docks as the user left them
        self.engine_service.load()

    @property
    def engine(self) -> Engine | None:
        """The loaded llama.cpp engine, or None while none is loaded."""
        return self.engine_service.engine

    def _build_menus(self) -> None:
        f = self.features
        toolbar = self.toolbar = self.addToolBar("Main")
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(False)
        panes = self.columns.actions
        for action in (f.models.action, f.network.offline_action, f.network.panel_action, f.project.panel_action,
                       panes["changes"], f.adapters.panel_action, f.feedback.panel_action):
            toolbar.addAction(action)
        bar = self.menuBar()
        file_menu = self.file_menu = bar.addMenu("&File")
        new = QAction("&New chat", self)
        new.setShortcut(QKeySequence.New)
        new.triggered.connect(f.chat.new_conversation)
        quit_ = QAction("&Quit", self)
        quit_.setShortcut(QKeySequence.Quit)
        quit_.triggered.connect(self.close)
        file_menu.addAction(new)
        file_menu.addAction(f.project.open_action)
        file_menu.addMenu(f.project.recent_menu)
        for action in (f.learn.action, f.adapters.import_action, f.feedback.export_action, f.models.action):
            file_menu.addAction(action)
        file_menu.addSeparator()
        file_menu.addAction(quit_)
        settings = bar.addMenu("&Settings")
        settings.addAction(f.settings.preferences_action)
        settings.addSeparator()
        settings.addActions([f.keys.action, f.api.action, f.review.director_action, f.review.checklists_action])
        view = bar.addMenu("&View")
        view.addActions([panes["conversations"], panes["changes"], f.project.panel_action, f.network.panel_action,
                         f.adapters.panel_action, f.feedback.panel_action])
        tools = bar.addMenu("&Tools")
        tools.addActions([f.review.review_question_action, f.review.panel_action])
        help_menu = bar.addMenu("&Help")
        about = QAction("&About", self)
        about.triggered.connect(lambda: QMessageBox.about(
            self, APP_NAME, f"{APP_NAME} {__version__}\nA coding assistant that runs a local model offline.\n"
                            f"Data: {self.ctx.paths.data_dir}"))
        help_menu.addActions([f.settings.shortcuts_action, f.doctor.action, about])

    def closeEvent(self, event: QCloseEvent) -> None:
        """Ask every feature to stop, wait for all their jobs together (bounded), deliver the
        jobs' last signals (a stopped answer is stored like any other), then close the rest."""
        self.shell.save_layout()
        for feature in self._all:
            feature.shutdown()
        self.engine_service.jobs.cancel()
        deadline = time.monotonic() + SHUTDOWN_WAIT_S
        for group in [feature.jobs for feature in self._all] + [self.engine_service.jobs]:
            group.wait(deadline)
        QCoreApplication.sendPostedEvents()
        for feature in self._all:
            feature.closed()
        self.engine_service.close()
        if Job.default_failure is self._show_failure:
            Job.default_failure = None
        super().closeEvent(event)

"""Opening and closing the real window in tests (offscreen), and prompts the starter answers."""

from __future__ import annotations

from app.core.paths import app_paths
from app.ui.main_window import AppContext, MainWindow

LONG_PROMPT = "Write a long, detailed tutorial about Python classes with many code examples."


CODE_PROMPT = "Write a Python function that adds two numbers."


def open_window(qtbot, home, **settings) -> MainWindow:
    ctx = AppContext.open(app_paths(home))
    for k, v in settings.items():
        if hasattr(ctx.settings.generation, k):
            setattr(ctx.settings.generation, k, v)
        else:
            setattr(ctx.settings, k, v)
    w = MainWindow(ctx)
    qtbot.addWidget(w)
    w.show()
    return w


def close_window(w: MainWindow) -> None:
    w.close()
    w.ctx.storage.close()


def wait_loaded(qtbot, w: MainWindow) -> None:
    """The model is loaded and the engine free (a Send now is not refused)."""
    qtbot.waitUntil(lambda: w.engine is not None and w.engine_service.busy_text() is None, timeout=30_000)


def press_yes_on_the_next_question_box(qtbot) -> None:
    """A confirmation is modal: answer it with its Y key as soon as it is up."""
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    def poll():
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            qtbot.keyClick(box, Qt.Key_Y)
        else:
            QTimer.singleShot(20, poll)
    QTimer.singleShot(20, poll)


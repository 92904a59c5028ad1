"""Take docs/screenshot.png from the real window on a real X server.

    xvfb-run -s "-screen 0 1280x800x24" .venv/bin/python scripts/screenshot.py docs/screenshot.png

Opens the app with a throwaway home, asks one question, waits for the streamed answer and
grabs the X screen (not a widget render), so the picture is what a user sees.
"""

from __future__ import annotations

import sys
import tempfile

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from app.core.paths import app_paths
from app.ui.main_window import AppContext, MainWindow

QUESTION = "Write a Python function that checks whether a string is a palindrome."


def main(out: str) -> int:
    app = QApplication(sys.argv[:1])
    home = tempfile.mkdtemp(prefix="oc-shot-")
    ctx = AppContext.open(app_paths(home))
    ctx.settings.generation.temperature = 0.0
    ctx.settings.generation.max_tokens = 200
    w = MainWindow(ctx)
    w.resize(1200, 760)
    w.move(40, 20)
    w.show()

    def ask() -> None:
        w.features.chat.panel.input.setPlainText(QUESTION)
        w.features.chat.panel.send_button.click()

    def shoot(_result) -> None:
        QTimer.singleShot(400, lambda: (app.primaryScreen().grabWindow(0).save(out), app.quit()))

    w.engine_service.loaded.connect(lambda: QTimer.singleShot(200, ask))
    w.features.chat.answer_finished.connect(shoot)
    QTimer.singleShot(120_000, app.quit)  # never hang
    app.exec()
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshot.png"))

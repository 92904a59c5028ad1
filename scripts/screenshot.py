"""Take docs/screenshot.png from the real window on a real X server (``--dark``: the same in
the dark palette, docs/screenshot-dark.png).

    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python scripts/screenshot.py docs/screenshot.png
    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python scripts/screenshot.py --dark docs/screenshot-dark.png

Opens the app with a throwaway home at a laptop's 1366×768, asks one question, waits for the
streamed answer and grabs the X screen (not a widget render), so the picture is what a user sees.
"""

from __future__ import annotations

import sys
import tempfile

from PySide6.QtCore import QTimer

from screenshot_common import application, grab, place

from app.core.paths import app_paths  # noqa: E402
from app.ui.main_window import AppContext, MainWindow  # noqa: E402

QUESTION = "Write a Python function that checks whether a string is a palindrome."


def main(out: str, dark: bool = False) -> int:
    app = application(dark)
    ctx = AppContext.open(app_paths(tempfile.mkdtemp(prefix="oc-shot-")))
    ctx.settings.generation.temperature = 0.0
    ctx.settings.generation.max_tokens = 200
    w = MainWindow(ctx)
    place(w)

    def ask() -> None:
        w.features.chat.panel.input.setPlainText(QUESTION)
        w.features.chat.panel.send_button.click()

    w.engine_service.loaded.connect(lambda: QTimer.singleShot(200, ask))
    w.features.chat.answer_finished.connect(lambda _r: QTimer.singleShot(400, lambda: grab(app, out)))
    QTimer.singleShot(120_000, app.quit)  # never hang
    app.exec()
    w.close()
    return 0


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--dark"]
    dark = "--dark" in sys.argv[1:]
    sys.exit(main(args[0] if args else ("docs/screenshot-dark.png" if dark else "docs/screenshot.png"), dark))

"""Take docs/screenshot-first.png: the first screen of a fresh start (empty conversation).

    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python scripts/screenshot_first.py

A throwaway home, the starter model loaded: the three starters, the model and its speed on this
computer, offline mode, and the drag-and-drop tip, at a laptop's 1366×768.
"""

from __future__ import annotations

import sys
import tempfile

from PySide6.QtCore import QTimer

from screenshot_common import application, grab, place

from app.core.paths import app_paths  # noqa: E402
from app.ui.main_window import AppContext, MainWindow  # noqa: E402


def main(out: str) -> int:
    app = application()
    w = MainWindow(AppContext.open(app_paths(tempfile.mkdtemp(prefix="oc-shot-"))))
    place(w)
    w.engine_service.loaded.connect(lambda _lm: QTimer.singleShot(600, lambda: grab(app, out)))
    QTimer.singleShot(60_000, app.quit)  # never hang
    app.exec()
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshot-first.png"))

"""Take docs/screenshot-project.png: the Project panel after indexing, with search results,
and a citation clicked in an answer.

    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python scripts/screenshot_project.py

Writes the multi-language test project to a throwaway folder, opens it, waits for the index,
searches, shows a (hand-written) cited answer and clicks its citation, then grabs the screen.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QTimer, QUrl

from screenshot_common import application, grab, place

from app.core.paths import app_paths  # noqa: E402
from app.ui.main_window import AppContext, MainWindow  # noqa: E402
from tests.support.index_project import make_project  # noqa: E402

ANSWER = ("A card is charged in `shop/gateway.py:9-13`: `charge_card` refuses amounts of zero or less, "
          "then signs the request with `sign_request` (shop/gateway.py:4-6).")


def main(out: str) -> int:
    app = application()
    home = Path(tempfile.mkdtemp(prefix="oc-shot-"))
    project = make_project(home / "shop")
    w = MainWindow(AppContext.open(app_paths(home / "home")))
    place(w)

    def indexed(_stats) -> None:
        w.features.project.panel.search.setText("how is a card charged")
        w.features.project.search("how is a card charged")

    def searched(_hits) -> None:
        w.features.chat.panel.view.add_message("user", "How is a card charged?")
        w.features.chat.panel.view.add_message("assistant", ANSWER)
        w.features.chat.panel.view.end_stream()
        w.features.chat.panel.view.anchorClicked.emit(QUrl("cite:shop/gateway.py:9-13"))

    w.features.project.index_finished.connect(indexed)
    w.features.project.search_finished.connect(searched)
    w.features.project.snippet_shown.connect(lambda _s: QTimer.singleShot(
        500, lambda: grab(app, out)))
    w.features.project.open(project)
    QTimer.singleShot(120_000, app.quit)
    app.exec()
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshot-project.png"))

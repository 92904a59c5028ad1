"""Take docs/screenshot-changes.png: the Changes pane reviewing a two-file change beside the
answer that proposed it (``--dark``: the same in the dark palette, docs/screenshot-dark.png).

    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python scripts/screenshot_changes.py
    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python scripts/screenshot_changes.py --dark

Copies the test project to a throwaway folder, stores the /code request and its hand-written
two-file answer (the one the GUI tests use) as the last conversation, opens the window on it,
feeds the pane that answer, rejects one hunk and grabs the X screen.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QTimer

from screenshot_common import ROOT, application, grab, place

from app.core.paths import app_paths  # noqa: E402
from app.ui.main_window import AppContext, MainWindow  # noqa: E402
from tests.support.edit_project import TWO_FILES  # noqa: E402

REQUEST = "/code add docstrings to add and mul, and a timeout to fetch"


def main(out: str, dark: bool = False) -> int:
    app = application(dark)
    home = Path(tempfile.mkdtemp(prefix="oc-shot-"))
    project = home / "demo-project"
    shutil.copytree(ROOT / "tests/fixtures/edit_project", project)
    ctx = AppContext.open(app_paths(home / "home"))
    conv = ctx.storage.create_conversation(REQUEST).id
    ctx.storage.add_message(conv, "user", REQUEST, {})
    ctx.storage.add_message(conv, "assistant", TWO_FILES, {})
    w = MainWindow(ctx)
    place(w)
    w.features.project.open(project)

    def planned(_cs) -> None:
        w.features.changes.panel.set_hunk_accepted("pkg/mathx.py", 1, False)
        w.features.changes.panel.mode.setCurrentIndex(0)
        QTimer.singleShot(500, lambda: grab(app, out))

    w.features.changes.changes_planned.connect(planned)
    w.engine_service.loaded.connect(lambda: w.features.changes.show_changes(TWO_FILES, None))
    QTimer.singleShot(60_000, app.quit)
    app.exec()
    w.close()
    return 0


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--dark"]
    dark = "--dark" in sys.argv[1:]
    sys.exit(main(args[0] if args else ("docs/screenshot-dark.png" if dark else "docs/screenshot-changes.png"), dark))

"""Take docs/screenshot-changes.png: the Changes pane reviewing a two-file change.

    xvfb-run -s "-screen 0 1280x800x24" .venv/bin/python scripts/screenshot_changes.py

Copies the test project to a throwaway folder, opens it, feeds the pane a hand-written
two-file answer (the one the GUI tests use), rejects one hunk and grabs the X screen.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.paths import app_paths  # noqa: E402
from app.ui.main_window import AppContext, MainWindow  # noqa: E402
from tests.test_changes_gui import TWO_FILES  # noqa: E402


def main(out: str) -> int:
    app = QApplication(sys.argv[:1])
    home = Path(tempfile.mkdtemp(prefix="oc-shot-"))
    project = home / "demo-project"
    shutil.copytree(ROOT / "tests/fixtures/edit_project", project)
    w = MainWindow(AppContext.open(app_paths(home / "home")))
    w.resize(1240, 760)
    w.move(20, 20)
    w.show()
    w.features.project.open(project)

    def planned(_cs) -> None:
        w.features.changes.panel.set_hunk_accepted("pkg/mathx.py", 1, False)
        w.features.changes.panel.mode.setCurrentIndex(0)
        QTimer.singleShot(500, lambda: (app.primaryScreen().grabWindow(0).save(out), app.quit()))

    w.features.changes.changes_planned.connect(planned)
    w.engine_service.loaded.connect(lambda: w.features.changes.show_changes(TWO_FILES, None))
    QTimer.singleShot(60_000, app.quit)
    app.exec()
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshot-changes.png"))

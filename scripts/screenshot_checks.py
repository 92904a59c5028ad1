"""Take docs/screenshot-checks.png: the Changes pane with the checks of an applied change.

    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python scripts/screenshot_checks.py

Copies the test project to a throwaway folder with a ruff configuration, feeds the pane an
answer that leaves an unused import, applies it and grabs the screen once the checks (syntax,
a real ruff in the sandbox) are shown with ruff's output open.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QTimer

from screenshot_common import ROOT, application, grab, place

from app.core.paths import app_paths  # noqa: E402
from app.ui.main_window import AppContext, MainWindow  # noqa: E402
from tests.support.edit_project import FENCE  # noqa: E402


def main(out: str) -> int:
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # the dev ruff
    app = application()
    home = Path(tempfile.mkdtemp(prefix="oc-shot-"))
    project = home / "demo-project"
    shutil.copytree(ROOT / "tests/fixtures/edit_project", project)
    (project / "ruff.toml").write_text('[lint]\nselect = ["F"]\n')
    mathx = (project / "pkg/mathx.py").read_text()
    answer = ("Added a logger to mathx.\n\npkg/mathx.py\n" + FENCE + "python\nimport logging\n\n"
              + mathx.replace("    return a * b", '    """Product."""\n    return a * b') + FENCE + "\n")
    w = MainWindow(AppContext.open(app_paths(home / "home")))
    place(w)
    w.features.project.open(project)
    changes = w.features.changes

    def checked(_results) -> None:
        changes.panel.checks.row("ruff").output_button.setChecked(True)
        QTimer.singleShot(700, lambda: grab(app, out))

    changes.changes_planned.connect(lambda _cs: changes.panel.picks() and changes.apply_picks(changes.panel.picks()))
    changes.checks_done.connect(checked)
    w.engine_service.loaded.connect(lambda: changes.show_changes(answer, None))
    QTimer.singleShot(90_000, app.quit)
    app.exec()
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshot-checks.png"))

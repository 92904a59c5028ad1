"""The small project the edit tests change (tests/fixtures/edit_project) and a two-file answer."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parents[1] / "fixtures"


FENCE = "```"


TWO_FILES = (
    "Here are the changes.\n\npkg/mathx.py\n" + FENCE + "python\n"
    "def add(a, b):\n    \"\"\"Sum.\"\"\"\n    return a + b\n\n\ndef mul(a, b):\n    \"\"\"Product.\"\"\"\n    return a * b\n"
    + FENCE + "\n\npkg/net.py\n" + FENCE + "python\n"
    "import urllib.request\n\n\ndef fetch(url, timeout=10):\n    with urllib.request.urlopen(url, timeout=timeout) as response:\n"
    "        return response.read()\n" + FENCE + "\n")


def edit_project_copy(tmp_path: Path) -> Path:
    """A fresh copy of the edit tests' project (tests change it)."""
    import shutil
    root = tmp_path / "proj"
    shutil.copytree(FIXTURES / "edit_project", root)
    return root


def window_with_project(qtbot, app_home, project: Path, **settings):
    """The real window with ``project`` open (settings as in ``open_window``)."""
    from tests.support.gui import open_window
    w = open_window(qtbot, app_home, **settings)
    w.features.project.open(project)
    return w


def plan(qtbot, w, answer: str, target: str | None = None):
    """Feed the Changes pane an answer and wait for its plan (the ChangeSet)."""
    with qtbot.waitSignal(w.features.changes.changes_planned, timeout=10_000) as sig:
        w.features.changes.show_changes(answer, target)
    return sig.args[0]


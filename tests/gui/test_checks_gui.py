"""Verified edits in the real window: syntax marks before Apply, checks after it (a real ruff,
real tests in the sandbox, Cancel), "Ask for a fix", git (warning, commit, undo) and the files
the model saw for a /code request (untick, add @path, ask again)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog

from app.core.checks import CANCELLED, FAILED, load_project_settings, project_settings_path
from tests.support.edit_project import FENCE, FIXTURES, TWO_FILES, edit_project_copy, plan, window_with_project
from tests.support.gui import close_window, open_window, wait_loaded

pytestmark = pytest.mark.gui

MATHX = (FIXTURES / "edit_project/pkg/mathx.py").read_text()


@pytest.fixture
def project(tmp_path) -> Path:
    return edit_project_copy(tmp_path)


def mathx_answer(body: str) -> str:
    return "pkg/mathx.py\n" + FENCE + "python\n" + body + FENCE + "\n"


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def make_repo(root: Path) -> None:
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Tess Ter")
    git(root, "config", "user.email", "tess@example.invalid")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start")


def set_checks(qtbot, w, **choices):
    """Changes → Checks…: the dialog opens (after its worker read the project), boxes ticked, OK."""
    changes, seen = w.features.changes, []

    class Ticking(changes.checks_dialog_factory):
        def exec(self):
            for name, on in choices.items():
                getattr(self, name).setChecked(on)
            seen.append(self)
            return QDialog.Accepted

    changes.checks_dialog_factory = Ticking
    qtbot.mouseClick(changes.panel.checks_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: bool(seen), timeout=10_000)
    return seen[0]


def test_a_hunk_that_breaks_the_syntax_is_marked_before_apply(qtbot, app_home, project):
    w = window_with_project(qtbot, app_home, project)
    pane = w.features.changes.panel
    broken = MATHX.replace("def mul(a, b):", "def mul(a, b)")  # the colon lost
    assert broken != MATHX
    plan(qtbot, w, mathx_answer(broken))
    (c,) = pane.changes.changes
    assert len(c.hunks) == 1
    assert "does not parse: line" in pane.syntax_note("pkg/mathx.py", 0)
    # a change that parses carries no mark
    plan(qtbot, w, mathx_answer(MATHX.replace("return a * b", "return b * a")))
    assert pane.syntax_note("pkg/mathx.py", 0) == ""
    close_window(w)


def test_ruff_after_apply_fails_and_ask_for_a_fix_sends_its_output(qtbot, app_home, project, monkeypatch):
    bin_dir = Path(sys.executable).parent  # ruff from the dev extra, on PATH as a user's would be
    if not (bin_dir / "ruff").exists():
        pytest.skip("ruff (the dev extra) is not installed")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    (project / "ruff.toml").write_text('[lint]\nselect = ["F"]\n')
    w = window_with_project(qtbot, app_home, project, max_tokens=8)
    wait_loaded(qtbot, w)
    changes, pane = w.features.changes, w.features.changes.panel
    plan(qtbot, w, mathx_answer("import os\n\n" + MATHX))
    with qtbot.waitSignal(changes.checks_done, timeout=60_000) as sig:
        qtbot.mouseClick(pane.apply_button, Qt.LeftButton)
    results = {r.name: r for r in sig.args[0]}
    assert results["ruff"].status == FAILED and "F401" in results["ruff"].output
    assert results["syntax"].ok
    row = pane.checks.row("ruff")
    assert not row.fix_button.isHidden() and "1 need" in pane.checks.title.text()
    with qtbot.waitSignal(w.features.chat.answer_finished, timeout=120_000):
        qtbot.mouseClick(row.fix_button, Qt.LeftButton)
    asked = [m for m in w.ctx.storage.messages(w.features.chat.current_id) if m.role == "user"][-1]
    assert asked.content.startswith("/code") and "F401" in asked.content
    close_window(w)


def test_slow_tests_after_apply_can_be_cancelled(qtbot, app_home, project):
    (project / "tests").mkdir()
    (project / "tests/test_slow.py").write_text("import time\n\ndef test_slow():\n    time.sleep(120)\n")
    w = window_with_project(qtbot, app_home, project)
    changes, pane = w.features.changes, w.features.changes.panel
    set_checks(qtbot, w, tests=True)
    settings, problem = load_project_settings(project_settings_path(w.ctx.paths.data_dir, project))
    assert problem is None and settings.run_tests_after_apply
    plan(qtbot, w, mathx_answer(MATHX.replace("return a * b", "return b * a")))
    with qtbot.waitSignal(changes.checks_done, timeout=60_000) as sig:
        qtbot.mouseClick(pane.apply_button, Qt.LeftButton)
        qtbot.waitUntil(lambda: "test" in pane.checks.progress.text().lower(), timeout=30_000)
        assert not pane.checks.cancel_button.isHidden()
        qtbot.mouseClick(pane.checks.cancel_button, Qt.LeftButton)
    statuses = {r.name: r.status for r in sig.args[0]}
    assert statuses["tests"] == CANCELLED
    close_window(w)


def test_git_warns_over_uncommitted_edits_commits_and_undo_removes_the_commit(qtbot, app_home, project):
    make_repo(project)
    (project / "pkg/net.py").write_text((project / "pkg/net.py").read_text() + "# my own edit\n")
    w = window_with_project(qtbot, app_home, project)
    changes, pane = w.features.changes, w.features.changes.panel
    set_checks(qtbot, w, commit=True)
    asked = []
    changes.confirm_apply = lambda message: asked.append(message) or True
    plan(qtbot, w, TWO_FILES)
    assert "git: main" in pane.git_label.text() and "1 of the files to change has uncommitted edits" in pane.git_label.text()
    before = {p: (project / p).read_bytes() for p in ("pkg/mathx.py", "pkg/net.py")}
    start = git(project, "rev-parse", "HEAD").strip()
    with qtbot.waitSignal(changes.changes_applied, timeout=20_000):
        qtbot.mouseClick(pane.apply_button, Qt.LeftButton)
    assert len(asked) == 1 and "pkg/net.py has uncommitted edits" in asked[0]
    assert git(project, "rev-parse", "HEAD~1").strip() == start
    assert "Applied-with: Offline Coder" in git(project, "log", "-1", "--format=%B")
    assert "Committed as" in pane.info.text()
    with qtbot.waitSignal(changes.changes_undone, timeout=20_000):
        qtbot.mouseClick(pane.undo_button, Qt.LeftButton)
    assert git(project, "rev-parse", "HEAD").strip() == start
    assert {p: (project / p).read_bytes() for p in before} == before
    close_window(w)


def test_declining_the_git_warning_applies_nothing(qtbot, app_home, project):
    make_repo(project)
    (project / "pkg/mathx.py").write_text(MATHX + "# mine\n")
    w = window_with_project(qtbot, app_home, project)
    changes, pane = w.features.changes, w.features.changes.panel
    asked = []
    changes.confirm_apply = lambda message: asked.append(message) or False
    plan(qtbot, w, mathx_answer(MATHX.replace("return a * b", "return b * a")))
    qtbot.mouseClick(pane.apply_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: bool(asked) and pane.apply_button.isEnabled(), timeout=10_000)
    assert (project / "pkg/mathx.py").read_text() == MATHX + "# mine\n"
    assert pane.changes is not None  # still there to apply later
    close_window(w)


def test_code_request_naming_no_file_shows_the_chosen_files_and_asks_again(qtbot, app_home, project):
    w = open_window(qtbot, app_home, temperature=0.0, top_k=1, max_tokens=60)
    with qtbot.waitSignal(w.features.project.index_finished, timeout=120_000):
        w.features.project.open(project)
    wait_loaded(qtbot, w)
    box = w.features.changes.panel.files_box
    request = "make fetch refuse addresses that do not start with https"
    with qtbot.waitSignal(w.features.chat.answer_finished, timeout=120_000):
        w.features.chat.send("/code " + request)
    qtbot.waitUntil(lambda: box.isVisible(), timeout=10_000)
    assert box.files() and box.files()[0] == "pkg/net.py"
    assert "fetch" in box.list.item(0).text()  # why: the definition that matched
    box.list.item(0).setCheckState(Qt.Unchecked)
    assert not box.add_file("pkg/nothere.py") and "not a file of the project" in box.problem.text()
    box.add_edit.setText("@pkg/mathx.py")
    qtbot.keyClick(box.add_edit, Qt.Key_Return)
    assert "pkg/mathx.py" in box.files() and "pkg/net.py" not in box.files()
    with qtbot.waitSignal(w.features.chat.answer_finished, timeout=120_000):
        qtbot.mouseClick(box.reask_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: box.isVisible() and box.files() == ["pkg/mathx.py"], timeout=10_000)
    assert "chosen by you" in box.list.item(0).text()
    sent = w.features.chat.service.storage.messages(w.features.chat.current_id)
    assert [m.content for m in sent if m.role == "user"][-1] == "/code " + request
    close_window(w)

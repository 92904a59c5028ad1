"""The Changes pane in the real window: review, reject a hunk, apply, undo, stale files."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tests.support.gui import close_window, open_window, wait_loaded
from tests.support.edit_project import FENCE, FIXTURES, TWO_FILES, edit_project_copy, plan, window_with_project

pytestmark = pytest.mark.gui


@pytest.fixture
def project(tmp_path) -> Path:
    return edit_project_copy(tmp_path)


def test_two_file_change_reject_one_hunk_apply_and_undo(qtbot, app_home, project):
    before = {p: (project / p).read_bytes() for p in ("pkg/mathx.py", "pkg/net.py")}
    w = window_with_project(qtbot, app_home, project)
    pane = w.features.changes.panel
    assert not pane.isVisible() and "proj" in w.features.project.label.text()  # shown with changes
    cs = plan(qtbot, w, TWO_FILES)
    assert pane.isVisible()
    assert [c.path for c in cs.changes] == ["pkg/mathx.py", "pkg/net.py"]
    assert pane.tree.topLevelItemCount() == 2
    assert pane.tree.topLevelItem(0).childCount() == 2  # two docstrings: two hunks
    pane.show_file("pkg/mathx.py")
    assert "Sum." in pane.view.toPlainText() and "Product." in pane.view.toPlainText()
    # Nothing is on disk before the user applies.
    assert {p: (project / p).read_bytes() for p in before} == before

    pane.set_hunk_accepted("pkg/mathx.py", 1, False)  # reject the mul() docstring
    assert "(rejected: stays as it is)" in pane.view.toPlainText()
    with qtbot.waitSignal(w.features.changes.changes_applied, timeout=10_000):
        qtbot.mouseClick(pane.apply_button, Qt.LeftButton)
    mathx = (project / "pkg/mathx.py").read_text()
    assert '"""Sum."""' in mathx and '"""Product."""' not in mathx
    assert "timeout=timeout" in (project / "pkg/net.py").read_text()
    assert pane.undo_button.isEnabled() and "Applied" in pane.info.text()

    with qtbot.waitSignal(w.features.changes.changes_undone, timeout=10_000):
        qtbot.mouseClick(pane.undo_button, Qt.LeftButton)
    assert {p: (project / p).read_bytes() for p in before} == before
    assert not pane.undo_button.isEnabled()
    close_window(w)


def test_new_file_needs_a_tick_and_side_by_side_and_edit(qtbot, app_home, project):
    w = window_with_project(qtbot, app_home, project)
    pane = w.features.changes.panel
    plan(qtbot, w, "tools/new.py\n" + FENCE + "python\nX = 1\n" + FENCE + "\n")
    assert pane.tree.topLevelItem(0).checkState(0) == Qt.Unchecked
    assert not pane.apply_button.isEnabled() and pane.picks() == []
    pane.mode.setCurrentIndex(1)
    assert "new file, needs your approval" in pane.view.toPlainText()
    pane.replace_text("tools/new.py", "X = 2\nY = 3\n")  # what the Edit… dialog does on OK
    pane.set_file_included("tools/new.py", True)
    with qtbot.waitSignal(w.features.changes.changes_applied, timeout=10_000):
        qtbot.mouseClick(pane.apply_button, Qt.LeftButton)
    assert (project / "tools/new.py").read_text() == "X = 2\nY = 3\n"
    close_window(w)


def test_stale_file_refuses_then_recompute_and_apply(qtbot, app_home, project):
    w = window_with_project(qtbot, app_home, project)
    pane = w.features.changes.panel
    plan(qtbot, w, TWO_FILES)
    (project / "pkg/net.py").write_text("# the user edited this meanwhile\n")
    with qtbot.waitSignal(w.features.changes.edit_failed, timeout=10_000) as failed:
        qtbot.mouseClick(pane.apply_button, Qt.LeftButton)
    assert "changed on disk" in failed.args[0] and "changed on disk" in pane.problems_text()
    assert pane.recompute_button.isVisible()
    assert '"""Sum."""' not in (project / "pkg/mathx.py").read_text()  # all or nothing
    with qtbot.waitSignal(w.features.changes.changes_planned, timeout=10_000):
        qtbot.mouseClick(pane.recompute_button, Qt.LeftButton)
    with qtbot.waitSignal(w.features.changes.changes_applied, timeout=10_000):
        qtbot.mouseClick(pane.apply_button, Qt.LeftButton)
    assert "timeout=timeout" in (project / "pkg/net.py").read_text()
    close_window(w)


def test_unsafe_path_is_shown_and_nothing_written(qtbot, app_home, project, tmp_path):
    w = window_with_project(qtbot, app_home, project)
    plan(qtbot, w, "../escape.py\n" + FENCE + "python\nimport os\n" + FENCE + "\n")
    assert "'../escape.py'" in w.features.changes.panel.problems_text()
    assert not w.features.changes.panel.apply_button.isEnabled()
    assert not (tmp_path / "escape.py").exists()
    close_window(w)


def test_undo_after_restart_and_conflict_asks(qtbot, app_home, project):
    w = window_with_project(qtbot, app_home, project)
    plan(qtbot, w, TWO_FILES)
    with qtbot.waitSignal(w.features.changes.changes_applied, timeout=10_000):
        w.features.changes.panel.apply_button.click()
    close_window(w)

    w2 = open_window(qtbot, app_home)  # reopens the last project by itself
    assert w2.features.project.root == project.resolve()
    qtbot.waitUntil(w2.features.changes.panel.undo_button.isEnabled, timeout=10_000)  # found by a worker
    (project / "pkg/net.py").write_text("# typed after the apply\n")
    asked = []
    w2.features.changes.confirm_force_undo = lambda message: asked.append(message) or True
    with qtbot.waitSignal(w2.features.changes.changes_undone, timeout=10_000):
        w2.features.changes.panel.undo_button.click()
    assert asked and "pkg/net.py" in asked[0]
    assert (project / "pkg/net.py").read_bytes() == (FIXTURES / "edit_project/pkg/net.py").read_bytes()
    close_window(w2)


@pytest.mark.slow
def test_code_request_to_the_real_model_proposes_a_change(qtbot, app_home, project):
    """/code on the embedded model: the prompt carries the file, the answer becomes a diff."""
    # The recorded fixture's decoding (GenerationParams.greedy), so the answer is the same text.
    w = window_with_project(qtbot, app_home, project, temperature=0.0, top_p=1.0, top_k=1, repeat_penalty=1.0,
                            max_tokens=400)
    wait_loaded(qtbot, w)
    with qtbot.waitSignal(w.features.changes.changes_planned, timeout=120_000) as sig:
        w.features.chat.send("/code Rename mul to multiply in pkg/mathx.py.")
    cs = sig.args[0]
    assert "```" in w.features.chat.service.storage.messages(w.features.chat.current_id)[-1].content
    assert w.features.chat.pending is None and w.features.chat.service.storage.messages(w.features.chat.current_id)[0].content.startswith("/code")
    (c,) = cs.changes
    assert c.path == "pkg/mathx.py" and "def multiply" in c.result_text()
    assert w.features.changes.panel.tree.topLevelItemCount() == 1
    assert (project / "pkg/mathx.py").read_bytes() == (FIXTURES / "edit_project/pkg/mathx.py").read_bytes()
    close_window(w)

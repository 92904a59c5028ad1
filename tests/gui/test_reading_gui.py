"""What the user sees while a grounded question is read: the reading line where the answer
will appear, and the Project panel's code budget in tokens and seconds (real window, model,
index)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tests.support.gui import close_window, open_window, wait_loaded
from tests.support.index_project import make_project

pytestmark = pytest.mark.gui


def test_the_reading_line_and_the_code_budget_reach_the_window(qtbot, app_home, tmp_path):
    root = make_project(tmp_path / "shop")
    w = open_window(qtbot, app_home, temperature=0.0, max_tokens=24)
    wait_loaded(qtbot, w)
    project = w.features.project
    with qtbot.waitSignal(project.index_finished, timeout=120_000):
        project.open(root)
    budget = project.panel.budget.text()
    assert budget.startswith("Code per question: up to 1,500 tokens") and "estimated from its size" in budget

    view, panel = w.features.chat.view, w.features.chat.panel
    lines = []
    view.reading_shown.connect(lines.append)
    panel.input.setPlainText("How is a card charged?")
    with qtbot.waitSignal(w.features.chat.answer_finished, timeout=60_000):
        qtbot.mouseClick(panel.send_button, Qt.LeftButton)
    assert lines and lines[0].startswith("Reading your question and ") and "pieces of project code: 0 / " in lines[0]
    assert lines[-1].split(": ", 1)[1].split(" tokens")[0].split(" / ")[0] == \
        lines[-1].split(": ", 1)[1].split(" tokens")[0].split(" / ")[1]  # read to the end
    assert view.reading_text == ""  # the answer took its place
    # The reading was measured: the budget now says so.
    assert "measured" in project.panel.budget.text()
    close_window(w)

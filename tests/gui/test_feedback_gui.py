"""Feedback in the real window on the real starter model: 👍 under an answer is stored and
still shown after a restart, applying or discarding an answer's changes rates it, /remember
and the Rules panel add, edit and remove rules that go into the next prompt, and File → Export
training data writes the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QUrl

from app.core.storage import Rating
from tests.support.edit_project import FIXTURES, TWO_FILES
from tests.support.gui import close_window, open_window, wait_loaded

pytestmark = pytest.mark.gui
QUESTION = "What is the capital of France?"


def ask(qtbot, w, text: str):
    """Send ``text`` as the user would; returns the PendingAnswer once the answer is stored."""
    qtbot.waitUntil(lambda: w.features.chat.answer_job is None or not w.features.chat.answer_job.is_running(), timeout=10_000)
    w.features.chat.panel.input.setPlainText(text)
    with qtbot.waitSignal(w.features.chat.answer_finished, timeout=60_000):
        qtbot.mouseClick(w.features.chat.panel.send_button, Qt.LeftButton)
        pending = w.features.chat.pending
    return pending


def click(view, href: str) -> None:
    assert f'href="{href}"' in view.toHtml()  # the link is on screen
    view.anchorClicked.emit(QUrl(href))


def test_a_thumbs_up_is_stored_and_still_shown_after_a_restart(qtbot, app_home):
    w = open_window(qtbot, app_home, temperature=0.0, max_tokens=24)
    wait_loaded(qtbot, w)
    ask(qtbot, w, QUESTION)
    answer = w.ctx.storage.messages(w.features.chat.current_id)[-1]
    assert answer.role == "assistant"
    view = w.features.chat.panel.view
    assert "👍 Good  👎 Bad" in view.toPlainText() and "rated up" not in view.toPlainText()
    with qtbot.waitSignal(w.features.feedback.rated) as sig:
        click(view, f"rate:{answer.id}:1")
    assert sig.args == [answer.id, Rating(user=1)]
    assert "rated up" in view.toPlainText() and view.rating_of(answer.id) == Rating(1, 0)
    assert f'href="rate:{answer.id}:0"' in view.toHtml()  # the lit thumb now takes it back
    close_window(w)

    w = open_window(qtbot, app_home)
    view = w.features.chat.panel.view
    assert w.ctx.storage.rating(answer.id) == Rating(1, 0)
    assert "rated up" in view.toPlainText() and view.rating_of(answer.id) == Rating(1, 0)
    click(view, f"rate:{answer.id}:0")
    assert w.ctx.storage.rating(answer.id) == Rating() and "rated up" not in view.toPlainText()
    click(view, f"rate:{answer.id}:-1")
    assert w.ctx.storage.rating(answer.id).value == -1 and "rated down" in view.toPlainText()
    close_window(w)


def test_applied_changes_rate_the_answer_up_and_discarded_ones_down(qtbot, app_home, tmp_path):
    project = tmp_path / "proj"
    shutil.copytree(FIXTURES / "edit_project", project)
    w = open_window(qtbot, app_home)
    w.features.project.open(project)
    s = w.ctx.storage
    conv = s.create_conversation()
    s.add_message(conv.id, "user", "/code add docstrings")
    first = s.add_message(conv.id, "assistant", TWO_FILES)
    second = s.add_message(conv.id, "assistant", TWO_FILES)
    w.features.chat.open_conversation(conv.id)
    view, pane = w.features.chat.panel.view, w.features.changes.panel

    with qtbot.waitSignal(w.features.changes.changes_planned, timeout=10_000):
        w.features.changes.show_changes(TWO_FILES, None, first.id)
    with qtbot.waitSignal(w.features.feedback.rated) as sig:
        qtbot.mouseClick(pane.discard_button, Qt.LeftButton)
    assert sig.args == [first.id, Rating(0, -1)] and s.rating(first.id).source == "rejected"
    assert "changes discarded" in view.toPlainText()

    with qtbot.waitSignal(w.features.changes.changes_planned, timeout=10_000):
        w.features.changes.show_changes(TWO_FILES, None, second.id)
    with qtbot.waitSignal(w.features.changes.changes_applied, timeout=10_000):
        qtbot.mouseClick(pane.apply_button, Qt.LeftButton)
    assert s.rating(second.id) == Rating(0, 1) and "changes applied" in view.toPlainText()
    assert s.rating(first.id).value == -1  # the other answer keeps its own signal
    assert '"""Sum."""' in (project / "pkg/mathx.py").read_text()
    close_window(w)


def test_remember_and_the_rules_panel_shape_the_next_prompt(qtbot, app_home, tmp_path):
    w = open_window(qtbot, app_home, temperature=0.0, max_tokens=16)
    wait_loaded(qtbot, w)
    panel, chat = w.features.feedback.panel, w.features.chat.panel
    chat.input.setPlainText("/remember Use pytest, not unittest")
    qtbot.mouseClick(chat.send_button, Qt.LeftButton)
    assert panel.texts() == ["Use pytest, not unittest"]
    assert "Remembered for every project: Use pytest, not unittest" in chat.view.toPlainText()
    assert w.features.chat.answer_job is None  # a command, not a question for the model

    chat.input.setPlainText("/remember --project Tabs, not spaces")  # no project is open
    qtbot.mouseClick(chat.send_button, Qt.LeftButton)
    assert "Open a project first" in chat.error.text() and chat.error.isVisible()
    assert chat.input.toPlainText() == "/remember --project Tabs, not spaces"  # nothing typed is lost
    assert len(w.ctx.storage.rules()) == 1

    pending = ask(qtbot, w, "How do I test a function?")
    assert "- Use pytest, not unittest" in pending.messages[0]["content"]

    # The panel: edit in place (what a double-click opens), a refused edit, add, remove.
    item = panel.tree.topLevelItem(0)
    item.setText(0, "Use pytest and hypothesis")
    assert w.ctx.storage.rules()[0].text == "Use pytest and hypothesis"
    item.setText(0, "   ")
    assert "needs some text" in panel.error.text() and item.text(0) == "Use pytest and hypothesis"
    panel.input.setText("Answer in English")
    qtbot.mouseClick(panel.add_button, Qt.LeftButton)
    assert panel.texts() == ["Answer in English", "Use pytest and hypothesis"] and panel.input.text() == ""
    assert not panel.error.isVisible()
    panel.tree.setCurrentItem(panel.item(w.ctx.storage.rules()[1].id))
    qtbot.mouseClick(panel.remove_button, Qt.LeftButton)
    assert panel.texts() == ["Answer in English"]

    system = ask(qtbot, w, "Which test runner?").messages[0]["content"]
    assert "- Answer in English" in system and "pytest" not in system

    # A rule for the open project only: listed as such, in prompts only with that project.
    project = tmp_path / "proj"
    project.mkdir()
    (project / "main.py").write_text("print('hi')\n")
    w.features.project.open(project)
    panel.input.setText("Always use TypeScript")
    panel.scope.setCurrentText("This project")
    qtbot.mouseClick(panel.add_button, Qt.LeftButton)
    [rule] = [r for r in w.ctx.storage.rules() if r.project]
    assert rule.project == str(project.resolve()) and panel.texts()[0] == "Always use TypeScript"
    assert panel.tree.topLevelItem(0).text(1) == "proj (this project)"
    pending = ask(qtbot, w, "Which language for the frontend?")
    assert "- Always use TypeScript" in pending.messages[0]["content"]
    assert w.ctx.storage.conversation(pending.conversation_id).project == str(project.resolve())
    close_window(w)


def test_export_dialog_writes_the_file_and_says_what_it_wrote(qtbot, app_home, tmp_path):
    w = open_window(qtbot, app_home, temperature=0.0, max_tokens=24)
    wait_loaded(qtbot, w)
    ask(qtbot, w, QUESTION)
    ask(qtbot, w, "And of Germany?")
    answers = [m for m in w.ctx.storage.messages(w.features.chat.current_id) if m.role == "assistant"]
    click(w.features.chat.panel.view, f"rate:{answers[0].id}:1")

    w.features.feedback.export_action.trigger()
    dialog = w.features.feedback.export_dialog
    assert dialog.isVisible() and dialog.only_rated.isChecked()
    default = Path(dialog.path.text())
    assert default.parent == w.ctx.paths.data_dir / "exports" and default.name.startswith("chats-")

    dialog.path.setText(str(tmp_path))  # a folder: refused with a message
    qtbot.mouseClick(dialog.export_button, Qt.LeftButton)
    qtbot.waitUntil(dialog.error.isVisible, timeout=10_000)
    assert "is a folder" in dialog.error.text()

    out = tmp_path / "mine.jsonl"
    dialog.path.setText(str(out))
    with qtbot.waitSignal(dialog.exported, timeout=10_000) as sig:
        qtbot.mouseClick(dialog.export_button, Qt.LeftButton)
    report = sig.args[0]
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert report.written == len(rows) == 1 and report.skipped == {"not rated": 1}
    assert [m["role"] for m in rows[0]["messages"]] == ["system", "user", "assistant"]
    assert rows[0]["messages"][1]["content"] == QUESTION and rows[0]["messages"][2]["content"] == answers[0].content
    assert dialog.result.text().startswith("Wrote 1 example (") and "skipped 1: 1 not rated" in dialog.result.text()
    assert not dialog.error.isVisible()
    close_window(w)

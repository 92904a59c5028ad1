"""Versions in the real window on the real starter model, driven by keys and clicks: regenerate
(F5) keeps the earlier answer, Alt+Left / ◀ bring it back, and the next question builds on the
one on show; editing a question branches there, and an edit whose conversation is deleted
loses nothing; an answer is on disk while it streams, a regenerate then is refused and Esc
stops it; killed mid-way, it comes back as interrupted, with Regenerate."""

from __future__ import annotations

import sqlite3

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QApplication

from app.core.paths import app_paths
from tests.support.gui import LONG_PROMPT, close_window, open_window, press_yes_on_the_next_question_box, wait_loaded

pytestmark = pytest.mark.gui
BUSY = "An answer is being written: stop it first."


def opened(qtbot, home, **settings):
    """The window, shown and active (window-wide keys such as Esc and F5 go to the active window;
    a window opened after another one closed is not activated by itself offscreen)."""
    w = open_window(qtbot, home, **settings)
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w, timeout=5_000)
    return w


def click_link(qtbot, view, href: str) -> None:
    """Click the link ``href`` in the chat with the mouse, where it is drawn."""
    doc = view.document()
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            frag = it.fragment()
            if frag.charFormat().anchorHref() == href:
                cursor = QTextCursor(doc)
                cursor.setPosition(frag.position())
                view.setTextCursor(cursor)
                view.ensureCursorVisible()
                start, after = view.cursorRect(cursor), QTextCursor(doc)
                after.setPosition(frag.position() + 1)
                pos = QPoint((start.x() + view.cursorRect(after).x()) // 2, start.center().y())
                assert view.anchorAt(pos) == href
                qtbot.mouseClick(view.viewport(), Qt.LeftButton, pos=pos)
                return
            it += 1
        block = block.next()
    raise AssertionError(f"no link {href} in the chat:\n{view.toPlainText()}")


def ask(qtbot, chat, text: str):
    """Type a question and send it with Ctrl+Enter; returns what answer_stored carried."""
    qtbot.keyClicks(chat.panel.input, text)
    with qtbot.waitSignal(chat.answer_stored, timeout=60_000) as stored:
        qtbot.keyClick(chat.panel.input, Qt.Key_Return, Qt.ControlModifier)
    return stored.args[0]


def answer_with(qtbot, chat, key_or_href: str | int):
    """Start a new version with a key (F5) or a click on a link; wait until it is stored."""
    with qtbot.waitSignal(chat.answer_stored, timeout=60_000) as stored:
        if isinstance(key_or_href, str):
            click_link(qtbot, chat.view, key_or_href)
        else:
            qtbot.keyClick(chat.panel.input, key_or_href)
    return stored.args[0]


def test_regenerate_keeps_both_answers_and_the_next_question_builds_on_the_one_on_show(qtbot, app_home):
    w = opened(qtbot, app_home, temperature=0.9, max_tokens=12)
    wait_loaded(qtbot, w)
    chat, storage = w.features.chat, w.ctx.storage
    _, _, first_id = ask(qtbot, chat, "What is a Python list?")
    cid = chat.current_id

    _, _, second_id = answer_with(qtbot, chat, Qt.Key_F5)  # F5: regenerate the last answer
    first, second = storage.message(first_id), storage.message(second_id)
    assert second.parent_id == first.parent_id and [m.id for m in storage.messages(cid)][1:] == [second_id]
    assert "◀ 2/2 ▶" in chat.view.toPlainText() and "↻ Regenerate" in chat.view.toPlainText()

    qtbot.keyClick(chat.panel.input, Qt.Key_Left, Qt.AltModifier)  # Alt+Left: the earlier version
    assert [m.id for m in storage.messages(cid)][1:] == [first_id]
    qtbot.keyClick(chat.panel.input, Qt.Key_Right, Qt.AltModifier)  # Alt+Right: the later one again
    assert [m.id for m in storage.messages(cid)][1:] == [second_id]
    click_link(qtbot, chat.view, f"version:{second_id}:-1")  # ◀ brings the first answer back
    assert [m.id for m in storage.messages(cid)][1:] == [first_id]
    assert "◀ 1/2 ▶" in chat.view.toPlainText() and first.content.strip()[:20] in chat.view.toPlainText()

    pending, _, _ = ask(qtbot, chat, "Show one.")
    assert pending.history[1] == {"role": "assistant", "content": first.content}  # built on the one on show
    assert storage.messages(cid)[2].parent_id == first_id
    close_window(w)


def test_editing_a_question_branches_there_and_an_edit_outliving_its_chat_loses_nothing(qtbot, app_home):
    w = opened(qtbot, app_home, temperature=0.9, max_tokens=8)
    wait_loaded(qtbot, w)
    chat, storage, panel = w.features.chat, w.ctx.storage, w.features.chat.panel
    pending, _, old_answer = ask(qtbot, chat, "What is a tuple?")
    cid, old_question = chat.current_id, pending.question.id

    qtbot.keyClicks(panel.input, "half typed")
    click_link(qtbot, chat.view, f"edit:{old_question}")  # ✎ Edit: the question goes into the box
    assert panel.input.toPlainText() == "What is a tuple?" and "editing" in chat.view.toPlainText()
    qtbot.keyClick(panel.input, Qt.Key_Escape)  # Esc cancels: the box holds what it held
    assert panel.input.toPlainText() == "half typed" and "editing" not in chat.view.toPlainText()

    panel.input.clear()
    click_link(qtbot, chat.view, f"edit:{old_question}")
    qtbot.keyClicks(panel.input, "What is a named tuple?")  # the question was selected: typing replaces it
    with qtbot.waitSignal(chat.answer_stored, timeout=60_000) as stored:
        qtbot.keyClick(panel.input, Qt.Key_Return, Qt.ControlModifier)
    new_question = stored.args[0][0].question
    path = storage.messages(cid)
    assert [m.content for m in path][:1] == ["What is a named tuple?"] and path[1].id == stored.args[0][2]
    assert new_question.parent_id is None and storage.siblings(new_question.id).ids == (old_question, new_question.id)
    assert "◀ 2/2 ▶" in chat.view.toPlainText() and panel.input.toPlainText() == ""

    click_link(qtbot, chat.view, f"version:{new_question.id}:-1")  # the earlier branch, answer and all
    assert [m.id for m in storage.messages(cid)] == [old_question, old_answer]
    assert "What is a tuple?" in chat.view.toPlainText()

    # An edit under way when its conversation is deleted: the edit ends, the text stays.
    click_link(qtbot, chat.view, f"edit:{old_question}")
    qtbot.keyClicks(panel.input, "What is a frozenset?")
    chats = chat.conversations.list
    chats.setFocus()
    press_yes_on_the_next_question_box(qtbot)
    qtbot.keyClick(chats, Qt.Key_Delete)
    assert storage.conversation(cid) is None and storage.all_messages(cid) == []
    assert "was deleted" in panel.error.text() and panel.input.toPlainText() == "What is a frozenset?"
    assert "editing" not in chat.view.toPlainText()
    with qtbot.waitSignal(chat.answer_stored, timeout=60_000) as stored:  # sent: a question of a new chat
        qtbot.keyClick(panel.input, Qt.Key_Return, Qt.ControlModifier)
    assert [c.title for c in storage.conversations()] == ["What is a frozenset?"]
    assert [m.role for m in storage.all_messages(stored.args[0][0].conversation_id)] == ["user", "assistant"]
    close_window(w)


def test_an_answer_is_on_disk_while_it_streams_and_after_a_kill_comes_back_interrupted(qtbot, app_home, tmp_path):
    w = opened(qtbot, app_home, temperature=0.8, max_tokens=1500)
    wait_loaded(qtbot, w)
    chat, panel = w.features.chat, w.features.chat.panel
    finished = []
    chat.answer_finished.connect(finished.append)
    qtbot.keyClicks(panel.input, LONG_PROMPT)
    qtbot.keyClick(panel.input, Qt.Key_Return, Qt.ControlModifier)
    other = sqlite3.connect(w.ctx.storage.path)  # another reader: what is on disk while it streams
    unfinished = "SELECT id, content FROM messages WHERE role = 'assistant' AND meta LIKE '%\"unfinished\": true%'"
    qtbot.waitUntil(lambda: other.execute(unfinished).fetchone() is not None, timeout=30_000)
    # A kill now leaves the database as committed at this moment: copy exactly that.
    crashed = app_paths(tmp_path / "crashed")
    crashed.database.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(crashed.database) as snapshot:
        other.backup(snapshot)
    partial_id, partial = other.execute(unfinished).fetchone()
    other.close()

    qtbot.keyClick(panel.input, Qt.Key_F5)  # regenerate now: refused, with the holder's words
    assert w.statusBar().currentMessage() == BUSY
    with qtbot.waitSignal(chat.answer_finished, timeout=5_000) as done:
        qtbot.keyClick(panel.input, Qt.Key_Escape)  # Esc stops the answer
    assert done.args[0].cancelled and finished == [done.args[0]]
    storage = w.ctx.storage
    assert [m.id for m in storage.all_messages(chat.current_id)][1:] == [partial_id]  # one generation, one row
    answer = storage.message(partial_id)
    assert answer.meta["finish_reason"] == "cancelled" and "unfinished" not in answer.meta
    assert answer.content.startswith(partial) and not chat.stop_action.isEnabled()  # Esc is the boxes' again
    close_window(w)

    w2 = opened(qtbot, tmp_path / "crashed", temperature=0.8, max_tokens=8)  # the restart after the kill
    chat2 = w2.features.chat
    text = chat2.view.toPlainText()
    assert "interrupted" in text and partial.strip()[:15] in text and LONG_PROMPT in text
    wait_loaded(qtbot, w2)
    _, _, new_id = answer_with(qtbot, chat2, f"regen:{partial_id}")  # ↻ Regenerate under it
    storage = w2.ctx.storage
    assert storage.siblings(new_id).ids == (partial_id, new_id) and storage.messages(chat2.current_id)[-1].id == new_id
    assert storage.message(partial_id).meta.get("unfinished") is True  # the interrupted one is kept as it was
    assert "unfinished" not in storage.message(new_id).meta and "◀ 2/2 ▶" in chat2.view.toPlainText()
    close_window(w2)

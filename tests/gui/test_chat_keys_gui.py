"""The chat's keys and the conversation list in the real window, driven with QTest keys: Ctrl+K
search (titles and text, FTS5 syntax typed as plain text), Enter opens a match, Ctrl+L the
question box, Ctrl+Shift+C the last answer, Ctrl+= / Ctrl+- the text size, Ctrl+D pin,
Ctrl+Shift+S Markdown export, several chats deleted with one Delete, and the list of keys the
help shows. The chats are written to the database before the window opens (the model is not
needed for any of this)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QFileDialog

from app.core.paths import app_paths
from app.core.storage import Storage
from tests.support.gui import close_window, open_window, press_yes_on_the_next_question_box

pytestmark = pytest.mark.gui
ANSWER = "Use `sorted`:\n\n```python\nsorted(d.items(), key=lambda kv: kv[1])\n```"


def seed(home) -> dict[str, int]:
    s = Storage(app_paths(home).database)
    ids = {}
    for title, question, answer in (("Sorting", "How do I sort a dict by value?", ANSWER),
                                    ("Threads", "Why does my thread_pool(max_workers=4) hang?", "A deadlock."),
                                    ("Regex", "Match an email address", "Use a library."),
                                    ("JSON", 'Parse {"a": 1}', "json.loads")):
        c = s.create_conversation(title)
        s.add_message(c.id, "user", question)
        s.add_message(c.id, "assistant", answer, {"sources": ["app/util.py:3-9"], "finish_reason": "stop"})
        ids[title] = c.id
    s.close()
    return ids


def focused():
    return QApplication.focusWidget()


def test_the_chat_keys_and_the_conversation_list(qtbot, app_home, tmp_path, monkeypatch):
    ids = seed(app_home)
    w = open_window(qtbot, app_home)
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w, timeout=5_000)
    chat, storage = w.features.chat, w.ctx.storage
    panel, chats = chat.panel, chat.conversations
    assert chats.titles() == ["JSON", "Regex", "Threads", "Sorting"]

    # Ctrl+K from the question box (where Qt would delete to the end of the line) goes to the search.
    panel.input.setFocus()
    qtbot.keyClicks(panel.input, "draft kept")
    qtbot.keyClick(panel.input, Qt.Key_K, Qt.ControlModifier)
    assert focused() is chats.search and panel.input.toPlainText() == "draft kept"
    qtbot.keyClicks(chats.search, "thread_pool(max")  # message text, FTS5 syntax typed as text
    assert chats.titles() == ["Threads"]
    for typed in ('"', "*", " AND (", "NEAR(", "-"):
        qtbot.keyClicks(chats.search, typed)  # never an error, never a crash
        assert panel.error.text() == ""
    qtbot.keyClick(chats.search, Qt.Key_Escape)  # Esc clears the search
    assert chats.titles() == ["JSON", "Regex", "Threads", "Sorting"]
    qtbot.keyClicks(chats.search, "sort")  # a title, by its start
    assert chats.titles() == ["Sorting"]
    qtbot.keyClick(chats.search, Qt.Key_Return)  # Enter opens the first match
    assert chat.current_id == ids["Sorting"] and "sort a dict by value" in panel.view.toPlainText()

    qtbot.keyClick(chats.list, Qt.Key_L, Qt.ControlModifier)  # Ctrl+L: back to the question box
    assert focused() is panel.input
    qtbot.keyClick(panel.input, Qt.Key_C, Qt.ControlModifier | Qt.ShiftModifier)  # Ctrl+Shift+C
    assert QGuiApplication.clipboard().text() == ANSWER

    size = panel.view.font_size()
    qtbot.keyClick(panel.input, Qt.Key_Equal, Qt.ControlModifier)  # Ctrl+=
    qtbot.keyClick(panel.input, Qt.Key_Equal, Qt.ControlModifier)
    assert panel.view.font_size() == size + 2
    qtbot.keyClick(panel.input, Qt.Key_Minus, Qt.ControlModifier)  # Ctrl+-
    assert panel.view.font_size() == size + 1

    # Ctrl+Shift+S: the chat on show as Markdown, code block and sources kept.
    out = tmp_path / "exported" / "sorting.md"
    out.parent.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), "Markdown (*.md)"))
    qtbot.keyClick(panel.input, Qt.Key_S, Qt.ControlModifier | Qt.ShiftModifier)
    md = out.read_text(encoding="utf-8")
    assert md.startswith("# Sorting\n") and "```python\nsorted(d.items(), key=lambda kv: kv[1])\n```" in md
    assert "Sources: `app/util.py:3-9`" in md and "## You\n\nHow do I sort a dict by value?" in md

    # Ctrl+D in the list pins the chat: first in the list, kept in the database.
    chats.list.setFocus()
    qtbot.keyClick(chats.list, Qt.Key_D, Qt.ControlModifier)
    assert storage.conversation(ids["Sorting"]).pinned and chats.titles()[0] == "Sorting"
    assert chats.pinned() == [ids["Sorting"]]

    # Several chats selected with Shift+Down, deleted with one Delete and one confirmation.
    qtbot.keyClick(chats.list, Qt.Key_K, Qt.ControlModifier)
    qtbot.keyClick(chats.search, Qt.Key_Escape)  # the search ("sort") cleared: every chat
    assert chats.titles() == ["Sorting", "JSON", "Regex", "Threads"]
    chats.list.setFocus()
    qtbot.keyClick(chats.list, Qt.Key_Down)  # "JSON"
    qtbot.keyClick(chats.list, Qt.Key_Down, Qt.ShiftModifier)
    qtbot.keyClick(chats.list, Qt.Key_Down, Qt.ShiftModifier)
    assert set(chats.selected_ids()) == {ids["JSON"], ids["Regex"], ids["Threads"]}
    press_yes_on_the_next_question_box(qtbot)
    qtbot.keyClick(chats.list, Qt.Key_Delete)
    assert chats.titles() == ["Sorting"] and [c.id for c in storage.conversations()] == [ids["Sorting"]]
    assert storage.search_conversations("deadlock") == []

    keys = {what: k for k, what in chat.shortcuts()}
    assert keys["Search the chats"] == "Ctrl+K" and keys["Go to the question box"] == "Ctrl+L"
    assert keys["Copy the last answer"] == "Ctrl+Shift+C" and "Esc" in keys["Stop the answer (or cancel an edit)"]
    assert "Ctrl+=" in keys["Larger chat text"] and "F5" in keys["Regenerate the last answer (the earlier one is kept)"]
    close_window(w)

    w2 = open_window(qtbot, app_home)  # the pin survives a restart
    assert w2.features.chat.conversations.titles() == ["Sorting"] and w2.features.chat.conversations.pinned()
    close_window(w2)

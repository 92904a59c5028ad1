"""The real window (offscreen platform) on the real starter model."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt, QTimer, QUrl
from PySide6.QtGui import QGuiApplication

from app.core.models.embedded import BANNER
from tests.support.gui import CODE_PROMPT, LONG_PROMPT, close_window, open_window, wait_loaded

pytestmark = pytest.mark.gui









def test_ask_streams_tokens_while_the_window_stays_responsive(qtbot, app_home):
    w = open_window(qtbot, app_home, temperature=0.0, max_tokens=150)
    wait_loaded(qtbot, w)
    panel = w.features.chat.panel
    assert panel.banner.isVisible() and panel.banner_text().startswith(BANNER)
    assert panel.send_button.isEnabled() and not panel.stop_button.isEnabled()

    ticks = []  # (job running?, text in the view) sampled by a GUI-thread timer
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(
        (w.features.chat.answer_job is not None and w.features.chat.answer_job.is_running(), panel.view.toPlainText())))
    timer.start()

    qtbot.keyClicks(panel.input, LONG_PROMPT)
    with qtbot.waitSignal(w.features.chat.answer_finished, timeout=60_000) as finished:
        qtbot.keyClick(panel.input, Qt.Key_Return, Qt.ControlModifier)  # Ctrl+Enter sends
        assert panel.stop_button.isEnabled() and not panel.send_button.isEnabled()
    timer.stop()
    result = finished.args[0]

    running = [text for is_running, text in ticks if is_running]
    # The event loop kept turning while the model worked: at 10 ms a tick, dozens of ticks.
    assert len(running) > 20, f"only {len(running)} timer ticks during generation"
    # Tokens were on screen before the answer finished, and the text grew while streaming.
    streamed = [t for t in running if "Assistant" in t and len(t.split("Assistant", 1)[1].strip()) > 0]
    assert streamed, "no streamed text was visible while the worker ran"
    assert len(streamed[-1]) > len(streamed[0])

    assert result.completion_tokens > 20 and not result.cancelled
    assert result.text[:30] in panel.view.toPlainText()
    assert panel.send_button.isEnabled() and not panel.stop_button.isEnabled()
    assert panel.input.toPlainText() == ""
    assert "tok/s" in w.features.chat.stats.text()
    close_window(w)


def test_stop_interrupts_within_a_second_and_keeps_the_partial_answer(qtbot, app_home):
    w = open_window(qtbot, app_home, temperature=0.8, max_tokens=2000)
    wait_loaded(qtbot, w)
    panel = w.features.chat.panel
    panel.input.setPlainText(LONG_PROMPT)
    qtbot.mouseClick(panel.send_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: len(panel.view.streaming_text) > 20, timeout=30_000)
    with qtbot.waitSignal(w.features.chat.answer_finished, timeout=1000) as finished:
        t0 = time.perf_counter()
        qtbot.mouseClick(panel.stop_button, Qt.LeftButton)
    assert time.perf_counter() - t0 < 1.0
    result = finished.args[0]
    assert result.cancelled
    stored = w.ctx.storage.messages(w.features.chat.current_id)
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[1].meta["finish_reason"] == "cancelled"
    assert stored[1].content == result.text and len(result.text) > 20
    assert "stopped" in panel.view.toPlainText()
    assert panel.send_button.isEnabled()
    close_window(w)


def test_conversations_survive_a_restart_and_can_be_renamed_and_deleted(qtbot, app_home):
    w = open_window(qtbot, app_home, temperature=0.0, max_tokens=80)
    wait_loaded(qtbot, w)
    w.features.chat.panel.input.setPlainText(CODE_PROMPT)
    with qtbot.waitSignal(w.features.chat.answer_finished, timeout=60_000) as finished:
        qtbot.mouseClick(w.features.chat.panel.send_button, Qt.LeftButton)
    answer = finished.args[0].text
    assert w.features.chat.conversations.titles() == [CODE_PROMPT]

    # Copy button on the answer's code block puts that code on the clipboard.
    blocks = w.features.chat.panel.view.code_blocks()
    assert blocks and "def " in blocks[0]
    w.features.chat.panel.view.anchorClicked.emit(QUrl("copy:0"))
    assert QGuiApplication.clipboard().text() == blocks[0]
    close_window(w)

    w2 = open_window(qtbot, app_home)
    assert w2.features.chat.conversations.titles() == [CODE_PROMPT]
    text = w2.features.chat.panel.view.toPlainText()
    assert CODE_PROMPT in text and answer.splitlines()[-1].strip() in text

    # New, rename (editing the list item, as a double-click does), delete.
    qtbot.mouseClick(w2.features.chat.conversations.new_button, Qt.LeftButton)
    assert len(w2.features.chat.conversations.titles()) == 2
    first = w2.features.chat.conversations.list.item(0)
    new_id = first.data(Qt.UserRole)
    first.setText("Scratch")
    assert w2.ctx.storage.conversation(new_id).title == "Scratch"
    first.setText("   ")  # an empty title falls back to the default, in the list too
    assert w2.features.chat.conversations.titles()[0] == w2.ctx.storage.conversation(new_id).title == "New chat"
    w2.features.chat.delete_conversation(new_id, confirm=False)
    assert w2.features.chat.conversations.titles() == [CODE_PROMPT]
    close_window(w2)


def test_a_broken_model_file_is_shown_and_the_window_keeps_running(qtbot, app_home, text_as_gguf):
    w = open_window(qtbot, app_home, model_path=str(text_as_gguf))
    err = w.features.chat.panel.error
    qtbot.waitUntil(err.isVisible, timeout=30_000)
    assert str(text_as_gguf) in err.text() and "not a GGUF model file" in err.text()
    assert w.engine is None and not w.features.chat.panel.send_button.isEnabled()
    assert not w.features.chat.panel.banner.isVisible()  # not the starter model

    # Fixing the setting and reloading recovers without a restart.
    w.ctx.settings.model_path = ""
    w.engine_service.load()
    wait_loaded(qtbot, w)
    assert not err.isVisible() and w.features.chat.panel.send_button.isEnabled()
    close_window(w)


def test_closing_the_window_mid_answer_keeps_the_partial_answer(qtbot, app_home):
    w = open_window(qtbot, app_home, temperature=0.8, max_tokens=2000)
    wait_loaded(qtbot, w)
    w.features.chat.panel.input.setPlainText(LONG_PROMPT)
    qtbot.mouseClick(w.features.chat.panel.send_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: len(w.features.chat.panel.view.streaming_text) > 20, timeout=30_000)
    conv_id = w.features.chat.current_id
    t0 = time.perf_counter()
    close_window(w)
    assert time.perf_counter() - t0 < 2.0

    w2 = open_window(qtbot, app_home)
    stored = w2.ctx.storage.messages(conv_id)
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[1].meta["finish_reason"] == "cancelled" and len(stored[1].content) > 20
    close_window(w2)

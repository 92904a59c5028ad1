"""Settings → Preferences… and Help → Keyboard shortcuts in the real window (offscreen), on the
real starter model: opened by their keys, values typed into the boxes with QTest."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox

from app.core.net import policy
from app.core.settings import DEFAULT_SYSTEM_PROMPT, Settings
from tests.support.gui import close_window, open_window, wait_loaded

pytestmark = pytest.mark.gui


def press(qtbot, w, action) -> None:
    """The action's own shortcut (whatever this platform's is), typed in the window (a window's
    shortcut needs it to be the active one)."""
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow, timeout=5000)
    combo = action.shortcut()[0]
    QTest.keyClick(w, combo.key(), combo.keyboardModifiers())


def retype(box, text: str) -> None:
    """Select all in a box and type over it, as a user would."""
    QTest.keyClick(box, Qt.Key_A, Qt.ControlModifier)
    QTest.keyClicks(box, text)


def open_preferences(qtbot, w):
    feature = w.features.settings
    press(qtbot, w, feature.preferences_action)
    qtbot.waitUntil(lambda: feature.dialog is not None and feature.dialog.isVisible(), timeout=5000)
    return feature.dialog


def saved(w) -> Settings:
    return Settings.load(w.ctx.paths.settings_file)


def test_ok_saves_and_the_next_answer_uses_the_typed_values(qtbot, app_home):
    w = open_window(qtbot, app_home, temperature=0.0, max_tokens=200)
    wait_loaded(qtbot, w)
    assert policy.is_offline()  # offline is the default at first start
    d = open_preferences(qtbot, w)
    assert (d.max_tokens.value(), d.n_ctx.value(), d.system_prompt.toPlainText()) == (200, 4096, DEFAULT_SYSTEM_PROMPT)
    retype(d.temperature, "-0.5")  # the box takes no minus sign: a negative temperature cannot be typed
    assert d.temperature.value() == 0.5 and "-" not in d.temperature.text()
    retype(d.temperature, "0")
    retype(d.max_tokens, "5")
    retype(d.top_k, "20")
    retype(d.fix_rounds, "5")
    retype(d.first_answer_s, "8")
    QTest.keyClick(d.search_provider, Qt.Key_Down)  # DuckDuckGo → Tavily
    QTest.keyClick(d.offline, Qt.Key_Space)  # untick: online
    QTest.keyClick(d, Qt.Key_Return)  # OK
    assert not d.isVisible() and w.features.settings.question is None  # nothing here needs a reload
    s = saved(w)
    assert (s.generation.temperature, s.generation.max_tokens, s.generation.top_k) == (0.0, 5, 20)
    assert (s.fix_rounds, s.retrieval.first_answer_s, s.search_provider, s.offline) == (5, 8.0, "tavily", False)
    assert w.ctx.settings.generation.max_tokens == 5 and not policy.is_offline()
    assert w.ctx.settings.n_ctx == 4096 and w.engine.n_ctx == 4096  # the model was not touched

    panel = w.features.chat.panel
    QTest.keyClicks(panel.input, "Write a long story about a dragon.")
    with qtbot.waitSignal(w.features.chat.answer_finished, timeout=60_000) as finished:
        QTest.keyClick(panel.input, Qt.Key_Return, Qt.ControlModifier)
    result = finished.args[0]
    assert result.completion_tokens == 5 and result.finish_reason == "length"
    close_window(w)


def test_a_context_past_the_trained_length_is_refused_and_a_change_asks_before_reloading(qtbot, app_home):
    w = open_window(qtbot, app_home)
    wait_loaded(qtbot, w)
    d = open_preferences(qtbot, w)
    assert "trained on up to 8,192 tokens" in d.trained_line.text()
    assert "context 4,096" in d.memory_line.text() and "fits" in d.memory_line.text()
    before = d.memory.needed
    retype(d.n_ctx, "2048")
    assert "context 2,048" in d.memory_line.text() and d.memory.needed < before  # the line follows the box
    retype(d.n_ctx, "9000")
    assert d.error.isVisible() and "Context size 9,000 is more than this model was trained on" in d.error.text()
    QTest.keyClick(d, Qt.Key_Return)  # OK is refused, with the reason still shown
    assert d.isVisible() and w.features.settings.question is None
    assert w.ctx.settings.n_ctx == 4096 and not w.ctx.paths.settings_file.exists()

    retype(d.n_ctx, "2048")
    retype(d.n_threads, "1")
    assert not d.error.isVisible()
    QTest.keyClick(d, Qt.Key_Return)
    question = w.features.settings.question
    qtbot.waitUntil(lambda: question.isVisible(), timeout=5000)
    assert "2,048" in question.text()
    QTest.keyClick(question, Qt.Key_Escape)  # Cancel: nothing changes, the dialog stays
    qtbot.waitUntil(lambda: not question.isVisible(), timeout=5000)
    assert d.isVisible() and w.ctx.settings.n_ctx == 4096 and w.engine.n_ctx == 4096

    QTest.keyClick(d, Qt.Key_Return)
    question = w.features.settings.question
    qtbot.waitUntil(lambda: question.isVisible(), timeout=5000)
    old_engine = w.engine
    QTest.keyClick(question, Qt.Key_Return)  # the default: Reload now
    assert not d.isVisible()
    qtbot.waitUntil(lambda: w.engine is not None and w.engine is not old_engine and w.engine.n_ctx == 2048, timeout=60_000)
    assert w.engine.model.n_threads == 1
    assert (saved(w).n_ctx, saved(w).n_threads) == (2048, 1)
    qtbot.waitUntil(lambda: "context 2048" in w.features.models.label.text(), timeout=5000)
    close_window(w)


def test_reset_to_default_puts_the_system_prompt_back(qtbot, app_home):
    w = open_window(qtbot, app_home, system_prompt="Answer like a pirate.")
    d = open_preferences(qtbot, w)
    assert d.system_prompt.toPlainText() == "Answer like a pirate."
    QTest.keyClick(d.system_prompt, Qt.Key_End, Qt.ControlModifier)
    QTest.keyClicks(d.system_prompt, " Arr!")
    assert d.system_prompt.toPlainText() == "Answer like a pirate. Arr!"
    QTest.keyClick(d.reset_prompt, Qt.Key_Space)
    assert d.system_prompt.toPlainText() == DEFAULT_SYSTEM_PROMPT
    QTest.keyClick(d, Qt.Key_Return)
    assert not d.isVisible()
    assert w.ctx.settings.system_prompt == DEFAULT_SYSTEM_PROMPT == saved(w).system_prompt
    close_window(w)


def write_settings(app_home, text: str):
    path = app_home / "config" / "settings.toml"
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_an_out_of_range_settings_file_is_clamped_and_said_once(qtbot, app_home):
    text = "fix_rounds = 500\n[generation]\ntemperature = 9.5\n"
    path = write_settings(app_home, text)
    w = open_window(qtbot, app_home)
    assert (w.ctx.settings.generation.temperature, w.ctx.settings.fix_rounds) == (5.0, 100)
    assert "settings.toml: 2 value(s) could not be used" in w.statusBar().currentMessage()
    feature = w.features.settings
    qtbot.waitUntil(lambda: feature.notice is not None and feature.notice.isVisible(), timeout=5000)
    notice = feature.notice.informativeText()
    assert "'generation.temperature' is 9.5, above the most it may be (5); 5.0 is used" in notice
    assert "'fix_rounds' is 500, above the most it may be (100); 100 is used" in notice
    wait_loaded(qtbot, w)
    notices = [b for b in w.findChildren(QMessageBox) if b.objectName() == "settingsNotice" and b.isVisible()]
    assert notices == [feature.notice]  # once
    QTest.keyClick(feature.notice, Qt.Key_Return)
    assert not feature.notice.isVisible()
    assert path.read_text(encoding="utf-8") == text  # the user's file is kept until settings are saved

    d = open_preferences(qtbot, w)
    assert d.temperature.value() == 5.0 and d.fix_rounds.value() == 100
    assert "5.0 is used" in d.findChild(type(d.trained_line), "startNotes").text()
    QTest.keyClick(d, Qt.Key_Return)
    assert not d.isVisible()
    s, notes = Settings.load_checked(path)
    assert notes == [] and (s.generation.temperature, s.fix_rounds) == (5.0, 100)  # OK wrote the corrected file
    close_window(w)

    w2 = open_window(qtbot, app_home)
    assert w2.features.settings.start_notes == []
    assert "settings.toml" not in w2.statusBar().currentMessage()
    wait_loaded(qtbot, w2)
    assert w2.features.settings.notice is None
    close_window(w2)


def test_a_context_longer_than_the_model_was_trained_on_loads_again_at_its_length(qtbot, app_home):
    path = write_settings(app_home, "n_ctx = 16384\n")
    w = open_window(qtbot, app_home)
    notes = []
    w.engine_service.loaded.connect(lambda lm: notes.append((lm.engine.n_ctx, lm.note)))
    # The starter was trained on 8,192 tokens: loaded at 16,384, it loads again at 8,192, saying so.
    qtbot.waitUntil(lambda: len(notes) == 2 and w.engine_service.busy_text() is None, timeout=60_000)
    assert notes[0] == (16384, None) and notes[1][0] == 8192 == w.engine.n_ctx
    assert "context size 16,384 is more than this model was trained on, so 8,192 is used" in notes[1][1]
    assert Settings.load(path).n_ctx == 8192
    close_window(w)

    w2 = open_window(qtbot, app_home)  # saved: one load at the right length from now on
    loads = []
    w2.engine_service.loaded.connect(lambda lm: loads.append(lm.engine.n_ctx))
    wait_loaded(qtbot, w2)  # a second load would start before the engine is free: none did
    assert loads == [8192]
    close_window(w2)


def test_settings_that_cannot_be_saved_say_so_and_keep_the_typed_values(qtbot, app_home):
    path = app_home / "config" / "settings.toml"
    path.mkdir(parents=True)  # a folder where the file goes: it can be neither read nor replaced
    w = open_window(qtbot, app_home)
    feature = w.features.settings
    qtbot.waitUntil(lambda: feature.notice is not None and feature.notice.isVisible(), timeout=5000)
    assert "settings.toml cannot be read" in feature.notice.informativeText()
    QTest.keyClick(feature.notice, Qt.Key_Return)
    d = open_preferences(qtbot, w)
    retype(d.max_tokens, "7")
    QTest.keyClick(d, Qt.Key_Return)
    assert d.isVisible() and d.max_tokens.value() == 7  # nothing typed is lost
    assert d.error.isVisible() and "could not be saved" in d.error.text() and "this session only" in d.error.text()
    assert w.ctx.settings.generation.max_tokens == 7
    path.rmdir()  # the disk is writable again: OK saves
    QTest.keyClick(d, Qt.Key_Return)
    assert not d.isVisible() and Settings.load(path).generation.max_tokens == 7
    close_window(w)


def test_f1_lists_every_shortcut_in_this_platform_s_words(qtbot, app_home):
    w = open_window(qtbot, app_home)
    feature = w.features.settings
    assert feature.shortcuts_action.shortcut() == QKeySequence.keyBindings(QKeySequence.HelpContents)[0]
    press(qtbot, w, feature.shortcuts_action)  # F1
    qtbot.waitUntil(lambda: feature.shortcuts_dialog is not None and feature.shortcuts_dialog.isVisible(),
                    timeout=5000)
    rows = feature.shortcuts_dialog.rows()
    native = QKeySequence.NativeText
    new_keys = QKeySequence(QKeySequence.New).toString(native)
    send_keys = {QKeySequence(k).toString(native) for k in ("Ctrl+Return", "Ctrl+Enter")}
    assert any(k == new_keys and "new chat" in what.lower() for k, what in rows), rows
    assert any(k in send_keys and "send" in what.lower() for k, what in rows), rows
    assert ("F1", "Keyboard shortcuts") in rows
    assert (feature.preferences_action.shortcut().toString(native), "Preferences") in rows
    assert len(rows) == len(set(rows))
    QTest.keyClick(feature.shortcuts_dialog, Qt.Key_Escape)
    assert not feature.shortcuts_dialog.isVisible()
    close_window(w)

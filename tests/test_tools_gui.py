"""The chat's tools in the real window: /search and /web against a real HTTP server on
127.0.0.1 playing DuckDuckGo, refusal while offline (no request reaches the server), Run on a
code block (sandbox output streamed into the chat), shell only after a confirmation, and /fix
feeding the real error back to the model."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QUrl

from app.core.net import policy
from tests.fake_search import FakeSearch
from tests.test_gui import close_window, open_window, wait_loaded
from tests.test_web import ARTICLE

pytestmark = pytest.mark.gui


@pytest.fixture
def fake(monkeypatch):
    with FakeSearch() as f:
        monkeypatch.setenv("OFFLINE_CODER_SEARCH_URL", f.search_url)
        f.results["*"] = [("Sorting lists in Python", f.page_url("sorting"), "list.sort() and sorted()", None)]
        f.pages["sorting"] = (200, "text/html; charset=utf-8", ARTICLE)
        yield f


@pytest.fixture
def window(qtbot, app_home):
    # offline is the default; these tests turn it on themselves
    w = open_window(qtbot, app_home, max_tokens=48, offline=False)
    wait_loaded(qtbot, w)
    yield w
    close_window(w)


def stored(w):
    return w.ctx.storage.messages(w.current_id)


def test_search_command_lists_linked_results(window, qtbot, fake):
    with qtbot.waitSignal(window.tool_finished, timeout=30_000) as sig:
        window.send("/search python sort key")
    assert "[Sorting lists in Python](" + fake.page_url("sorting") + ")" in sig.args[0]
    assert fake.count >= 1
    last = stored(window)[-1]
    assert last.role == "assistant" and last.meta["tool"] == "search"
    assert "Sorting lists in Python" in window.chat_panel.view.toPlainText()


@pytest.mark.parametrize("text", ["/search anything", "/web what is new", "найди в интернете новости Python"])
def test_web_tools_are_refused_offline_and_nothing_is_sent(window, qtbot, fake, text):
    policy.set_offline(True)
    with qtbot.waitSignal(window.tool_failed, timeout=30_000) as sig:
        window.send(text)
    assert "Offline" in sig.args[0]
    assert "Offline" in window.chat_panel.error.text()
    assert fake.count == 0


def test_web_answer_reads_the_pages_and_cites_them(window, qtbot, fake):
    with qtbot.waitSignal(window.answer_finished, timeout=120_000):
        window.send("search the web for how to sort a list in python")
    last = stored(window)[-1]
    assert last.role == "assistant" and last.meta["tool"] == "web"
    assert last.meta["sources"] == [fake.page_url("sorting")]
    paths = [r.path for r in fake.requests]
    assert "/html/" in paths and any(p.endswith("sorting") for p in paths)
    assert "127.0.0.1" in window.chat_panel.view.toPlainText()  # the Sources link


def test_run_link_streams_sandbox_output_into_the_chat(window, qtbot):
    w = window
    w.current_id = w.ctx.storage.create_conversation().id
    w.ctx.storage.add_message(w.current_id, "assistant", "Try:\n```python\nprint('hello from the sandbox')\n```\n")
    w._show_conversation()
    with qtbot.waitSignal(w.code_ran, timeout=30_000) as sig:
        w.chat_panel.view.anchorClicked.emit(QUrl("run:0"))
    runs, result = sig.args[0]
    assert runs == 1 and result.exit_code == 0
    assert "hello from the sandbox" in w.chat_panel.view.toPlainText()
    out = stored(w)[-1]
    assert out.role == "system" and out.meta["tool"] == "run" and "hello from the sandbox" in out.content


def test_shell_code_runs_only_after_confirmation(window, qtbot):
    w = window
    asked = []
    w.confirm_shell = lambda code: asked.append(code) or False
    w.run_block("echo hi\n", "bash")
    assert asked == ["echo hi\n"] and (w.answer_job is None or not w.answer_job.is_running())
    w.confirm_shell = lambda code: True
    with qtbot.waitSignal(w.code_ran, timeout=30_000) as sig:
        w.run_block("echo hi\n", "bash")
    assert sig.args[0][1].stdout.strip() == "hi"


def test_fix_feeds_the_error_back_and_shows_each_round(window, qtbot):
    w = window
    w.ctx.settings.fix_rounds = 2
    w.current_id = w.ctx.storage.create_conversation().id
    w.ctx.storage.add_message(w.current_id, "assistant", "```python\ntotal = 1 / 0\nprint(total)\n```\n")
    w._show_conversation()
    with qtbot.waitSignal(w.code_ran, timeout=120_000):
        w.send("/fix")
    msgs = stored(w)
    runs = [m for m in msgs if m.meta.get("tool") == "run"]
    requests = [m for m in msgs if m.role == "user" and m.meta.get("tool") == "fix"]
    answers = [m for m in msgs if m.role == "assistant" and m.meta.get("tool") == "fix"]
    assert "ZeroDivisionError" in runs[0].content
    assert len(requests) == 1 and "ZeroDivisionError" in requests[0].content and "1 / 0" in requests[0].content
    assert len(answers) == 1
    assert 1 <= len(runs) <= 2
    text = w.chat_panel.view.toPlainText()
    assert "Output" in text and "ZeroDivisionError" in text


def test_fix_without_code_says_so(window):
    window.current_id = window.ctx.storage.create_conversation().id
    window.send("/fix")
    assert "no Python or shell code block" in window.chat_panel.error.text()

"""The chat's tools in the real window: /search and /web against a real HTTP server on
127.0.0.1 playing DuckDuckGo, refusal while offline (no request reaches the server), Run on a
code block (sandbox output streamed into the chat), shell only after a confirmation, and /fix
feeding the real error back to the model."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QUrl

from app.core.net import policy
from tests.support.fake_search import FakeSearch
from tests.support.gui import close_window, open_window, wait_loaded
from tests.support.pages import ARTICLE

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
    return w.ctx.storage.messages(w.features.chat.current_id)


def test_search_command_lists_linked_results(window, qtbot, fake):
    with qtbot.waitSignal(window.features.tools.tool_finished, timeout=30_000) as sig:
        window.features.chat.send("/search python sort key")
    assert "[Sorting lists in Python](" + fake.page_url("sorting") + ")" in sig.args[0]
    assert fake.count >= 1
    last = stored(window)[-1]
    assert last.role == "assistant" and last.meta["tool"] == "search"
    assert "Sorting lists in Python" in window.features.chat.panel.view.toPlainText()


@pytest.mark.parametrize("text", ["/search anything", "/web what is new", "найди в интернете новости Python"])
def test_web_tools_are_refused_offline_and_nothing_is_sent(window, qtbot, fake, text):
    policy.set_offline(True)
    with qtbot.waitSignal(window.features.tools.tool_failed, timeout=30_000) as sig:
        window.features.chat.send(text)
    assert "Offline" in sig.args[0]
    assert "Offline" in window.features.chat.panel.error.text()
    assert fake.count == 0


def test_web_answer_reads_the_pages_and_cites_them(window, qtbot, fake):
    with qtbot.waitSignal(window.features.chat.answer_finished, timeout=120_000):
        window.features.chat.send("search the web for how to sort a list in python")
    last = stored(window)[-1]
    assert last.role == "assistant" and last.meta["tool"] == "web"
    assert last.meta["sources"] == [fake.page_url("sorting")]
    paths = [r.path for r in fake.requests]
    assert "/html/" in paths and any(p.endswith("sorting") for p in paths)
    assert "127.0.0.1" in window.features.chat.panel.view.toPlainText()  # the Sources link


def test_run_link_streams_sandbox_output_into_the_chat(window, qtbot):
    w = window
    w.features.chat.current_id = w.ctx.storage.create_conversation().id
    w.ctx.storage.add_message(w.features.chat.current_id, "assistant", "Try:\n```python\nprint('hello from the sandbox')\n```\n")
    w.features.chat.show_conversation()
    with qtbot.waitSignal(w.features.tools.code_ran, timeout=30_000) as sig:
        w.features.chat.panel.view.anchorClicked.emit(QUrl("run:0"))
    runs, result = sig.args[0]
    assert runs == 1 and result.exit_code == 0
    assert "hello from the sandbox" in w.features.chat.panel.view.toPlainText()
    out = stored(w)[-1]
    assert out.role == "system" and out.meta["tool"] == "run" and "hello from the sandbox" in out.content


def test_shell_code_runs_only_after_confirmation(window, qtbot):
    w = window
    asked = []
    w.features.tools.confirm_shell = lambda code: asked.append(code) or False
    w.features.tools.run_block("echo hi\n", "bash")
    assert asked == ["echo hi\n"] and (w.features.chat.answer_job is None or not w.features.chat.answer_job.is_running())
    w.features.tools.confirm_shell = lambda code: True
    with qtbot.waitSignal(w.features.tools.code_ran, timeout=30_000) as sig:
        w.features.tools.run_block("echo hi\n", "bash")
    assert sig.args[0][1].stdout.strip() == "hi"


def test_fix_feeds_the_error_back_and_shows_each_round(window, qtbot):
    w = window
    w.ctx.settings.fix_rounds = 2
    w.features.chat.current_id = w.ctx.storage.create_conversation().id
    w.ctx.storage.add_message(w.features.chat.current_id, "assistant", "```python\ntotal = 1 / 0\nprint(total)\n```\n")
    w.features.chat.show_conversation()
    with qtbot.waitSignal(w.features.tools.code_ran, timeout=120_000):
        w.features.chat.send("/fix")
    msgs = stored(w)
    runs = [m for m in msgs if m.meta.get("tool") == "run"]
    requests = [m for m in msgs if m.role == "user" and m.meta.get("tool") == "fix"]
    answers = [m for m in msgs if m.role == "assistant" and m.meta.get("tool") == "fix"]
    assert "ZeroDivisionError" in runs[0].content
    assert len(requests) == 1 and "ZeroDivisionError" in requests[0].content and "1 / 0" in requests[0].content
    assert len(answers) == 1
    assert 1 <= len(runs) <= 2
    text = w.features.chat.panel.view.toPlainText()
    assert "Output" in text and "ZeroDivisionError" in text


def test_fix_without_code_says_so(window):
    window.features.chat.current_id = window.ctx.storage.create_conversation().id
    window.features.chat.send("/fix")
    assert "no Python or shell code block" in window.features.chat.panel.error.text()


FIXED_CALC = "calc.py\n```python\ndef add(a, b):\n    return a + b\n```\n"


@pytest.fixture
def failing_project(tmp_path):
    from tests.support.calc_project import make_project
    return make_project(tmp_path / "calcproj")


def test_fix_runs_the_projects_tests_asks_for_a_change_and_reruns_after_apply(window, qtbot, failing_project):
    """Round 1 is all real: the tests fail in the sandbox, the real model gets the failure with
    calc.py and answers. The starter model cannot write the right fix, so the test then offers
    the change a better model would (through the same Changes pane) and applies it: round 2
    must start by itself and pass."""
    w = window
    w.ctx.settings.fix_rounds = 3
    w.features.project.open(failing_project)
    w.features.chat.current_id = w.ctx.storage.create_conversation().id
    with qtbot.waitSignal(w.features.changes.changes_planned, timeout=120_000):
        with qtbot.waitSignal(w.features.chat.answer_finished, timeout=120_000):
            w.features.chat.send("/fix")
    msgs = stored(w)
    runs = [m for m in msgs if m.meta.get("tests")]
    assert len(runs) == 1 and "FAILED tests/test_calc.py::test_add" in runs[0].content
    assert runs[0].meta["round"] == 1 and runs[0].meta["exit_code"] == 1
    request = [m for m in msgs if m.role == "user" and m.content.startswith("The project's tests fail")]
    assert len(request) == 1 and "Files involved: calc.py, tests/test_calc.py" in request[0].content
    assert w.features.chat.pending is None and msgs[-1].role == "assistant"  # the model's answer is kept
    assert w.features.tools.test_fixer.active and (failing_project / "calc.py").read_text().endswith("a - b\n")
    text = w.features.chat.panel.view.toPlainText()
    assert "round 1/3 · tests fail" in text and "assert -1 == 5" in text

    with qtbot.waitSignal(w.features.changes.changes_planned, timeout=10_000):
        w.features.changes.show_changes(FIXED_CALC, None)
    with qtbot.waitSignal(w.features.tools.test_fixer.finished, timeout=60_000) as done:
        w.features.changes.panel.apply_button.click()
    rounds, run, reason = done.args[0]
    assert rounds == 2 and run.passed and reason == "Tests pass after 2 rounds"
    assert [m.meta["exit_code"] for m in stored(w) if m.meta.get("tests")] == [1, 0]
    assert w.features.chat.stats.text() == reason and not w.features.tools.test_fixer.active


def test_fix_on_tests_stops_when_the_rounds_are_used_up(window, qtbot, failing_project):
    w = window
    w.ctx.settings.fix_rounds = 1
    w.features.project.open(failing_project)
    w.features.chat.current_id = w.ctx.storage.create_conversation().id
    with qtbot.waitSignal(w.features.tools.test_fixer.finished, timeout=60_000) as done:
        w.features.chat.send("/fix tests")
    assert done.args[0][2] == "Still failing after 1 round"
    assert not any(m.role == "assistant" for m in stored(w))  # the model was not asked


def test_fix_code_still_means_the_code_block_with_a_project_open(window, qtbot, failing_project):
    w = window
    w.ctx.settings.fix_rounds = 1
    w.features.project.open(failing_project)
    w.features.chat.current_id = w.ctx.storage.create_conversation().id
    w.ctx.storage.add_message(w.features.chat.current_id, "assistant", "```python\nprint(6 * 7)\n```\n")
    with qtbot.waitSignal(w.features.tools.code_ran, timeout=30_000) as sig:
        w.features.chat.send("/fix code")
    assert sig.args[0][1].stdout.strip() == "42"

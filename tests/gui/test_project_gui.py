"""The Project panel in the real window: indexing with progress, the chunk count, search,
citations that show the right lines, answers grounded in the project, files followed."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt, QUrl

from app.core.engine import GenerationParams
from tests.support.index_project import INDEXED, make_project
from tests.support.gui import close_window, open_window, wait_loaded

pytestmark = pytest.mark.gui


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path / "shop")


def open_indexed(qtbot, app_home, project, **kw):
    w = open_window(qtbot, app_home, **kw)
    progress = []
    with qtbot.waitSignal(w.features.project.index_finished, timeout=120_000) as sig:
        w.features.project.open(project)
        assert w.features.project.dock.isVisible() and w.features.project.panel.progress.isVisible()
        w.features.project.index_job.progressed.connect(lambda *a: None)
        w.features.project.index_job.partial.connect(lambda p: progress.append(w.features.project.panel.progress_note.text()))
    return w, sig.args[0], progress


def test_opening_a_folder_indexes_it_with_progress_and_shows_the_count(qtbot, app_home, project):
    w, stats, progress = open_indexed(qtbot, app_home, project)
    panel = w.features.project.panel
    assert stats.files == len(INDEXED) and stats.chunks == stats.embedded > 0
    assert any(p.startswith("Embedding") and "/s" in p for p in progress)
    assert not panel.progress.isVisible()
    assert f"{stats.chunks} chunks" in panel.status.text() and f"{len(INDEXED)} files" in panel.status.text()

    with qtbot.waitSignal(w.features.project.search_finished, timeout=20_000) as found:
        panel.search.setText("charge a credit card")
        panel.search.returnPressed.emit()
    hits = found.args[0]
    assert hits[0].chunk.path == "shop/gateway.py"
    assert panel.result_count() == len(hits)
    panel.results.setCurrentRow(0)
    assert panel.snippet_title.text() == hits[0].citation
    assert "def charge_card" in panel.snippet_text()
    close_window(w)


def test_a_citation_click_shows_the_cited_lines(qtbot, app_home, project):
    w, _stats, _ = open_indexed(qtbot, app_home, project)
    lines = (project / "shop/cart.py").read_text().split("\n")
    start = lines.index("def apply_discount(total_cents, percent):") + 1
    view = w.features.chat.panel.view
    view.add_message("assistant", f"The discount is computed in `shop/cart.py:{start}-{start + 2}`.")
    assert f"cite:shop/cart.py:{start}-{start + 2}" in view.toHtml()
    with qtbot.waitSignal(w.features.project.snippet_shown, timeout=10_000):
        view.anchorClicked.emit(QUrl(f"cite:shop/cart.py:{start}-{start + 2}"))
    text = w.features.project.panel.snippet_text()
    assert text.split("\n") == [f"{start + i}  {lines[start - 1 + i]}" for i in range(3)]
    # a citation of lines that no longer exist says so instead of failing silently
    view.anchorClicked.emit(QUrl("cite:shop/cart.py:900-910"))
    qtbot.waitUntil(lambda: "line 900 is gone" in w.features.project.panel.error.text(), timeout=10_000)
    close_window(w)


def test_the_index_follows_file_changes(qtbot, app_home, project):
    w, stats, _ = open_indexed(qtbot, app_home, project)
    with qtbot.waitSignal(w.features.project.index_finished, timeout=60_000) as sig:
        (project / "shop/refunds.py").write_text(
            "def refund_order(order_id):\n    \"\"\"Give the customer their money back.\"\"\"\n    return order_id\n")
    assert sig.args[0].changed == 1 and sig.args[0].embedded_now >= 1
    with qtbot.waitSignal(w.features.project.search_finished, timeout=20_000) as found:
        w.features.project.search("refund_order")
    assert found.args[0][0].chunk.path == "shop/refunds.py"
    close_window(w)


@pytest.mark.slow
def test_an_answer_about_the_project_is_grounded_and_lists_its_sources(qtbot, app_home, project):
    w, _stats, _ = open_indexed(qtbot, app_home, project, max_tokens=40)
    wait_loaded(qtbot, w)
    w.features.chat.service.params = lambda: GenerationParams.greedy(max_tokens=40)
    seen = {}
    real_prompt = w.features.chat.service.prompt

    def spy(engine, pending):
        seen["messages"] = real_prompt(engine, pending)
        return seen["messages"]

    w.features.chat.service.prompt = spy
    with qtbot.waitSignal(w.features.chat.answer_finished, timeout=180_000):
        w.features.chat.send("How is a card charged?")
    # the code comes with the question (the system prompt stays the same from turn to turn)
    system, asked = seen["messages"][0]["content"], seen["messages"][-1]["content"]
    assert "[shop/gateway.py:" in asked and "def charge_card" in asked and asked.endswith("How is a card charged?")
    assert "cite every piece you use" in system and "def charge_card" not in system
    stored = w.ctx.storage.messages(w.features.chat.current_id)[-1]
    assert stored.role == "assistant" and any(s.startswith("shop/gateway.py:") for s in stored.meta["sources"])
    html = w.features.chat.panel.view.toHtml()
    assert "Sources:" in w.features.chat.panel.view.toPlainText() and "cite:shop/gateway.py:" in html

    # the user can turn grounding off: the next question goes without project code
    w.features.project.panel.use_project.setChecked(False)
    qtbot.waitUntil(lambda: not w.features.chat.answer_job.is_running(), timeout=10_000)
    with qtbot.waitSignal(w.features.chat.answer_finished, timeout=180_000):
        w.features.chat.send("How is a card charged?")
    assert "[shop/gateway.py:" not in seen["messages"][-1]["content"]  # the new question carries no code
    assert seen["messages"][-1]["content"] == "How is a card charged?"
    assert "cite every piece" not in seen["messages"][0]["content"]
    assert "sources" not in w.ctx.storage.messages(w.features.chat.current_id)[-1].meta
    assert "use_project = false" in (app_home / "config" / "settings.toml").read_text()
    close_window(w)


def test_cancel_keeps_what_was_done(qtbot, app_home, project):
    w = open_window(qtbot, app_home)
    with qtbot.waitSignal(w.features.project.index_finished, timeout=120_000) as sig:
        w.features.project.open(project)
        qtbot.waitUntil(lambda: w.features.project.index is not None, timeout=30_000)
        w.features.project.panel.cancel_button.click()
    stats = sig.args[0]
    assert stats.cancelled and "stopped" in w.features.project.panel.status.text()
    with qtbot.waitSignal(w.features.project.index_finished, timeout=120_000) as sig2:
        w.features.project.panel.reindex_button.click()
    assert not sig2.args[0].cancelled and sig2.args[0].embedded == sig2.args[0].chunks
    assert w.features.project.panel.status.text().startswith(f"{len(INDEXED)} files")
    close_window(w)


def test_results_list_is_keyboard_reachable(qtbot, app_home, project):
    w, _s, _ = open_indexed(qtbot, app_home, project)
    panel = w.features.project.panel
    with qtbot.waitSignal(w.features.project.search_finished, timeout=20_000):
        qtbot.keyClicks(panel.search, "formatPrice")
        qtbot.keyClick(panel.search, Qt.Key_Return)
    assert panel.results.item(0).text().startswith("1. web/types.ts:")
    close_window(w)

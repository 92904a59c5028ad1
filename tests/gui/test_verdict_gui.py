"""The verdict in the Adapters panel: measured right after importing a zip that carries its
validation split, stored, shown as a column, a tooltip and in the details; Evaluate… on a file
the user picks; Cancel leaves the adapter imported but not evaluated."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from tests.support import gui
from tests.support.verdict_data import CHATS, jsonl, validation_zip

pytestmark = pytest.mark.gui


@pytest.fixture
def window(qtbot, app_home):
    w = gui.open_window(qtbot, app_home, max_tokens=12)
    gui.wait_loaded(qtbot, w)
    yield w
    gui.close_window(w)


def pick(monkeypatch, path) -> list:
    asked = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        lambda _parent, title, start, _filter: (asked.append((title, start)), (str(path), ""))[1])
    return asked


def test_import_measures_the_adapter_and_evaluate_measures_it_again(window, qtbot, monkeypatch, tmp_path):
    w, panel = window, window.features.adapters.panel
    pick(monkeypatch, validation_zip(tmp_path / "noisy-lora.zip", b_scale=0.5, seed=1))
    with qtbot.waitSignal(w.features.adapters.adapter_evaluated, timeout=180_000) as evaluated:
        with qtbot.waitSignal(w.features.adapters.adapter_imported, timeout=60_000) as imported:
            qtbot.mouseClick(panel.import_button, Qt.LeftButton)
        assert panel.stage.text() == "Evaluating…" and panel.cancel_button.isVisible()
        assert not panel.import_button.isEnabled() and not panel.evaluate_button.isEnabled()
    a, verdict = imported.args[0], evaluated.args[0]
    assert verdict.kind == "worse" and verdict.data == "its validation split" and verdict.examples == 3
    item = panel.item(a.id)
    assert item.text(2) == verdict.short and item.text(2).endswith("(worse)")
    assert item.toolTip(2) == verdict.text
    assert verdict.text in panel.details.text() and f"on {verdict.tokens} tokens of 3 examples" in panel.details.text()
    assert w.features.adapters.store.get(a.id).verdict["text"] == verdict.text
    assert not panel.progress.isVisible() and panel.import_button.isEnabled()
    assert w.engine.adapters == []  # measuring never leaves the adapter switched on
    qtbot.waitUntil(lambda: not w.features.adapters.verdict_job.is_running())

    picked = tmp_path / "shop-code.jsonl"
    picked.write_text(jsonl([{"messages": m, "split": "valid", "source": "project:write:a.py#L1-L2"}
                             for m in CHATS[:2]]))
    asked = pick(monkeypatch, picked)
    panel.tree.setCurrentItem(item)
    assert panel.evaluate_button.isEnabled()
    with qtbot.waitSignal(w.features.adapters.adapter_evaluated, timeout=180_000) as again:
        qtbot.mouseClick(panel.evaluate_button, Qt.LeftButton)
    assert asked == [(f"Evaluate {a.name} on…", str(a.validation_file))]  # its own split is offered first
    assert again.args[0].data == "your code" and again.args[0].examples == 2
    assert "on your code" in panel.item(a.id).toolTip(2)
    stored = json.loads((a.validation_file.parent / "verdict.json").read_text())
    assert stored["data"] == "your code" and stored["examples"] == 2


def test_cancel_keeps_the_adapter_without_a_verdict(window, qtbot, monkeypatch, tmp_path):
    w, panel = window, window.features.adapters.panel
    rows = [{"messages": CHATS[1]} for _ in range(40)]  # enough work to cancel in the middle of it
    pick(monkeypatch, validation_zip(tmp_path / "zero-lora.zip", rows=[r["messages"] for r in rows]))
    with qtbot.waitSignal(w.features.adapters.adapter_imported, timeout=60_000) as imported:
        qtbot.mouseClick(panel.import_button, Qt.LeftButton)
    assert w.features.adapters.verdict_job is not None and w.features.adapters.verdict_job.is_running()
    w.engine_service.switch("/nowhere/else.gguf")  # refused while the engine is being measured
    assert w.ctx.settings.model_path != "/nowhere/else.gguf"
    assert "being evaluated" in w.statusBar().currentMessage()
    with qtbot.waitSignal(w.features.adapters.verdict_job.finished, timeout=60_000):
        qtbot.mouseClick(panel.cancel_button, Qt.LeftButton)
    a = imported.args[0]
    item = panel.item(a.id)
    assert item.text(2) == "not evaluated" and w.features.adapters.store.get(a.id).verdict is None
    assert "Evaluation cancelled" in w.statusBar().currentMessage()
    assert not panel.error.isVisible() and panel.import_button.isEnabled()
    panel.tree.setCurrentItem(item)
    assert "its validation split is waiting" in panel.details.text()

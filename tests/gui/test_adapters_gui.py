"""The Adapters panel in the real window: import through the file dialog, the list, the
checkbox and the strength slider change the live engine's adapters."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from tests.support.adapter_zip import make_adapter_zip, tree, write_zip, adapter_members
from app.core.engine import GenerationParams
from tests.support import gui

pytestmark = pytest.mark.gui
PROMPT = [{"role": "user", "content": "Write a Python function that adds two numbers."}]


def open_window(qtbot, home):
    w = gui.open_window(qtbot, home, max_tokens=12)
    gui.wait_loaded(qtbot, w)
    return w


@pytest.fixture
def window(qtbot, app_home):
    w = open_window(qtbot, app_home)
    yield w
    gui.close_window(w)


def greedy(w):
    return w.engine.chat(PROMPT, GenerationParams.greedy(24)).text


def import_via_dialog(w, qtbot, monkeypatch, zip_path):
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(zip_path), "LoRA adapter zip (*.zip)"))
    with qtbot.waitSignal(w.features.adapters.adapter_imported, timeout=60_000) as sig:
        qtbot.mouseClick(w.features.adapters.panel.import_button, Qt.LeftButton)
    return sig.args[0]


def test_import_enable_scale_disable_change_the_engine(window, qtbot, monkeypatch, tmp_path):
    w, panel = window, window.features.adapters.panel
    base = greedy(w)
    a = import_via_dialog(w, qtbot, monkeypatch, make_adapter_zip(tmp_path / "noisy-lora.zip", b_scale=0.5, seed=1))
    assert w.features.adapters.dock.isVisible()
    item = panel.item(a.id)
    group = item.parent()
    assert group.text(0) == f"For {w.engine_service.model.name} (loaded)"
    assert item.text(0) == "noisy" and item.checkState(0) == Qt.Unchecked
    assert panel.tree.currentItem() is item
    assert "Rank 8, alpha 16" in panel.details.text() and "HuggingFaceTB/SmolLM2-135M-Instruct" in panel.details.text()
    assert "2.500 → 0.400" in panel.details.text()
    assert w.engine.adapters == []

    with qtbot.waitSignal(w.features.adapters.adapters_applied, timeout=30_000):
        item.setCheckState(0, Qt.Checked)
    assert w.engine.adapters == [(a.file.resolve(), 1.0)]
    assert "noisy ×1.00" in w.features.models.label.text()
    with_adapter = greedy(w)
    assert with_adapter != base

    with qtbot.waitSignal(w.features.adapters.adapters_applied, timeout=30_000):
        panel.scale.setValue(0)  # keyboard/click path: applies at once
    assert w.engine.adapters == [(a.file.resolve(), 0.0)]
    assert item.text(1) == "0.00×"
    assert greedy(w) == base

    with qtbot.waitSignal(w.features.adapters.adapters_applied, timeout=30_000):
        panel.scale.setValue(100)
    assert greedy(w) == with_adapter

    with qtbot.waitSignal(w.features.adapters.adapters_applied, timeout=30_000):
        item.setCheckState(0, Qt.Unchecked)
    assert w.engine.adapters == []
    assert greedy(w) == base


def test_answers_record_the_adapter_and_the_choice_survives_a_restart(qtbot, app_home, monkeypatch, tmp_path):
    w = open_window(qtbot, app_home)
    a = import_via_dialog(w, qtbot, monkeypatch, make_adapter_zip(tmp_path / "zero-lora.zip"))
    with qtbot.waitSignal(w.features.adapters.adapters_applied, timeout=30_000):
        w.features.adapters.panel.item(a.id).setCheckState(0, Qt.Checked)
    with qtbot.waitSignal(w.features.chat.answer_finished, timeout=60_000):
        w.features.chat.send("hello")
    last = w.ctx.storage.messages(w.features.chat.current_id)[-1]
    assert last.meta["adapters"] == ["zero ×1.00"]
    gui.close_window(w)

    w2 = open_window(qtbot, app_home)  # the enabled adapter is applied at load, before any answer
    try:
        assert w2.engine.adapters == [(a.file.resolve(), 1.0)]
        assert w2.features.adapters.panel.item(a.id).checkState(0) == Qt.Checked
    finally:
        gui.close_window(w2)


def test_refused_zip_shows_the_reason_and_keeps_the_folder(window, qtbot, monkeypatch, tmp_path):
    w = window
    members = adapter_members()
    members["../escape.txt"] = "x"
    bad = write_zip(tmp_path / "evil-lora.zip", members)
    before = tree(w.features.adapters.store.dir)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(bad), ""))
    with qtbot.waitSignal(w.features.adapters.adapter_failed, timeout=30_000) as sig:
        qtbot.mouseClick(w.features.adapters.panel.import_button, Qt.LeftButton)
    assert "unsafe path" in sig.args[0]
    assert w.features.adapters.panel.error.isVisible() and "unsafe path" in w.features.adapters.panel.error.text()
    assert w.features.adapters.panel.import_button.isEnabled()
    assert tree(w.features.adapters.store.dir) == before


def test_delete_removes_it_from_the_list_and_the_engine(window, qtbot, monkeypatch, tmp_path):
    w = window
    a = import_via_dialog(w, qtbot, monkeypatch, make_adapter_zip(tmp_path / "gone-lora.zip"))
    with qtbot.waitSignal(w.features.adapters.adapters_applied, timeout=30_000):
        w.features.adapters.panel.item(a.id).setCheckState(0, Qt.Checked)
    w.features.adapters.confirm_delete = lambda name: name == "gone"
    w.features.adapters.panel.tree.setCurrentItem(w.features.adapters.panel.item(a.id))
    with qtbot.waitSignal(w.features.adapters.adapters_applied, timeout=30_000):
        qtbot.mouseClick(w.features.adapters.panel.delete_button, Qt.LeftButton)
    assert w.features.adapters.panel.item(a.id) is None
    assert w.engine.adapters == []
    assert not a.file.exists()

"""The Models window on the real registry, with the hardware probe injected."""

from __future__ import annotations

import dataclasses

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from app.core.hardware import Hardware
from app.core.models import catalog
from app.core.paths import app_paths
from app.ui.main_window import AppContext, MainWindow
from app.ui.features.models.models_dialog import RECOMMENDED
from tests.support.fake_hub import FakeHub

pytestmark = pytest.mark.gui
GiB = 1024 ** 3


def fake_machine(ram_gib, disk_gib=100):
    return lambda: Hardware(int(ram_gib * GiB), int(ram_gib * GiB / 2), 2, int(disk_gib * GiB))


def measured_starter(ctx, read_tps: float = 470.0, gen_tps: float = 150.0) -> None:
    """The starter's speed as the window's probe measures it on this machine when idle (zen4,
    bench/picker.py), so the speed column and the recommendation are the same on every run (no
    measurement starts)."""
    from app.core.models.embedded import starter_model
    ctx.speeds.record(starter_model().path, int(read_tps * 10), 10.0, gen_tps)


@pytest.fixture
def window(qtbot, app_home):
    ctx = AppContext.open(app_paths(app_home))
    measured_starter(ctx)
    w = MainWindow(ctx)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.engine is not None, timeout=30_000)
    yield w
    w.close()
    ctx.storage.close()


@pytest.mark.parametrize("ram, recommended", [(4, "Qwen2.5-Coder-1.5B"), (8, "Qwen2.5-Coder-3B"),
                                              (16, "Qwen2.5-Coder-7B")])
def test_catalog_with_badge_for_the_machine(window, ram, recommended):
    window.features.models.hardware_probe = fake_machine(ram)
    d = window.features.models.show()
    names = d.row_names()
    badged = [n for n in names if RECOMMENDED in n]
    assert len(badged) == 1 and badged[0].startswith(recommended)
    assert any(n.startswith("SmolLM2-135M") for n in names)
    assert f"{ram * GiB / 1e9:.1f} GB RAM" in d.machine.text()
    fits = [d.table.item(i, 2).text() for i in range(d.table.rowCount())]
    assert any(f.startswith("fits: needs") for f in fits)
    if ram < 16:
        assert any(f.startswith("too big: needs") for f in fits)
    # The starter is active on a fresh machine.
    assert d.table.item(0, 3).text() == "Active"
    # The completion model is listed for the local API, fitted beside the active model, never
    # recommended for chat, and cannot be made the chat model.
    base = names.index(catalog.QWEN_1_5B_BASE.name)
    assert d.table.item(base, 2).text().startswith("Qwen2.5-Coder-1.5B base " + ("does not fit" if ram < 8 else "fits"))
    assert "beside SmolLM2-135M" in d.table.item(base, 2).text()
    assert not badged[0].startswith(catalog.QWEN_1_5B_BASE.name)
    d.table.selectRow(base)
    assert not d.use_button.isEnabled() and d.download_button.isEnabled()


def test_import_through_the_file_dialog_then_switch_and_back(window, qtbot, monkeypatch, starter_path, tmp_path):
    window.features.models.hardware_probe = fake_machine(8)
    d = window.features.models.show()
    copy = tmp_path / "my-model.gguf"
    copy.write_bytes(starter_path.read_bytes())
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(copy), "GGUF models (*.gguf)"))
    shown = []
    monkeypatch.setattr(d, "confirm_import", lambda summary: shown.append(summary) or "copy")
    qtbot.mouseClick(d.import_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: any("(imported)" in d.table.item(i, 2).text() for i in range(d.table.rowCount())),
                    timeout=30_000)
    assert shown and shown[0].architecture == "llama" and shown[0].quantization == "Q4_1"
    assert "Models take 0.1 GB" in d.disk.text()

    # Switch to it: the old engine is replaced by one on the imported file.
    d.select(shown[0].name)
    old = window.engine
    # the button comes back when the import job has finished (a loaded machine shows the row first)
    qtbot.waitUntil(lambda: d.use_button.isEnabled(), timeout=30_000)
    qtbot.mouseClick(d.use_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: window.engine is not None and window.engine is not old, timeout=30_000)
    assert window.engine.model.path.parent == window.ctx.paths.models_dir
    assert window.ctx.settings.model_path == str(window.engine.model.path)
    assert not window.features.chat.panel.banner.isVisible()  # no longer the starter

    # A model that fails to load falls back to the previous one, with the reason shown.
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(starter_path.read_bytes()[:5_000_000])
    before = window.ctx.settings.model_path
    window.engine_service.switch(str(broken))
    qtbot.waitUntil(lambda: window.engine is not None and window.features.chat.panel.error.isVisible(), timeout=30_000)
    assert "truncated" in window.features.chat.panel.error.text() and "Went back" in window.features.chat.panel.error.text()
    assert window.ctx.settings.model_path == before


def test_the_starter_banner_offers_the_recommended_model(window):
    window.features.models.hardware_probe = fake_machine(8)
    assert "Open Models" in window.features.chat.panel.banner_text()
    window.features.chat.panel.banner.linkActivated.emit("models:recommended")
    d = window.features.models.dialog
    assert d is not None and d.isVisible()
    assert d.selected_row().name.startswith("Qwen2.5-Coder-3B") and d.download_button.isEnabled()


def test_refused_import_shows_the_reason(window, qtbot, monkeypatch, truncated_gguf):
    d = window.features.models.show()
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(truncated_gguf), ""))
    qtbot.mouseClick(d.import_button, Qt.LeftButton)
    assert "truncated" in d.error.text() and str(truncated_gguf) in d.error.text()


@pytest.mark.slow
def test_download_is_refused_while_offline_with_the_toggle_named(window, qtbot, monkeypatch, starter_path):
    entry = dataclasses.replace(catalog.QWEN_1_5B, repo_id="Qwen/Fake-GGUF", filename="fake.gguf")
    monkeypatch.setattr("app.ui.features.models.models_dialog.CATALOG", (catalog.STARTER, entry))
    window.features.models.hardware_probe = fake_machine(8)
    assert window.features.network.offline_action.isChecked()  # offline is the default at first start
    with FakeHub() as hub:
        hub.files["fake.gguf"] = starter_path.read_bytes()
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        d = window.features.models.show()
        d.select("Qwen2.5-Coder-1.5B")
        qtbot.mouseClick(d.download_button, Qt.LeftButton)
        qtbot.waitUntil(lambda: "Offline mode is on" in d.error.text(), timeout=10_000)
        assert "Turn Offline off in the toolbar" in d.error.text() and hub.ranges == []


def test_download_with_progress_cancel_and_resume(window, qtbot, monkeypatch, starter_path):
    entry = dataclasses.replace(catalog.QWEN_1_5B, repo_id="Qwen/Fake-GGUF", filename="fake.gguf")
    monkeypatch.setattr("app.ui.features.models.models_dialog.CATALOG", (catalog.STARTER, entry))
    window.features.models.hardware_probe = fake_machine(8)
    window.features.network.offline_action.setChecked(False)  # what the user does to download
    with FakeHub() as hub:
        hub.files["fake.gguf"] = starter_path.read_bytes()
        hub.delay = 0.005
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        d = window.features.models.show()
        d.select("Qwen2.5-Coder-1.5B")
        values = []
        qtbot.mouseClick(d.download_button, Qt.LeftButton)
        d.job.progressed.connect(lambda done, total, note: values.append(d.progress.value()))
        qtbot.waitUntil(lambda: d.progress.value() > 100, timeout=30_000)
        qtbot.mouseClick(d.cancel_button, Qt.LeftButton)
        qtbot.waitUntil(lambda: "resumes" in d.error.text(), timeout=10_000)
        assert "Paused at" in d.table.item(1, 3).text()

        hub.delay = 0
        d.select("Qwen2.5-Coder-1.5B")
        qtbot.mouseClick(d.download_button, Qt.LeftButton)
        qtbot.waitUntil(lambda: d.table.item(1, 3).text() == "Installed", timeout=60_000)
        assert hub.ranges[-1] and hub.ranges[-1].startswith("bytes=")
        assert values == sorted(values)


def test_the_speed_column_and_a_recommendation_that_knows_speed(window):
    window.features.models.hardware_probe = fake_machine(32)
    window.features.models.variant_probe = lambda: "zen4"  # this machine: AVX-512
    d = window.features.models.show()
    speed = {d.table.item(i, 0).text().split("  —")[0]: d.table.item(i, 4).text() for i in range(d.table.rowCount())}
    assert speed["Qwen2.5-Coder-1.5B-Instruct"].startswith("about 33 tokens/s, first answer with your project in about 8 s")
    assert speed["Qwen2.5-Coder-7B-Instruct"].startswith("about 9 tokens/s, first answer with your project in about 20 s")
    # this machine's measured speed: the 7B meets the floors (5 tokens/s, first answer <= 30 s)
    assert d.recommendation.entry.name.startswith("Qwen2.5-Coder-7B") and "answers at about 9 tokens/s" in d.recommendation.reason

    # the same starter speeds on a CPU without AVX-512: big models read half as fast
    d.variant = lambda: "haswell"
    d.refresh()
    assert d.table.item(1, 4).text() != "" and any(
        d.table.item(i, 4).text().startswith("about 33 tokens/s, first answer with your project in about 14 s")
        for i in range(d.table.rowCount()))

    # a laptop half as fast: the 7B would write 4 tokens/s, so the 3B is recommended, and why
    d.variant = lambda: "zen4"
    for _ in range(10):  # the running average converges on the new figures
        measured_starter(window.ctx, read_tps=235.0, gen_tps=75.0)
    d.refresh()
    assert d.recommendation.entry.name.startswith("Qwen2.5-Coder-3B")
    assert "Qwen2.5-Coder-7B-Instruct also fits but would be slow here" in d.recommendation.reason
    badged = [n for n in d.row_names() if RECOMMENDED in n]
    assert len(badged) == 1 and badged[0].startswith("Qwen2.5-Coder-3B")


def test_without_a_measurement_the_window_measures_the_starter_once(qtbot, app_home):
    ctx = AppContext.open(app_paths(app_home))
    w = MainWindow(ctx)
    qtbot.addWidget(w)
    w.show()
    w.features.models.hardware_probe = fake_machine(8)
    d = w.features.models.show()
    assert d.table.item(1, 4).text() == "measuring…"
    qtbot.waitUntil(lambda: d.table.item(1, 4).text().startswith("about "), timeout=60_000)
    assert ctx.speeds.speed(__import__("app.core.models.embedded", fromlist=["x"]).starter_model().path).measured
    w.close()
    ctx.storage.close()

"""Closing the window while work runs: each kind of job is stopped (or finished), the window
closes within the bounded wait, and nothing is lost (the real window, model, index and files).

One test per kind the issue names: an answer, an index, an apply, a download.
"""

from __future__ import annotations

import dataclasses
import shutil
import time

import pytest
from PySide6.QtCore import Qt

from app.core.edits import UndoStore
from app.core.index.embed import Embedder
from app.core.index.indexer import ProjectIndex, index_dir_for
from app.core.models import catalog
from app.core.paths import app_paths
from app.core.storage import Storage
from app.ui.main_window import SHUTDOWN_WAIT_S
from tests.support.fake_hub import FakeHub
from tests.support.edit_project import FIXTURES, TWO_FILES
from tests.support.gui import LONG_PROMPT, open_window, wait_loaded

pytestmark = pytest.mark.gui


def closed_in(w) -> float:
    t0 = time.monotonic()
    w.close()
    w.ctx.storage.close()
    return time.monotonic() - t0


def test_closing_during_an_answer_stores_what_was_written(qtbot, app_home):
    w = open_window(qtbot, app_home, temperature=0.8, max_tokens=2000)
    wait_loaded(qtbot, w)
    panel = w.features.chat.panel
    panel.input.setPlainText(LONG_PROMPT)
    qtbot.mouseClick(panel.send_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: len(panel.view.streaming_text) > 20, timeout=60_000)
    conv = w.features.chat.current_id
    assert closed_in(w) < SHUTDOWN_WAIT_S
    s = Storage(app_paths(app_home).database)
    stored = s.messages(conv)
    s.close()
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[1].meta["finish_reason"] == "cancelled" and len(stored[1].content) > 20


@pytest.mark.slow
def test_closing_during_indexing_keeps_what_was_indexed_and_the_next_run_finishes(qtbot, app_home, tmp_path):
    root = tmp_path / "big"
    for i in range(240):
        f = root / f"pkg{i % 12}" / f"mod{i}.py"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("".join(f"def f{i}_{j}(x):\n    \"\"\"Step {j} of module {i}.\"\"\"\n    return x * {j} + {i}\n\n\n"
                             for j in range(6)))
    w = open_window(qtbot, app_home)
    w.features.project.open(root)
    project = w.features.project
    qtbot.waitUntil(lambda: project.indexing() and project.index is not None, timeout=30_000)
    assert closed_in(w) < SHUTDOWN_WAIT_S
    # The index opens cleanly after the interrupted run, and an update completes it.
    pi = ProjectIndex(root.resolve(), index_dir_for(root.resolve(), app_paths(app_home).cache_dir), Embedder())
    try:
        assert not pi.notices  # not rebuilt: nothing was damaged
        stats = pi.update()
        assert stats.files == 240 and pi.search("Step 3 of module 17", 5)
    finally:
        pi.close()


def test_closing_right_after_apply_finishes_the_apply_with_its_undo_record(qtbot, app_home, tmp_path):
    project = tmp_path / "proj"
    shutil.copytree(FIXTURES / "edit_project", project)
    w = open_window(qtbot, app_home)
    w.features.project.open(project)
    with qtbot.waitSignal(w.features.changes.changes_planned, timeout=10_000):
        w.features.changes.show_changes(TWO_FILES, None)
    w.features.changes.panel.apply_button.click()  # the apply job starts…
    assert closed_in(w) < SHUTDOWN_WAIT_S          # …and the window closes at once
    assert '"""Sum."""' in (project / "pkg/mathx.py").read_text()
    assert "def fetch(url, timeout=10)" in (project / "pkg/net.py").read_text()
    record = UndoStore(app_paths(app_home).data_dir / "undo").last_undoable(project.resolve())
    assert record is not None and sorted(record.paths) == ["pkg/mathx.py", "pkg/net.py"]


def test_closing_during_a_download_keeps_the_partial_file_for_a_resume(qtbot, app_home, monkeypatch, starter_path):
    entry = dataclasses.replace(catalog.QWEN_1_5B, repo_id="Qwen/Fake-GGUF", filename="fake.gguf")
    monkeypatch.setattr("app.ui.features.models.models_dialog.CATALOG", (catalog.STARTER, entry))
    w = open_window(qtbot, app_home)
    wait_loaded(qtbot, w)
    w.features.models.hardware_probe = lambda: __import__("app.core.hardware", fromlist=["Hardware"]).Hardware(
        8 * 1024 ** 3, 4 * 1024 ** 3, 2, 100 * 1024 ** 3)
    w.features.network.offline_action.setChecked(False)  # what the user does to download
    with FakeHub() as hub:
        hub.files["fake.gguf"] = starter_path.read_bytes()
        hub.delay = 0.005
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        d = w.features.models.show()
        d.select("Qwen2.5-Coder-1.5B")
        qtbot.mouseClick(d.download_button, Qt.LeftButton)
        qtbot.waitUntil(lambda: d.progress.value() > 100, timeout=30_000)
        assert closed_in(w) < SHUTDOWN_WAIT_S
        parts = list(app_paths(app_home).models_dir.rglob("*.part"))
        assert len(parts) == 1 and 0 < parts[0].stat().st_size < len(hub.files["fake.gguf"])

        hub.delay = 0
        w2 = open_window(qtbot, app_home)
        w2.features.network.offline_action.setChecked(False)
        w2.features.models.hardware_probe = w.features.models.hardware_probe
        d2 = w2.features.models.show()
        d2.select("Qwen2.5-Coder-1.5B")
        qtbot.mouseClick(d2.download_button, Qt.LeftButton)
        qtbot.waitUntil(lambda: d2.table.item(1, 3).text() == "Installed", timeout=60_000)
        assert hub.ranges[-1] and hub.ranges[-1].startswith("bytes=")  # it resumed, not restarted
        closed_in(w2)
    assert not list(app_paths(app_home).models_dir.rglob("*.part"))

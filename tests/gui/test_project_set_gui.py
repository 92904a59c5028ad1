"""File → Training set from this project… in the real window: enabled with a project open,
the languages the project has, the build on a Job, and the report."""

from __future__ import annotations

import json
from datetime import date

import pytest
from PySide6.QtCore import Qt

from tests.support import gui
from tests.support.project_set_data import MATHX, UTIL_JS, parse_source, write

pytestmark = pytest.mark.gui


def test_training_set_from_the_open_project(qtbot, app_home, tmp_path):
    w = gui.open_window(qtbot, app_home)
    gui.wait_loaded(qtbot, w)
    try:
        assert not w.features.learn.action.isEnabled()  # no project yet
        assert w.features.learn.show() is None
        root = tmp_path / "shop"
        write(root, "pkg/mathx.py", "\n".join(MATHX) + "\n")
        write(root, "web/util.js", "\n".join(UTIL_JS) + "\n")
        write(root, "pkg/api_pb2.py", 'def f():\n    """Generated."""\n    return 1\n')
        w.features.project.open(root)
        assert w.features.learn.action.isEnabled()
        assert w.features.learn.action in w.file_menu.actions()

        w.features.learn.action.trigger()
        d = w.features.learn.dialog
        assert d.isVisible()
        assert d.path.text() == str(w.ctx.paths.data_dir / "exports" / f"shop-code-{date.today():%Y%m%d}.jsonl")
        qtbot.waitUntil(lambda: set(d.language_checks) == {"python", "javascript"}, timeout=30_000)
        assert d.language_checks["python"].text() == "python (2)"  # mathx.py and api_pb2.py

        d.min_chars.setValue(5000)  # more than the maximum: refused before anything runs
        with qtbot.waitSignal(d.failed) as refused:
            qtbot.mouseClick(d.build_button, Qt.LeftButton)
        assert "minimum length must be below the maximum" in refused.args[0] and d.error.isVisible()
        d.min_chars.setValue(40)

        d.language_checks["javascript"].setChecked(False)
        out = tmp_path / "out" / "shop.jsonl"
        d.path.setText(str(out))
        with qtbot.waitSignal(d.built, timeout=60_000) as built:
            qtbot.mouseClick(d.build_button, Qt.LeftButton)
            assert not d.build_button.isEnabled() and d.cancel_button.isVisible()
        report = built.args[0]
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows) == report.train + report.valid > 0
        assert {parse_source(r["source"])[1] for r in rows} == {"pkg/mathx.py"}  # no js, no generated file
        shown = d.result.text()
        assert str(out) in shown and "python: 4 write" in shown
        assert "language not chosen (javascript)" in shown and "generated (by its name)" in shown
        assert not d.error.isVisible() and d.build_button.isEnabled() and not d.cancel_button.isVisible()
    finally:
        gui.close_window(w)

"""Help → System check in the real window: the checks run on a worker while the window stays
responsive, each shows its status, Re-run runs them again, and Copy report puts a text on the
clipboard that names the checks but not the planted secret."""

from __future__ import annotations

import shutil

import keyring
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication

from app.core import secrets
from app.core.doctor import FAIL, OK, WARN
from app.core.models import embedded
from app.core.net import guard
from app.ui.features.doctor.doctor_dialog import DoctorDialog
from tests.support.index_project import make_project
from tests.support.memory_keyring import MemoryKeyring
from tests.support.gui import close_window, open_window, wait_loaded

pytestmark = pytest.mark.gui

SECRET = "tvly-GUI-PLANTED-SECRET-0c9d8e"


@pytest.fixture
def planted_key():
    before = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    secrets.set_key("tavily", SECRET)
    yield
    keyring.set_keyring(before)


def test_system_check_runs_on_a_worker_and_copies_a_report_without_the_secret(qtbot, app_home, tmp_path,
                                                                               planted_key):
    guard.install()  # as `python -m app` does before the window exists
    folder = tmp_path / f"models-{SECRET}"  # the model's path carries the secret into the details
    folder.mkdir()
    model = folder / "coder.gguf"
    shutil.copyfile(embedded.starter_model().path, model)
    project = make_project(tmp_path / "shop")
    w = open_window(qtbot, app_home, model_path=str(model), project_dir=str(project))
    try:
        with qtbot.waitSignal(w.features.project.index_finished, timeout=60_000):
            pass  # the window indexes the project it reopens
        wait_loaded(qtbot, w)
        help_menu = next(a.menu() for a in w.menuBar().actions() if a.text() == "&Help")
        texts = [a.text() for a in help_menu.actions()]
        assert w.features.doctor.action in help_menu.actions() and texts.index("System &check") < texts.index("&About")

        ticks = []
        timer = QTimer()
        timer.setInterval(10)
        timer.timeout.connect(lambda: ticks.append(1))
        timer.start()
        w.features.doctor.action.trigger()
        dialog = w.findChild(DoctorDialog)
        assert dialog is not None and dialog.isVisible()
        assert dialog.is_running() and dialog.progress.isVisible() and not dialog.rerun_button.isEnabled()
        with qtbot.waitSignal(dialog.checks_done, timeout=60_000) as done:
            pass
        timer.stop()
        assert len(ticks) > 20, f"the GUI thread turned only {len(ticks)} times while the checks ran"

        checks = {c.id: c for c in done.args[0]}
        assert [c.id for c in dialog.rows()] == list(checks)
        assert not dialog.progress.isVisible() and dialog.rerun_button.isEnabled()
        active = checks["active_model"]
        assert active.status == OK and "loaded now" in active.detail and SECRET in active.detail
        assert checks["offline"].status == OK
        assert checks["firewall"].status == WARN  # tests build windows with ctx.firewall=None
        assert checks["keyring"].status == OK and checks["embedder"].status == OK
        index = checks["index"]  # read from the window's live index
        assert index.status == OK and f"{project}:" in index.detail and "0 stale files" in index.detail
        assert FAIL not in {c.status for c in checks.values()}
        # The status column carries the colour of its status.
        row = list(checks).index("firewall")
        status = dialog.table.item(row, 0)
        assert status.text() == "WARN" and status.background().color().name() == "#fff3dc"
        assert dialog.table.item(row, 2).text().startswith(checks["firewall"].detail + "\n→ ")

        QGuiApplication.clipboard().clear()
        with qtbot.waitSignal(dialog.report_copied, timeout=5_000):
            qtbot.mouseClick(dialog.copy_button, Qt.LeftButton)
        text = QGuiApplication.clipboard().text()
        assert text == dialog.report
        assert "Active model" in text and "OS firewall" in text and "coder.gguf" in text
        assert SECRET not in text and "<tavily key removed>" in text

        with qtbot.waitSignal(dialog.checks_done, timeout=60_000):
            qtbot.mouseClick(dialog.rerun_button, Qt.LeftButton)
            assert dialog.is_running()
        assert len(dialog.rows()) == len(checks)
    finally:
        close_window(w)


def test_closing_the_window_while_the_checks_run_stops_them(qtbot, app_home):
    w = open_window(qtbot, app_home)
    wait_loaded(qtbot, w)
    w.features.doctor.action.trigger()
    dialog = w.findChild(DoctorDialog)
    job = dialog.job
    assert job.is_running()
    close_window(w)  # waits for the check that runs now, then the rest are skipped
    assert job._thread.isFinished()

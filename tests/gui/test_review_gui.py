"""Review in the real window (offscreen) on the real starter model: from the Tools menu, from
the Changes pane's Review button, Cancel, the director refused while offline, settings."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer

from app.core.review.roles import ROLES
from app.core.settings import DirectorSettings, Settings
from tests.support.fake_openai import FakeOpenAI
from tests.support.gui import close_window, open_window, wait_loaded

pytestmark = pytest.mark.gui
FIXTURES = Path(__file__).parents[1] / "fixtures"
FENCE = "```"
QUESTION = "Plan: keep the user's password in a text file next to the app and log in with it at startup."
ORDER = [r.key for r in ROLES] + ["synthesis"]


@pytest.fixture
def fake():
    f = FakeOpenAI()
    yield f
    f.stop()


def sample_progress(w, seen: list[str]) -> QTimer:
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: seen.append(w.features.review.panel.progress.text()))
    timer.start()
    return timer


def test_review_question_from_the_menu_offline_director_refused_then_cancel(qtbot, app_home, fake):
    w = open_window(qtbot, app_home, temperature=0.0, max_tokens=24,
                    director=DirectorSettings(enabled=True, base_url=fake.base_url, model="gpt-test"))
    wait_loaded(qtbot, w)
    assert w.ctx.settings.offline  # the default: the director must be refused
    panel, ctrl = w.features.review.panel, w.features.review
    menus = {a.text(): a.menu() for a in w.menuBar().actions() if a.menu()}
    assert ctrl.review_question_action in menus["&Tools"].actions()

    qtbot.keyClicks(w.features.chat.panel.input, QUESTION)
    seen: list[str] = []
    timer = sample_progress(w, seen)
    with qtbot.waitSignal(ctrl.finished, timeout=120_000) as done:
        ctrl.review_question_action.trigger()
        assert panel.cancel_button.isEnabled() and w.features.review.dock.isVisible()
    timer.stop()
    result = done.args[0]

    # Progress named every role in turn, with its place out of six.
    for i, title in enumerate(["Developer", "Security", "QA", "Architect", "UX", "Synthesis"]):
        assert any(s.startswith(f"{title} ({i + 1}/6)…") for s in seen), (title, sorted(set(seen)))
    firsts = [next(k for k, s in enumerate(seen) if s.startswith(f"{t} (")) for t in ("Developer", "Security", "QA")]
    assert firsts == sorted(firsts)
    assert panel.section_keys() == ORDER
    for key in ORDER:
        assert panel.section(key).text().strip(), key
    assert panel.section("synthesis").objectName() == "reviewSynthesis"  # highlighted
    assert "Done: 5 reviewers" in panel.progress.text() and not panel.cancel_button.isEnabled()
    assert result.subject.text == QUESTION and result.synthesis_by == "local"
    # Offline on: nothing went to the director, the panel says why, the local model wrote it.
    assert fake.requests == []
    assert panel.note.isVisible() and "Director refused" in panel.note.text() and "Offline" in panel.note.text()
    assert "local model" in panel.section("synthesis").header.text()

    # Collapsible sections.
    sec = panel.section("security")
    qtbot.mouseClick(sec.header, Qt.LeftButton)
    assert not sec.is_expanded() and sec.body.isHidden()
    qtbot.mouseClick(sec.header, Qt.LeftButton)
    assert sec.is_expanded() and not sec.body.isHidden()

    # Empty chat box: the last question of the conversation is reviewed. Cancel once Security runs.
    w.features.chat.panel.input.clear()
    if w.features.chat.current_id is None:
        w.features.chat.current_id = w.ctx.storage.create_conversation().id
    w.ctx.storage.add_message(w.features.chat.current_id, "user", "Should I cache the DNS answers?")
    w.ctx.settings.generation.max_tokens = 120
    with qtbot.waitSignal(ctrl.finished, timeout=120_000) as done:
        ctrl.review_question_action.trigger()
        qtbot.waitUntil(lambda: panel.progress.text().startswith("Security (2/6)"), timeout=60_000)
        qtbot.mouseClick(panel.cancel_button, Qt.LeftButton)
    result = done.args[0]
    assert result.cancelled and result.subject.text == "Should I cache the DNS answers?"
    assert [o.role for o in result.outputs] == ["developer", "security"]
    assert panel.section_keys() == ["developer", "security"]
    assert panel.progress.text().startswith("Cancelled during Security (2/6)")
    assert "stopped" in panel.section("security").header.text()
    assert not panel.cancel_button.isEnabled()
    close_window(w)


def test_review_button_on_the_changes_pane_reviews_the_pending_diff(qtbot, app_home, tmp_path):
    project = tmp_path / "proj"
    shutil.copytree(FIXTURES / "edit_project", project)
    w = open_window(qtbot, app_home, temperature=0.0, max_tokens=200)
    w.features.project.open(project)
    wait_loaded(qtbot, w)
    pane, panel = w.features.changes.panel, w.features.review.panel
    assert not pane.review_button.isEnabled()  # nothing pending
    with qtbot.waitSignal(w.features.changes.changes_planned, timeout=10_000):
        w.features.changes.show_changes("pkg/mathx.py\n" + FENCE + "python\ndef add(a, b):\n    \"\"\"Sum.\"\"\"\n    return a + b\n\n\n"
                       "def mul(a, b):\n    return a * b\n" + FENCE + "\n", None)
    assert pane.review_button.isEnabled()
    with qtbot.waitSignal(w.features.review.started, timeout=5_000) as started:
        qtbot.mouseClick(pane.review_button, Qt.LeftButton)
    subject = started.args[0]
    assert subject.kind == "diff" and "+++ b/pkg/mathx.py" in subject.text and '+    """Sum."""' in subject.text
    assert "pkg/mathx.py" in panel.subject.text()
    with qtbot.waitSignal(w.features.review.finished, timeout=60_000) as done:
        qtbot.waitUntil(lambda: panel.section_keys()[:1] == ["developer"] and bool(panel.section("developer").text().strip()),
                        timeout=30_000)
        qtbot.mouseClick(panel.cancel_button, Qt.LeftButton)
    assert done.args[0].cancelled and done.args[0].outputs[0].text
    # The diff was reviewed, not applied.
    assert (project / "pkg/mathx.py").read_bytes() == (FIXTURES / "edit_project/pkg/mathx.py").read_bytes()
    close_window(w)


def test_director_settings_and_checklist_folder(qtbot, app_home):
    w = open_window(qtbot, app_home)
    ctrl = w.features.review
    settings_menu = next(a.menu() for a in w.menuBar().actions() if a.text() == "&Settings")
    assert ctrl.director_action in settings_menu.actions() and ctrl.checklists_action in settings_menu.actions()

    dlg = ctrl.show_director_settings()
    dlg.enabled.setChecked(True)
    dlg.base_url.setText("api.example.com/v1")  # no scheme: refused with the reason
    dlg.model.setText("gpt-4o-mini")
    dlg.accept()
    assert dlg.isVisible() and "http://" in dlg.error.text()
    dlg.base_url.setText("https://api.example.com/v1")
    dlg.accept()
    assert not dlg.isVisible()
    saved = Settings.load(w.ctx.paths.settings_file).director
    assert saved == DirectorSettings(True, "https://api.example.com/v1", "gpt-4o-mini", 60.0)

    opened = []
    ctrl.open_folder = opened.append
    (w.ctx.paths.data_dir / "review").mkdir(parents=True)
    (w.ctx.paths.data_dir / "review" / "ux.md").write_text("- mine\n")
    ctrl.checklists_action.trigger()
    folder = w.ctx.paths.data_dir / "review"
    assert opened == [folder]
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{k}.md" for k in ORDER)
    assert (folder / "ux.md").read_text() == "- mine\n"  # the user's edit is kept
    close_window(w)

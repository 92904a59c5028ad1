"""The window around the chat, driven as a user drives it (QTest clicks, keys, drag and drop
events): the first screen and its starters, folders and files dropped in, the Changes pane
shown when there are changes, panes that collapse, the layout kept between sessions, and the
light or dark palette."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QPalette
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractButton, QApplication, QFileDialog, QLineEdit

from app.core.chat.render import DARK, LIGHT, current_theme
from app.core.paths import app_paths
from app.core.storage import Storage
from app.ui.features.chat.first_screen import EXAMPLE_QUESTION
from app.ui.shell import LAYOUT_FILE, MIN_CHAT_WIDTH
from tests.support.edit_project import FIXTURES, TWO_FILES
from tests.support.gui import close_window, open_window, wait_loaded
from tests.support.permissions import file_permissions_apply

pytestmark = pytest.mark.gui


@pytest.fixture
def project(tmp_path) -> Path:
    root = tmp_path / "proj"
    shutil.copytree(FIXTURES / "edit_project", root)
    return root


def laptop_window(qtbot, app_home, **settings):
    """The real window at a 1366×768 laptop's usable size, active (its shortcuts work)."""
    w = open_window(qtbot, app_home, **settings)
    w.resize(1366, 740)
    activate(qtbot, w)
    return w


def activate(qtbot, w) -> None:
    """The offscreen platform has no window manager to give focus back after a dialog."""
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w, timeout=5000)


def drop(widget, *targets) -> bool:
    """Drag ``targets`` (paths, or URLs as text) over ``widget`` and drop them, as a file manager does."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(t)) if isinstance(t, Path) else QUrl(t) for t in targets])
    pos = widget.rect().center()
    enter = QDragEnterEvent(pos, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    event = QDropEvent(QPointF(pos), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(widget, event)
    return event.isAccepted()


def drag(handle, dx: int) -> None:
    """Drag a splitter handle ``dx`` pixels sideways with the mouse."""
    start = handle.rect().center()
    QTest.mousePress(handle, Qt.LeftButton, Qt.NoModifier, start)
    QTest.mouseMove(handle, start + QPoint(dx, 0))
    QTest.mouseRelease(handle, Qt.LeftButton, Qt.NoModifier, start + QPoint(dx, 0))


def keys(w, key, modifiers=Qt.NoModifier) -> None:
    QTest.keyClick(w, key, modifiers)
    QApplication.processEvents()


# ---- bad input first: drops that cannot be used -----------------------------------------------------
def test_an_unreadable_folder_a_web_address_and_a_file_over_the_limit_are_refused(qtbot, app_home, tmp_path, project):
    w = laptop_window(qtbot, app_home)
    panel = w.features.chat.panel
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "a.py").write_text("x = 1\n")
    locked.chmod(0)
    try:
        with file_permissions_apply():
            assert drop(panel.first_screen.viewport(), locked)  # onto the chat column: the window takes it
    finally:
        locked.chmod(0o755)
    assert w.features.project.root is None and panel.error.isVisible()
    assert f"{locked} cannot be opened as the project: permission to list its files was denied" in panel.error.text()

    drop(panel.first_screen.viewport(), "https://example.org/repo")
    assert "Only files and folders on this computer" in panel.error.text() and w.features.project.root is None
    assert drop(panel.input.viewport(), "https://example.org/repo")  # into the box: a link is text
    assert panel.input.toPlainText() == "https://example.org/repo"
    QTest.keyClick(panel.input, Qt.Key_A, Qt.ControlModifier)
    QTest.keyClick(panel.input, Qt.Key_Delete)

    big = tmp_path / "server.log"
    big.write_text("GET / 200 OK\n" * 2000)  # 26 KB; the starter's 4,096-token context takes 8 KB
    QTest.keyClicks(panel.input, "why so many requests?")
    assert drop(panel.input.viewport(), big)
    assert "server.log is 26 KB, too big to attach" in panel.error.text() and "can take 8,171 bytes more" in panel.error.text()  # 8,192 less the question
    assert panel.input.toPlainText() == "why so many requests?"  # nothing lost, nothing added

    logo = tmp_path / "logo.png"
    logo.write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(256))
    drop(panel.input.viewport(), logo)
    assert "logo.png is a binary file (it contains NUL bytes)" in panel.error.text()
    assert panel.input.toPlainText() == "why so many requests?"

    # A good folder afterwards opens, and the refusal goes away.
    with qtbot.waitSignal(w.features.project.project_opened, timeout=10_000):
        assert drop(panel.first_screen.viewport(), project)
    assert not panel.error.isVisible() and panel.input.toPlainText() == "why so many requests?"
    close_window(w)


def test_a_damaged_layout_file_is_ignored_with_a_log_line(qtbot, app_home, caplog):
    w = open_window(qtbot, app_home)
    close_window(w)
    layout = Path(w.ctx.paths.data_dir) / LAYOUT_FILE
    for bad in ("{not json", json.dumps({"version": 1, "geometry": 5, "columns": {"widths": {"changes": "x"}}})):
        layout.write_text(bad)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            w = open_window(qtbot, app_home)
        assert "window layout" in caplog.text and "ignored" in caplog.text
        assert w.isVisible() and w.columns.is_shown("conversations")
        close_window(w)


# ---- the first screen ------------------------------------------------------------------------------
def test_the_first_screen_shows_the_model_its_speed_offline_mode_and_starters(qtbot, app_home, tmp_path):
    w = laptop_window(qtbot, app_home, temperature=0.0, max_tokens=12)
    f, panel = w.features, w.features.chat.panel
    fs = panel.first_screen
    assert panel.first_screen_shown and fs.isVisible() and not panel.view.isVisible()
    wait_loaded(qtbot, w)
    model = fs.model_label.text()
    assert w.engine_service.model.name in model and "tokens/s" in model and "estimated from its size" in model
    assert "Offline mode is on" in fs.offline_label.text()

    # The toolbar's Offline button turns it off: the first screen says so at once.
    QTest.mouseClick(w.toolbar.widgetForAction(f.network.offline_action), Qt.LeftButton)
    assert "Offline mode is off" in fs.offline_label.text()
    QTest.mouseClick(w.toolbar.widgetForAction(f.network.offline_action), Qt.LeftButton)
    assert "Offline mode is on" in fs.offline_label.text()

    # "/code a change" fills the box; without a project it says to open one.
    assert "Open a project first" in fs.code_button.description()
    QTest.mouseClick(fs.code_button, Qt.LeftButton)
    assert panel.input.toPlainText() == "/code " and panel.input.hasFocus()

    # "Open a project": the real folder dialog; the user types the folder and presses Enter.
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "cart.py").write_text("def total(items):\n    return sum(items)\n")

    def answer_dialog():
        dialog = next(d for d in QApplication.topLevelWidgets() if isinstance(d, QFileDialog) and d.isVisible())
        edit = dialog.findChild(QLineEdit, "fileNameEdit")
        edit.clear()
        QTest.keyClicks(edit, str(folder))
        QTest.keyClick(edit, Qt.Key_Return)

    QTimer.singleShot(300, answer_dialog)
    with qtbot.waitSignal(f.project.project_opened, timeout=10_000) as opened:
        QTest.mouseClick(fs.project_button, Qt.LeftButton)
    assert opened.args[0] == folder.resolve()
    activate(qtbot, w)
    assert "shop" in fs.code_button.description() and "shop" in fs.project_button.text()

    # "Ask a question" fills the box with an example; Ctrl+Enter sends it and the conversation
    # takes the first screen's place.
    QTest.mouseClick(fs.ask_button, Qt.LeftButton)
    assert panel.input.toPlainText() == EXAMPLE_QUESTION
    with qtbot.waitSignal(f.chat.answer_finished, timeout=60_000):
        QTest.keyClick(panel.input, Qt.Key_Return, Qt.ControlModifier)
        assert not panel.first_screen_shown and panel.view.isVisible()
    assert EXAMPLE_QUESTION in panel.view.toPlainText()

    # A new chat (Ctrl+N) is empty again: the first screen is back, with the speed now measured.
    keys(w, Qt.Key_N, Qt.ControlModifier)
    assert panel.first_screen_shown and fs.isVisible()
    assert "measured on your answers" in fs.model_label.text()
    close_window(w)


def test_a_dropped_folder_opens_as_the_project_and_a_dropped_file_is_attached(qtbot, app_home, tmp_path, project):
    w = laptop_window(qtbot, app_home)
    panel = w.features.chat.panel
    with qtbot.waitSignal(w.features.project.project_opened, timeout=10_000) as opened:
        assert drop(panel.first_screen.viewport(), project)  # onto the first screen: the window takes it
    assert opened.args[0] == project.resolve() and not panel.error.isVisible()

    QTest.keyClicks(panel.input, "What does this do?")
    assert drop(panel.input.viewport(), project / "pkg" / "mathx.py")
    text = panel.input.toPlainText()
    source = (project / "pkg" / "mathx.py").read_text()
    assert text == f"What does this do?\n\n`mathx.py`:\n```python\n{source}```\n"
    assert not panel.error.isVisible() and "Attached mathx.py" in w.statusBar().currentMessage()
    close_window(w)


# ---- room for the conversation ----------------------------------------------------------------------
def test_the_changes_pane_appears_with_changes_and_panes_collapse_by_key_and_by_drag(qtbot, app_home, project):
    w = laptop_window(qtbot, app_home, temperature=0.0, max_tokens=40)
    f, cols = w.features, w.columns
    pane, chat, convs = f.changes.panel, f.chat.panel, f.chat.conversations
    with qtbot.waitSignal(f.project.index_finished, timeout=120_000):
        drop(chat.first_screen.viewport(), project)
    assert f.project.dock.isVisible()
    assert not pane.isVisible() and not cols.actions["changes"].isChecked()
    chat_alone = chat.width()
    assert chat_alone >= 700  # a project open and no changes: the chat has the room

    # A change is asked for: the pane shows (what the model saw, what it proposes); on a laptop
    # the conversation list makes room for it.
    wait_loaded(qtbot, w)
    QTest.keyClicks(chat.input, "/code add a docstring to add in pkg/mathx.py")
    with qtbot.waitSignal(f.chat.answer_finished, timeout=60_000):
        QTest.keyClick(chat.input, Qt.Key_Return, Qt.ControlModifier)
    qtbot.waitUntil(pane.isVisible, timeout=10_000)
    assert cols.actions["changes"].isChecked() and pane.files_box.isVisible()
    assert chat.width() >= MIN_CHAT_WIDTH - 10 and pane.width() >= 240
    assert not convs.isVisible() and not cols.actions["conversations"].isChecked()

    keys(w, Qt.Key_D, Qt.ControlModifier | Qt.ShiftModifier)  # View → Changes: hidden, the list is back
    assert not pane.isVisible() and not cols.actions["changes"].isChecked()
    assert convs.isVisible() and cols.actions["conversations"].isChecked()
    assert abs(chat.width() - chat_alone) <= 20
    keys(w, Qt.Key_D, Qt.ControlModifier | Qt.ShiftModifier)
    assert pane.isVisible() and pane.files_box.isVisible()  # as it was
    keys(w, Qt.Key_D, Qt.ControlModifier | Qt.ShiftModifier)

    keys(w, Qt.Key_F9)  # View → Conversations
    assert not convs.isVisible() and not cols.actions["conversations"].isChecked()
    keys(w, Qt.Key_F9)
    assert convs.isVisible() and cols.actions["conversations"].isChecked()

    # Dragging the edge of the conversation list to the window's side collapses it.
    drag(cols.handle(1), -400)
    qtbot.waitUntil(lambda: cols.sizes()[0] == 0, timeout=2000)
    assert not cols.actions["conversations"].isChecked()
    keys(w, Qt.Key_F9)  # and it comes back at its width
    assert cols.sizes()[0] >= 150 and cols.actions["conversations"].isChecked()
    close_window(w)


def test_geometry_columns_and_docks_are_restored_at_start(qtbot, app_home, project):
    w = laptop_window(qtbot, app_home)
    f, cols = w.features, w.columns
    f.project.open(project)
    w.resize(790, 560)  # (the offscreen screen is 800×600: a saved geometry is kept on it)
    QTest.mouseClick(f.project.dock.findChild(QAbstractButton, "qt_dockwidget_closebutton"), Qt.LeftButton)
    assert not f.project.dock.isVisible()  # the user closed the Project panel
    keys(w, Qt.Key_D, Qt.ControlModifier | Qt.ShiftModifier)  # shows Changes, then drags it wider
    before = cols.sizes()[2]
    drag(cols.handle(2), -40)
    assert cols.sizes()[2] == before + 40
    changes_width = cols.widths["changes"]
    keys(w, Qt.Key_D, Qt.ControlModifier | Qt.ShiftModifier)
    conv_width = cols.sizes()[0]
    assert conv_width > 0
    start_pt = f.chat.view.font_size()
    keys(w, Qt.Key_Equal, Qt.ControlModifier)  # larger chat text (Ctrl+=), twice
    keys(w, Qt.Key_Equal, Qt.ControlModifier)
    chat_pt = f.chat.view.font_size()
    assert chat_pt == start_pt + 2
    close_window(w)
    assert (Path(w.ctx.paths.data_dir) / LAYOUT_FILE).is_file()

    w2 = open_window(qtbot, app_home)  # reopens the project, which shows its dock...
    QApplication.processEvents()
    assert (w2.width(), w2.height()) == (790, 560)
    assert w2.features.project.root == project.resolve()
    assert not w2.features.project.dock.isVisible()  # ...but the layout the user left wins
    assert abs(w2.columns.sizes()[0] - conv_width) <= 2
    assert not w2.features.changes.panel.isVisible()  # no changes yet
    assert w2.columns.widths["changes"] == changes_width  # the width it comes back at
    assert w2.features.chat.view.font_size() == chat_pt  # and the chat's text size

    # Closed while the Changes pane had borrowed the conversation list's room: the list is back.
    activate(qtbot, w2)
    keys(w2, Qt.Key_D, Qt.ControlModifier | Qt.ShiftModifier)
    assert w2.features.changes.panel.isVisible() and not w2.features.chat.conversations.isVisible()
    close_window(w2)
    w3 = open_window(qtbot, app_home)
    QApplication.processEvents()
    assert w3.features.chat.conversations.isVisible() and w3.columns.sizes()[0] > 100
    assert w3.columns.actions["conversations"].isChecked() and not w3.features.changes.panel.isVisible()
    close_window(w3)


# ---- theme -------------------------------------------------------------------------------------------
def dark_palette() -> QPalette:
    p = QPalette()
    for role, colour in ((QPalette.Window, "#2b2b2b"), (QPalette.WindowText, "#e8e8e8"), (QPalette.Base, "#1e1e1e"),
                         (QPalette.Text, "#e8e8e8"), (QPalette.Button, "#353535"), (QPalette.ButtonText, "#e8e8e8"),
                         (QPalette.Link, "#6cb6ff")):
        p.setColor(role, QColor(colour))
    return p


def test_code_and_diffs_follow_the_system_palette(qtbot, app_home, project):
    app = QApplication.instance()
    light = app.palette()
    storage = Storage(app_paths(app_home).database)  # an earlier answer with a code block
    conv = storage.create_conversation().id
    storage.add_message(conv, "user", "a cached function?", {})
    storage.add_message(conv, "assistant", "```python\n@cache\ndef f():\n    return 1\n```", {})
    storage.close()
    w = laptop_window(qtbot, app_home)
    f = w.features
    f.project.open(project)
    with qtbot.waitSignal(f.changes.changes_planned, timeout=10_000):
        f.changes.show_changes(TWO_FILES, None)
    assert current_theme() is LIGHT
    assert LIGHT.code_bg in f.chat.view.toHtml() and not f.chat.panel.first_screen_shown
    try:
        app.setPalette(dark_palette())  # the desktop switched to its dark palette
        qtbot.waitUntil(lambda: current_theme() is DARK, timeout=3000)
        assert DARK.code_bg in f.chat.view.toHtml() and LIGHT.code_bg not in f.chat.view.toHtml()
        assert DARK.add_bg in f.changes.panel.view.toHtml() and LIGHT.add_bg not in f.changes.panel.view.toHtml()
    finally:
        app.setPalette(light)
    qtbot.waitUntil(lambda: current_theme() is LIGHT, timeout=3000)
    assert LIGHT.add_bg in f.changes.panel.view.toHtml()
    close_window(w)

"""What the window itself does around its features: the columns, the first screen's facts,
drag and drop, the light or dark palette, and the layout kept between sessions.

Kept out of main_window.py, which only hosts (tests/core/test_structure.py keeps it small):

- ``Columns`` (conversations | chat | Changes): a side pane hides and shows from the View menu,
  collapses when its edge is dragged to the side, and keeps its width for when it returns; the
  chat never collapses, and a pane that appears leaves it at least MIN_CHAT_WIDTH where it can.
- Layout in ``<data>/window.json`` (geometry, docks and toolbar, column widths, the chat's text
  size), not QSettings: the app keeps what it stores in its own folder; written atomically; a
  damaged file is ignored with a log line and the default layout applies.
- Theme: the palette's window colour decides light or dark (``render.set_theme``); code blocks
  and diffs are drawn again when the system switches.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from PySide6.QtCore import QByteArray, QEvent, QObject, Qt
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence, QPalette
from PySide6.QtWidgets import QSplitter, QWidget

from app.core.atomic import atomic_write_text, describe_os_error
from app.core.chat.render import current_theme, set_theme
from app.core.drops import DropError, attach_limit, attachment, project_folder
from app.core.logs import log
from app.core.safe_json import loads as safe_loads
from app.ui.features.chat.first_screen import speed_line

LAYOUT_FILE = "window.json"
LAYOUT_VERSION = 1
MIN_CHAT_WIDTH = 480
PANE_WIDTHS = {"conversations": 220, "changes": 460}  # a pane's width the first time it shows
PANE_KEYS = {"conversations": "F9", "changes": "Ctrl+Shift+D"}
PANE_TITLES = {"conversations": "&Conversations", "changes": "C&hanges"}
DROP_EVENTS = (QEvent.DragEnter, QEvent.DragMove, QEvent.Drop)
PALETTE_EVENTS = (QEvent.PaletteChange, QEvent.ApplicationPaletteChange)


class Columns(QSplitter):
    """The window's columns; ``actions[name]`` shows or hides a side pane (checked: shown)."""

    def __init__(self, panes: dict[str, QWidget], sizes: list[int], middle: str = "chat"):
        super().__init__(Qt.Horizontal)
        self.setObjectName("columns")
        self.panes, self.middle = panes, middle
        self.widths = dict(PANE_WIDTHS)
        self.actions: dict[str, QAction] = {}
        self._lent: dict[str, str] = {}  # pane shown -> the pane it hid to make room
        for name, widget in panes.items():
            self.addWidget(widget)
            if name == middle:
                self.setCollapsible(self.indexOf(widget), False)
                self.setStretchFactor(self.indexOf(widget), 1)
                continue
            action = self.actions[name] = QAction(PANE_TITLES.get(name, name), self)
            action.setObjectName(f"show_{name}")
            action.setCheckable(True)
            action.setShortcut(QKeySequence(PANE_KEYS[name]))
            action.setToolTip(f"Show or hide the {name} pane ({PANE_KEYS[name]})")
            action.toggled.connect(lambda on, n=name: self.set_shown(n, on))
        self.splitterMoved.connect(lambda *_: self._sync())
        self.setSizes(sizes)
        self._sync()

    def is_shown(self, name: str) -> bool:
        w = self.panes[name]
        return not w.isHidden() and self.sizes()[self.indexOf(w)] > 0

    def set_shown(self, name: str, on: bool) -> None:
        """Show (at its remembered width, taken from the chat) or hide a side pane. Where the
        chat would keep less than MIN_CHAT_WIDTH, the other side pane makes room until this one
        hides again (reviewing a diff on a laptop needs the conversation, not the list)."""
        if on == self.is_shown(name):
            return self._sync()
        w, chat = self.panes[name], self.indexOf(self.panes[self.middle])
        if not on:
            self._remember()
            w.hide()
            lent = self._lent.pop(name, None)
            if lent is not None and not self.is_shown(lent):
                self.set_shown(lent, True)
            return self._sync()
        self._remember()
        for borrower in [k for k, v in self._lent.items() if v == name]:
            del self._lent[borrower]  # it is back: nothing to give back later
        sizes = self.sizes()
        want = max(min(self.widths.get(name, 300), sizes[chat]), w.minimumSizeHint().width())
        if sizes[chat] - want < MIN_CHAT_WIDTH:
            for other in self.actions:
                if other != name and self.is_shown(other):
                    j = self.indexOf(self.panes[other])
                    sizes[chat] += sizes[j]
                    sizes[j] = 0
                    self.panes[other].hide()
                    self._lent[name] = other
        give = max(min(want, sizes[chat] - MIN_CHAT_WIDTH), min(want, 240))
        w.show()
        sizes[self.indexOf(w)], sizes[chat] = give, max(sizes[chat] - give, 1)
        self.setSizes(sizes)
        self._sync()

    def _remember(self) -> None:
        for name, w in self.panes.items():
            size = self.sizes()[self.indexOf(w)]
            if name != self.middle and size > 0 and not w.isHidden():
                self.widths[name] = size

    def _sync(self) -> None:
        self._remember()
        for name, action in self.actions.items():
            shown = self.is_shown(name)
            if action.isChecked() != shown:
                action.blockSignals(True)
                action.setChecked(shown)
                action.blockSignals(False)

    def state(self) -> dict:
        """Widths and which panes the user keeps shown (one hidden only to make room counts as shown)."""
        self._remember()
        return {"sizes": self.sizes(), "widths": self.widths,
                "shown": {name: self.is_shown(name) or name in self._lent.values() for name in self.actions}}

    def restore(self, state: dict, keep_hidden: tuple[str, ...] = ()) -> None:
        widths = state.get("widths", {})
        self.widths.update({k: int(v) for k, v in widths.items() if k in self.widths and int(v) > 0})
        sizes = state.get("sizes")
        if isinstance(sizes, list) and len(sizes) == self.count() and all(isinstance(s, int) for s in sizes):
            self.setSizes(sizes)
        for name, on in state.get("shown", {}).items():
            if name in self.actions and name not in keep_hidden:
                self.panes[name].setVisible(bool(on))
                if on and not self.is_shown(name):  # saved while collapsed or lent: back at its width
                    self.set_shown(name, True)
        self._sync()


def palette_is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.Window).lightness() < 128


class WindowShell(QObject):
    """Made by the main window once its features exist; see the module docstring."""

    def __init__(self, window, features, columns: Columns):
        super().__init__(window)
        self.window, self.features, self.columns = window, features, columns
        self.ctx, self.engine = window.ctx, window.engine_service
        self.layout_path = Path(self.ctx.paths.data_dir) / LAYOUT_FILE
        self._stale_theme = False
        self._said = ""  # the drop refusal on show in the chat's error line
        f, panel = features, features.chat.panel
        window.setAcceptDrops(True)
        window.installEventFilter(self)
        panel.urls_dropped.connect(self.open_dropped)
        panel.open_project_requested.connect(f.project.open_action.trigger)
        panel.first_screen_toggled.connect(lambda on: on and self.update_first_screen())
        self.engine.loading.connect(lambda: panel.first_screen.set_model("Model: loading…"))
        self.engine.loaded.connect(lambda _lm: self.update_first_screen())
        self.engine.failed.connect(lambda _m: panel.first_screen.set_model("Model: none loaded (the reason is above)."))
        f.network.offline_action.toggled.connect(lambda _on: self.update_first_screen())
        f.project.project_opened.connect(lambda _root: self.update_first_screen())
        f.changes.pane_wanted.connect(lambda: columns.set_shown("changes", True))
        f.chat.answer_finished.connect(lambda _r: self._stale_theme and self.apply_theme())
        # a bound slot: disconnected with this window (the style hints outlive it)
        QGuiApplication.styleHints().colorSchemeChanged.connect(self.scheme_changed)
        self.apply_theme()
        self.update_first_screen()

    # ---- the first screen --------------------------------------------------------------------
    def update_first_screen(self) -> None:
        fs, model = self.features.chat.panel.first_screen, self.engine.model
        if model is not None:
            sp = self.ctx.speeds.speed(model.path)
            fs.set_model(speed_line(model.name, sp.prompt_tps, sp.gen_tps, sp.measured))
        fs.set_offline(self.features.network.offline_action.isChecked())
        root = self.features.project.root
        fs.set_project(root.name if root is not None else None)

    # ---- drag and drop ------------------------------------------------------------------------
    def eventFilter(self, obj, event) -> bool:
        if obj is self.window and event.type() in DROP_EVENTS:
            if not event.mimeData().hasUrls():
                return False
            event.acceptProposedAction()
            if event.type() == QEvent.Drop:
                self.open_dropped(list(event.mimeData().urls()))
            return True
        if obj is self.window and event.type() in PALETTE_EVENTS:
            self.apply_theme()
        return False

    def open_dropped(self, urls: list) -> None:
        """A folder opens as the project; files are attached to the question. Anything that
        cannot be is refused in the chat's error line, and nothing changes."""
        panel, errors = self.features.chat.panel, []
        if any(not u.isLocalFile() for u in urls):
            errors.append("Only files and folders on this computer can be dropped here, not web addresses.")
        paths = [Path(u.toLocalFile()) for u in urls if u.isLocalFile()]
        folders = [p for p in paths if p.is_dir()]
        if folders:
            if len(paths) > 1:
                return self._say(f"Drop one folder to open it as the project ({len(paths)} items were dropped).")
            try:
                folder = project_folder(folders[0])
            except DropError as e:
                return self._say(str(e))
            self._say("")
            return self.features.project.open(folder)
        n_ctx, attached = self.ctx.settings.n_ctx, []
        for p in paths:
            try:
                panel.attach(attachment(p, attach_limit(n_ctx) - panel.question_bytes(), n_ctx))
                attached.append(p.name)
            except DropError as e:
                errors.append(str(e))
        self._say("\n".join(errors))
        if attached:
            self.window.host.notify(f"Attached {', '.join(attached)} to the question.", 4000)

    def _say(self, text: str) -> None:
        """A refused drop in the chat's error line; a good drop clears only such a line (not,
        say, why the model did not load)."""
        panel = self.features.chat.panel
        if text:
            panel.show_error(text)
        elif self._said and panel.error.isVisible() and panel.error.text() == self._said:
            panel.show_error(None)
        self._said = text

    # ---- theme ---------------------------------------------------------------------------------
    def scheme_changed(self, _scheme) -> None:
        self.apply_theme()

    def apply_theme(self) -> None:
        """Light or dark code colours from the palette; what is on screen is drawn again (an
        answer being written is left alone and redrawn when it ends)."""
        dark = palette_is_dark(self.window.palette())
        if current_theme().dark == dark and not self._stale_theme:
            return
        set_theme(dark)
        f = self.features
        f.changes.panel.rerender()
        self._stale_theme = f.chat.pending is not None
        if not self._stale_theme:
            f.chat.show_conversation()

    # ---- layout --------------------------------------------------------------------------------
    def restore_layout(self) -> None:
        """Geometry, docks and columns as the last session left them; the Changes pane stays
        hidden until there are changes. Without a saved layout: a size that fits the screen."""
        data = load_layout(self.layout_path)
        w = self.window
        if not data:
            screen = w.screen().availableGeometry()
            w.resize(min(1280, int(screen.width() * 0.95)), min(760, int(screen.height() * 0.92)))
            w.resizeDocks([self.features.project.dock], [max(240, w.width() // 5)], Qt.Horizontal)
            return
        try:
            w.restoreGeometry(QByteArray(base64.b64decode(data.get("geometry", ""))))
            w.restoreState(QByteArray(base64.b64decode(data.get("state", ""))))
            self.columns.restore(data.get("columns", {}), keep_hidden=("changes",))
            size = data.get("chat_font_pt")
            if isinstance(size, (int, float)) and not isinstance(size, bool) and size == size:  # not NaN
                self.features.chat.view.set_font_size(float(size))  # (clamped to its range there)
        except (ValueError, TypeError) as e:
            log.warning("window layout %s partly ignored: %s", self.layout_path, e)

    def save_layout(self) -> None:
        w = self.window
        data = {"version": LAYOUT_VERSION,
                "geometry": base64.b64encode(bytes(w.saveGeometry())).decode("ascii"),
                "state": base64.b64encode(bytes(w.saveState())).decode("ascii"),
                "columns": self.columns.state(), "chat_font_pt": self.features.chat.view.font_size()}
        try:
            atomic_write_text(self.layout_path, json.dumps(data, indent=1))
        except OSError as e:  # the layout is a comfort: the next start uses the default one
            log.warning("window layout not saved to %s: %s", self.layout_path, describe_os_error(e))


def load_layout(path: Path) -> dict:
    """The saved layout, or {} (none yet, or damaged: logged and ignored)."""
    try:
        data = safe_loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        log.warning("window layout %s ignored (%s): the default layout applies", path, e)
        return {}
    if not isinstance(data, dict) or data.get("version") != LAYOUT_VERSION or not isinstance(data.get("columns", {}), dict):
        log.warning("window layout %s ignored (not a layout of this version): the default layout applies", path)
        return {}
    return data

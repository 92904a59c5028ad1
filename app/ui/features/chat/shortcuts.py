"""The chat's keyboard: window-wide actions (Esc stops, Ctrl+K search, Ctrl+L the question box,
Ctrl+Shift+C copy the last answer, zoom, regenerate, versions, export) and the list of every
chat key for the help (``ChatFeature.shortcuts()``).

Qt's standard sequences are used where Qt has one (Cancel, ZoomIn/Out, Refresh, SaveAs), so a
platform's own keys work too. A text box claims some of these keys for itself (Ctrl+K deletes
to the end of the line in Qt's editors on Linux), so ``KeysFirst`` lets the chat's enabled
actions win in the boxes it is installed on.
"""

from __future__ import annotations

from dataclasses import dataclass

from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence

if TYPE_CHECKING:
    from app.ui.features.chat.feature import ChatFeature


@dataclass(frozen=True)
class Key:
    name: str     # the action's attribute on ChatFeature
    text: str     # what it does, for the menus and the shortcuts list
    keys: tuple   # QKeySequence.StandardKey values or "Ctrl+…" strings, the first one shown


ACTIONS = (
    Key("stop_action", "Stop the answer (or cancel an edit)", (QKeySequence.Cancel,)),
    Key("search_action", "Search the chats", ("Ctrl+K",)),
    Key("focus_input_action", "Go to the question box", ("Ctrl+L",)),
    Key("copy_answer_action", "Copy the last answer", ("Ctrl+Shift+C",)),
    Key("zoom_in_action", "Larger chat text", ("Ctrl+=", QKeySequence.ZoomIn)),
    Key("zoom_out_action", "Smaller chat text", (QKeySequence.ZoomOut,)),
    Key("regenerate_action", "Regenerate the last answer (the earlier one is kept)", (QKeySequence.Refresh,)),
    Key("previous_version_action", "Earlier version of the last answer", ("Alt+Left",)),
    Key("next_version_action", "Later version of the last answer", ("Alt+Right",)),
    Key("export_action", "Export the chat as Markdown…", ("Ctrl+Shift+S", QKeySequence.SaveAs)),
)
# Keys handled by a widget rather than a window-wide action: (keys, what they do).
WIDGET_KEYS = (
    ("Ctrl+Enter", "Send the question (in the question box)"),
    ("F2", "Rename the chat (in the list)"),
    ("Ctrl+D", "Pin or unpin the chat (in the list)"),
    ("Delete", "Delete the selected chats (in the list)"),
)


def sequences(key: Key) -> list[QKeySequence]:
    out: list[QKeySequence] = []
    for k in key.keys:
        for seq in QKeySequence.keyBindings(k) if isinstance(k, QKeySequence.StandardKey) else [QKeySequence(k)]:
            if not seq.isEmpty() and seq not in out:
                out.append(seq)
    return out


def keys_text(seqs: list[QKeySequence]) -> str:
    texts = []
    for s in seqs:
        t = s.toString(QKeySequence.NativeText)
        if t and t not in texts:
            texts.append(t)
    return " or ".join(texts)


def make_actions(owner: QObject, window) -> dict[str, QAction]:
    """One QAction per entry of ACTIONS, window-wide (added to ``window``)."""
    out = {}
    for key in ACTIONS:
        a = QAction(key.text, owner)
        a.setShortcuts(sequences(key))
        a.setShortcutContext(Qt.WindowShortcut)
        window.addAction(a)
        out[key.name] = a
    return out


def shortcut_list(actions: dict[str, QAction]) -> list[tuple[str, str]]:
    """[(keys, what they do)] for every chat key, as the help shows them."""
    rows = [(keys_text(actions[k.name].shortcuts()), k.text) for k in ACTIONS]
    return rows + [(QKeySequence(k).toString(QKeySequence.NativeText), text) for k, text in WIDGET_KEYS]


class KeysFirst(QObject):
    """An event filter: in the widgets it watches, a key of one of ``actions`` (enabled) goes to
    the action rather than to the widget's own binding."""

    def __init__(self, actions: list[QAction], parent: QObject | None = None):
        super().__init__(parent)
        self.actions = actions

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.ShortcutOverride:
            pressed = QKeySequence(event.keyCombination())
            if any(a.isEnabled() and pressed in a.shortcuts() for a in self.actions):
                event.ignore()  # not claimed by the widget: the shortcut runs
                return True
        return False


class ChatKeys:
    """The chat feature's keys: its actions (also set on the feature by name, e.g.
    ``feature.stop_action``, for the window's menus) and what they do."""

    def __init__(self, chat: "ChatFeature"):
        self.chat = chat
        self.actions = make_actions(chat, chat.host.window)
        for name, action in self.actions.items():
            setattr(chat, name, action)
        c, p, branches = chat.conversations, chat.panel, chat.branches
        slots = {"stop_action": self.escape, "search_action": c.focus_search,
                 "focus_input_action": lambda: p.input.setFocus(Qt.ShortcutFocusReason),
                 "copy_answer_action": self.copy_last_answer,
                 "zoom_in_action": lambda: self.zoom(1), "zoom_out_action": lambda: self.zoom(-1),
                 "regenerate_action": lambda: branches.regenerate(None),
                 "previous_version_action": lambda: branches.step_last_answer(-1),
                 "next_version_action": lambda: branches.step_last_answer(1),
                 "export_action": lambda: chat.chats.export_markdown(chat.current_id)}
        for name, slot in slots.items():
            self.actions[name].triggered.connect(slot)
        self.first = KeysFirst(list(self.actions.values()), chat)
        for widget in (p.input, c.search, chat.view):
            widget.installEventFilter(self.first)

    def shortcuts(self) -> list[tuple[str, str]]:
        return shortcut_list(self.actions)

    def running(self) -> bool:
        """A turn is under way: its job runs and still holds the engine (the engine is let go
        once the result is handled, a moment before the job's thread ends)."""
        job = self.chat.answer_job
        return job is not None and job.is_running() and self.chat.host.engine.busy_text() is not None

    def update(self) -> None:
        """Esc is live only while it has something to do (so it never takes a box's own Esc)."""
        self.actions["stop_action"].setEnabled(self.running() or self.chat.branches.editing is not None)

    def escape(self) -> None:
        if self.running():
            self.chat.stop()
        else:
            self.chat.branches.cancel_edit(restore_draft=True)

    def copy_last_answer(self) -> None:
        m = self.chat.last_answer()
        if m is None:
            self.chat.host.notify("There is no answer to copy yet.", 3000)
            return
        QGuiApplication.clipboard().setText(m.content)
        self.chat.host.notify(f"Copied the last answer ({len(m.content.splitlines())} lines)", 3000)

    def zoom(self, step: int) -> None:
        size = self.chat.view.set_font_size(self.chat.view.font_size() + step)
        self.chat.host.notify(f"Chat text {size:g} pt", 2000)
        self.chat.font_size_changed.emit(size)

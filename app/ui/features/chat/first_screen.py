"""The first screen: what the chat column shows while the conversation is empty.

Why: an empty view told a new user nothing. This one says what the app can do, with three
starters (ask a question, open a project and ask about it, ``/code`` a change), which model
answers and how fast it is on this computer (measured on the user's own answers, else
estimated from the model's size), whether offline mode is on, and that folders and files can
be dragged in. The facts come from the window (``set_model``, ``set_offline``, ``set_project``).
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCommandLinkButton, QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from app import APP_NAME

EXAMPLE_QUESTION = "How do I read a CSV file in Python and add up one of its columns?"
ANSWER_TOKENS = 200  # "a short answer" in the speed line


def speed_line(name: str, prompt_tps: float, gen_tps: float, measured: bool) -> str:
    """The model and its speed here, in words a user can plan with."""
    how = "measured on your answers" if measured else "estimated from its size until it has answered here"
    wait = f", so a short answer ({ANSWER_TOKENS} tokens) takes about {ANSWER_TOKENS / gen_tps:.0f} s" if gen_tps > 0 else ""
    return (f"Model: {name}. On this computer it reads about {prompt_tps:.0f} tokens/s and writes about "
            f"{gen_tps:.0f} tokens/s ({how}){wait}.")


class FirstScreen(QScrollArea):
    starter = Signal(str)  # "ask", "project" or "code"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("firstScreen")
        self.setWidgetResizable(True)
        self.setFrameShape(QScrollArea.NoFrame)
        body = QWidget()
        body.setMaximumWidth(720)
        title = QLabel(f"<h2>{html.escape(APP_NAME)}</h2>")
        intro = QLabel("A coding assistant that runs a model on this computer. Ask about code, open a "
                       "project and ask about its files, or have it change them with <b>/code</b>: "
                       "you see every change as a diff and apply it, or not.")
        intro.setWordWrap(True)
        self.ask_button = self._starter("ask", "Ask a question", f"For example: “{EXAMPLE_QUESTION}”")
        self.project_button = self._starter("project", "Open a project and ask about it",
                                            "Answers cite the lines of your files they use (Ctrl+Shift+O).")
        self.code_button = self._starter("code", "/code a change",
                                         "Describe a change to the project's files; review the diff, Apply, Undo.")
        self.model_label = self._fact("firstModel", "Model: loading…")
        self.offline_label = self._fact("firstOffline", "")
        self.tip = self._fact("firstTip", "Drag a folder onto the window to open it as the project; drag a file "
                                          "onto the question box to attach its text.")
        lay = QVBoxLayout(body)
        lay.setContentsMargins(24, 16, 24, 16)
        for w in (title, intro, self.ask_button, self.project_button, self.code_button, self.model_label,
                  self.offline_label, self.tip):
            lay.addWidget(w)
        lay.addStretch()
        holder = QWidget()
        outer = QHBoxLayout(holder)  # centred, as wide as the column allows up to its maximum
        outer.addStretch(1)
        outer.addWidget(body, 20)
        outer.addStretch(1)
        self.setWidget(holder)

    def _starter(self, kind: str, title: str, description: str) -> QCommandLinkButton:
        button = QCommandLinkButton(title, description)
        button.setObjectName(f"starter_{kind}")
        button.clicked.connect(lambda: self.starter.emit(kind))
        return button

    @staticmethod
    def _fact(name: str, text: str) -> QLabel:
        label = QLabel(text)
        label.setObjectName(name)
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        return label

    def set_model(self, text: str) -> None:
        """The model line (``speed_line``, or what stands in for it while none is loaded)."""
        self.model_label.setText(html.escape(text))

    def set_offline(self, on: bool) -> None:
        self.offline_label.setText(
            "<b>Offline mode is on</b>: nothing leaves this computer (Offline on the toolbar, or /online)." if on
            else "<b>Offline mode is off</b>: /search and /web may use the internet; the model still runs here "
                 "(Offline on the toolbar, or /offline).")

    def set_project(self, name: str | None) -> None:
        """The open project's name (None: none): /code changes its files, so it needs one."""
        self.code_button.setDescription(
            f"Describe a change to {name}'s files; review the diff, Apply, Undo." if name
            else "Open a project first, then describe a change to its files; review the diff, Apply, Undo.")
        self.project_button.setText(f"Ask about {name}, or open another project" if name
                                    else "Open a project and ask about it")

"""Versions in the chat: regenerate an answer, edit a question, switch with ◀ n/m ▶.

Why apart from feature.py: these are the branch-aware turns (ChatService.regenerate / edit on
the message tree of app/core/storage/messages.py); the feature only routes to them. Every one
runs through the feature's ``generate``, i.e. EngineService.start_exclusive: while anything holds
the model a regenerate is refused with the holder's words, so two generations never run.

Editing: "✎ Edit" puts the question in the box (what was typed there is kept aside) and marks
it in the chat; Ctrl+Enter sends the new version, Esc cancels. Opening or deleting the
conversation ends the edit; the text stays in the box, so nothing typed is lost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.core.chat.service import can_regenerate
from app.core.errors import UserError
from app.core.storage import ChatGoneError
from app.ui.errors import describe_error

if TYPE_CHECKING:
    from app.core.edits.prompt import EditRequest
    from app.ui.features.chat.feature import ChatFeature

SWITCH_BLOCKERS = ("turn", "review")  # what writes into, or reads, the conversation on show


class Branches:
    def __init__(self, chat: "ChatFeature"):
        self.chat = chat
        self.editing: tuple[int, int] | None = None  # (conversation id, question id) being edited
        self.draft = ""  # what the box held before the edit began

    # ---- regenerate ------------------------------------------------------------------------------
    def last_answer_id(self) -> int | None:
        m = self.chat.last_answer()
        return m.id if m is not None and can_regenerate(m) else None

    def regenerate(self, answer_id: int | None) -> None:
        """A new version of an answer (None: the last one on show); the old one is kept."""
        chat, engine = self.chat, self.chat.host.engine
        if engine.refuse_if_busy():
            return  # an answer (or a review, a load…) holds the model: never two at once
        if engine.engine is None:
            chat.host.notify("No model is loaded yet: wait until it is ready.")
            return
        if answer_id is None and (answer_id := self.last_answer_id()) is None:
            chat.host.notify("There is no answer to regenerate yet.", 3000)
            return
        try:
            pending = chat.service.regenerate(answer_id)
        except UserError as e:
            chat.panel.show_error(describe_error(e))
            return
        pending.edit = chat.code_request(pending.question.content)  # a /code request: files chosen afresh
        self.cancel_edit()
        chat.host.features.tools.new_message()
        chat.current_id = pending.conversation_id
        chat.panel.show_error(None)
        chat.show_conversation(chat.ctx.storage.path_to(pending.answer_parent))
        chat.panel.set_busy(True)
        chat.generate(pending)

    # ---- versions ----------------------------------------------------------------------------------
    def show_version(self, message_id: int, step: int) -> None:
        """The earlier (-1) or later (+1) version of a message, with what followed it."""
        chat = self.chat
        if chat.host.engine.refuse_if_busy(SWITCH_BLOCKERS):
            return
        versions = chat.ctx.storage.siblings(message_id)
        target = versions.step(step) if versions is not None else None
        if target is None:
            return
        try:
            chat.ctx.storage.show_branch(target)
        except UserError as e:
            chat.panel.show_error(describe_error(e))
            return
        self.cancel_edit()
        chat.show_conversation()

    def step_last_answer(self, step: int) -> None:
        m = self.chat.last_answer()
        if m is not None:
            self.show_version(m.id, step)

    # ---- edit --------------------------------------------------------------------------------------
    def begin_edit(self, question_id: int) -> None:
        chat = self.chat
        m = chat.ctx.storage.message(question_id)
        if m is None:
            chat.panel.show_error("That question no longer exists (its conversation was deleted).")
            return
        if self.editing is None:
            self.draft = chat.panel.input.toPlainText()
        self.editing = (m.conversation_id, m.id)
        chat.panel.input.setPlainText(m.content)
        chat.panel.input.selectAll()
        chat.panel.input.setFocus()
        chat.view.set_editing(m.id)
        chat.update_actions()

    def cancel_edit(self, restore_draft: bool = False) -> None:
        """End the edit; ``restore_draft`` (Esc) puts back what the box held before it."""
        if self.editing is None:
            return
        self.editing = None
        if restore_draft:
            self.chat.panel.input.setPlainText(self.draft)
        self.draft = ""
        self.chat.view.set_editing(None)
        self.chat.update_actions()

    def conversations_deleted(self, ids: list[int]) -> None:
        """The edited question's conversation is gone: the edit ends, the text stays in the box."""
        if self.editing is not None and self.editing[0] in ids:
            self.cancel_edit()
            self.chat.panel.show_error("The conversation whose question you were editing was deleted, so the edit "
                                       "is cancelled. Your text stays in the box: Ctrl+Enter asks it in the chat "
                                       "on show.")

    def send_edit(self, text: str, edit: "EditRequest | None") -> None:
        """The new version of the question, stored beside the old one, then answered."""
        chat = self.chat
        _, question_id = self.editing
        try:
            pending = chat.service.edit(question_id, text, edit)
        except ChatGoneError as e:
            self.cancel_edit()
            chat.panel.input.setPlainText(text)  # nothing typed is lost
            chat.panel.show_error(f"{e} Your text is back in the box: send it again to ask it in the chat on show.")
            return
        except UserError as e:
            chat.panel.input.setPlainText(text)
            chat.panel.show_error(describe_error(e))
            return
        self.cancel_edit()
        chat.current_id = pending.conversation_id
        chat.panel.show_error(None)
        chat.refresh_list()
        chat.show_conversation()
        chat.panel.set_busy(True)
        chat.generate(pending)

"""A conversation turn: what is sent to the model and what is kept.

The UI and the CLI both go through here, so the prompt the model sees is built in one place:
system prompt (with the user's standing rules), then as much recent history as fits the
context, then the new question.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from app.core.edits.prompt import EditRequest, build_edit_prompt
from app.core.engine import Engine, GenerationParams, GenerationResult, Message
from app.core.errors import UserError
from app.core.index.context import with_project_context
from app.core.chat.rules import RULES_SHARE, fit_rules
from app.core.settings import Settings
from app.core.storage import DEFAULT_TITLE, StoredMessage, Storage

if TYPE_CHECKING:
    from app.core.index.indexer import Hit

TITLE_MAX = 60


def answer_reserve(n_ctx: int, max_tokens: int) -> int:
    """Tokens kept free for the answer: the max answer length, but at most half the context."""
    return max(1, min(max_tokens, n_ctx // 2))


def build_messages(system_prompt: str, history: Sequence[Message], prompt_budget: int,
                   count: Callable[[Sequence[Message]], int]) -> list[Message]:
    """System prompt + the newest history that fits ``prompt_budget`` tokens.

    The last message (the question) is always kept; older turns are dropped whole, oldest
    first, so the model never sees half a message.
    """
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    if not history:
        return system
    kept: list[Message] = [dict(history[-1])]
    for m in reversed(history[:-1]):
        candidate = [dict(m)] + kept
        if count(system + candidate) > prompt_budget:
            break
        kept = candidate
    # A conversation should not start with an orphaned assistant reply.
    while len(kept) > 1 and kept[0]["role"] == "assistant":
        kept.pop(0)
    return system + kept


def title_from(question: str) -> str:
    line = " ".join(question.split())
    if len(line) <= TITLE_MAX:
        return line or DEFAULT_TITLE
    return line[: TITLE_MAX - 1].rstrip() + "…"


@dataclass
class PendingAnswer:
    """A question stored and waiting for its answer, with the history the prompt is built from."""

    conversation_id: int
    question: StoredMessage
    history: list[Message]
    edit: EditRequest | None = None  # a change request: project files go into the prompt
    files_shown: list[str] | None = None  # set by prompt(): the files the model saw
    sources: list[Hit] | None = None  # set by prompt(): the project chunks the model saw
    web: str | None = None  # /web: the pages' text block for the system prompt (set on the worker)
    web_urls: list[str] | None = None  # /web: the pages it came from, kept as the answer's sources
    rules: list[str] = field(default_factory=list)  # the standing rules that apply, newest first
    rules_left_out: int = 0  # set by prompt(): rules that did not fit their share of the prompt
    messages: list[Message] | None = None  # set by prompt(): what was sent to the model


class EmptyQuestion(UserError, ValueError):
    """Nothing to ask: the question is empty."""


class ChatService:
    """Stores turns and builds prompts; the blocking generation is a plain function call."""

    def __init__(self, storage: Storage | None, settings: Settings):
        self.storage = storage
        self.settings = settings
        # Project search (set while a project is open): question -> ranked chunks.
        self.retriever: Callable[[str], list[Hit]] | None = None
        # The open project folder: its rules apply and conversations are marked with it.
        self.project: Path | None = None

    def ask(self, conversation_id: int, question: str, edit: EditRequest | None = None) -> PendingAnswer:
        """Store the question now (so a crash cannot lose it) and title a new conversation."""
        question = question.strip()
        if not question:
            raise EmptyQuestion("Type a question first.")
        is_first = not any(m.role == "user" for m in self.storage.messages(conversation_id))
        stored = self.storage.add_message(conversation_id, "user", question)
        conv = self.storage.conversation(conversation_id)
        if is_first and conv is not None and conv.title == DEFAULT_TITLE:
            self.storage.rename_conversation(conversation_id, title_from(question))
        if self.project is not None and conv is not None and conv.project != str(self.project):
            self.storage.set_conversation_project(conversation_id, self.project)
        history = [m.as_chat() for m in self.storage.messages(conversation_id)
                   if m.role in ("user", "assistant")]
        return PendingAnswer(conversation_id, stored, history, edit, rules=self.rules_now())

    def single_turn(self, question: str, edit: EditRequest | None = None) -> PendingAnswer:
        """A one-off question that is not stored (the command line): the same prompt the window
        builds for a first question, rules included when there is a database."""
        question = question.strip()
        if not question:
            raise EmptyQuestion("The question is empty.")
        stored = StoredMessage(0, 0, "user", question, 0.0)
        return PendingAnswer(0, stored, [stored.as_chat()], edit,
                             rules=self.rules_now() if self.storage is not None else [])

    def rules_now(self) -> list[str]:
        """The standing rules for the open project (global ones too), newest first. Reads the
        database: call it on the GUI thread and hand the list to the worker."""
        return [r.text for r in self.storage.active_rules(self.project)]

    def base_system(self, engine: Engine, rules: Sequence[str], budget: int) -> tuple[str, int]:
        """The system prompt with the rules that fit ``RULES_SHARE`` of ``budget`` tokens, and
        how many rules were left out (the oldest)."""
        system = self.settings.system_prompt
        block, left_out = fit_rules(rules, int(budget * RULES_SHARE), engine.count_tokens)
        if block:
            system = f"{system}\n\n{block}" if system else block
        return system, left_out

    def params(self) -> GenerationParams:
        """The user's sampling settings, a copy (a caller's change stays its own)."""
        return replace(self.settings.generation)

    def prompt(self, engine: Engine, pending: PendingAnswer) -> list[Message]:
        """The messages to send. Touches no storage, so it may run on the worker thread."""
        reserve = answer_reserve(engine.n_ctx, self.settings.generation.max_tokens)
        budget = engine.n_ctx - reserve
        system, pending.rules_left_out = self.base_system(engine, pending.rules, budget)
        history = pending.history
        if pending.web:
            # /web: the pages read for this question take the place of project code.
            system = f"{system}\n\n{pending.web}" if system else pending.web
        elif pending.edit is not None:
            # Files first claim most of the budget; older turns get what is left.
            room = int(budget * 0.8) - engine.count_tokens(system)
            extra, user, pending.files_shown = build_edit_prompt(pending.edit, room, reserve, engine.count_tokens)
            system = f"{system}\n\n{extra}" if system else extra
            history = history[:-1] + [{"role": "user", "content": user}]
        elif self.retriever is not None and self.settings.retrieval.use_project and history:
            # Ground the answer in the project: the best chunks within the budget, cited.
            system, ctx = with_project_context(system, self.retriever(history[-1]["content"]),
                                               self.settings.retrieval.context_tokens, budget, engine.count_tokens)
            pending.sources = ctx.hits
        pending.messages = build_messages(system, history, budget, engine.count_message_tokens)
        return pending.messages

    def finish(self, pending: PendingAnswer, result: GenerationResult, model_name: str,
               adapters: list[str] | None = None) -> StoredMessage | None:
        """Keep the answer, a stopped one too (marked as such); an empty one is not kept.

        ``adapters`` names the LoRA adapters (with strength) the answer was written with, so
        answers with and without an adapter can be compared later."""
        if not result.text.strip():
            return None
        meta = {
            "model": model_name,
            "finish_reason": result.finish_reason,
            "completion_tokens": result.completion_tokens,
            "tokens_per_s": round(result.tokens_per_s, 2),
            "ttft_s": round(result.time_to_first_token_s or 0.0, 3),
        }
        if adapters:
            meta["adapters"] = list(adapters)
        if pending.sources:
            meta["sources"] = [h.citation for h in pending.sources]
        if pending.web_urls:
            meta["sources"] = list(pending.web_urls)
            meta["tool"] = "web"
        if pending.rules_left_out:
            meta["rules_left_out"] = pending.rules_left_out
        return self.storage.add_message(pending.conversation_id, "assistant", result.text, meta)


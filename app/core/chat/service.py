"""A conversation turn: what is sent to the model and what is kept.

The UI and the CLI both go through here, so the prompt the model sees is built in one place.

The prompt is laid out for reuse: llama.cpp keeps what it has read and re-reads only from the
first token that differs, and on 2 cores reading costs seconds per hundred tokens. So the stable
part comes first (the system prompt and standing rules, and with a project open the citing
instructions), then the conversation exactly as it was sent before (each earlier question with
the project code it showed, kept where it was: ``asked_as`` in the answer's meta), then the new
turn: only code the conversation has not shown yet, then the question. A follow-up on the same
topic then costs only its own new tokens. When the conversation outgrows the context, whole old
turns are dropped (and the answer says how many); code they showed is shown again if needed.

Turns form branches (app/core/storage/messages.py): ``regenerate`` writes a new answer beside
an old one under the same question, ``edit`` a new question beside the old one; either way the
prompt is built from the branch on show, so later turns build on the version the user chose.
An answer is kept as it grows (``keep_partial``, at most every ``SAVE_EVERY_S``), so a crash
leaves it marked unfinished instead of losing it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from app.core.edits.prompt import EditRequest, build_edit_prompt
from app.core.engine import Engine, GenerationParams, GenerationResult, Message
from app.core.errors import UserError
from app.core.index.context import CITE_IN_TURNS, PROMPT_SHARE, build_context
from app.core.models.speed import Speed, code_budget
from app.core.chat.rules import RULES_SHARE, fit_rules
from app.core.settings import Settings
# (answer_reserve, build_messages, TITLE_MAX are re-exported: callers import them from here)
from app.core.chat.history import TITLE_MAX, answer_reserve, build_messages, history_as_sent, title_from  # noqa: F401
from app.core.chat.intent import route
from app.core.storage import AFTER_LEAF, DEFAULT_TITLE, ChatGoneError, StoredMessage, Storage

if TYPE_CHECKING:
    from app.core.engine import ReadingProgress
    from app.core.index.indexer import Hit

FOLLOW_UP_CHUNKS = 1  # a follow-up adds new code only from its best search hit, if new
FOLLOW_UP_SHARE = 4   # ... within a quarter of the room a first question gets
SAVE_EVERY_S = 2.0    # an answer being written is saved at most this often
MODEL_TOOLS = ("search", "web", "fix")  # answers a tool made: not regenerated as a plain question


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
    shown_per_message: list[list[str]] = field(default_factory=list)  # code each history message showed
    asked_as: str | None = None  # set by prompt(): the question as sent (with its code), kept for reuse
    shown_now: list[str] = field(default_factory=list)  # set by prompt(): citations this turn showed
    turns_left_out: int = 0  # set by prompt(): old messages that did not fit the context
    answer_parent: int | None = None  # regenerate: the message the new answer goes under (else the leaf)
    answer: StoredMessage | None = None  # the answer's row once keep_partial has saved it
    saved_at: float = 0.0  # when keep_partial last saved (time.monotonic)
    partial_failed: bool = False  # keep_partial hit a storage error: the final write still tries
    finished: bool = False  # finish() stored the answer: no partial save may follow


def reading_line(pending: PendingAnswer, p: "ReadingProgress") -> str:
    """"Reading your question and 6 pieces of project code: 640 / 1,900 tokens · about 25 s left"."""
    if pending.edit is not None:
        n = len(pending.files_shown or [])
        what = f"your request and {n} file{'s' * (n != 1)}" if n else "your request"
    elif pending.web_urls:
        n = len(pending.web_urls)
        what = f"your question and {n} web page{'s' * (n != 1)}"
    elif pending.shown_now:
        n = len(pending.shown_now)
        what = f"your question and {n} piece{'s' * (n != 1)} of project code"
    else:
        what = "your question"
    line = f"Reading {what}: {p.done:,} / {p.total:,} tokens"
    left = p.seconds_left()
    if left is not None and p.done < p.total:
        line += f" · about {max(1, round(left)):,} s left"
    if p.reused:
        line += f" ({p.reused:,} read before, kept)"
    return line


class EmptyQuestion(UserError, ValueError):
    """Nothing to ask: the question is empty."""


class CannotRegenerate(UserError, ValueError):
    """The message is not an answer the model can write again (a tool's output, a question)."""


def can_edit(m: StoredMessage) -> bool:
    """A question the user may edit: a plain one or a /code request (not a tool command)."""
    return m.role == "user" and not m.meta.get("tool") and route(m.content).kind in ("chat", "code")


def can_regenerate(m: StoredMessage) -> bool:
    """An answer the model wrote to a question (not a tool's list or a /fix round)."""
    return m.role == "assistant" and m.meta.get("tool") not in MODEL_TOOLS


class ChatService:
    """Stores turns and builds prompts; the blocking generation is a plain function call."""

    def __init__(self, storage: Storage | None, settings: Settings):
        self.storage = storage
        self.settings = settings
        # Project search (set while a project is open): question -> ranked chunks.
        self.retriever: Callable[[str], list[Hit]] | None = None
        # The open project folder: its rules apply and conversations are marked with it.
        self.project: Path | None = None
        # The loaded model's reading speed (app/core/models/speed.py): with it, project code is
        # measured out in seconds (``first_answer_s``) rather than a fixed number of tokens.
        self.speed: Speed | None = None

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
        history, shown = history_as_sent(self.storage.messages(conversation_id))
        return PendingAnswer(conversation_id, stored, history, edit, rules=self.rules_now(), shown_per_message=shown)

    def regenerate(self, answer_id: int) -> PendingAnswer:
        """A new version of an answer: the same question asked again on the same branch; the
        answer will go beside the old one (kept, reachable as a version)."""
        old = self.storage.message(answer_id)
        if old is None:
            raise ChatGoneError("That answer no longer exists (its conversation was deleted).")
        if not can_regenerate(old):
            raise CannotRegenerate("Only an answer the model wrote to a question can be regenerated.")
        before = self.storage.path_to(old.parent_id)
        asked = [m for m in before if m.role == "user"]
        if not asked:
            raise CannotRegenerate("That answer has no question before it to answer again.")
        history, shown = history_as_sent(before)
        return PendingAnswer(old.conversation_id, asked[-1], history, rules=self.rules_now(),
                             shown_per_message=shown, answer_parent=old.parent_id)

    def edit(self, question_id: int, text: str, edit: EditRequest | None = None) -> PendingAnswer:
        """An edited question: stored beside the old one (which stays, with what followed it, as
        an earlier version), then answered like any question. The conversation or the question
        gone meanwhile is a ChatGoneError, with nothing written."""
        text = text.strip()
        if not text:
            raise EmptyQuestion("Type the new question first.")
        old = self.storage.message(question_id)
        if old is None or self.storage.conversation(old.conversation_id) is None:
            raise ChatGoneError("The conversation of the question you were editing was deleted, so the edit "
                                "has nowhere to go.")
        if old.role != "user":
            raise ValueError(f"Message {question_id} is not a question.")
        cid = old.conversation_id
        stored = self.storage.add_message(cid, "user", text, parent_id=old.parent_id)
        conv = self.storage.conversation(cid)
        if old.parent_id is None and conv is not None and conv.title == title_from(old.content):
            self.storage.rename_conversation(cid, title_from(text))  # the title was the old first question
        history, shown = history_as_sent(self.storage.messages(cid))
        return PendingAnswer(cid, stored, history, edit, rules=self.rules_now(), shown_per_message=shown)

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
        grounded = self.retriever is not None and self.settings.retrieval.use_project
        if grounded and not pending.web and pending.edit is None:
            system = f"{system}\n\n{CITE_IN_TURNS}" if system else CITE_IN_TURNS
        earlier, question = pending.history[:-1], pending.history[-1]["content"] if pending.history else ""
        if pending.web:
            # /web: the pages read for this question come with it; the history keeps the task.
            pending.asked_as, user = question, f"{pending.web}\n\n{question}"
        elif pending.edit is not None:
            # Files first claim most of the budget; older turns get what is left. The files and
            # the edit format go into this request's system prompt (the small models follow the
            # format far better there), so a change request is read whole; later turns keep the
            # request, not yesterday's file contents, and reuse resumes after it.
            room = int(budget * 0.8) - engine.count_tokens(system)
            # Files the index guessed are held to what the model reads within the first-answer
            # target; files the user named are shown whenever they fit.
            speedy = None
            if self.speed is not None:
                speedy = code_budget(self.speed, self.settings.retrieval.first_answer_s,
                                     engine.count_tokens(system) + engine.count_tokens(question) + 16, room)
            extra, request, pending.files_shown = build_edit_prompt(pending.edit, room, reserve, engine.count_tokens,
                                                                    index_tokens=speedy)
            system = f"{system}\n\n{extra}" if system else extra
            pending.asked_as = user = request
        elif grounded and pending.history:
            hits = self.retriever(question)
            user = self._with_new_code(engine, pending, system, earlier, question, hits, budget)
        else:
            pending.asked_as = user = question
        messages = build_messages(system, earlier + [{"role": "user", "content": user}], budget,
                                  engine.count_message_tokens, headroom=budget // 3)
        pending.turns_left_out = len(earlier) + 1 - (len(messages) - (1 if system else 0))
        pending.messages = messages
        return messages

    def code_room(self, engine: Engine, budget: int, question: str, before: Sequence[Message] = ()) -> int:
        """Tokens of project code for this question: what the model reads within the first-answer
        target at its speed (the question itself read too), capped by ``context_tokens``, the
        prompt's share, and the room the conversation so far (``before``: system prompt and
        earlier turns) leaves, so new code does not push earlier turns out of the context."""
        r = self.settings.retrieval
        asked = engine.count_tokens(question) + 16
        cap = min(r.context_tokens, int(budget * PROMPT_SHARE),
                  max(0, budget - engine.count_message_tokens(before) - asked) if before else budget)
        if self.speed is None:
            return cap
        # A first question is read whole, its system prompt included; a follow-up finds the
        # conversation so far already read (prefix reuse, saved state) and pays for its own part.
        first = all(m["role"] == "system" for m in before)
        read_too = engine.count_message_tokens(before) if first and before else 0
        return code_budget(self.speed, r.first_answer_s, asked + read_too, cap)

    def _with_new_code(self, engine: Engine, pending: PendingAnswer, system: str, earlier: list[Message],
                       question: str, hits: list, budget: int) -> str:
        """The question with the retrieved code the conversation has not shown yet, in front;
        ``pending.sources`` are every retrieved piece the model can now see (cited correctly)."""
        room = self.code_room(engine, budget, question,
                              ([{"role": "system", "content": system}] if system else []) + earlier)
        per_message = (pending.shown_per_message + [[]] * len(earlier))[:len(earlier)]
        shown = {c for cs in per_message for c in cs}
        for _ in range(2):
            new_hits, new_room, first_new = hits, room, True
            if shown:
                # A follow-up: the conversation already holds code; only the question's best piece
                # is added, if the conversation does not hold it yet, within a quarter of a first
                # question's room, so a follow-up costs its own few new tokens.
                new_hits, new_room = hits[:FOLLOW_UP_CHUNKS], room // FOLLOW_UP_SHARE
                first_new = bool(new_hits) and new_hits[0].chunk.citation not in shown
            ctx = build_context([h for h in new_hits if h.chunk.citation not in shown], new_room, engine.count_tokens,
                                instructions=False, at_least_one=first_new)
            user = f"{ctx.text}\n\n{question}" if ctx.text else question
            kept = build_messages(system, earlier + [{"role": "user", "content": user}], budget,
                                  engine.count_message_tokens, headroom=budget // 3)
            dropped = len(earlier) + 1 - (len(kept) - (1 if system else 0))
            # Old turns that fall out of the context take their code with them: show it again.
            still = {c for cs in per_message[dropped:] for c in cs}
            if still == shown:
                break
            shown = still
        pending.asked_as = user
        pending.shown_now = [h.chunk.citation for h in ctx.hits]
        pending.sources = ctx.hits + [h for h in hits if h.chunk.citation in shown and h not in ctx.hits]
        return user

    def keep_partial(self, pending: PendingAnswer, text: str, now: float | None = None) -> bool:
        """Save the answer written so far, marked unfinished: the first text at once, then at
        most every ``SAVE_EVERY_S`` (one row, updated). Returns whether it saved. Call it on
        the thread that owns the storage (the GUI's) with the text streamed so far."""
        if not text.strip() or pending.partial_failed or pending.finished:
            return False
        now = time.monotonic() if now is None else now
        if pending.answer is not None and now - pending.saved_at < SAVE_EVERY_S:
            return False
        meta = {**self._meta(pending), "unfinished": True}
        try:
            if pending.answer is None:
                parent = pending.answer_parent if pending.answer_parent is not None else AFTER_LEAF
                pending.answer = self.storage.add_message(pending.conversation_id, "assistant", text, meta,
                                                          parent_id=parent)
            else:
                pending.answer = self.storage.update_message(pending.answer.id, text, meta)
        except UserError:
            pending.partial_failed = True  # not again for this answer; the caller shows it once
            raise
        pending.saved_at = now
        return True

    def _meta(self, pending: PendingAnswer) -> dict:
        """What an answer keeps about how it was asked (for later prompts, sources, notes)."""
        meta: dict = {}
        if pending.sources:
            meta["sources"] = [h.citation for h in pending.sources]
        if pending.web_urls:
            meta["sources"] = list(pending.web_urls)
            meta["tool"] = "web"
        if pending.rules_left_out:
            meta["rules_left_out"] = pending.rules_left_out
        if pending.turns_left_out:
            meta["turns_left_out"] = pending.turns_left_out
        if pending.asked_as is not None and pending.asked_as != pending.question.content:
            meta["asked_as"] = pending.asked_as
        if pending.shown_now:
            meta["shown"] = list(pending.shown_now)
        return meta

    def finish(self, pending: PendingAnswer, result: GenerationResult, model_name: str,
               adapters: list[str] | None = None) -> StoredMessage | None:
        """Keep the answer, a stopped one too (marked as such); an empty one is not kept. An
        answer saved while it was written is completed in place (no longer unfinished).

        ``adapters`` names the LoRA adapters (with strength) the answer was written with, so
        answers with and without an adapter can be compared later."""
        text = result.text if result.text.strip() else (pending.answer.content if pending.answer else "")
        if not text.strip():
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
        meta.update(self._meta(pending))
        pending.finished = True
        if pending.answer is not None:
            pending.answer = self.storage.update_message(pending.answer.id, text, meta)
            return pending.answer
        parent = pending.answer_parent if pending.answer_parent is not None else AFTER_LEAF
        return self.storage.add_message(pending.conversation_id, "assistant", text, meta, parent_id=parent)

"""The chat: the conversation list, the chat panel, and turns (a question and its answer).

Owns ChatService (prompts and storage of turns), the current conversation and the answer
being written. ``send`` routes a message: plain questions and ``/code`` are answered here;
``/offline``, ``/online``, ``/remember``, ``/search``, ``/web``, ``/fix`` and ``/run`` go to
the feature that does them. Other features start and end their own turns through the public
methods below (``start_turn``, ``generate``, ``run_turn_job``, ``fail_turn``, ``add_note``).
Versions of answers and questions (regenerate, edit, ◀ n/m ▶) are ``branches.py``'s; the
list's search, pins, export and deletes ``chat_list.py``'s; the keys ``shortcuts.py``'s.
An answer is saved as it streams (``ChatService.keep_partial``), so a crash keeps it.
"""

from __future__ import annotations

from PySide6.QtCore import Signal

from app.core.chat.service import ChatService, PendingAnswer, can_edit, can_regenerate, reading_line
from app.core.edits.prompt import CODE_COMMAND, EditRequest, strip_command
from app.core.engine import GenerationResult
from app.core.chat.intent import route
from app.core.errors import UserError
from app.ui.errors import describe_error
from app.ui.features.base import Feature
from app.ui.features.chat.branches import SWITCH_BLOCKERS, Branches
from app.ui.features.chat.chat_list import ChatList
from app.ui.features.chat.chat_panel import ChatPanel
from app.ui.features.chat.chat_view import Entry
from app.ui.features.chat.conversations_panel import ConversationsPanel
from app.ui.features.chat.shortcuts import ChatKeys
from app.ui.workers import Job

ANSWER_BUSY = "An answer is being written: stop it first."


class ChatFeature(Feature):
    name = "chat"
    answer_finished = Signal(object)  # GenerationResult of the last answer
    answer_stored = Signal(object)    # (PendingAnswer, GenerationResult, stored message id or None)
    turn_failed = Signal(str)         # a turn ended with an error, with the message shown
    font_size_changed = Signal(float)  # the chat text's new size in points (Ctrl+= / Ctrl+-)

    def __init__(self, host):
        super().__init__(host)
        self.service = ChatService(self.ctx.storage, self.ctx.settings)
        self.conversations = ConversationsPanel()
        self.panel = ChatPanel()
        self.view = self.panel.view
        self.current_id: int | None = None
        self.pending: PendingAnswer | None = None
        self.last_reading = None  # the last ReadingProgress of the answer being written
        self.answer_job: Job | None = None
        self.stats = host.status_label("stats")
        self.branches = Branches(self)
        self.chats = ChatList(self)
        c, p, v = self.conversations, self.panel, self.view
        c.new_requested.connect(self.new_conversation)
        c.selected.connect(self.open_conversation)
        c.rename_requested.connect(self.rename_conversation)
        c.delete_requested.connect(self.chats.delete)
        c.pin_requested.connect(self.chats.pin)
        c.export_requested.connect(self.chats.export_markdown)
        c.search_changed.connect(lambda _text: self.refresh_list())
        p.send_requested.connect(self.send)
        p.stop_requested.connect(self.stop)
        v.copied.connect(lambda code: host.notify(f"Copied {len(code.splitlines())} lines", 3000))
        v.regenerate_requested.connect(self.branches.regenerate)
        v.edit_requested.connect(self.branches.begin_edit)
        v.version_requested.connect(self.branches.show_version)
        self.keys = ChatKeys(self)  # Esc, Ctrl+K, Ctrl+L, … (shortcuts.py)
        engine = host.engine
        engine.loading.connect(lambda: p.set_ready(False))
        engine.loaded.connect(self._model_loaded)
        engine.failed.connect(self._model_failed)
        engine.busy_changed.connect(lambda _busy: self.update_actions())
        convs = self.ctx.storage.conversations()
        self.current_id = convs[0].id if convs else None
        self.refresh_list()
        self.show_conversation()
        self.update_actions()

    def shortcuts(self) -> list[tuple[str, str]]:
        """[(keys, what they do)] for every key of the chat, for the shortcuts help (F1)."""
        return self.keys.shortcuts()

    def update_actions(self) -> None:
        self.keys.update()

    def last_answer(self):
        """The newest answer on show (stored), or None."""
        msgs = self.ctx.storage.messages(self.current_id) if self.current_id is not None else []
        return next((m for m in reversed(msgs) if m.role == "assistant"), None)

    # ---- the model ---------------------------------------------------------------------------
    def _model_loaded(self, lm) -> None:
        self.panel.show_error(lm.note)
        self.panel.show_banner(lm.model.banner, ("models:recommended", "Open Models…") if lm.model.is_starter else None)
        self.panel.set_ready(True)

    def _model_failed(self, message: str) -> None:
        self.panel.set_ready(False)
        self.panel.show_error(message)

    # ---- conversations -----------------------------------------------------------------------
    def refresh_list(self) -> None:
        self.chats.refresh()

    def show_conversation(self, messages=None) -> None:
        """Show the branch on show of the current conversation (or ``messages``, a part of it)."""
        storage, cid = self.ctx.storage, self.current_id
        if messages is None:
            messages = storage.messages(cid) if cid is not None else []
        ratings = storage.ratings(cid) if cid is not None else {}
        versions = storage.versions(cid) if cid is not None else {}
        editing = self.branches.editing[1] if self.branches.editing else None
        self.view.set_messages([
            Entry(shown_role(m), m.content, note_for(m.meta), m.meta.get("sources", []), rateable(m), ratings.get(m.id),
                  ref=m.id, versions=(v.index, v.count) if (v := versions.get(m.id)) else None,
                  can_edit=can_edit(m), can_regenerate=rateable(m) is not None and can_regenerate(m),
                  editing=m.id == editing) for m in messages])

    def ensure_conversation(self) -> int:
        if self.current_id is None:
            self.current_id = self.ctx.storage.create_conversation().id
        return self.current_id

    def new_conversation(self) -> None:
        if self.host.engine.refuse_if_busy(SWITCH_BLOCKERS):
            return
        self.branches.cancel_edit()
        self.current_id = self.ctx.storage.create_conversation().id
        self.conversations.search.clear()  # the new chat would not match a search
        self.refresh_list()
        self.show_conversation()
        self.panel.input.setFocus()

    def open_conversation(self, conversation_id: int) -> None:
        if conversation_id == self.current_id:
            return
        if self.host.engine.refuse_if_busy(SWITCH_BLOCKERS):
            self.refresh_list()  # put the selection back
            return
        self.branches.cancel_edit()
        self.current_id = conversation_id
        self.show_conversation()

    def rename_conversation(self, conversation_id: int, title: str) -> None:
        self.ctx.storage.rename_conversation(conversation_id, title)
        conv = self.ctx.storage.conversation(conversation_id)
        if conv is not None:
            # Not a list rebuild: this runs inside the edited item's own signal.
            self.conversations.set_title(conversation_id, conv.title)

    def delete_conversation(self, conversation_id: int, confirm: bool = True) -> None:
        self.chats.delete([conversation_id], confirm)

    # ---- asking ------------------------------------------------------------------------------
    def send(self, text: str) -> None:
        f = self.host.features
        intent = route(text)
        if intent.kind in ("offline", "online"):  # needs no model, and works while an answer runs
            return f.network.switch_from_chat(intent.kind == "offline")
        if self.host.engine.engine is None or self.host.engine.refuse_if_busy():
            return
        if intent.kind not in ("chat", "code"):
            self.branches.cancel_edit()  # a command is not a new version of the question
        self.ensure_conversation()
        if intent.kind == "remember":
            return f.feedback.remember(intent.text, text)
        if intent.kind == "search":
            return f.tools.web_search(text, intent.text)
        if intent.kind == "web":
            return f.tools.web_answer(text, intent.text)
        f.tools.new_message()  # a new message ends a /fix on the tests that waits for an apply
        if intent.kind in ("fix", "run"):
            return f.tools.fix(text, intent.text, rounds=1 if intent.kind == "run" else self.ctx.settings.fix_rounds,
                               run_only=intent.kind == "run")
        edit = None
        root = f.project.root
        if root is not None:
            is_code, request = strip_command(text)
            if is_code:
                if not request:
                    self.panel.show_error("Say what to change after /code, e.g. /code add a docstring to fetch().")
                    return
                edit = self.edit_request(root, request)
        if self.branches.editing is not None:
            return self.branches.send_edit(text, edit)
        pending = self.start_turn(text, edit)
        if pending is not None:
            self.generate(pending)

    def code_request(self, text: str) -> EditRequest | None:
        """The change request of a ``/code`` message with a project open, else None."""
        root = self.host.features.project.root
        is_code, request = strip_command(text)
        return self.edit_request(root, request) if root is not None and is_code and request else None

    def edit_request(self, root, request: str, files: list[str] | None = None) -> EditRequest:
        """A change request; without ``files`` the worker chooses them (named, @path, the index)."""
        index = self.host.features.project.index if files is None else None
        search = (lambda q, k: index.search(q, k)) if index is not None else None
        return EditRequest(root, request, list(files or []), search=search,
                           reasons={p: "chosen by you" for p in files or []})

    def ask_change(self, request: str, files: list[str]) -> None:
        """The same change request again, showing the model exactly ``files`` (the Changes pane's
        "Ask again with these files")."""
        root = self.host.features.project.root
        if root is None or self.host.engine.engine is None or self.host.engine.refuse_if_busy():
            return
        self.host.features.tools.new_message()
        pending = self.start_turn(f"{CODE_COMMAND} {request}", self.edit_request(root, request, files))
        if pending is not None:
            self.generate(pending)

    def start_turn(self, text: str, edit: EditRequest | None = None) -> PendingAnswer | None:
        """Store and show the user's message (a question or a tool request) and mark the chat busy."""
        self.branches.cancel_edit()  # a new message, not a new version of the one being edited
        try:
            pending = self.service.ask(self.ensure_conversation(), text, edit)
        except ValueError as e:
            self.panel.show_error(str(e))
            return None
        self.refresh_list()
        self.panel.show_error(None)
        self.view.add_message("user", pending.question.content, ref=pending.question.id,
                              can_edit=can_edit(pending.question))
        self.panel.set_busy(True)
        return pending

    def run_turn_job(self, job: Job) -> Job | None:
        """Start a job that holds the chat and the engine (an answer, a tool, a sandbox run)."""
        started = self.host.engine.start_exclusive(job, ANSWER_BUSY, self.jobs)
        if started is not None:
            self.answer_job = started
            started.finished.connect(self.update_actions)  # Esc goes back to the boxes
        else:
            self.panel.set_busy(False)
        self.update_actions()
        return started

    def generate(self, pending: PendingAnswer) -> None:
        """Write the answer to a stored question on a worker; answer_done keeps it."""
        self.pending = pending
        self.view.begin_stream()
        engine, params, chat = self.host.engine.engine, self.service.params(), self.service
        self.last_reading = None
        chat.speed = self.ctx.speeds.speed(engine.model.path)

        kv, conv = self.ctx.kv_cache, pending.conversation_id

        def job(ctx):
            messages = chat.prompt(engine, pending)
            system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
            if engine.kv_owner != conv:  # the model last read another conversation: bring this one back
                kv.restore(conv, engine, system)
            result = engine.chat(messages, params, on_token=ctx.partial, cancelled=ctx.cancelled,
                                 on_reading=lambda p: ctx.partial(("reading", pending, p)))
            if not result.cancelled:
                engine.kv_owner = conv
                kv.store(conv, engine, system)  # for a return to it, after a switch or a restart
            return result

        self.stats.setText("Thinking…")
        self.run_turn_job(Job(job, name="generate", parent=self)
                          .on_partial(self.stream_piece)
                          .on_success(self.answer_done)
                          .on_failure(self.fail_turn))

    def stream_piece(self, item) -> None:
        """A token, or ("reading", pending, ReadingProgress) while the prompt is read."""
        if isinstance(item, tuple):
            self.last_reading = item[2]
            self.view.show_reading(reading_line(item[1], item[2]))
        else:
            self.view.append_stream(item)
            self.keep_partial()

    def keep_partial(self) -> None:
        """Save the answer so far (at most every few seconds; see ChatService.keep_partial)."""
        if self.pending is None:
            return
        try:
            self.service.keep_partial(self.pending, self.view.streaming_text)
        except UserError as e:  # the answer goes on; the final save tries again
            self.panel.show_error(describe_error(e))

    def stop(self) -> None:
        if self.answer_job is not None:
            self.answer_job.cancel()
            self.stats.setText("Stopping…")

    def answer_done(self, result: GenerationResult) -> None:
        pending, self.pending = self.pending, None
        meta = {"finish_reason": result.finish_reason, "tokens_per_s": result.tokens_per_s}
        stored = None
        model = self.host.engine.model
        if model is not None:  # how fast it read and wrote: the next question's code budget
            r = self.last_reading
            self.ctx.speeds.record(model.path, r.done if r else 0, r.seconds if r else 0.0,
                                   result.tokens_per_s if result.completion_tokens >= 16 else 0.0)
        if pending is not None:
            stored = self.service.finish(pending, result, model.name if model else "",
                                         self.host.features.adapters.names_on_engine())
            meta = stored.meta if stored else meta
        if stored is None and pending is not None and pending.answer_parent is not None:
            self.view.end_stream()
            self.show_conversation()  # a new version that never started: the old one is back
        else:
            v = self.ctx.storage.siblings(stored.id) if stored is not None else None
            self.view.end_stream(note_for(meta), meta.get("sources", []), stored.id if stored else None,
                                 versions=(v.index, v.count) if v and v.count > 1 else None,
                                 can_regenerate=stored is not None and can_regenerate(stored))
        self.panel.set_busy(False)
        self.stats.setText(
            f"{result.completion_tokens} tokens · {result.tokens_per_s:.1f} tok/s · "
            f"first token {result.time_to_first_token_s or 0:.2f} s" + (" · stopped" if result.cancelled else ""))
        self.refresh_list()
        self.update_actions()
        if pending is not None:
            self.answer_stored.emit((pending, result, stored.id if stored else None))
        self.answer_finished.emit(result)

    def fail_turn(self, e: BaseException) -> str:
        """End the running turn with the error shown; returns the message."""
        pending, self.pending = self.pending, None
        self.view.end_stream()
        if pending is not None and (pending.answer is not None or pending.answer_parent is not None):
            self.show_conversation()  # what was kept of it (marked interrupted), or the old version
        self.panel.set_busy(False)
        self.stats.setText("")
        message = describe_error(e)
        self.panel.show_error(message)
        self.update_actions()
        self.turn_failed.emit(message)
        return message

    def end_turn(self, stats: str = "") -> None:
        """A tool's turn is over (its own output is already shown and stored)."""
        self.panel.set_busy(False)
        self.stats.setText(stats)
        self.refresh_list()

    def add_note(self, text: str, meta: dict) -> None:
        """A system line in the current conversation (stored, never part of a prompt)."""
        self.ctx.storage.add_message(self.ensure_conversation(), "system", text, meta)
        self.view.add_message("system", text)
        self.refresh_list()

    def shutdown(self) -> None:
        self.jobs.cancel()


def shown_role(m) -> str:
    """Sandbox output is stored as a system message (never part of a prompt) and shown as Output."""
    return "output" if m.role == "system" and m.meta.get("tool") == "run" else m.role


def rateable(m) -> int | None:
    """The id of an answer the user can rate (a model's answer; not a list of search results)."""
    return m.id if m.role == "assistant" and m.meta.get("tool") != "search" else None


def note_for(meta: dict) -> str:
    """The grey line under a message: how it ended, its speed, rules left out."""
    if not meta:
        return ""
    parts = []
    if meta.get("unfinished"):
        parts.append("interrupted: kept as far as it was written (↻ Regenerate asks again)")
    elif meta.get("finish_reason") == "cancelled":
        parts.append("stopped")
    elif meta.get("finish_reason") == "length":
        parts.append("cut at the length limit")
    if meta.get("tokens_per_s"):
        parts.append(f"{meta['tokens_per_s']:.1f} tok/s")
    if meta.get("rules_left_out"):
        n = meta["rules_left_out"]
        parts.append(f"{n} older rule{'s' * (n != 1)} left out (no room in the prompt)")
    if meta.get("turns_left_out"):
        n = meta["turns_left_out"]
        parts.append(f"the {n} oldest message{'s' * (n != 1)} left out (the conversation outgrew the context)")
    return " · ".join(parts)

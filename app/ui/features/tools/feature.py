"""Tools in the chat: ``/search`` (a list of links), ``/web`` (search, read, answer citing the
pages), a code block's Run link, ``/run`` and ``/fix`` (the code-block rounds in the sandbox,
or, with a project open, its tests: ``fix_tests.TestFixer``).

The pipelines themselves are core functions (``core.web.answer.answer_from_web``,
``core.run.fix.fix_rounds``, ``core.run.project_tests``); this room starts them as chat turns, streams
what they report into the chat and stores it.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QMessageBox

from app.core.run.fix import CodeBlock, fix_rounds, last_runnable
from app.core.run.project_tests import FixTarget, has_tests, parse_fix
from app.core.run.sandbox import language_of
from app.ui.features.base import Feature
from app.ui.features.tools.fix_tests import TestFixer
from app.ui.workers import Job


class ToolsFeature(Feature):
    name = "tools"
    tool_finished = Signal(object)  # /search: the results shown (markdown)
    tool_failed = Signal(str)       # a tool refused or failed, with the message shown
    code_ran = Signal(object)       # (runs, last RunResult) of Run, /run or /fix

    def __init__(self, host):
        super().__init__(host)
        self.test_fixer = TestFixer(host, self)
        # Asked before shell code runs (Python runs at once); tests answer it.
        self.confirm_shell = lambda code: QMessageBox.question(
            host.window, "Run shell code?", "Run this shell code in the sandbox (no network, a temporary folder, "
            f"10 s)?\n\n{code[:800]}") == QMessageBox.Yes
        host.features.chat.view.run_requested.connect(self.run_block)

    def start(self) -> None:
        self.test_fixer.connect_features()
        self.host.features.chat.turn_failed.connect(lambda _m: self.test_fixer.drop(force=True))

    @property
    def chat(self):
        return self.host.features.chat

    def new_message(self) -> None:
        """The user sent something else: a /fix on the tests that waits for an apply ends."""
        self.test_fixer.drop()

    def _provider(self):
        """The chosen search provider; reads the keyring, so call it on a worker."""
        from app.core import secrets
        from app.core.web import provider_for
        name = self.ctx.settings.search_provider
        return provider_for(name, secrets.get_key("tavily") if name == "tavily" else None)

    def _failed(self, e: BaseException) -> None:
        self.tool_failed.emit(self.chat.fail_turn(e))

    # ---- the web ---------------------------------------------------------------------------
    def web_search(self, text: str, query: str) -> None:
        """/search: the provider's results as a list of links (no model involved)."""
        chat = self.chat
        if not query:
            chat.panel.show_error("Say what to search for, e.g. /search asyncio timeout.")
            return
        pending = chat.start_turn(text)
        if pending is None:
            return
        chat.view.begin_stream()
        chat.stats.setText("Searching…")
        provider = self._provider

        def job(_ctx):
            from app.core.web import format_results_markdown
            results = provider().search(query)
            return format_results_markdown(results, query), [r.url for r in results]

        def done(out) -> None:
            md, urls = out
            chat.view.append_stream(md)
            chat.view.end_stream("web search")
            self.ctx.storage.add_message(pending.conversation_id, "assistant", md, {"tool": "search", "links": urls})
            chat.end_turn(f"{len(urls)} results")
            self.tool_finished.emit(md)

        chat.run_turn_job(Job(job, name="web-search", parent=self).on_success(done).on_failure(self._failed))

    def web_answer(self, text: str, task: str) -> None:
        """/web (or "search the web for …"): search, read the top pages, answer citing them."""
        from app.core.web.answer import answer_from_web

        chat = self.chat
        if not task:
            chat.panel.show_error("Say what to find out, e.g. /web what changed in Python 3.13?")
            return
        pending = chat.start_turn(text)
        if pending is None:
            return
        pending.history = pending.history[:-1] + [{"role": "user", "content": task}]
        chat.pending = pending
        chat.view.begin_stream()
        engine, params, service = self.host.engine.engine, chat.service.params(), chat.service
        budget_chars = self.ctx.settings.retrieval.context_tokens * 4  # ~4 characters a token
        provider = self._provider

        def job(ctx):
            return answer_from_web(task, provider(), service, engine, pending, params, budget_chars,
                                   on_status=lambda s: ctx.partial(("status", s)),
                                   on_token=lambda t: ctx.partial(("token", t)), cancelled=ctx.cancelled,
                                   on_reading=lambda p: ctx.partial(("reading", pending, p)))

        def partial(item) -> None:
            if item[0] == "reading":
                return chat.stream_piece(item)
            kind, value = item
            (chat.view.append_stream if kind == "token" else chat.stats.setText)(value)

        chat.run_turn_job(Job(job, name="web-answer", parent=self)
                          .on_partial(partial).on_success(chat.answer_done).on_failure(self._failed))

    # ---- code in the sandbox ---------------------------------------------------------------------
    def run_block(self, code: str, language: str) -> None:
        """A code block's Run link: one round of the sandbox, output streamed into the chat."""
        if self.host.engine.refuse_if_busy():
            return
        lang = language_of(language) or "python"
        if lang == "shell" and not self.confirm_shell(code):
            return
        self.chat.ensure_conversation()
        self.chat.panel.show_error(None)
        self.chat.panel.set_busy(True)
        self._start_fix([], CodeBlock(code, lang), rounds=1, note="")

    def fix(self, text: str, note: str, rounds: int, run_only: bool = False) -> None:
        """/fix: run the newest runnable code; while it fails, show the model the error and run
        its correction, up to ``rounds`` runs, every step shown and stored. /run: one run.

        With a project open, ``/fix`` (nothing else) and ``/fix tests [pytest args]`` run the
        project's tests instead (see fix_tests.py); ``/fix code`` always means the code block."""
        chat, root = self.chat, self.host.features.project.root
        target = FixTarget("code", [], note) if run_only else parse_fix(note)
        if target.kind == "tests" or (target.kind == "auto" and not target.note and root is not None
                                      and has_tests(root)):
            if root is None:
                chat.panel.show_error("Open a project first (File → Open Project…): /fix tests runs its tests.")
                return
            return self.test_fixer.start(text, target.args, rounds)
        msgs = self.ctx.storage.messages(chat.current_id)
        block = last_runnable([m.content for m in msgs if m.role == "assistant"])
        if block is None:
            hint = " With a project open, /fix tests runs the project's tests." if root is None else ""
            chat.panel.show_error("There is no Python or shell code block in this conversation to run yet." + hint)
            return
        if block.language == "shell" and not self.confirm_shell(block.code):
            return
        pending = chat.start_turn(text)
        if pending is None:
            return
        self._start_fix(pending.history[:-1], block, rounds, target.note)

    def _start_fix(self, history: list, block: CodeBlock, rounds: int, note: str) -> None:
        chat = self.chat
        engine, params = self.host.engine.engine, chat.service.params()
        conv, view, storage = chat.current_id, chat.view, self.ctx.storage
        service, rules = chat.service, chat.service.rules_now()

        def job(ctx):
            return fix_rounds(block, rounds, engine=engine, chat=service, params=params, rules=rules,
                              history=history, note=note, on_event=lambda k, v: ctx.partial((k, v)),
                              cancelled=ctx.cancelled)

        def partial(item) -> None:
            kind, value = item
            if kind == "begin":
                view.begin_stream(value)
            elif kind == "text":
                view.append_stream(value)
            elif kind == "ran":
                note_ = value.summary() + ("" if value.isolation == "netns" else " · network blocked in Python only")
                output = (value.stdout + value.stderr) or "(no output)"
                if not view.streaming_text.strip():
                    view.append_stream(output)
                view.end_stream(note_)
                storage.add_message(conv, "system", output, {"tool": "run", "summary": value.summary(),
                                                            "exit_code": value.exit_code})
            elif kind == "request":
                view.add_message("user", value)
                storage.add_message(conv, "user", value, {"tool": "fix"})
            elif kind == "answered":
                kept = storage.add_message(conv, "assistant", value, {"tool": "fix"}) if value.strip() else None
                view.end_stream("fix", message_id=kept.id if kept else None)

        def done(out) -> None:
            n, result = out
            ok = result is not None and result.exit_code == 0
            chat.end_turn(("Runs cleanly" if ok else "Still failing") + f" after {n} run{'s' if n > 1 else ''}")
            self.code_ran.emit(out)

        chat.panel.set_busy(True)
        chat.run_turn_job(Job(job, name="sandbox", parent=self)
                          .on_partial(partial).on_success(done).on_failure(self._failed))

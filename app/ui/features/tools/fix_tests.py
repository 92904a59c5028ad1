"""/fix on the project's tests, as rounds the user can follow and control.

A round: run the tests in the sandbox (output streams into the chat; the first failing test then
runs again under a tracer, core/run/trace.py) → if they fail, ask the model for a change with
the failure, the code that test ran and the files (a /code request: the answer goes to
the Changes pane like any other) → when the user applies that change, the next round starts by
itself. It ends when the tests pass, when the rounds (``fix_rounds``) are used up, or when the
user sends another message or stops. Nothing is applied
without the user: that is the difference from a code block's /fix, which runs in the sandbox
only and may loop on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from app.core.edits.prompt import EditRequest
from app.core.run.project_tests import NO_TESTS, SuiteRun, fix_budget, fix_request, run_project_tests
from app.ui.workers import Job


@dataclass
class _Session:
    conversation_id: int
    args: list[str]
    rounds: int
    round: int = 0
    waiting: str = ""  # "" | "answer" (the model is writing the fix) | "apply" (the user decides)
    last: SuiteRun | None = None


class TestFixer(QObject):
    """Owns one /fix-on-tests session: it drives the chat, the engine and the Changes pane
    through their features' public methods."""

    __test__ = False  # a class named Test… that pytest must not collect
    finished = Signal(object)  # (rounds run, last SuiteRun or None, reason)
    round_ran = Signal(object)  # SuiteRun of each round, after it is shown

    def __init__(self, host, parent: QObject):
        super().__init__(parent)
        self.host = host
        self.session: _Session | None = None

    def connect_features(self) -> None:
        f = self.host.features
        f.chat.answer_finished.connect(self._answered)
        f.changes.changes_planned.connect(self._planned)
        f.changes.changes_applied.connect(self._applied)

    @property
    def chat(self):
        return self.host.features.chat

    # ---- control -------------------------------------------------------------------------
    def start(self, text: str, args: list[str], rounds: int) -> None:
        pending = self.chat.start_turn(text)
        if pending is None:
            return
        self.session = _Session(pending.conversation_id, list(args), max(1, rounds))
        self._run_round()

    def drop(self, force: bool = False) -> None:
        """Forget a session that waits for the user (a new message was sent), or, with
        ``force``, any session (its answer failed)."""
        if self.session is not None and (force or self.session.waiting == "apply"):
            self._end("Stopped", shown=False)

    @property
    def active(self) -> bool:
        return self.session is not None

    # ---- rounds ---------------------------------------------------------------------------
    def _run_round(self) -> None:
        chat, s = self.chat, self.session
        s.round += 1
        s.waiting = ""
        view, root = chat.view, self.host.features.project.root
        if chat.current_id != s.conversation_id or root is None:
            return self._end("the conversation or the project changed")
        chat.panel.set_busy(True)
        chat.stats.setText(f"Running the tests (round {s.round}/{s.rounds})…")
        view.begin_stream("output")
        args = s.args
        index = self.host.features.project.index  # its matches for the failure's words join the files
        search = (lambda query, k, pi=index: pi.search(query, k)) if index is not None else None

        def job(ctx):
            return run_project_tests(root, args, cancelled=ctx.cancelled, search=search,
                                     on_output=lambda _stream, text: ctx.partial(text))

        if chat.run_turn_job(Job(job, name="project-tests", parent=self)
                             .on_partial(view.append_stream)
                             .on_success(self._ran)
                             .on_failure(self._failed)) is None:
            self._end("the model is busy", shown=False)

    def _ran(self, run: SuiteRun) -> None:
        chat, s = self.chat, self.session
        if s is None:
            return
        s.last = run
        view = chat.view
        summary = f"round {s.round}/{s.rounds} · {run.summary()}"
        if run.result.isolation != "netns":
            summary += " · network blocked in Python only"
        output = run.output or "(no output)"
        if not view.streaming_text.strip():
            view.append_stream(output)
        view.end_stream(summary)
        self.host.ctx.storage.add_message(s.conversation_id, "system", output,
                                          {"tool": "run", "summary": summary, "exit_code": run.result.exit_code,
                                           "tests": True, "round": s.round})
        chat.panel.set_busy(False)
        self.round_ran.emit(run)
        r = run.result
        if run.passed:
            return self._end(f"Tests pass after {s.round} round{'s' if s.round > 1 else ''}")
        if r.exit_code == NO_TESTS and not (r.cancelled or r.timed_out):
            return self._end("No tests were found (pytest collected none)")
        if r.cancelled:
            return self._end("Stopped")
        if s.round >= s.rounds:
            return self._end(f"Still failing after {s.round} round{'s' if s.round > 1 else ''}")
        if self.host.engine.engine is None:
            return self._end("No model is loaded to fix the failure")
        # Ask for a fix: a /code request with the failure, the code the failing test ran and the
        # files, within the room this model's context leaves a change request.
        engine, settings = self.host.engine.engine, self.host.ctx.settings
        budget = fix_budget(engine.n_ctx, settings.generation.max_tokens, engine.count_tokens, settings.system_prompt)
        fix = fix_request(run, budget_tokens=budget, count=engine.count_tokens)
        root = self.host.features.project.root
        pending = chat.start_turn(fix.text, EditRequest(root, fix.text, files=list(fix.files)))
        if pending is None:
            return self._end("could not ask the model")
        s.waiting = "answer"
        # This runs in the round's success slot, while its job still holds the engine.
        self.host.engine.when_free(lambda: self.chat.generate(pending))

    def _failed(self, e: BaseException) -> None:
        self.host.features.tools.tool_failed.emit(self.chat.fail_turn(e))
        self._end("The tests could not be run", shown=False)

    def _answered(self, result) -> None:
        s = self.session
        if s is None or s.waiting != "answer":
            return
        if result.cancelled or not result.text.strip():
            return self._end("Stopped" if result.cancelled else "The model gave no answer")
        s.waiting = "apply"
        self.chat.stats.setText(f"Review the proposed fix in the Changes pane; applying it runs the tests "
                                   f"again (round {s.round + 1}/{s.rounds})")

    def _planned(self, cs) -> None:
        s = self.session
        if s is not None and s.waiting == "apply" and not cs:
            # Kept open: any change applied from the Changes pane still runs the next round.
            self.chat.stats.setText("The model proposed no change to the files; send /fix again, "
                                       "or ask for a change with /code")

    def _applied(self, _record) -> None:
        s = self.session
        if s is not None and s.waiting == "apply":
            self._run_round()

    def _end(self, reason: str, shown: bool = True) -> None:
        s, self.session = self.session, None
        if shown:
            self.chat.stats.setText(reason)
        self.finished.emit((s.round if s else 0, s.last if s else None, reason))

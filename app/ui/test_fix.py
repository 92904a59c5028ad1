"""/fix on the project's tests, as rounds the user can follow and control.

A round: run the tests in the sandbox (output streams into the chat) → if they fail, ask the
model for a change with the failure and the files it names (a /code request: the answer goes to
the Changes pane like any other) → when the user applies that change, the next round starts by
itself. It ends when the tests pass, when the rounds (``fix_rounds``) are used up, or when the
user sends another message or stops. Nothing is applied
without the user: that is the difference from a code block's /fix, which runs in the sandbox
only and may loop on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from app.core.edit_prompt import EditRequest
from app.core.project_tests import NO_TESTS, SuiteRun, run_project_tests, fix_request_for_tests
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
    """Owns one /fix-on-tests session of a MainWindow (its chat, engine and Changes pane)."""

    finished = Signal(object)  # (rounds run, last SuiteRun or None, reason)
    round_ran = Signal(object)  # SuiteRun of each round, after it is shown

    def __init__(self, window):
        super().__init__(window)
        self.w = window
        self.session: _Session | None = None
        window.answer_finished.connect(self._answered)
        window.changes_planned.connect(self._planned)
        window.changes_applied.connect(self._applied)

    # ---- control -------------------------------------------------------------------------
    def start(self, text: str, args: list[str], rounds: int) -> None:
        w = self.w
        pending = w._start_turn(text)
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
        w, s = self.w, self.session
        s.round += 1
        s.waiting = ""
        view, root = w.chat_panel.view, w.project
        if w.current_id != s.conversation_id or root is None:
            return self._end("the conversation or the project changed")
        w.chat_panel.set_busy(True)
        w.stats_label.setText(f"Running the tests (round {s.round}/{s.rounds})…")
        view.begin_stream("output")
        args = s.args

        def job(ctx):
            return run_project_tests(root, args, cancelled=ctx.cancelled,
                                     on_output=lambda _stream, text: ctx.partial(text))

        w.answer_job = (Job(job, name="project-tests", parent=w)
                        .on_partial(view.append_stream)
                        .on_success(self._ran)
                        .on_failure(self._failed)
                        .start())

    def _ran(self, run: SuiteRun) -> None:
        w, s = self.w, self.session
        if s is None:
            return
        s.last = run
        view = w.chat_panel.view
        summary = f"round {s.round}/{s.rounds} · {run.summary()}"
        if run.result.isolation != "netns":
            summary += " · network blocked in Python only"
        output = run.output or "(no output)"
        if not view.streaming_text.strip():
            view.append_stream(output)
        view.end_stream(summary)
        w.ctx.storage.add_message(s.conversation_id, "system", output,
                                  {"tool": "run", "summary": summary, "exit_code": run.result.exit_code,
                                   "tests": True, "round": s.round})
        w.chat_panel.set_busy(False)
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
        if w.engine is None:
            return self._end("No model is loaded to fix the failure")
        # Ask for a fix: a /code request with the failing output and the files it names.
        request = fix_request_for_tests(run)
        pending = w._start_turn(request, EditRequest(w.project, request, files=list(run.files)))
        if pending is None:
            return self._end("could not ask the model")
        s.waiting = "answer"
        w._generate(pending)

    def _failed(self, e: BaseException) -> None:
        self.w._tool_failed(e)
        self._end("The tests could not be run", shown=False)

    def _answered(self, result) -> None:
        s = self.session
        if s is None or s.waiting != "answer":
            return
        if result.cancelled or not result.text.strip():
            return self._end("Stopped" if result.cancelled else "The model gave no answer")
        s.waiting = "apply"
        self.w.stats_label.setText(f"Review the proposed fix in the Changes pane; applying it runs the tests "
                                   f"again (round {s.round + 1}/{s.rounds})")

    def _planned(self, cs) -> None:
        s = self.session
        if s is not None and s.waiting == "apply" and not cs:
            # Kept open: any change applied from the Changes pane still runs the next round.
            self.w.stats_label.setText("The model proposed no change to the files; send /fix again, "
                                       "or ask for a change with /code")

    def _applied(self, _record) -> None:
        s = self.session
        if s is not None and s.waiting == "apply":
            self._run_round()

    def _end(self, reason: str, shown: bool = True) -> None:
        s, self.session = self.session, None
        if shown:
            self.w.stats_label.setText(reason)
        self.finished.emit((s.round if s else 0, s.last if s else None, reason))

"""The engine service: owns the loaded model and lets one piece of work use it at a time.

Why: answers, tool runs, review roles, adapter verdicts and model loading all need the one
llama.cpp context, and each used to check the others' flags (``_busy_guard``,
``_evaluating``). Here every such job is started through ``start_exclusive``; a second one is
refused with the first one's own words ("An answer is being written: stop it first."), and
``busy_changed`` tells every feature when the engine is free again (gpt4all-chat gives its
engine a QObject of its own for the same reason).

The local API (Settings → Local API) uses the same model from its own threads, so every
holder here also takes ``gate`` (``app/core/api/gate.py``) on its worker thread: a window job
waits for an API generation already running and goes before API requests still waiting. The
GUI thread never waits for it (only ``close`` at shutdown, bounded).
"""

from __future__ import annotations

import logging
import time

from PySide6.QtCore import QObject, Signal

from app.core.api.gate import WINDOW, EngineGate, GateCancelled
from app.core.context import AppContext
from app.core.errors import UserError
from app.core.engine import Engine
from app.core.models.active import ActiveModel
from app.core.models.loading import LoadedModel, load_engine
from app.ui.errors import describe_error
from app.ui.workers import Job, JobContext, JobGroup

log = logging.getLogger(__name__)
CLOSE_WAIT_S = 5.0  # at shutdown, how long closing the model waits for an API generation to end


class StoppedWhileWaiting(UserError, RuntimeError):
    """A window job was stopped while the local API's request still held the model."""


class EngineService(QObject):
    loading = Signal()            # a model started loading (the old one is closed)
    loaded = Signal(object)       # LoadedModel
    failed = Signal(str)          # loading failed for good (no fallback left), with the message
    busy_changed = Signal(bool)
    notice = Signal(str)          # a refusal or a note for the status bar

    def __init__(self, ctx: AppContext, parent: QObject | None = None):
        super().__init__(parent)
        self.ctx = ctx
        self.engine: Engine | None = None
        self.model: ActiveModel | None = None
        self.jobs = JobGroup(self)
        self._holder: Job | None = None
        self._busy_text = ""
        self._kind = ""
        self._waiting: list = []
        self.gate = EngineGate()  # shared with the local API (features/api)

    # ---- who holds the engine ------------------------------------------------------------------
    def busy_text(self) -> str | None:
        """What holds the engine, in words, or None when it is free."""
        return self._busy_text if self._holder is not None else None

    def refuse_if_busy(self, kinds: tuple[str, ...] | None = None) -> bool:
        """True (and the reason shown) when another job holds the engine; with ``kinds``, only
        when the holder is of one of them ("turn", "review", "evaluate", "load")."""
        text = self.busy_text()
        if text and (kinds is None or self._kind in kinds):
            self.notice.emit(text)
            return True
        return False

    def start_exclusive(self, job: Job, busy_text: str, group: JobGroup | None = None,
                        kind: str = "turn") -> Job | None:
        """Start ``job`` as the engine's one user, or refuse (None) while another runs."""
        if self.refuse_if_busy():
            return None
        self._holder, self._busy_text, self._kind = job, busy_text, kind
        # Free once its result is handled (the job's own slots were connected first, so they
        # run before this one); `finished` covers a job that never reports.
        for signal in (job.succeeded, job.failed):
            signal.connect(lambda _r, j=job: self._released(j))
        job.finished.connect(lambda j=job: self._released(j))
        self._gated(job, busy_text)
        (group or self.jobs).start(job)
        self.busy_changed.emit(True)
        return job

    def _gated(self, job: Job, who: str) -> None:
        """Make ``job``'s function take the gate first (on its worker thread), as the window."""
        gate = self.gate

        def gated(fn, ctx: JobContext):
            try:
                ticket = gate.acquire(who, WINDOW, ctx.cancelled)
            except GateCancelled:
                raise StoppedWhileWaiting("Stopped before it began: a request from your editor (the local "
                                          "API) was using the model.") from None
            try:
                return fn(ctx)
            finally:
                gate.release(ticket)

        job.around(gated)

    def when_free(self, fn) -> None:
        """Call ``fn`` now if nothing holds the engine, else as soon as the holder ends (a job's
        success slot runs while that job still holds it)."""
        if self.busy_text() is None:
            fn()
        else:
            self._waiting.append(fn)

    def _released(self, job: Job) -> None:
        if self._holder is job:
            self._holder = None
            self.busy_changed.emit(False)
            waiting, self._waiting = self._waiting, []
            for fn in waiting:
                fn()

    # ---- loading ---------------------------------------------------------------------------
    def load(self, fallback: str | None = None, notice: str | None = None) -> Job | None:
        """Load the active model on a worker. The old one is closed first (on the worker, holding
        the gate, so a generation the local API runs is never cut), so its memory is back before
        the new one loads. If ``fallback`` is given and loading fails, the setting reverts and
        that model loads; ``notice`` stays shown after a good load."""
        if self.busy_text():
            self.refuse_if_busy()
            return None
        settings, store = self.ctx.settings, self.ctx.adapters
        old, self.engine, self.model = self.engine, None, None

        def work(_ctx):
            if old is not None:
                old.close()
            return load_engine(settings, store)

        job = Job(work, name="load-model", parent=self)
        job.on_success(lambda lm: self._loaded(lm, notice)).on_failure(lambda e: self._failed(e, fallback))
        self.loading.emit()
        return self.start_exclusive(job, "The model is loading: wait a moment.", kind="load")

    def switch(self, path: str) -> None:
        """Use another model; if it fails to load, go back to the one before."""
        if self.refuse_if_busy():
            return
        previous = self.ctx.settings.model_path
        self.ctx.settings.model_path = path
        self.ctx.save_settings()
        self.load(fallback=previous)

    def _loaded(self, lm: LoadedModel, notice: str | None) -> None:
        self.engine, self.model = lm.engine, lm.model
        if notice:
            lm.note = f"{notice} {lm.note}" if lm.note else notice
        self.loaded.emit(lm)

    def _failed(self, e: BaseException, fallback: str | None) -> None:
        message = describe_error(e)
        if fallback is not None and fallback != self.ctx.settings.model_path:
            self.ctx.settings.model_path = fallback
            self.ctx.save_settings()
            self._holder = None  # this failed load is over: the fallback may start now
            self.load(notice=f"{message} Went back to the previous model.")
            return
        self.failed.emit(message)

    def close(self) -> None:
        """At shutdown: close the model once no API generation uses it (waiting at most
        CLOSE_WAIT_S; past that it is left to the process's exit rather than cut mid-use)."""
        engine, self.engine = self.engine, None
        if engine is None:
            return
        deadline = time.monotonic() + CLOSE_WAIT_S
        try:
            ticket = self.gate.acquire("closing", WINDOW, lambda: time.monotonic() > deadline)
        except GateCancelled:
            log.warning("the model was still in use by the local API at close; left to the exit")
            return
        try:
            engine.close()
        finally:
            self.gate.release(ticket)

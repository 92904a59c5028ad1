"""The one worker pattern: every long job runs through ``Job``.

A job is a plain function ``fn(ctx) -> result`` from app.core (or a lambda around one). It
runs on its own QThread and talks to the GUI only through ``ctx``:

- ``ctx.progress(done, total, note)`` -> ``Job.progressed`` signal
- ``ctx.partial(obj)``                -> ``Job.partial`` signal (streamed tokens, rows, ...)
- ``ctx.cancelled()``                 <- ``Job.cancel()``

and ends with exactly one of ``succeeded(result)`` / ``failed(exception)``, then
``finished()``. The signals belong to the Job, which lives on the GUI thread, so Qt queues
every emission from the worker thread: slots always run on the GUI thread and may touch
widgets; the job function never may. Nothing is swallowed: an exception becomes
``failed``, and the caller shows it (``on_failure``, wording it with
``app.ui.errors.describe_error``).

A job that fails with no failure slot connected is not lost either: its exception goes
through ``describe_error`` (which logs it: a UserError at warning, anything else at error
with the traceback) and then to ``Job.default_failure``, a class-level hook the main code may
set to show it (``Job.default_failure = lambda e: status_bar.showMessage(describe_error(e))``);
it is None by default, and runs on the GUI thread.
"""

from __future__ import annotations

import threading
import traceback
from typing import Any, Callable, ClassVar

from PySide6.QtCore import SIGNAL, QObject, QThread, Signal

from app.ui.errors import describe_error


class JobContext:
    """What a running job may use: report progress, stream partial results, poll cancel."""

    def __init__(self, job: "Job"):
        self._job = job

    def progress(self, done: int, total: int = 0, note: str = "") -> None:
        self._job._relay.emit("progress", (int(done), int(total), note))

    def partial(self, item: Any) -> None:
        self._job._relay.emit("partial", item)

    def cancelled(self) -> bool:
        return self._job._cancel.is_set()

    @property
    def cancel_event(self) -> threading.Event:
        """The job's cancel flag as an event, for core code that waits on one (a child process
        stopped the moment Cancel is pressed)."""
        return self._job._cancel


class _Thread(QThread):
    def __init__(self, job: "Job"):
        super().__init__()
        self._job = job

    def run(self) -> None:  # worker thread
        job = self._job
        try:
            result = job._fn(JobContext(job))
        except BaseException as e:  # noqa: BLE001 - handed to the GUI, never swallowed
            e.__traceback_text__ = traceback.format_exc()
            job._relay.emit("failed", e)
        else:
            job._relay.emit("succeeded", result)


# Jobs are kept alive here until they finish, so a caller may drop its reference.
_RUNNING: set["Job"] = set()


class Job(QObject):
    progressed = Signal(int, int, str)
    partial = Signal(object)
    succeeded = Signal(object)
    failed = Signal(object)
    finished = Signal()
    # The worker thread emits only this; ``_deliver`` re-emits it on the GUI thread. A queued
    # emission posts one event per connected slot, and the worker posts them one by one, so the
    # GUI could run between two slots of one result (a poll seeing a model loaded while the
    # engine was not yet released). Relayed, all slots of one result run in one go, in order.
    _relay = Signal(str, object)

    # Shows the exception of a job that failed with no failure slot connected (see the module
    # docstring); the failure is logged through describe_error before it is called.
    default_failure: ClassVar[Callable[[BaseException], None] | None] = None

    def __init__(self, fn: Callable[[JobContext], Any], name: str = "job", parent: QObject | None = None):
        super().__init__(parent)
        self.name = name
        self._fn = fn
        self._cancel = threading.Event()
        self._thread = _Thread(self)
        self._thread.setObjectName(name)
        self._thread.finished.connect(self._on_thread_finished)
        self._done = False
        self.failed.connect(self._unhandled_failure)  # connected first: it counts as one receiver
        self._relay.connect(self._deliver)

    # fluent helpers, in the manner of Anki's QueryOp
    def on_success(self, slot: Callable[[Any], None]) -> "Job":
        self.succeeded.connect(slot)
        return self

    def on_failure(self, slot: Callable[[BaseException], None]) -> "Job":
        self.failed.connect(slot)
        return self

    def on_partial(self, slot: Callable[[Any], None]) -> "Job":
        self.partial.connect(slot)
        return self

    def on_progress(self, slot: Callable[[int, int, str], None]) -> "Job":
        self.progressed.connect(slot)
        return self

    def around(self, wrapper: Callable[[Callable[[JobContext], Any], JobContext], Any]) -> "Job":
        """Run the job's function inside ``wrapper(fn, ctx)`` on the worker (the engine service
        takes the model's gate there before the work starts). Only before ``start``."""
        fn = self._fn
        self._fn = lambda ctx: wrapper(fn, ctx)
        return self

    def start(self) -> "Job":
        _RUNNING.add(self)
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def is_running(self) -> bool:
        return not self._done

    def wait(self, ms: int = -1) -> bool:
        """Block until the thread ends (for shutdown only: never call it in normal GUI flow)."""
        return self._thread.wait() if ms < 0 else self._thread.wait(ms)

    def _deliver(self, kind: str, payload: Any) -> None:  # GUI thread
        if kind == "progress":
            self.progressed.emit(*payload)
        elif kind == "partial":
            self.partial.emit(payload)
        elif kind == "succeeded":
            self.succeeded.emit(payload)
        else:
            self.failed.emit(payload)

    def _unhandled_failure(self, e: BaseException) -> None:
        if self.receivers(SIGNAL("failed(PyObject)")) > 1:
            return  # someone shows it
        describe_error(e)  # logs it
        hook = Job.default_failure
        if hook is not None:
            hook(e)

    def _on_thread_finished(self) -> None:
        self._done = True
        _RUNNING.discard(self)
        self.finished.emit()


class JobGroup(QObject):
    """The jobs one feature started, so it can cancel them all and the window can wait for
    every feature's at close (within a bounded time) instead of listing job attributes by hand.

    ``start(job)`` starts and tracks a job; finished jobs drop out by themselves. ``cancel()``
    asks every running job to stop; ``wait(deadline)`` blocks until they end or the monotonic
    ``deadline`` passes (shutdown only). ``running(name)`` tells whether a job of that name runs.
    """

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._jobs: list[Job] = []

    def start(self, job: Job) -> Job:
        return self.track(job).start()

    def track(self, job: Job) -> Job:
        """Count a job another object started (a dialog's) among this group's."""
        if job not in self._jobs and job.is_running():
            self._jobs.append(job)
            job.finished.connect(lambda j=job: j in self._jobs and self._jobs.remove(j))
        return job

    def running(self, name: str | None = None) -> list[Job]:
        return [j for j in self._jobs if j.is_running() and (name is None or j.name == name)]

    def cancel(self) -> None:
        for job in self.running():
            job.cancel()

    def wait(self, deadline: float) -> bool:
        """True when every job ended before ``deadline`` (time.monotonic())."""
        import time

        for job in self.running():
            left = int((deadline - time.monotonic()) * 1000)
            if left <= 0 or not job.wait(left):
                return False
        return True

"""Who may use the one loaded model next: a small fair lock with a short queue.

Why: the window and the local API share one llama.cpp context, and ``Engine.chat`` refuses a
second caller instead of waiting. Every user takes the gate first. The window's own work is
served before any waiting API request (the person at the keyboard comes first); API requests
are served in arrival order, and only ``max_waiting`` of them may wait: the next one is told to
come back later (``GateFull``, an HTTP 429 with Retry-After), so a burst of requests can never
pile up threads or memory. A waiter whose client has gone stops waiting at once.
"""

from __future__ import annotations

import itertools
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from app.core.errors import UserError

WINDOW, API = 0, 1  # priorities: lower is served first


class GateFull(UserError, RuntimeError):
    """Too many API requests are already waiting for the model."""

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class GateCancelled(UserError, RuntimeError):
    """The waiter gave up (its client disconnected) before its turn came."""


class EngineGate:
    """One holder at a time; window waiters before API waiters, first come first served within
    each; at most ``max_waiting`` API waiters."""

    def __init__(self, max_waiting: int = 4):
        self.max_waiting = max_waiting
        self._cond = threading.Condition()
        self._holder: tuple[int, int, str] | None = None  # (priority, ticket, who)
        self._waiting: list[tuple[int, int, str]] = []
        self._tickets = itertools.count()
        self._last_hold_s = 5.0  # how long a turn took lately: the Retry-After estimate
        self._held_since = 0.0

    # ---- reading ------------------------------------------------------------------------------
    def holder(self) -> str | None:
        with self._cond:
            return self._holder[2] if self._holder else None

    def waiting(self, priority: int | None = None) -> int:
        with self._cond:
            return sum(1 for w in self._waiting if priority is None or w[0] == priority)

    def retry_after_s(self) -> int:
        """Seconds a refused client should wait: the queue ahead times a recent turn's length."""
        with self._cond:
            return self._retry_locked()

    # ---- taking and giving back ---------------------------------------------------------------
    def acquire(self, who: str, priority: int = API, cancelled: Callable[[], bool] | None = None,
                poll_s: float = 0.05) -> tuple[int, int, str]:
        """Block until it is ``who``'s turn; the ticket to ``release``. Raises GateFull (an API
        request beyond the queue) or GateCancelled (``cancelled()`` turned true while waiting)."""
        cancelled = cancelled or (lambda: False)
        with self._cond:
            if priority != WINDOW and (self._holder is not None or self._waiting):
                if sum(1 for w in self._waiting if w[0] != WINDOW) >= self.max_waiting:
                    raise GateFull(
                        f"The model is busy and {self.max_waiting} requests are already waiting; "
                        "try again shortly.", self._retry_locked())
            ticket = (priority, next(self._tickets), who)
            self._waiting.append(ticket)
            self._waiting.sort()
            try:
                while self._holder is not None or self._waiting[0] != ticket:
                    if cancelled():
                        raise GateCancelled("The request was cancelled while it waited for the model.")
                    self._cond.wait(poll_s)
            except BaseException:
                self._waiting.remove(ticket)
                self._cond.notify_all()
                raise
            self._waiting.remove(ticket)
            self._holder = ticket
            self._held_since = time.monotonic()
            return ticket

    def release(self, ticket: tuple[int, int, str]) -> None:
        with self._cond:
            if self._holder != ticket:
                return
            self._holder = None
            held = time.monotonic() - self._held_since
            if ticket[0] != WINDOW:
                self._last_hold_s = 0.7 * self._last_hold_s + 0.3 * held
            self._cond.notify_all()

    @contextmanager
    def hold(self, who: str, priority: int = API, cancelled: Callable[[], bool] | None = None) -> Iterator[None]:
        ticket = self.acquire(who, priority, cancelled)
        try:
            yield
        finally:
            self.release(ticket)

    def _retry_locked(self) -> int:
        return max(1, int(round(self._last_hold_s * (len(self._waiting) + 1))))

"""The engine's small shared types: its error, a generation's result, the cancel watch.

Apart from engine.py so that the raw-completion loop (``engine_complete.py``, which
``Engine.complete`` calls) can use them without an import circle.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

from app.core.errors import UserError


class EngineError(UserError, RuntimeError):
    """Something the user can act on went wrong in the engine (load or generation)."""


@dataclass
class GenerationResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    time_to_first_token_s: float | None
    total_s: float
    finish_reason: str  # "stop", "length" or "cancelled"
    chunks: int = 0

    @property
    def cancelled(self) -> bool:
        return self.finish_reason == "cancelled"

    @property
    def tokens_per_s(self) -> float:
        """Generation speed, from the first token on (prompt processing excluded)."""
        if self.time_to_first_token_s is None or self.completion_tokens <= 1:
            return 0.0
        gen_time = self.total_s - self.time_to_first_token_s
        return (self.completion_tokens - 1) / gen_time if gen_time > 0 else 0.0


class CancelWatch:
    """Turns the caller's ``cancelled()`` into the abort flag llama.cpp polls.

    ``cancelled`` is only polled by us between tokens; during a long prompt evaluation no
    token arrives, so a small thread polls it and raises the abort flag.
    """

    def __init__(self, cancelled: Callable[[], bool], abort: threading.Event, period: float = 0.05):
        self._cancelled = cancelled
        self._abort = abort
        self._period = period
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "CancelWatch":
        self._thread = threading.Thread(target=self._run, name="engine-cancel-watch", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._done.wait(self._period):
            if self._cancelled():
                self._abort.set()
                return

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()

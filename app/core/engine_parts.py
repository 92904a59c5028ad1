"""The engine's small shared parts: its error, a generation's result, the cancel watch and the
streaming loop both generations use (the chat template's and raw completion's).

Apart from engine.py so that the raw-completion module (``engine_complete.py``, which
``Engine.complete`` calls) can use them without an import circle.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

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


@dataclass
class Streamed:
    """What one streamed generation gave: its text and how it went."""

    text: str
    chunks: int
    time_to_first_token_s: float | None
    read_tokens: int      # tokens in the context when the first text came (the prompt as read)
    finish_reason: str
    total_s: float


def stream_generation(llm, abort: threading.Event, make_stream: Callable[[], Iterable[dict[str, Any]]],
                      text_of: Callable[[dict], str | None], on_token: Callable[[str], None] | None,
                      cancelled: Callable[[], bool], too_long: str) -> Streamed:
    """Run one llama.cpp stream to its end: each piece to ``on_token``, ``cancelled`` polled
    between tokens and (through the abort flag) during the prompt, an aborted decode's
    half-written KV cache forgotten, llama.cpp's errors in words (``too_long`` for a prompt past
    the context)."""
    abort.clear()
    watch = CancelWatch(cancelled, abort)
    t0 = time.perf_counter()
    ttft, pieces, chunks, read, finish = None, [], 0, 0, "stop"
    stream: Iterable = ()
    watch.start()
    try:
        stream = make_stream()
        for chunk in stream:
            choice = chunk["choices"][0]
            text = text_of(choice)
            if text:
                if ttft is None:
                    ttft = time.perf_counter() - t0
                    read = llm.n_tokens
                chunks += 1
                pieces.append(text)
                if on_token is not None:
                    on_token(text)
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
            if cancelled():
                finish = "cancelled"
                break
    except (RuntimeError, ValueError) as e:
        if abort.is_set() or cancelled():
            # llama_decode was aborted mid-batch: forget the cached prompt so the next call
            # evaluates it afresh instead of trusting a half-written KV cache.
            llm.reset()
            finish = "cancelled"
        elif "exceed context window" in str(e):
            raise EngineError(too_long) from None
        else:
            raise EngineError(f"Generation failed: {e}") from None
    finally:
        watch.stop()
        close = getattr(stream, "close", None)
        if close:
            close()
        abort.clear()
    return Streamed("".join(pieces), chunks, ttft, read, finish, time.perf_counter() - t0)


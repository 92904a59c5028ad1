"""Raw text completion on the app's engine (``/v1/completions``, fill-in-the-middle).

The work is ``Engine.complete`` (its lock, cancel and errors; the loop in
``app/core/engine_complete.py``); this is the name the API's backend calls.
"""

from __future__ import annotations

from typing import Callable, Sequence

from app.core.engine import Engine, GenerationParams, GenerationResult


def complete(engine: Engine, prompt: str, params: GenerationParams, on_token: Callable[[str], None] | None = None,
             cancelled: Callable[[], bool] | None = None, stop: Sequence[str] = ()) -> GenerationResult:
    """Continue ``prompt`` on ``engine`` (see ``Engine.complete``)."""
    return engine.complete(prompt, params, on_token, cancelled, stop)

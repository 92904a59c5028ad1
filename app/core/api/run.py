"""Starting and stopping the local API as one piece: the key, the completion model (if chosen
and it fits), the backend and the server; then, at stop, the server first and the completion
model once no generation uses it.

Why here: the window (Settings → Local API, on a worker) and ``python -m app serve`` start the
same way, so what a user gets in the editor does not depend on which one runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from app.core.api import completion_model
from app.core.api.backend import ApiBackend, ServedModel
from app.core.api.gate import EngineGate
from app.core.api.keys import api_key
from app.core.api.service import ApiServer
from app.core.hardware import probe
from app.core.models.registry import ModelRegistry
from app.core.settings import GenerationSettings


@dataclass
class ApiRun:
    server: ApiServer
    completion: ServedModel | None
    note: str = ""   # about the completion model ("" when none was asked for)

    def stop(self) -> None:
        """The server first (its requests end), then the completion model (blocking: a worker)."""
        self.server.stop()
        completion_model.close(self.completion, self.server.backend.gate)
        self.completion = None


def prepare(gate: EngineGate, served: Callable[[], ServedModel | None], generation: GenerationSettings,
            rules: Callable[[], list[str]], models_dir: Path, wanted_completion: str, chat_path: Path | None,
            n_ctx: int, n_threads: int, host: str = "127.0.0.1", port: int | None = None) -> ApiRun:
    """Everything but listening: the key (a message when there is none), the completion model
    loaded if chosen and it fits beside ``chat_path``, and the server bound to its port."""
    key = api_key()  # before a model loads: no keyring is a message, not a wait
    choice = completion_model.choose(wanted_completion, ModelRegistry(models_dir), probe(models_dir), chat_path, n_ctx)
    completion, note = completion_model.load(choice, n_ctx, n_threads)
    backend = ApiBackend(gate, served, key, generation, rules=rules, completion_model=lambda: completion)
    return ApiRun(ApiServer(backend, host, port), completion, note)


def start(*args, **kwargs) -> ApiRun:
    """``prepare``, then listen and serve on a background thread (the window's way). A port in
    use is an ApiServerError, and the completion model is closed again."""
    run = prepare(*args, **kwargs)
    try:
        run.server.start()
    except BaseException:
        completion_model.close(run.completion, run.server.backend.gate)
        raise
    return run

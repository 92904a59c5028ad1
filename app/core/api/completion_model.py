"""The local API's optional second model, for code completion only.

Why: editors ask for fill-in-the-middle on every pause in typing, and base models do it better
than the Instruct model the user chats with (the catalog's "Qwen2.5-Coder-1.5B base (for
completion)", ``use = "completion"``). It costs memory, so it is loaded only while the API is
on, only when it fits beside the chat model (``fit.assess_pair``), and closed when the API
stops. When it is not chosen, not installed or does not fit, the chat model completes and the
reason is said (dialog, ``serve``'s output). One function for the window and ``serve``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.core.api.backend import ServedModel
from app.core.api.gate import WINDOW, EngineGate
from app.core.engine import Engine, EngineConfig, EngineError
from app.core.errors import UserError
from app.core.hardware import Hardware
from app.core.models.catalog import CATALOG
from app.core.models.fit import assess_pair, file_memory_needed
from app.core.models.registry import InstalledModel, ModelRegistry


def completion_models(registry: ModelRegistry) -> list[InstalledModel]:
    """Installed models made for completion (their catalog entry says ``use = "completion"``)."""
    ids = {e.id for e in CATALOG if e.use == "completion"}
    return [m for m in registry.list() if m.catalog_id in ids and m.file.exists()]


@dataclass(frozen=True)
class CompletionChoice:
    path: Path | None   # the file to load; None: the chat model completes
    name: str = ""      # what clients call it (the file's stem, as for the chat model)
    reason: str = ""    # what the user is told ("" when nothing was asked for)


def choose(wanted: str, registry: ModelRegistry, hw: Hardware, chat_path: Path | None, n_ctx: int) -> CompletionChoice:
    """The completion model to load for ``wanted`` (a registry id, a GGUF path, or "" for none)
    beside the chat model at ``chat_path``, or why not."""
    if not wanted:
        return CompletionChoice(None)
    installed = registry.get(wanted)
    path = installed.file if installed is not None else Path(wanted).expanduser()
    label = installed.name if installed is not None else path.name
    if not path.is_file():
        return CompletionChoice(None, reason=f"The completion model {label} is not installed (Models… downloads it); "
                                              "the chat model completes code.")
    try:
        second = file_memory_needed(path, n_ctx)
        first = file_memory_needed(chat_path, n_ctx) if chat_path is not None else 0
    except (OSError, UserError) as e:
        return CompletionChoice(None, reason=f"The completion model {label} cannot be used ({e}); the chat model "
                                              "completes code.")
    if chat_path is not None:
        pair = assess_pair(chat_path.stem, first, label, second, hw)
        if not pair.fits:
            return CompletionChoice(None, reason=f"{pair.reason}; the chat model completes code.")
        why = pair.reason
    else:
        why = f"{label} completes code"
    return CompletionChoice(path, path.stem, f"Completion by {label} ({why}).")


def load(choice: CompletionChoice, n_ctx: int, n_threads: int) -> tuple[ServedModel | None, str]:
    """The chosen model, loaded (seconds: call it on a worker), and what to tell the user; a
    file that does not load is said, and the chat model completes (the API still starts)."""
    if choice.path is None:
        return None, choice.reason
    try:
        engine = Engine(choice.path, EngineConfig(n_ctx=n_ctx, n_threads=n_threads))
    except EngineError as e:
        return None, f"The completion model {choice.path.name} did not load ({e}); the chat model completes code."
    return ServedModel(choice.name, engine), choice.reason


def close(served: ServedModel | None, gate: EngineGate) -> None:
    """Close the completion model once no generation uses it (it waits its turn at the gate,
    ahead of API requests, so a request that picked it has finished)."""
    if served is None:
        return
    with gate.hold("closing the completion model", WINDOW):
        served.engine.close()

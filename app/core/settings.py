"""User settings, kept in ``settings.toml``.

A dataclass with the product's defaults. Unknown keys are ignored and values of the wrong
type or out of range fall back to the default (``load_checked`` says which), so an old or
hand-edited file never stops the app starting.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from app.core.atomic import atomic_write_text, describe_os_error
from app.core.errors import UserError


@dataclass
class GenerationSettings:
    """Sampling: the user's settings, with the product brief's defaults (low temperature suits
    code), and what ``Engine.chat`` is given (``engine.GenerationParams`` is this class;
    ``ChatService.params`` hands it a copy of the user's)."""

    temperature: float = 0.3
    top_p: float = 0.95
    top_k: int = 50
    max_tokens: int = 2048
    repeat_penalty: float = 1.1
    seed: int | None = None  # None: llama.cpp's own; only a caller sets one (never in the file)

    @classmethod
    def greedy(cls, max_tokens: int = 2048) -> "GenerationSettings":
        """Deterministic decoding: the same prompt gives the same text."""
        return cls(temperature=0.0, top_p=1.0, top_k=1, max_tokens=max_tokens, repeat_penalty=1.0)


@dataclass
class RetrievalSettings:
    """Project search. The fusion weights are tuned on bench/retrieval_quality.py, not by feel
    (equal-weight RRF scored below dense alone; see docs/decisions.md)."""

    dense_weight: float = 1.0
    bm25_weight: float = 0.2
    rrf_k: int = 10
    # Prompt room for retrieved code at most: prompt processing on 2 cores runs at tens of tokens/s.
    context_tokens: int = 1500
    # Answer questions from the open project's index.
    use_project: bool = True
    # The first answer should start within this many seconds: at the loaded model's measured
    # reading speed, it decides how much project code a question carries (app/core/models/speed.py).
    first_answer_s: float = 20.0


@dataclass
class DirectorSettings:
    """Review: an optional remote "director" (any OpenAI-compatible endpoint) writes the
    synthesis instead of the local model; its key lives in the OS keyring ("director")."""

    enabled: bool = False
    base_url: str = ""  # e.g. https://api.openai.com/v1
    model: str = ""
    timeout_s: float = 60.0


@dataclass
class Settings:
    # Path of the active GGUF model; empty means the embedded starter model.
    model_path: str = ""
    # Context window in tokens.
    n_ctx: int = 4096
    # CPU threads for generation; 0 means one per physical core.
    n_threads: int = 0
    system_prompt: str = (
        "You are Offline Coder, a careful coding assistant running locally. "
        "Answer concisely. Put code in fenced code blocks with the language named."
    )
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    # The open project folder ("" = none) and the recently opened ones, newest first.
    project_dir: str = ""
    recent_projects: list = field(default_factory=list)
    # Offline mode (on at first start): the OS firewall and the in-process guard block the network.
    offline: bool = True
    # What the Network panel's Verify tries to reach: a documentation address that is never
    # routed (app/core/net/verify.py refuses any other), so proving the block contacts nobody.
    verify_target: str = "192.0.2.1:443"
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    # Web search provider for /search and /web: "duckduckgo" (no key) or "tavily" (key in the OS keyring).
    search_provider: str = "duckduckgo"
    # /fix: how many run → correct rounds at most.
    fix_rounds: int = 3
    # Review (consilium): the optional remote director; off unless the user turns it on.
    director: DirectorSettings = field(default_factory=DirectorSettings)

    # ---- persistence -------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path) -> "Settings":
        return cls.load_checked(path)[0]

    @classmethod
    def load_checked(cls, path: Path) -> tuple["Settings", list[str]]:
        """The settings, and a note for each part of the file that could not be used (the
        default applies there). The file is never changed here: a broken one stays as it is
        until the next save replaces it (Help → System check says so)."""
        if not path.exists():
            return cls(), []
        try:
            data = path.read_bytes()
            if len(data) > MAX_FILE_BYTES:
                raise ValueError(f"it is {len(data):,} bytes; settings are a few hundred")
            raw = tomllib.loads(data.decode("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
            # A broken settings file must not keep the app from starting; the defaults apply
            # and the next save writes a good file.
            why = ("it is not UTF-8 text" if isinstance(e, UnicodeDecodeError) else
                   "it nests too deeply" if isinstance(e, RecursionError) else
                   getattr(e, "strerror", None) or str(e))
            return cls(), [f"settings.toml cannot be read ({why}), so the defaults apply."]
        notes: list[str] = []
        settings = _from_dict(cls, raw, notes)
        from app.core.net.verify import allowed_target
        settings.verify_target = allowed_target(settings.verify_target)
        return settings, notes

    def save(self, path: Path) -> None:
        """Write atomically: a crash mid-save leaves the old file, never half a file; a failed
        write is a SettingsError saying so (the old file is still the one in place)."""
        try:
            atomic_write_text(path, tomli_w.dumps(_without_none(dataclasses.asdict(self))))
        except OSError as e:
            raise SettingsError(f"The settings could not be saved to {path}: {describe_os_error(e)}. "
                                "The previous settings file is kept; change a setting again once the "
                                "disk is writable to save them.") from e


class SettingsError(UserError, OSError):
    """The settings file could not be written; the previous one is still in place."""


def _without_none(d: dict) -> dict:
    """TOML has no null: a None value (an unset seed) is left out, and loads back as the default."""
    return {k: _without_none(v) if isinstance(v, dict) else v for k, v in d.items() if v is not None}

# Numbers outside these bounds (or NaN/infinity) are as bad as a wrong type: the default applies.
MAX_FILE_BYTES = 1024**2
_RANGES = {
    "n_ctx": (128, 1 << 20), "n_threads": (0, 1024), "fix_rounds": (0, 100),
    "temperature": (0.0, 5.0), "top_p": (0.0, 1.0), "top_k": (0, 100_000), "max_tokens": (1, 1 << 20),
    "repeat_penalty": (0.0, 10.0), "dense_weight": (0.0, 1000.0), "bm25_weight": (0.0, 1000.0),
    "rrf_k": (0, 100_000), "context_tokens": (0, 1 << 20), "first_answer_s": (0.1, 3600.0),
    "timeout_s": (1.0, 3600.0),
}


def _usable(name: str, value, default) -> bool:
    if isinstance(value, str):
        return "\x00" not in value  # a NUL cannot be part of a path, a URL or a prompt
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        lo, hi = _RANGES.get(name, (float("-inf"), float("inf")))
        return math.isfinite(value) and lo <= value <= hi
    return True


def _from_dict(cls, raw: dict, notes: list[str] | None = None, where: str = ""):
    """``cls`` from a TOML table: a value of the wrong type or out of range keeps the default,
    with a note naming it in ``notes``; unknown keys are ignored."""
    notes = notes if notes is not None else []
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in raw:
            continue
        value = raw[f.name]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if dataclasses.is_dataclass(default):
            if isinstance(value, dict):
                kwargs[f.name] = _from_dict(type(default), value, notes, f"{where}{f.name}.")
            else:
                notes.append(f"settings.toml: [{where}{f.name}] should be a table, not {_shown(value)}; "
                             "its defaults apply.")
            continue
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(default, list) and isinstance(value, list):
            good = [v for v in value if isinstance(v, str) and "\x00" not in v]
            if len(good) != len(value):
                notes.append(f"settings.toml: '{where}{f.name}' holds entries that are not paths; they were left out.")
            value = good
        if type(value) is type(default) and _usable(f.name, value, default):
            kwargs[f.name] = value
        elif f.name != "seed":  # the seed is never in the file (TOML has no null)
            bounds = _RANGES.get(f.name)
            want = f" from {bounds[0]:g} to {bounds[1]:g}" if bounds else ""
            notes.append(f"settings.toml: '{where}{f.name}' should be a {type(default).__name__}{want}, "
                         f"not {_shown(value)}; the default {default!r} applies.")
    return cls(**kwargs)


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."

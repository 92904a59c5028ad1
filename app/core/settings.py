"""User settings, kept in ``settings.toml``.

A dataclass with the product's defaults. Unknown keys are ignored, values of the wrong type
(or NaN/infinity) fall back to the default and numbers out of range are clamped to the nearest
bound (``load_checked`` says which, the window shows it once), so an old or hand-edited file
never stops the app starting. ``Preferences`` is what Settings → Preferences… edits, checked
here (the window holds no rules) against the same bounds and the model's trained context.
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


DEFAULT_SYSTEM_PROMPT = (
    "You are Offline Coder, a careful coding assistant running locally. "
    "Answer concisely. Put code in fenced code blocks with the language named."
)


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
    system_prompt: str = DEFAULT_SYSTEM_PROMPT  # Preferences' "Reset to default" puts it back
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
    # Settings → Local API: serve the model to the user's editor on 127.0.0.1 (off unless turned on);
    # port 0 means the default (8012, llama.vscode's), or a free one when that is taken.
    api_enabled: bool = False
    api_port: int = 0
    # The local API's completion model (a models-folder id, e.g. the catalog's 1.5B base), loaded
    # beside the chat model while the API is on and when both fit; "" = the chat model completes.
    api_completion_model: str = ""

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

# Numbers outside these bounds are clamped to the nearest one (with a note); NaN/infinity are as
# bad as a wrong type (the default applies). Preferences refuses what is outside them.
MAX_FILE_BYTES = 1024**2
RANGES = {
    "n_ctx": (128, 1 << 20), "n_threads": (0, 1024), "fix_rounds": (0, 100),
    "temperature": (0.0, 5.0), "top_p": (0.0, 1.0), "top_k": (0, 100_000), "max_tokens": (1, 1 << 20),
    "repeat_penalty": (0.0, 10.0), "dense_weight": (0.0, 1000.0), "bm25_weight": (0.0, 1000.0),
    "rrf_k": (0, 100_000), "context_tokens": (0, 1 << 20), "first_answer_s": (0.1, 3600.0),
    "timeout_s": (1.0, 3600.0), "api_port": (0, 65535),
}


def _usable(value) -> bool:
    if isinstance(value, str):
        return "\x00" not in value  # a NUL cannot be part of a path, a URL or a prompt
    if isinstance(value, float):
        return math.isfinite(value)
    return True


def _clamped(name: str, value, where: str, notes: list[str]):
    """A number within its bounds: one outside is moved to the nearest bound, with a note."""
    lo, hi = RANGES.get(name, (None, None))
    if lo is None or isinstance(value, bool) or not isinstance(value, (int, float)) or lo <= value <= hi:
        return value
    bound = type(value)(lo if value < lo else hi)
    side = "below the least" if value < lo else "above the most"
    notes.append(f"settings.toml: '{where}{name}' is {_shown(value)}, {side} it may be ({bound:g}); "
                 f"{bound!r} is used.")
    return bound


def _from_dict(cls, raw: dict, notes: list[str] | None = None, where: str = ""):
    """``cls`` from a TOML table: a value of the wrong type keeps the default and a number out of
    range is clamped, each with a note naming it in ``notes``; unknown keys are ignored."""
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
        if type(value) is type(default) and _usable(value):
            kwargs[f.name] = _clamped(f.name, value, where, notes)
        elif f.name != "seed":  # the seed is never in the file (TOML has no null)
            bounds = RANGES.get(f.name)
            want = f" from {bounds[0]:g} to {bounds[1]:g}" if bounds else ""
            notes.append(f"settings.toml: '{where}{f.name}' should be a {type(default).__name__}{want}, "
                         f"not {_shown(value)}; the default {default!r} applies.")
    return cls(**kwargs)


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ---- Settings → Preferences… -------------------------------------------------------------------
# The web search providers the app has (app/core/web/search.py provider_for), as the user sees them.
SEARCH_PROVIDERS = {"duckduckgo": "DuckDuckGo (no key needed)", "tavily": "Tavily (needs a key, Settings → Keys)"}
# What each editable setting is called in the window, and where it lives in Settings.
LABELS = {"temperature": "Temperature", "top_p": "Top-p", "top_k": "Top-k", "max_tokens": "Max answer length",
          "repeat_penalty": "Repeat penalty", "n_ctx": "Context size", "n_threads": "Threads",
          "system_prompt": "System prompt", "first_answer_s": "First-answer target", "offline": "Offline",
          "search_provider": "Web search", "fix_rounds": "Fix rounds"}
_GROUP = {"temperature": "generation", "top_p": "generation", "top_k": "generation", "max_tokens": "generation",
          "repeat_penalty": "generation", "first_answer_s": "retrieval"}
# Read when the model loads: changing them means loading it again.
RELOAD_FIELDS = ("n_ctx", "n_threads")


class SettingsValueError(UserError, ValueError):
    """A value Preferences cannot take; the message says which, why, and what is allowed."""


def context_problem(n_ctx: int, trained: int | None) -> str | None:
    """Why this context size cannot be used with a model trained on ``trained`` tokens (None: fine)."""
    if trained and n_ctx > trained:
        return (f"Context size {n_ctx:,} is more than this model was trained on ({trained:,} tokens): past that "
                f"its answers fall apart. Choose {trained:,} or less.")
    return None


@dataclass
class Preferences:
    """The settings Preferences… edits, as one value: read from Settings, checked, written back
    in place (ChatService holds the same Settings and copies ``generation`` for each answer, so
    the next answer uses them)."""

    temperature: float
    top_p: float
    top_k: int
    max_tokens: int
    repeat_penalty: float
    n_ctx: int
    n_threads: int
    system_prompt: str
    first_answer_s: float
    offline: bool
    search_provider: str
    fix_rounds: int

    @classmethod
    def of(cls, s: Settings) -> "Preferences":
        return cls(**{f.name: getattr(_holder(s, f.name), f.name) for f in dataclasses.fields(cls)})

    def problems(self, trained_ctx: int | None = None, memory: "ContextMemory | None" = None) -> list[str]:
        """What is wrong, one sentence each (empty: all can be used). ``memory``: what the chosen
        context needs (``context_memory``); more than the computer has is refused."""
        out = []
        for f in dataclasses.fields(self):
            value, label = getattr(self, f.name), LABELS[f.name]
            if f.name in RANGES:
                lo, hi = RANGES[f.name]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    out.append(f"{label} must be a number, not {_shown(value)}.")
                elif not lo <= value <= hi:
                    out.append(f"{label} must be from {lo:g} to {hi:g}, not {value:g}.")
        if not isinstance(self.system_prompt, str) or "\x00" in self.system_prompt:
            out.append("The system prompt cannot hold a NUL character.")
        if self.search_provider not in SEARCH_PROVIDERS:
            out.append(f"Web search must be one of {', '.join(SEARCH_PROVIDERS)}, not {_shown(self.search_provider)}.")
        if isinstance(self.n_ctx, int) and (why := context_problem(self.n_ctx, trained_ctx)):
            out.append(why)
        if memory is not None and not memory.possible:
            out.append(memory.words)
        return out

    def check(self, trained_ctx: int | None = None, memory: "ContextMemory | None" = None) -> None:
        """Raise SettingsValueError naming every problem (nothing is changed then)."""
        if problems := self.problems(trained_ctx, memory):
            raise SettingsValueError(" ".join(problems))

    def changed(self, s: Settings) -> list[str]:
        """The fields whose value differs from ``s``."""
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) != getattr(_holder(s, f.name), f.name)]

    def needs_reload(self, s: Settings) -> bool:
        """Whether using these needs the model loaded again (context size or threads changed)."""
        return any(name in RELOAD_FIELDS for name in self.changed(s))

    def apply(self, s: Settings, skip: tuple[str, ...] = ()) -> None:
        """Write into ``s`` in place (its ``generation`` and ``retrieval`` objects stay the same),
        all but the fields in ``skip``."""
        for f in dataclasses.fields(self):
            if f.name not in skip:
                setattr(_holder(s, f.name), f.name, getattr(self, f.name))


def _holder(s: Settings, name: str):
    group = _GROUP.get(name)
    return getattr(s, group) if group else s


@dataclass(frozen=True)
class ContextMemory:
    """The memory a model needs at a context size, and whether that fits this computer."""

    needed: int
    fits: bool       # within the share of RAM a model may take (app/core/models/fit.py)
    possible: bool   # within the computer's RAM at all
    words: str


def context_memory(info, n_ctx: int, hw) -> ContextMemory:
    """Memory for model ``info`` (a GGUFInfo) at ``n_ctx`` on ``hw`` (a Hardware), by the
    models' fit rule: file + KV cache + llama.cpp's buffers + the app."""
    from app.core.models.fit import APP_OVERHEAD, SAFE_RAM_SHARE, gb, kv_cache_from_gguf, runtime_overhead

    need = info.file_size + kv_cache_from_gguf(info, n_ctx) + runtime_overhead(info.file_size) + APP_OVERHEAD
    share = int(SAFE_RAM_SHARE * 100)
    words = f"Needs {gb(need)} of memory at context {n_ctx:,}"
    if need > hw.total_ram:
        words += f": more than this computer has ({gb(hw.total_ram)}). Choose a smaller context."
    elif need > hw.total_ram * SAFE_RAM_SHARE:
        words += (f": too big for a model here (it may use {share}% of your {gb(hw.total_ram)}); "
                  "other programs will be squeezed.")
    else:
        words += f": fits (a model may use {share}% of your {gb(hw.total_ram)})."
    return ContextMemory(need, need <= hw.total_ram * SAFE_RAM_SHARE, need <= hw.total_ram, words)


def clamp_context_to_model(s: Settings, trained: int | None) -> str | None:
    """Lower ``s.n_ctx`` to the model's trained length when it is above it, and say so; None when
    nothing changed. (The caller saves and loads the model again.)"""
    if trained and s.n_ctx > trained:
        before, s.n_ctx = s.n_ctx, trained
        return (f"The context size {before:,} is more than this model was trained on, so {trained:,} is used "
                "(Settings → Preferences… to change it).")
    return None

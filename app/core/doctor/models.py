"""The active model (present, a valid GGUF of a chat architecture, checksum, fits in RAM now),
the starter model, and the LoRA adapters switched on for the active model."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from app.core.doctor.check import FAIL, OK, WARN, Check
from app.core.doctor.checksum import ChecksumCache, expected_for, same_file
from app.core.hardware import Hardware
from app.core.paths import AppPaths
from app.core.settings import Settings

CHOOSE_ANOTHER = ("Choose another model in Models (or download/import this one again); "
                  "clearing the choice falls back to the starter model.")
Probe = Callable[[Path], Hardware]


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB"


def memory_line(info, n_ctx: int, hw: Hardware, loaded: bool) -> tuple[str, str, str]:
    """(status, words, remedy) for "does the model fit in RAM now"."""
    from app.core.models.fit import APP_OVERHEAD, kv_cache_from_gguf, runtime_overhead

    need = info.file_size + kv_cache_from_gguf(info, n_ctx) + runtime_overhead(info.file_size) + APP_OVERHEAD
    if loaded:
        return OK, f"loaded now; {_gb(hw.available_ram)} of RAM still free", ""
    if need > hw.total_ram:
        return (FAIL, f"needs {_gb(need)} of RAM at context {n_ctx}, this computer has {_gb(hw.total_ram)}",
                "Choose a smaller model in Models (the recommended one fits), or lower the context size.")
    if need > hw.available_ram:
        return (WARN, f"needs {_gb(need)} of RAM at context {n_ctx}, {_gb(hw.available_ram)} is free now",
                "Close other programs before loading it, or choose a smaller model in Models.")
    return OK, f"needs {_gb(need)} of RAM, {_gb(hw.available_ram)} free", ""


def check_active_model(paths: AppPaths, settings: Settings, probe: Probe, *, loaded_model: Path | None = None,
                       full_hash: bool = False, progress: Callable[[str], None] = lambda note: None,
                       cancelled: Callable[[], bool] = lambda: False) -> Check:
    from app.core.models import embedded
    from app.core.models.active import active_model
    from app.core.models.gguf_info import GGUFError, quantization, read_gguf_info
    from app.core.models.importer import CHAT_ARCHITECTURES, NOT_CHAT

    title = "Active model"
    try:
        model = active_model(settings)
    except embedded.StarterModelMissing as e:
        return Check("active_model", title, FAIL, f"No model is chosen and the starter model is unusable: {e}",
                     "Choose a model in Models, or reinstall the starter model as the message says.")
    path = model.path
    if not path.exists():
        return Check("active_model", title, FAIL, f"The model file {path} does not exist (moved or deleted).",
                     CHOOSE_ANOTHER)
    try:
        info = read_gguf_info(path)
    except GGUFError as e:
        return Check("active_model", title, FAIL, str(e), CHOOSE_ANOTHER)
    arch = info.architecture
    facts = [f"{model.name} ({path})", f"{arch}, {quantization(info)}, {_gb(info.file_size)}"]
    if arch not in CHAT_ARCHITECTURES:
        kind = NOT_CHAT.get(arch, "an architecture the app does not offer to load")
        return Check("active_model", title, FAIL, f"{'; '.join(facts)}: this is {kind}, not a chat model.",
                     CHOOSE_ANOTHER)

    # Checksum.
    if model.is_starter:
        embedded.starter_model()  # raises StarterModelMissing (size or sha256 wrong)
        facts.append("checksum OK (the starter's published SHA-256)")
    else:
        cache = ChecksumCache(paths.cache_dir)
        ref, registered = expected_for(path, paths.models_dir)
        shown = [-1]

        def hashing(done: int, total: int) -> None:
            pct = done * 100 // max(total, 1)
            if pct != shown[0]:
                shown[0] = pct
                progress(f"Active model: reading {path.name} for its checksum, {pct}%")

        sha, fresh = cache.current(path, full=full_hash, progress=hashing, cancelled=cancelled)
        if ref is None:
            ref = cache.baseline(path, sha, registered)
        if sha != ref.sha256:
            return Check("active_model", title, FAIL,
                         f"{'; '.join(facts)}: its SHA-256 is {sha[:16]}…, not {ref.sha256[:16]}… ({ref.source}). "
                         "The file was changed or damaged after it was installed.",
                         "Delete it in Models and download or import it again (or choose another model).")
        facts.append(f"checksum OK ({ref.source}{'' if fresh else '; unchanged since it was last hashed'})")

    loaded = loaded_model is not None and same_file(loaded_model, path)
    status, words, remedy = memory_line(info, settings.n_ctx, probe(paths.models_dir), loaded)
    facts.append(words)
    return Check("active_model", title, status, "; ".join(facts) + ".", remedy)


def check_starter() -> Check:
    from app.core.models import embedded

    try:
        s = embedded.starter_model()
    except embedded.StarterModelMissing as e:
        msg = str(e)
        remedy = msg[msg.index("Run"):] if "Run the setup" in msg else msg.split(". ", 1)[-1]
        return Check("starter_model", "Starter model", FAIL, msg.split(". ", 1)[0] + ".", remedy)
    return Check("starter_model", "Starter model", OK, f"{s.name} at {s.path}; size and SHA-256 match.")


def check_adapters(paths: AppPaths, settings: Settings) -> Check:
    """The adapters switched on for the active model: each a readable GGUF LoRA of its architecture."""
    from app.core.adapters.manifest import ModelShape
    from app.core.adapters.store import AdapterStore
    from app.core.models.active import active_model
    from app.core.models.gguf_info import GGUFError, read_gguf_info

    title = "LoRA adapters"
    folder = paths.data_dir / "adapters"
    store = AdapterStore(folder)
    every = store.list()
    if not every:
        return Check("adapters", title, OK, "No adapters imported.")
    on = [a for a in every if a.enabled]
    try:
        info = read_gguf_info(active_model(settings).path)
    except Exception:  # noqa: BLE001 - the active model's own check says what is wrong with it
        return Check("adapters", title, OK if not on else WARN,
                     f"{len(every)} imported, {len(on)} on; not compared: the active model cannot be read "
                     "(see Active model).", "Fix the active model first." if on else "")
    key = ModelShape.from_gguf(info).key
    mine = [a for a in on if a.model_key == key]
    others = len(on) - len(mine)
    broken = []
    for a in mine:
        try:
            ai = read_gguf_info(a.file)
            if ai.metadata.get("general.type") != "adapter" or ai.architecture != info.architecture:
                broken.append(f"{a.name} (not a {info.architecture} LoRA adapter)")
        except GGUFError as e:
            broken.append(f"{a.name} ({e.reason})")
    detail = f"{len(every)} imported; {len(mine)} on for the active model"
    if others:
        detail += f", {others} on for other models (not applied now)"
    if broken:
        return Check("adapters", title, FAIL, f"{detail}. Damaged: {'; '.join(broken)}.",
                     "Delete the damaged adapter in the Adapters panel and import its zip again.")
    return Check("adapters", title, OK, detail + ".")

"""Import an adapter zip: check it, convert it for the model it fits, probe it, store it.

Every step happens in a staging folder; the adapters folder changes only at the very end
(one rename), so a refused or cancelled import leaves it exactly as it was.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from app.core.adapters.bundle import open_bundle
from app.core.adapters.convert import check_fits, convert
from app.core.adapters.errors import AdapterError
from app.core.adapters.manifest import ModelShape, check_peft_config, parse_manifest
from app.core.adapters.probe import probe_adapter
from app.core.adapters.store import VALIDATION, AdapterStore, StoredAdapter
from app.core.atomic import describe_os_error
from app.core.models.embedded import StarterModelMissing, starter_model
from app.core.models.gguf_info import GGUFError, GGUFInfo, read_gguf_info
from app.core.models.registry import ModelRegistry


@dataclass
class ImportProgress:
    stage: str       # "Checking", "Converting", "Test-loading", "Done" (and "Evaluating": verdict.py)
    done: int = 0
    total: int = 0


@dataclass(frozen=True)
class ModelChoice:
    """A model file an adapter could be for; the first one is the loaded model."""

    name: str
    path: Path


def candidate_models(loaded: ModelChoice | None, models_dir: Path) -> list[ModelChoice]:
    """The loaded model first, then every other installed model an adapter might be for."""
    out = [loaded] if loaded is not None else []
    out += [ModelChoice(m.name, m.file) for m in ModelRegistry(models_dir).list()]
    try:
        out.append(ModelChoice("the starter model", starter_model().path))
    except StarterModelMissing:
        pass
    seen: set[str] = set()
    unique = []
    for c in out:
        key = str(Path(c.path).resolve())
        if key not in seen:
            seen.add(key)
            unique.append(c)
    return unique


def import_adapter(zip_path: Path, store: AdapterStore, models: list[ModelChoice], *,
                   cancelled: Callable[[], bool] = lambda: False,
                   progress: Callable[[ImportProgress], None] = lambda p: None,
                   probe: bool = True) -> StoredAdapter:
    if not models:
        raise AdapterError("Load a model first: an adapter is imported for a model.")
    zip_path = Path(zip_path)
    try:
        staging = store.staging()
    except OSError as e:
        raise AdapterError(f"The adapter could not be imported: {describe_os_error(e)} in {store.dir}. "
                           "Nothing was changed.") from None
    try:
        progress(ImportProgress("Checking"))
        bundle = open_bundle(zip_path, staging / "zip", cancelled)
        manifest = parse_manifest(bundle.manifest)
        check_peft_config(bundle.config, manifest)
        choice, info = _pick_model(manifest, models)
        out = staging / "adapter"
        result = convert(bundle.weights, manifest, info, out / "adapter.gguf", cancelled,
                         lambda i, n: progress(ImportProgress("Converting", i, n)))
        if cancelled():
            raise AdapterError("Import cancelled.")
        if probe:
            progress(ImportProgress("Test-loading"))
            probe_adapter(choice.path, result.path)
        shutil.copyfile(bundle.weights.parent / "manifest.json", out / "manifest.json")
        if bundle.validation is not None:  # kept for the verdict (evaluated by the caller's engine)
            shutil.copyfile(bundle.validation, out / VALIDATION)
        shape = ModelShape.from_gguf(info)
        stem = re.sub(r"-?lora$", "", zip_path.stem, flags=re.I) or "adapter"
        adapter = StoredAdapter(
            id=stem, name=stem, base_model=manifest.base_model, model_key=shape.key,
            model_label=f"{shape.architecture}, {shape.describe()}", rank=manifest.rank, alpha=manifest.alpha,
            target_modules=manifest.target_modules, created=manifest.created, summary=manifest.summary(),
            eval_loss_before=manifest.eval_loss_before, eval_loss_after=manifest.eval_loss_after,
            size=result.size)
        stored = store.add(out, adapter)
        progress(ImportProgress("Done", 1, 1))
        return stored
    except OSError as e:
        if e.errno == 28:
            raise AdapterError("The disk is full: the adapter was not imported.") from None
        raise AdapterError(f"The adapter could not be imported: {describe_os_error(e)} "
                           f"({e.filename or store.dir}). Nothing was changed.") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _pick_model(manifest, models: list[ModelChoice]) -> tuple[ModelChoice, GGUFInfo]:
    """The loaded model if the adapter fits it, else the first installed model it fits."""
    first_error: AdapterError | None = None
    for i, choice in enumerate(models):
        try:
            info = read_gguf_info(choice.path)
        except GGUFError:
            continue
        try:
            check_fits(manifest, info, "the loaded model" if i == 0 else choice.name)
            return choice, info
        except AdapterError as e:
            first_error = first_error or e
    raise first_error or AdapterError("None of the installed models can be read to check the adapter against.")


"""Package a trained adapter as ``<name>-lora.zip`` for the desktop app's importer.

Pasted verbatim into the Colab notebook, so it uses only the standard library (plus the peft model
it is given) and nothing from the rest of ``training``. The zip format is a contract with
``app/core/adapters`` and is described in training/README.md: three files at the top level,
``adapter_model.safetensors`` and ``adapter_config.json`` as peft writes them, and ``manifest.json``,
plus ``validation.jsonl`` (the validation split, so the app can measure the adapter on it) when
there is one.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

NOTEBOOK_VERSION = "1.0"
MANIFEST_FORMAT = "offline-coder-lora"
MANIFEST_FORMAT_VERSION = 1
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
MANIFEST = "manifest.json"
ZIP_MEMBERS = (ADAPTER_WEIGHTS, ADAPTER_CONFIG, MANIFEST)
VALIDATION = "validation.jsonl"  # optional: the eval rows, for the app's verdict on the adapter
MAX_VALIDATION_ROWS = 200
MAX_VALIDATION_BYTES = 2 * 1024 * 1024
MANIFEST_KEYS = (
    "format", "format_version", "base_model", "base_revision", "architecture",
    "hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size", "vocab_size",
    "rank", "alpha", "use_rslora", "dropout", "target_modules", "data",
    "eval_loss_before", "eval_loss_after", "train_steps", "created", "notebook_version",
)


def _finite(value: Any) -> float | None:
    """A loss as a JSON number, or None when missing or not finite (JSON has no NaN)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _lora_config(model: Any) -> Any:
    """The active adapter's LoraConfig: the manifest repeats what adapter_config.json says, so it
    is read from the same object peft serialises rather than from the training config."""
    configs = getattr(model, "peft_config", None)
    if not configs:
        raise TypeError("expected a peft model (from add_lora), got a model without a LoRA adapter")
    name = getattr(model, "active_adapter", None)
    if not isinstance(name, str) or name not in configs:
        name = next(iter(configs))
    return configs[name]


def build_manifest(model: Any, cfg: Any, result: Any, data_summary: dict) -> dict:
    """The manifest for a trained peft ``model``: base model and its shape (from model.config, so
    the importer can check the adapter fits the GGUF it is paired with), the LoRA settings, the
    data summary and the eval losses. ``result`` may be None for an untrained adapter."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = base.config
    lora = _lora_config(model)
    heads = int(config.num_attention_heads)
    kv_heads = getattr(config, "num_key_value_heads", None)
    return {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_FORMAT_VERSION,
        "base_model": cfg.base_model,
        "base_revision": cfg.revision,
        "architecture": config.model_type,
        "hidden_size": int(config.hidden_size),
        "num_layers": int(config.num_hidden_layers),
        "num_heads": heads,
        "num_kv_heads": int(kv_heads) if kv_heads is not None else heads,
        "intermediate_size": int(config.intermediate_size),
        "vocab_size": int(config.vocab_size),
        "rank": int(lora.r),
        "alpha": lora.lora_alpha,
        "use_rslora": bool(lora.use_rslora),
        "dropout": float(lora.lora_dropout),
        "target_modules": sorted(lora.target_modules),
        "data": data_summary,
        "eval_loss_before": _finite(getattr(result, "eval_loss_before", None)),
        "eval_loss_after": _finite(getattr(result, "eval_loss_after", None)),
        "train_steps": int(getattr(result, "steps", 0)),
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "notebook_version": NOTEBOOK_VERSION,
    }


def validation_jsonl(rows: list[dict]) -> str:
    """The validation rows as JSON Lines of ``{"messages": [...]}``: the first
    ``MAX_VALIDATION_ROWS`` that fit ``MAX_VALIDATION_BYTES`` (the app's import caps)."""
    lines: list[str] = []
    size = 0
    for row in rows[:MAX_VALIDATION_ROWS]:
        line = json.dumps({"messages": row["messages"]}, ensure_ascii=False) + "\n"
        n = len(line.encode("utf-8"))
        if size + n > MAX_VALIDATION_BYTES:
            continue
        lines.append(line)
        size += n
    return "".join(lines)


def export_zip(model: Any, manifest: dict, out_path: str | Path, validation: list[dict] | None = None) -> Path:
    """Write the adapter zip and return its path.

    The adapter is saved with peft's ``save_pretrained`` (safetensors) into a scratch folder; the
    zip is written next to ``out_path`` under a temporary name and renamed over it only once
    complete, so an interrupted export never leaves a half zip that looks finished. ``validation``
    (the eval rows) adds ``validation.jsonl``, which the app evaluates the adapter on."""
    missing = [k for k in MANIFEST_KEYS if k not in manifest]
    if missing:
        raise ValueError(f"manifest lacks {', '.join(missing)}")
    manifest_text = json.dumps(manifest, indent=2, allow_nan=False) + "\n"
    validation_text = validation_jsonl(validation) if validation else ""

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        model.save_pretrained(scratch, safe_serialization=True)
        saved = Path(scratch)
        for name in (ADAPTER_WEIGHTS, ADAPTER_CONFIG):
            if not (saved / name).is_file():
                raise RuntimeError(f"peft's save_pretrained wrote no {name} (found: "
                                   f"{', '.join(sorted(p.name for p in saved.iterdir()))})")
        fd, part = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".part", dir=out_path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as z:
                    z.write(saved / ADAPTER_WEIGHTS, ADAPTER_WEIGHTS)
                    z.write(saved / ADAPTER_CONFIG, ADAPTER_CONFIG)
                    z.writestr(MANIFEST, manifest_text)
                    if validation_text:
                        z.writestr(VALIDATION, validation_text)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(part, 0o644)  # mkstemp's 0600 would make a shared download unreadable to others
            os.replace(part, out_path)
        except BaseException:
            Path(part).unlink(missing_ok=True)
            raise
    return out_path

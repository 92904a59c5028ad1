"""PEFT LoRA (safetensors) → GGUF LoRA adapter, in numpy; no torch.

What llama.cpp expects of an adapter file (read in llama.cpp's convert_lora_to_gguf.py and
llama-adapter.cpp, checked here against the real library):
- ``general.architecture`` equal to the model's, ``general.type = adapter``,
  ``adapter.type = lora`` and ``adapter.lora.alpha``; llama.cpp scales each pair by
  alpha / rank (rank read from the tensor), times the user's scale. rsLoRA scales by
  alpha / √rank, so its stored alpha is alpha·√rank.
- one pair per projection named like the base weight plus ``.lora_a`` / ``.lora_b``
  (``blk.3.attn_q.weight.lora_a``), names mapped with ``gguf.get_tensor_name_map``.
- A keeps PEFT's (rank, in) shape and B its (out, rank): GGUF stores dimensions reversed,
  so A's ne is (in, rank), which is how llama.cpp multiplies.
- for the llama architecture llama.cpp's converter permutes the rows of the q and k
  weights for its rope layout (by n_head and n_head_kv); transformers undoes that when it
  loads a GGUF, so an adapter trained on such a model needs the same permutation on the
  rows of its q and k B matrices. qwen2 keeps the Hugging Face layout.
Every tensor is checked against the target model's own tensor shapes before anything is
written, and the file appears under its final name only when complete.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from app.core.adapters.errors import AdapterError
from app.core.adapters.manifest import AdapterManifest, ModelShape
from app.core.adapters.safetensors_file import load_tensor, read_header
from app.core.models.gguf_info import GGUFInfo

_KEY = re.compile(r"^base_model\.model\.(?P<module>(?:.+\.)?layers\.(?P<layer>\d+)\."
                  r"(?:self_attn|mlp)\.(?P<proj>[a-z]+_proj))\.lora_(?P<ab>[AB])\.weight$")
_ROPE_PERMUTED = {"llama": {"q_proj": "heads", "k_proj": "kv_heads"}}


@dataclass
class ConvertResult:
    path: Path
    pairs: int
    size: int
    alpha: float  # as stored in the GGUF file


@dataclass
class _Pair:
    module: str
    layer: int
    proj: str
    gguf_name: str
    a: str = ""
    b: str = ""


def check_fits(manifest: AdapterManifest, target: GGUFInfo, target_name: str = "the loaded model") -> None:
    """Refuse an adapter trained for another model, saying which is which."""
    have = ModelShape.from_gguf(target)
    want = manifest.shape
    if want.architecture != have.architecture:
        raise AdapterError(f"This adapter was trained for a {want.architecture} model ({manifest.base_model}); "
                           f"{target_name} is a {have.architecture} model.")
    if want.differs(have):
        if (want.layers, want.hidden) != (have.layers, have.hidden):
            theirs, ours = want.describe(), have.describe()
        else:
            theirs = f"{want.heads} attention heads and {want.kv_heads} KV heads (FFN {want.ffn})"
            ours = f"{have.heads} attention heads and {have.kv_heads} KV heads (FFN {have.ffn})"
        raise AdapterError(f"This adapter was trained for a model with {theirs} ({manifest.base_model}); "
                           f"{target_name} has {ours}.")


def plan_pairs(weights: Path, manifest: AdapterManifest, target: GGUFInfo) -> tuple[dict, list[_Pair]]:
    """Read the safetensors header and match every tensor to a weight of the target model."""
    import gguf  # deferred: imports ~0.1 s of tables

    check_fits(manifest, target)
    entries = read_header(weights)
    if not entries:
        raise AdapterError("adapter_model.safetensors holds no tensors.")
    arch = next((k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == target.architecture), None)
    if arch is None:
        raise AdapterError(f"llama.cpp's tables do not know the {target.architecture} architecture.")
    names = gguf.get_tensor_name_map(arch, manifest.shape.layers)
    base = {t.name: t.shape for t in target.tensors}
    pairs: dict[str, _Pair] = {}
    for key, entry in entries.items():
        m = _KEY.match(key)
        if not m:
            raise AdapterError(f"adapter_model.safetensors holds {key}, which is not a LoRA matrix of a "
                               "projection; only q/k/v/o/gate/up/down LoRA matrices can be applied.")
        module, layer, proj = m["module"], int(m["layer"]), m["proj"]
        if proj not in manifest.target_modules:
            raise AdapterError(f"adapter_model.safetensors holds {key}, but the manifest does not list {proj}.")
        if layer >= manifest.shape.layers:
            raise AdapterError(f"adapter_model.safetensors holds layer {layer}; the model has {manifest.shape.layers}.")
        gname = names.get_name(module)
        if gname is None or f"{gname}.weight" not in base:
            raise AdapterError(f"{module} has no counterpart in the target model ({gname or 'unknown'}).")
        pair = pairs.setdefault(module, _Pair(module, layer, proj, gname))
        if len(entry.shape) != 2:
            raise AdapterError(f"{key} has shape {entry.shape}; LoRA matrices are two-dimensional.")
        setattr(pair, "a" if m["ab"] == "A" else "b", key)
    found = set()
    for pair in pairs.values():
        if not pair.a or not pair.b:
            raise AdapterError(f"{pair.module} has only one of its two LoRA matrices (A and B).")
        (ra, n_in), (n_out, rb) = entries[pair.a].shape, entries[pair.b].shape
        w_in, w_out = base[f"{pair.gguf_name}.weight"][:2]
        if ra != manifest.rank or rb != manifest.rank:
            raise AdapterError(f"{pair.module} has rank {ra}/{rb}; the manifest says {manifest.rank}.")
        if (n_in, n_out) != (w_in, w_out):
            raise AdapterError(f"{pair.module} maps {n_in} → {n_out} values but the model's {pair.gguf_name} maps "
                               f"{w_in} → {w_out}; the adapter was trained for a different model.")
        found.add(pair.proj)
    missing = sorted(set(manifest.target_modules) - found)
    if missing:
        raise AdapterError(f"The manifest lists {', '.join(missing)} but the weights hold none for it.")
    return entries, sorted(pairs.values(), key=lambda p: (p.layer, p.proj))


def _rope_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """Rows reordered the way llama.cpp's converter reorders a llama q/k weight."""
    rows = w.shape[0]
    return (w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:])
             .swapaxes(1, 2).reshape(w.shape))


def convert(weights: Path, manifest: AdapterManifest, target: GGUFInfo, out: Path,
            cancelled: Callable[[], bool] = lambda: False,
            progress: Callable[[int, int], None] | None = None) -> ConvertResult:
    import gguf

    entries, pairs = plan_pairs(weights, manifest, target)
    alpha = manifest.alpha * math.sqrt(manifest.rank) if manifest.use_rslora else manifest.alpha
    permuted = _ROPE_PERMUTED.get(target.architecture, {})
    part = out.with_name(out.name + ".part")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        writer = gguf.GGUFWriter(str(part), target.architecture)
        writer.add_string("general.type", "adapter")
        writer.add_string("general.name", f"{manifest.base_model} LoRA")
        writer.add_string("adapter.type", "lora")
        writer.add_float32("adapter.lora.alpha", float(alpha))
        for i, pair in enumerate(pairs):
            if cancelled():
                raise AdapterError("Import cancelled.")
            a = load_tensor(weights, entries, pair.a)
            b = load_tensor(weights, entries, pair.b)
            if pair.proj in permuted:
                b = _rope_permute(b, getattr(manifest.shape, permuted[pair.proj]))
            writer.add_tensor(f"{pair.gguf_name}.weight.lora_a", np.ascontiguousarray(a))
            writer.add_tensor(f"{pair.gguf_name}.weight.lora_b", np.ascontiguousarray(b))
            if progress:
                progress(i + 1, len(pairs))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        with open(part, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(part, out)
    except OSError as e:
        part.unlink(missing_ok=True)
        if e.errno == 28:
            raise AdapterError("The disk is full: there is no room for the converted adapter. "
                               "Free some space and import again.") from None
        raise AdapterError(f"Cannot write the converted adapter ({e}).") from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return ConvertResult(out, len(pairs), out.stat().st_size, float(alpha))

"""Build adapter zips in the notebook's format, with numpy, for the importer's tests.

The same bytes PEFT's save_pretrained writes (a safetensors file of lora_A/lora_B matrices
named after the Hugging Face modules) plus the two JSON documents; each part can be
overridden or broken on purpose. The real notebook's output is tested in test_training_e2e.
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import numpy as np

# The starter model (SmolLM2-135M): llama, 30 layers, hidden 576, 9 heads, 3 KV heads.
STARTER = dict(architecture="llama", hidden_size=576, num_layers=30, num_heads=9, num_kv_heads=3,
               intermediate_size=1536, vocab_size=49152)
MODULES = {"q_proj": ("self_attn", "hidden", "hidden"), "k_proj": ("self_attn", "hidden", "kv"),
           "v_proj": ("self_attn", "hidden", "kv"), "o_proj": ("self_attn", "hidden", "hidden"),
           "gate_proj": ("mlp", "hidden", "ffn"), "up_proj": ("mlp", "hidden", "ffn"),
           "down_proj": ("mlp", "ffn", "hidden")}


def safetensors_bytes(tensors: dict[str, np.ndarray], dtype: str = "F32") -> bytes:
    header, data, off = {}, [], 0
    for name, a in tensors.items():
        b = a.astype("<f4" if dtype == "F32" else "<f2").tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        data.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + b"".join(data)


def lora_tensors(shape: dict = STARTER, rank: int = 8, targets=tuple(MODULES), b_scale: float = 0.0,
                 seed: int = 0, layers: int | None = None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    dims = {"hidden": shape["hidden_size"], "ffn": shape["intermediate_size"],
            "kv": shape["hidden_size"] // shape["num_heads"] * shape["num_kv_heads"]}
    out = {}
    for layer in range(layers if layers is not None else shape["num_layers"]):
        for proj in targets:
            part, n_in, n_out = MODULES[proj]
            key = f"base_model.model.model.layers.{layer}.{part}.{proj}"
            out[f"{key}.lora_A.weight"] = rng.normal(0, 0.02, (rank, dims[n_in])).astype(np.float32)
            out[f"{key}.lora_B.weight"] = (rng.normal(0, b_scale, (dims[n_out], rank)).astype(np.float32)
                                           if b_scale else np.zeros((dims[n_out], rank), np.float32))
    return out


def manifest(rank: int = 8, alpha: float = 16, targets=tuple(MODULES), **over) -> dict:
    m = {"format": "offline-coder-lora", "format_version": 1,
         "base_model": "HuggingFaceTB/SmolLM2-135M-Instruct", "base_revision": "main", **STARTER,
         "rank": rank, "alpha": alpha, "use_rslora": False, "dropout": 0.05, "target_modules": sorted(targets),
         "data": {"train_examples": 9, "eval_examples": 1}, "eval_loss_before": 2.5, "eval_loss_after": 0.4,
         "train_steps": 30, "created": "2026-11-23T10:00:00Z", "notebook_version": "1.0"}
    m.update(over)
    return m


def peft_config(rank: int = 8, alpha: float = 16, targets=tuple(MODULES), **over) -> dict:
    c = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": alpha,
         "lora_dropout": 0.05, "target_modules": list(targets), "bias": "none", "use_rslora": False,
         "use_dora": False, "fan_in_fan_out": False, "modules_to_save": None,
         "base_model_name_or_path": "/content/drive/somebody-else/model"}
    c.update(over)
    return c


def write_zip(path: Path, members: dict[str, bytes | str], compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def adapter_members(b_scale: float = 0.0, seed: int = 0, **kw) -> dict[str, bytes | str]:
    rank = kw.pop("rank", 8)
    return {"adapter_model.safetensors": safetensors_bytes(lora_tensors(rank=rank, b_scale=b_scale, seed=seed)),
            "adapter_config.json": json.dumps(peft_config(rank=rank)),
            "manifest.json": json.dumps(manifest(rank=rank, **kw))}


def make_adapter_zip(path: Path, b_scale: float = 0.0, seed: int = 0, **kw) -> Path:
    return write_zip(path, adapter_members(b_scale, seed, **kw))


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: 'unchanged' means this is equal."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

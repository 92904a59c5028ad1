"""A strict reader for safetensors files, in numpy only.

The format is an 8-byte little-endian header length, a JSON header mapping tensor names to
dtype, shape and byte range, then the data. Every claim the header makes is checked against
the file before any tensor is read, so a file whose header lies (ranges past the end,
overlapping tensors, sizes that do not match the shape) is refused with the reason instead
of reading garbage. Our own reader rather than the ``safetensors`` package: it needs the
same checks anyway, and numpy has no bfloat16 (PEFT often saves in it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.core.adapters.errors import AdapterError
from app.core import safe_json

MAX_HEADER = 100 * 1024**2
_ITEMSIZE = {"F32": 4, "F16": 2, "BF16": 2}


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int   # byte offsets into the data section
    end: int


def read_header(path: Path) -> dict[str, TensorEntry]:
    label = "adapter_model.safetensors"
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise AdapterError(f"{label} is empty or cut short.")
        n = int.from_bytes(head, "little")
        if n > min(MAX_HEADER, size - 8):
            raise AdapterError(f"{label} is damaged: its header claims {n} bytes but the file has {size - 8}.")
        raw = f.read(n)
    try:
        header = safe_json.loads(raw, max_bytes=MAX_HEADER)
    except (UnicodeDecodeError, ValueError):
        raise AdapterError(f"{label} is damaged: its header is not valid JSON.") from None
    if not isinstance(header, dict):
        raise AdapterError(f"{label} is damaged: its header is not a JSON object.")
    data_size = size - 8 - n
    entries: dict[str, TensorEntry] = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        entries[name] = _entry(name, spec, data_size, label)
    spans = sorted((e.begin, e.end, e.name) for e in entries.values())
    for (b1, e1, n1), (b2, _e2, n2) in zip(spans, spans[1:]):
        if b2 < e1:
            raise AdapterError(f"{label} is damaged: tensors {n1} and {n2} overlap.")
    return entries


def _entry(name: str, spec, data_size: int, label: str) -> TensorEntry:
    if not isinstance(spec, dict):
        raise AdapterError(f"{label} is damaged: the entry for {name} is not an object.")
    dtype, shape, offsets = spec.get("dtype"), spec.get("shape"), spec.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in _ITEMSIZE:  # a list or dict is not hashable
        raise AdapterError(f"{label}: tensor {name} has type {dtype!r}; adapters must be F32, F16 or BF16.")
    if (not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise AdapterError(f"{label} is damaged: tensor {name} has an invalid shape {shape!r}.")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
        raise AdapterError(f"{label} is damaged: tensor {name} has invalid data offsets.")
    begin, end = offsets
    want = math.prod(shape) * _ITEMSIZE[dtype]
    if not 0 <= begin <= end <= data_size:
        raise AdapterError(f"{label} is damaged: tensor {name} lies outside the file (bytes {begin}-{end} of {data_size}).")
    if end - begin != want:
        raise AdapterError(f"{label} is damaged: tensor {name} has shape {tuple(shape)} ({want} bytes as {dtype}) "
                           f"but {end - begin} bytes of data.")
    return TensorEntry(name, dtype, tuple(shape), begin, end)


def load_tensor(path: Path, entries: dict[str, TensorEntry], name: str) -> np.ndarray:
    """One tensor as float32 (bfloat16 widened bit-exactly)."""
    e = entries[name]
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        f.seek(8 + n + e.begin)
        raw = f.read(e.end - e.begin)
    if len(raw) != e.end - e.begin:
        raise AdapterError(f"adapter_model.safetensors is cut short inside tensor {name}.")
    if e.dtype == "F32":
        arr = np.frombuffer(raw, dtype="<f4")
    elif e.dtype == "F16":
        arr = np.frombuffer(raw, dtype="<f2").astype(np.float32)
    else:
        arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    arr = arr.astype(np.float32, copy=False).reshape(e.shape)
    if not np.isfinite(arr).all():
        raise AdapterError(f"adapter_model.safetensors: tensor {name} holds NaN or infinite values; "
                           "the training diverged. Train again with a lower learning rate.")
    return arr

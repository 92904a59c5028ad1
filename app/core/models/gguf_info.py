"""Read and check a GGUF file's header without loading the model.

llama.cpp's own messages for a bad file are terse and go to stderr; some broken files it
accepts and then crashes on. Reading the header here first lets the app say *which* file
is wrong and *why* (not a GGUF at all, truncated download, unsupported version) before the
native loader ever sees it. It also gives the metadata other parts need (architecture,
chat template, context length, layer and head counts for the memory estimate).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from app.core.errors import UserError

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32

# GGUF metadata value types.
_UINT8, _INT8, _UINT16, _INT16, _UINT32, _INT32, _FLOAT32, _BOOL, _STRING, _ARRAY, _UINT64, _INT64, _FLOAT64 = range(13)
_SCALAR_FORMATS = {
    _UINT8: "<B", _INT8: "<b", _UINT16: "<H", _INT16: "<h", _UINT32: "<I", _INT32: "<i",
    _FLOAT32: "<f", _BOOL: "<?", _UINT64: "<Q", _INT64: "<q", _FLOAT64: "<d",
}

# ggml tensor type -> (elements per block, bytes per block). From ggml's type traits.
GGML_TYPE_SIZES: dict[int, tuple[int, int]] = {
    0: (1, 4),      # F32
    1: (1, 2),      # F16
    2: (32, 18),    # Q4_0
    3: (32, 20),    # Q4_1
    6: (32, 22),    # Q5_0
    7: (32, 24),    # Q5_1
    8: (32, 34),    # Q8_0
    9: (32, 36),    # Q8_1
    10: (256, 84),  # Q2_K
    11: (256, 110), # Q3_K
    12: (256, 144), # Q4_K
    13: (256, 176), # Q5_K
    14: (256, 210), # Q6_K
    15: (256, 292), # Q8_K
    16: (256, 66),  # IQ2_XXS
    17: (256, 74),  # IQ2_XS
    18: (256, 98),  # IQ3_XXS
    19: (256, 50),  # IQ1_S
    20: (32, 18),   # IQ4_NL
    21: (256, 110), # IQ3_S
    22: (256, 82),  # IQ2_S
    23: (256, 136), # IQ4_XS
    24: (1, 1),     # I8
    25: (1, 2),     # I16
    26: (1, 4),     # I32
    27: (1, 8),     # I64
    28: (1, 8),     # F64
    29: (256, 56),  # IQ1_M
    30: (1, 2),     # BF16
    34: (256, 54),  # TQ1_0
    35: (256, 66),  # TQ2_0
    39: (32, 17),   # MXFP4
}

# Arrays longer than this are skipped over, not kept (the tokenizer's vocabulary is ~50k-150k
# strings and nobody here needs it).
_KEEP_ARRAY_MAX = 64
_MAX_ARRAY_DEPTH = 16


class GGUFError(UserError, ValueError):
    """The file is not a usable GGUF model. The message names the file and says why."""

    def __init__(self, path: Path | str, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"Cannot use model file {self.path}: {reason}")


@dataclass
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int

    @property
    def n_bytes(self) -> int:
        block, size = GGML_TYPE_SIZES[self.ggml_type]
        n = 1
        for d in self.shape:
            n *= d
        return (n // block) * size


@dataclass
class GGUFInfo:
    path: Path
    version: int
    file_size: int
    metadata: dict[str, Any]
    tensors: list[TensorInfo] = field(default_factory=list)
    data_offset: int = 0

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    @property
    def name(self) -> str:
        return str(self.metadata.get("general.name", self.path.stem))

    @property
    def chat_template(self) -> str | None:
        t = self.metadata.get("tokenizer.chat_template")
        return t if isinstance(t, str) else None

    def arch_value(self, key: str, default: Any = None) -> Any:
        """A per-architecture key such as ``context_length`` or ``block_count``."""
        return self.metadata.get(f"{self.architecture}.{key}", default)

    @property
    def context_length(self) -> int | None:
        v = self.arch_value("context_length")  # any type in a damaged file: only a number counts
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or abs(v) == float("inf"):
            return None
        return int(v)


def read_gguf_info(path: Path | str) -> GGUFInfo:
    """Parse the header and check that every tensor's data lies inside the file.

    Raises GGUFError with a message a user can act on for: a missing file, a directory, a
    file that is not GGUF, an unsupported version, a header cut short, and a file whose
    tensor data is cut short (an interrupted download).
    """
    p = Path(path)
    if not p.exists():
        raise GGUFError(p, "the file does not exist.")
    if not p.is_file():
        raise GGUFError(p, "it is not a file.")
    size = p.stat().st_size
    if size < 24:
        raise GGUFError(p, f"it is only {size} bytes long; a GGUF model is at least megabytes. "
                           "Download or copy it again.")
    try:
        with open(p, "rb") as f:
            return _parse(p, f, size)
    except GGUFError:
        raise
    except (struct.error, EOFError):
        raise GGUFError(p, "its header is cut short: the file is truncated. Download or copy it again.") from None
    except UnicodeDecodeError:
        raise GGUFError(p, "its header holds text that is not UTF-8: the file is corrupt.") from None
    except MemoryError:
        raise GGUFError(p, "its header claims impossible sizes: the file is corrupt.") from None
    except OSError as e:
        raise GGUFError(p, f"it cannot be read ({e.strerror or e}).") from None


class _Reader:
    def __init__(self, f: BinaryIO, size: int):
        self.f = f
        self.size = size

    def read(self, n: int) -> bytes:
        if n < 0 or self.f.tell() + n > self.size:
            raise EOFError
        b = self.f.read(n)
        if len(b) != n:
            raise EOFError
        return b

    def unpack(self, fmt: str):
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.unpack("<Q")
        return self.read(n).decode("utf-8")

    def skip(self, n: int) -> None:
        if n < 0 or self.f.tell() + n > self.size:
            raise EOFError
        self.f.seek(n, os.SEEK_CUR)

    def value(self, vtype: int, depth: int = 0) -> Any:
        if vtype in _SCALAR_FORMATS:
            return self.unpack(_SCALAR_FORMATS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            _check_depth(depth)
            etype = self.unpack("<I")
            count = self.unpack("<Q")
            if count > _KEEP_ARRAY_MAX:
                self.skip_array(etype, count, depth + 1)
                return _SkippedArray(etype, count)
            return [self.value(etype, depth + 1) for _ in range(count)]
        raise ValueError(f"unknown metadata value type {vtype}")

    def skip_array(self, etype: int, count: int, depth: int = 0) -> None:
        if etype in _SCALAR_FORMATS:
            self.skip(struct.calcsize(_SCALAR_FORMATS[etype]) * count)
        elif etype == _STRING:
            for _ in range(count):
                self.skip(self.unpack("<Q"))
        elif etype == _ARRAY:
            _check_depth(depth)
            for _ in range(count):
                inner = self.unpack("<I")
                self.skip_array(inner, self.unpack("<Q"), depth + 1)
        else:
            raise ValueError(f"unknown metadata array type {etype}")


def _check_depth(depth: int) -> None:
    """Real files nest arrays one deep; thousands of levels would exhaust Python's stack
    (a RecursionError, not a message)."""
    if depth >= _MAX_ARRAY_DEPTH:
        raise ValueError(f"arrays nested more than {_MAX_ARRAY_DEPTH} deep")


@dataclass(frozen=True)
class _SkippedArray:
    """Stands for a long array (such as the vocabulary) whose items were not read."""

    element_type: int
    count: int

    def __len__(self) -> int:
        return self.count


def _parse(p: Path, f: BinaryIO, size: int) -> GGUFInfo:
    r = _Reader(f, size)
    magic = r.read(4)
    if magic != GGUF_MAGIC:
        f.seek(0)
        shown = f.read(12).decode("latin-1").encode("unicode_escape").decode("ascii")
        raise GGUFError(p, f"it is not a GGUF model file (it starts with '{shown}', a GGUF file "
                           "starts with 'GGUF'). Choose a .gguf file made for llama.cpp.")
    version = r.unpack("<I")
    if version not in SUPPORTED_VERSIONS:
        raise GGUFError(p, f"it is GGUF version {version}; this app reads versions "
                           f"{', '.join(map(str, SUPPORTED_VERSIONS))}.")
    n_tensors = r.unpack("<Q")
    n_kv = r.unpack("<Q")
    # Each entry takes at least a dozen bytes: counts larger than the file are corruption,
    # and checking here keeps a corrupt header from making us loop for hours.
    if n_tensors > size // 8 or n_kv > size // 8:
        raise GGUFError(p, "its header claims more entries than the file could hold: the file is corrupt.")
    try:
        metadata: dict[str, Any] = {}
        for _ in range(n_kv):
            key = r.string()
            metadata[key] = r.value(r.unpack("<I"))
        tensors: list[TensorInfo] = []
        for _ in range(n_tensors):
            name = r.string()
            n_dims = r.unpack("<I")
            if n_dims > 8:
                raise GGUFError(p, f"tensor '{name}' claims {n_dims} dimensions: the file is corrupt.")
            shape = tuple(r.unpack("<Q") for _ in range(n_dims))
            ggml_type = r.unpack("<I")
            offset = r.unpack("<Q")
            tensors.append(TensorInfo(name, shape, ggml_type, offset))
    except ValueError as e:
        if isinstance(e, GGUFError):
            raise
        raise GGUFError(p, f"its metadata is corrupt ({e}).") from None
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0:
        alignment = DEFAULT_ALIGNMENT
    header_end = f.tell()
    data_offset = (header_end + alignment - 1) // alignment * alignment

    needed = data_offset
    for t in tensors:
        if t.ggml_type not in GGML_TYPE_SIZES:
            raise GGUFError(p, f"tensor '{t.name}' uses tensor type {t.ggml_type}, which this "
                               "app does not know; the file may need a newer llama.cpp.")
        needed = max(needed, data_offset + t.offset + t.n_bytes)
    if needed > size:
        raise GGUFError(p, f"it is truncated: it is {size:,} bytes but its tensors need {needed:,} bytes "
                           "(an interrupted download?). Download or copy it again.")
    return GGUFInfo(path=p, version=version, file_size=size, metadata=metadata,
                    tensors=tensors, data_offset=data_offset)


# llama.cpp's file types (general.file_type), for showing the quantization.
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
    23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M",
    30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4_MOE",
}


def quantization(info: GGUFInfo) -> str:
    ft = info.metadata.get("general.file_type")
    if ft is None:
        return "unknown"
    return FILE_TYPES.get(ft, f"type {ft}") if isinstance(ft, int) else f"type {ft}"  # a list is unhashable


def parameter_count(info: GGUFInfo) -> int:
    total = 0
    for t in info.tensors:
        n = 1
        for d in t.shape:
            n *= d
        total += n
    return total


def human_params(n: int) -> str:
    return f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"

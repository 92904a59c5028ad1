"""Write a small, valid GGUF file with chosen metadata and one tiny F32 tensor (for tests)."""

from __future__ import annotations

import struct
from pathlib import Path


def _str(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def write_gguf(path: Path, metadata: dict[str, str | int]) -> Path:
    kv = b""
    for k, v in metadata.items():
        if isinstance(v, str):
            kv += _str(k) + struct.pack("<I", 8) + _str(v)
        else:
            kv += _str(k) + struct.pack("<I", 4) + struct.pack("<I", v)
    tensor = _str("t") + struct.pack("<I", 1) + struct.pack("<Q", 4) + struct.pack("<I", 0) + struct.pack("<Q", 0)
    header = b"GGUF" + struct.pack("<IQQ", 3, 1, len(metadata)) + kv + tensor
    pad = (-len(header)) % 32
    path.write_bytes(header + b"\0" * pad + struct.pack("<4f", 1, 2, 3, 4))
    return path

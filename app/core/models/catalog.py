"""The models the app offers: Qwen2.5-Coder-Instruct 1.5B / 3B / 7B as 4-bit GGUF (Q4_K_M)
from the official Qwen repositories, plus the embedded starter model.

Sizes are the published file sizes, rounded up to the MB (used to check fit and disk before a
download; the download itself checks the exact size and SHA-256 the hub publishes). The
architecture numbers (layers, KV heads, head size) are the models' own config values, used for
the KV-cache estimate before the file exists; once a file is present, its GGUF metadata is
used instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.models import embedded

GB = 1_000_000_000
MB = 1_000_000


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    name: str
    params: str
    size_bytes: int
    n_layers: int
    n_kv_heads: int
    head_dim: int
    repo_id: str = ""       # hub repository ("" for the embedded model)
    filename: str = ""
    revision: str = "main"
    sha256: str = ""        # when known here; otherwise the hub's published value is used
    embedded: bool = False
    blurb: str = ""


STARTER = CatalogEntry(
    id="smollm2-135m-starter", name="SmolLM2-135M-Instruct (starter)", params="135M",
    size_bytes=embedded.SIZE, n_layers=30, n_kv_heads=3, head_dim=64,
    filename=embedded.FILE_NAME, sha256=embedded.SHA256, embedded=True,
    blurb="Ships with the app; answers instantly but is tiny and weak. For trying the app only.")

QWEN_1_5B = CatalogEntry(
    id="qwen2.5-coder-1.5b-instruct-q4_k_m", name="Qwen2.5-Coder-1.5B-Instruct", params="1.5B",
    size_bytes=1_118 * MB, n_layers=28, n_kv_heads=2, head_dim=128,
    repo_id="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF", filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    blurb="Fast on any laptop; good for completions, explanations and small edits.")

QWEN_3B = CatalogEntry(
    id="qwen2.5-coder-3b-instruct-q4_k_m", name="Qwen2.5-Coder-3B-Instruct", params="3B",
    size_bytes=2_105 * MB, n_layers=36, n_kv_heads=2, head_dim=128,
    repo_id="Qwen/Qwen2.5-Coder-3B-Instruct-GGUF", filename="qwen2.5-coder-3b-instruct-q4_k_m.gguf",
    blurb="The balance of speed and quality for 8 GB machines.")

QWEN_7B = CatalogEntry(
    id="qwen2.5-coder-7b-instruct-q4_k_m", name="Qwen2.5-Coder-7B-Instruct", params="7B",
    size_bytes=4_684 * MB, n_layers=28, n_kv_heads=4, head_dim=128,
    repo_id="Qwen/Qwen2.5-Coder-7B-Instruct-GGUF", filename="qwen2.5-coder-7b-instruct-q4_k_m.gguf",
    blurb="The strongest here; wants 16 GB of RAM and is slower on 2 cores.")

# Smallest first: the recommendation walks this list and keeps the largest that fits.
CATALOG: tuple[CatalogEntry, ...] = (STARTER, QWEN_1_5B, QWEN_3B, QWEN_7B)


def by_id(entry_id: str) -> CatalogEntry | None:
    return next((e for e in CATALOG if e.id == entry_id), None)

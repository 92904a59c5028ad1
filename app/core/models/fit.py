"""Does a model fit this computer, and which one to recommend.

memory needed = model file + KV cache at the chosen context + llama.cpp's runtime buffers + the
app itself. A model may use at most SAFE_RAM_SHARE of total RAM: the rest is for the operating
system, the editor and the browser the user has open beside us. The recommendation is the
largest catalog model that fits in RAM and on disk. README.md has the resulting table.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.hardware import Hardware
from app.core.models.catalog import CATALOG, CatalogEntry
from app.core.models.gguf_info import GGUFInfo

# Share of total RAM a model may take. 0.5 gives 4 GB -> 1.5B, 8 GB -> 3B, 16 GB -> 7B.
SAFE_RAM_SHARE = 0.5
# llama.cpp's own memory beyond weights and KV cache: compute buffers, which grow with the
# vocabulary (Qwen's 152k tokens x 512-token batch of float logits is ~310 MB), plus the
# library. Measured for the starter model: 56 MB beyond weights + KV; Qwen figure estimated.
RUNTIME_OVERHEAD = 400_000_000
# The app itself: Python, Qt, the chat view, the index (measured ~300 MB RSS with the window).
APP_OVERHEAD = 250_000_000
# Free disk to keep after a download completes.
DISK_MARGIN = 500_000_000
KV_BYTES_PER_ELEMENT = 2  # f16 K and V


def kv_cache_bytes(n_layers: int, n_kv_heads: int, head_dim: int, n_ctx: int) -> int:
    """K and V, per layer, per KV head, per position, f16."""
    return 2 * n_layers * n_kv_heads * head_dim * n_ctx * KV_BYTES_PER_ELEMENT


def kv_cache_from_gguf(info: GGUFInfo, n_ctx: int) -> int:
    """The same, from a model file's own metadata (head size = embedding / heads if not stated)."""
    layers = int(info.arch_value("block_count", 0))
    heads = int(info.arch_value("attention.head_count", 1) or 1)
    kv_heads = int(info.arch_value("attention.head_count_kv", heads) or heads)
    head_dim = info.arch_value("attention.key_length")
    if not head_dim:
        head_dim = int(info.arch_value("embedding_length", 0)) // heads
    return kv_cache_bytes(layers, kv_heads, int(head_dim), n_ctx)


def memory_needed(entry: CatalogEntry, n_ctx: int) -> int:
    kv = kv_cache_bytes(entry.n_layers, entry.n_kv_heads, entry.head_dim, n_ctx)
    return entry.size_bytes + kv + RUNTIME_OVERHEAD + APP_OVERHEAD


def gb(n: int) -> str:
    return f"{n / 1_000_000_000:.1f} GB"


@dataclass(frozen=True)
class Fit:
    entry: CatalogEntry
    needed: int
    fits_ram: bool
    fits_disk: bool
    reason: str

    @property
    def fits(self) -> bool:
        return self.fits_ram and self.fits_disk


def assess(entry: CatalogEntry, hw: Hardware, n_ctx: int, installed: bool = False) -> Fit:
    """Fit of one model, with the reason in words. Installed models need no disk."""
    need = memory_needed(entry, n_ctx)
    fits_ram = need <= hw.total_ram * SAFE_RAM_SHARE
    fits_disk = installed or entry.embedded or entry.size_bytes + DISK_MARGIN <= hw.free_disk
    if not fits_ram:
        reason = (f"too big: needs {gb(need)}, you have {gb(hw.total_ram)} "
                  f"(a model may use {int(SAFE_RAM_SHARE * 100)}% of it)")
    elif not fits_disk:
        reason = (f"no room: needs {gb(entry.size_bytes + DISK_MARGIN)} of disk, "
                  f"{gb(hw.free_disk)} free")
    else:
        reason = f"fits: needs {gb(need)} of your {gb(hw.total_ram)}"
    return Fit(entry, need, fits_ram, fits_disk, reason)


@dataclass(frozen=True)
class Recommendation:
    entry: CatalogEntry
    reason: str
    warning: str | None = None


def recommend(hw: Hardware, n_ctx: int = 4096, installed: frozenset[str] = frozenset(),
              catalog: tuple[CatalogEntry, ...] = CATALOG) -> Recommendation:
    """The largest downloadable model that fits; the starter model, with a warning, if none does."""
    best = None
    for entry in catalog:
        if entry.embedded:
            continue
        f = assess(entry, hw, n_ctx, installed=entry.id in installed)
        if f.fits:
            best = f
    if best is not None:
        return Recommendation(best.entry, f"Recommended for this computer: {best.reason}")
    starter = next(e for e in catalog if e.embedded)
    smallest = min((e for e in catalog if not e.embedded), key=lambda e: e.size_bytes)
    why = assess(smallest, hw, n_ctx, installed=smallest.id in installed).reason
    return Recommendation(starter, "Only the starter model fits this computer.",
                          warning=f"{smallest.name} is {why}. The starter model's answers are weak.")

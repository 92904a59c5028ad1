"""Does a model fit this computer, and which one to recommend.

memory needed = model file + KV cache at the chosen context + llama.cpp's runtime buffers (a
fixed part plus a share of the file, measured on speed twins of the catalog models) + the app
itself. A model may use at most SAFE_RAM_SHARE of total RAM: the rest is for the operating
system, the editor and the browser the user has open beside us. The recommendation is the
largest catalog model that fits in RAM and on disk. README.md has the resulting table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.core.hardware import Hardware
from app.core.models.catalog import CATALOG, CatalogEntry
from app.core.models.gguf_info import GGUFInfo, read_gguf_info

# Share of total RAM a model may take. 0.5 gives 4 GB -> 1.5B, 8 GB -> 3B, 16 GB -> 7B.
SAFE_RAM_SHARE = 0.5
# llama.cpp's memory beyond the weights and the KV cache, as a fixed part plus a share of the
# model file: runtime_overhead(file_bytes). Measured on speed twins of the three catalog models
# (scripts/build_twins.py, bench/twins.py; bench/README.md "Speed twins"), n_ctx 4096, 2 threads:
# - llama.cpp's own buffers (compute buffer, vocabulary tables, library pages): 0.17-0.18 /
#   0.18 / 0.25-0.27 GB for 1.5B / 3B / 7B (starter 0.07-0.08 GB);
# - those buffers plus room for the kernel to keep the hot weight pages cached: under a memory
#   limit of file + KV + Python + X the twins ran at full speed (the file not read again) with
#   X = 0.33 (1.5B), 0.39 (3B), 0.42 GB (7B); the 3B thrashed at X = 0.35.
# 0.35 GB + 2.5% of the file (0.38 / 0.40 / 0.47 GB) covers all three. Peak RSS reads higher
# (file x 1.8-1.9 + KV): llama.cpp repacks most Q4_K weights into an anonymous copy for
# AVX2/AVX-512 and the mmap'd originals stay resident until the kernel needs the memory; those
# pages are never touched again, so they are not counted here.
RUNTIME_OVERHEAD = 350_000_000  # the fixed part
RUNTIME_OVERHEAD_SHARE = 0.025  # the part per byte of model file
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


def runtime_overhead(file_bytes: int) -> int:
    """llama.cpp's memory beyond weights and KV cache for a model file of this size."""
    return RUNTIME_OVERHEAD + int(RUNTIME_OVERHEAD_SHARE * file_bytes)


def memory_needed(entry: CatalogEntry, n_ctx: int) -> int:
    kv = kv_cache_bytes(entry.n_layers, entry.n_kv_heads, entry.head_dim, n_ctx)
    return entry.size_bytes + kv + runtime_overhead(entry.size_bytes) + APP_OVERHEAD


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
        if entry.embedded or not entry.for_chat:
            continue
        f = assess(entry, hw, n_ctx, installed=entry.id in installed)
        if f.fits:
            best = f
    if best is not None:
        return Recommendation(best.entry, f"Recommended for this computer: {best.reason}")
    starter = next(e for e in catalog if e.embedded)
    smallest = min((e for e in catalog if not e.embedded and e.for_chat), key=lambda e: e.size_bytes)
    why = assess(smallest, hw, n_ctx, installed=smallest.id in installed).reason
    return Recommendation(starter, "Only the starter model fits this computer.",
                          warning=f"{smallest.name} is {why}. The starter model's answers are weak.")


def file_memory_needed(path, n_ctx: int) -> int:
    """``memory_needed`` for a model file on disk (the loaded model, downloaded or imported),
    from its own metadata. GGUFError when the file cannot be read."""
    from pathlib import Path

    from app.core.models.gguf_info import read_gguf_info

    size = Path(path).stat().st_size
    return size + kv_cache_from_gguf(read_gguf_info(path), n_ctx) + runtime_overhead(size) + APP_OVERHEAD


@dataclass(frozen=True)
class PairFit:
    needed: int   # both models, and the app once
    fits: bool
    reason: str


def assess_pair(first_name: str, first_needed: int, second_name: str, second_needed: int,
                hw: Hardware) -> PairFit:
    """Two models in one process (the chat model and the local API's completion model). Each
    ``*_needed`` is ``memory_needed`` of one model alone; the app is counted once, and the two
    together must stay within the same SAFE_RAM_SHARE one model may use: the second model
    gets no memory the first was not already allowed."""
    need = first_needed + second_needed - APP_OVERHEAD
    if need <= hw.total_ram * SAFE_RAM_SHARE:
        return PairFit(need, True, f"{second_name} fits beside {first_name}: the two need {gb(need)} "
                                   f"of your {gb(hw.total_ram)}")
    return PairFit(need, False, f"{second_name} does not fit beside {first_name}: the two need {gb(need)}, "
                                f"you have {gb(hw.total_ram)} (models may use {int(SAFE_RAM_SHARE * 100)}% of it)")

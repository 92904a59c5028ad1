"""Facts about this computer: cores for the engine, RAM and disk for choosing a model."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import psutil


def physical_cores() -> int:
    """Physical cores: llama.cpp runs slower, not faster, on hyper-threads."""
    n = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    try:
        # Respect CPU affinity / container limits when they are narrower.
        n = min(n, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        pass
    return max(1, n)


@dataclass(frozen=True)
class Hardware:
    total_ram: int       # bytes
    available_ram: int   # bytes
    physical_cores: int
    free_disk: int       # bytes free where models are stored


def _existing_parent(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def probe(models_dir: Path) -> Hardware:
    """Read RAM, cores and the free disk of the models folder (or its nearest existing parent)."""
    vm = psutil.virtual_memory()
    return Hardware(total_ram=vm.total, available_ram=vm.available,
                    physical_cores=physical_cores(),
                    free_disk=shutil.disk_usage(_existing_parent(Path(models_dir))).free)

"""Facts about this computer that the engine needs (the model manager adds more)."""

from __future__ import annotations

import os

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

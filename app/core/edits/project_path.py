"""Where an edit may write: inside the project folder, never anywhere else.

The model names files; a prompt injection in a retrieved file could make it name
``../../.bashrc`` or a symlink that points out of the project. Every path the edit code
touches goes through ``resolve_in_project``, which refuses anything that is absolute, climbs
with ``..``, goes into ``.git``, or resolves (through symbolic links) outside the project.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from app.core.errors import UserError

_DRIVE = re.compile(r"^[A-Za-z]:")
FORBIDDEN_DIRS = {".git", ".hg", ".svn"}
# Folders an edit may go down. Real projects nest a dozen deep; an answer naming "a/a/a/…" 2,000
# deep made the apply create 2,000 folders that recursive tools (os.walk, rmtree, the user's own)
# then fail on (found by the long fuzz run).
MAX_PATH_DEPTH = 64


class UnsafePathError(UserError, ValueError):
    """The model asked for a path outside the project (the message names it)."""


def normalise(requested: str) -> str:
    """The model's path as a clean relative POSIX path, or UnsafePathError."""
    raw = requested
    p = requested.strip().strip("`'\"").replace("\\", "/")
    if not p:
        raise UnsafePathError("An edit named no file.")
    if "\x00" in p:
        raise UnsafePathError(f"Refused the path {raw!r}: it contains a NUL character.")
    if any("\ud800" <= c <= "\udfff" for c in p):
        raise UnsafePathError(f"Refused the path {raw!r}: it contains a broken character (a lone surrogate), "
                              "which no file name can hold.")
    if p.startswith("/") or _DRIVE.match(p):
        raise UnsafePathError(f"Refused the absolute path {raw!r}: edits may only name files inside the project.")
    while p.startswith("./"):
        p = p[2:]
    parts = [part for part in PurePosixPath(p).parts if part not in ("", ".")]
    if not parts:
        raise UnsafePathError(f"Refused the path {raw!r}: it names no file.")
    if ".." in parts:
        raise UnsafePathError(f"Refused the path {raw!r}: it leaves the project with '..'.")
    if any(part in FORBIDDEN_DIRS for part in parts):
        raise UnsafePathError(f"Refused the path {raw!r}: edits never touch version-control folders.")
    if len(parts) > MAX_PATH_DEPTH:
        shown = raw if len(raw) <= 120 else raw[:60] + "…" + raw[-40:]
        raise UnsafePathError(f"Refused the path {shown!r}: it goes {len(parts)} folders deep, more than the "
                              f"{MAX_PATH_DEPTH} an edit may create.")
    return "/".join(parts)


def resolve_in_project(root: Path, requested: str) -> tuple[str, Path]:
    """(clean relative path, absolute real path to write) for a path the model named."""
    rel = normalise(requested)
    real_root = Path(root).resolve()
    try:
        target = (real_root / rel).resolve()  # follows symlinks of the parts that exist
    except (OSError, RuntimeError) as e:  # RuntimeError: a symbolic link loop
        raise UnsafePathError(f"Refused the path {requested!r}: it cannot be resolved ({e}).") from None
    if target != real_root and real_root not in target.parents:
        raise UnsafePathError(
            f"Refused the path {requested!r}: it resolves to {target}, outside the project "
            "(through a symbolic link).")
    if target == real_root:
        raise UnsafePathError(f"Refused the path {requested!r}: it is the project folder itself.")
    return rel, target

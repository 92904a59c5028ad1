"""Write a file so that a crash or a full disk leaves the old version, never half a file."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            Path(tmp).unlink(missing_ok=True)
        except OSError:
            pass  # a read-only or failing disk: the first error is the one to report
        raise


_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the disk is read-only",
    errno.EACCES: "permission was denied",
    errno.EPERM: "permission was denied",
    errno.EIO: "the disk reported an input/output error",
}


def describe_os_error(e: OSError) -> str:
    """Why a write failed, in a few words for a message to the user."""
    return _REASONS.get(e.errno) or e.strerror or str(e)


def disk_full_at(path: Path, margin: int = 1 << 20) -> bool:
    """Whether the disk holding ``path`` (or its nearest existing folder) has under ``margin``
    bytes free: SQLite reports some full-disk failures (its shared-memory file) as I/O errors."""
    p = Path(path)
    while not p.exists() and p.parent != p:
        p = p.parent
    try:
        return shutil.disk_usage(p).free < margin
    except OSError:
        return False

"""The active model's SHA-256: what it should be, and what it is, without re-reading gigabytes
on every system check.

Reading a 4.7 GB model takes seconds to tens of seconds (disk and CPU), so a hash is kept in
``<cache>/doctor/checksums.json`` with the file's size, mtime and inode, and reused while those
are unchanged; any write to the file changes its mtime, so an edited, truncated or replaced file
is hashed again. ``full=True`` (``doctor --full``) ignores the cache (for bit rot, which changes
nothing but the bytes). The starter model is not cached here: ``embedded.starter_model()``
verifies it once per process (98 MB, 0.1 s).

What it should be, in order: the starter's published SHA-256, the one ``models.json`` records,
the catalog entry's, else the hash the first system check saw (recorded in the same file and
replaced when the model is registered again, i.e. re-downloaded or re-imported).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from app.core.atomic import atomic_write_text

FILE = "checksums.json"
CHUNK = 4 << 20


@dataclass(frozen=True)
class Reference:
    sha256: str
    source: str    # in words: where the expected value comes from


def sha256_of(path: Path, progress: Callable[[int, int], None] = lambda done, total: None,
              cancelled: Callable[[], bool] = lambda: False) -> str:
    h = hashlib.sha256()
    total, done = path.stat().st_size, 0
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            if cancelled():
                raise InterruptedError("the system check was stopped")
            h.update(block)
            done += len(block)
            progress(done, total)
    return h.hexdigest()


class ChecksumCache:
    def __init__(self, cache_dir: Path):
        self.file = Path(cache_dir) / "doctor" / FILE

    def _load(self) -> dict:
        try:
            raw = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return raw if isinstance(raw, dict) else {}

    def _save(self, data: dict) -> None:
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.file, json.dumps(data, indent=1))
        except OSError:
            pass  # a read-only cache costs a re-hash next time, nothing else

    def current(self, path: Path, full: bool = False,
                progress: Callable[[int, int], None] = lambda done, total: None,
                cancelled: Callable[[], bool] = lambda: False) -> tuple[str, bool]:
        """(SHA-256 of the file now, whether it was read just now)."""
        key = str(Path(path).resolve())
        st = path.stat()
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
        data = self._load()
        entry = data.get(key) if isinstance(data.get(key), dict) else {}
        if not full and entry.get("stamp") == stamp and entry.get("sha256"):
            return entry["sha256"], False
        sha = sha256_of(path, progress, cancelled)
        entry.update(stamp=stamp, sha256=sha)
        data[key] = entry
        self._save(data)
        return sha, True

    def baseline(self, path: Path, sha_now: str, registered_at: float | None) -> Reference:
        """The first-seen hash as the expected one (re-recorded after a new registration)."""
        key = str(Path(path).resolve())
        data = self._load()
        entry = data.get(key) if isinstance(data.get(key), dict) else {}
        first, when = entry.get("first_sha256"), entry.get("first_seen")
        if not first or not isinstance(when, (int, float)) or (registered_at and registered_at > when):
            first, when = sha_now, time.time()
            entry.update(first_sha256=first, first_seen=when)
            data[key] = entry
            self._save(data)
        day = time.strftime("%Y-%m-%d", time.localtime(when))
        return Reference(first, f"the checksum the first system check recorded on {day}")


def expected_for(path: Path, models_dir: Path) -> tuple[Reference | None, float | None]:
    """(the authoritative expected SHA-256 if any is known, when the file was registered)."""
    from app.core.models.catalog import CATALOG
    from app.core.models.registry import INDEX, ModelRegistry

    if not (Path(models_dir) / INDEX).exists():
        return None, None
    entry = ModelRegistry(models_dir).by_path(path)
    if entry is None:
        return None, None
    if entry.sha256:
        return Reference(entry.sha256.lower(), "the checksum recorded when it was installed (models.json)"), entry.added
    cat = next((c for c in CATALOG if entry.catalog_id and c.id == entry.catalog_id and c.sha256), None)
    if cat is not None:
        return Reference(cat.sha256.lower(), "the catalog's checksum"), entry.added
    return None, entry.added


def same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False

"""What the model has read for each recent conversation, kept on disk.

Why: reading a grounded prompt takes seconds to a minute on a 2-core laptop. Switching back to
a conversation, or continuing one after a restart, would read it all again; llama.cpp can save
the KV cache of what it read and load it back in a fraction of that (bench/ttft.py).

One file pair per conversation in the cache folder: ``<key>.kv`` (llama.cpp's sequence state)
and ``<key>.json`` (what it is valid for: the model file, its adapters, the context size and
the system prompt). Anything that does not match, or a file llama.cpp refuses, is deleted,
never trusted. The folder is bounded (least recently used goes first); a full disk leaves no
partial file and costs only the speed-up.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from app.core.atomic import atomic_write_text

DEFAULT_MAX_BYTES = 1_000_000_000


def fingerprint(engine, system: str) -> dict:
    """What a saved state depends on."""
    path = Path(engine.model.path).resolve()
    try:
        st = path.stat()
        stamp = [st.st_size, st.st_mtime_ns]
    except OSError:
        stamp = []
    return {"model": str(path), "model_stamp": stamp, "n_ctx": engine.n_ctx,
            "adapters": [[str(Path(p).resolve()), round(float(s), 4)] for p, s in engine.adapters],
            "system": hashlib.sha256(system.encode("utf-8")).hexdigest()}


def _touch(path: Path) -> None:
    """Mark as used now, to the nanosecond: a file's own timestamps come from the kernel's coarse
    clock (a few ms), which would tie two uses in a row and blur the least-recently-used order."""
    now = time.time_ns()
    os.utime(path, ns=(now, now))


class KvCache:
    def __init__(self, folder: Path, max_bytes: int = DEFAULT_MAX_BYTES):
        self.folder = Path(folder)
        self.max_bytes = max_bytes

    def _paths(self, key) -> tuple[Path, Path]:
        name = f"conv-{int(key)}"
        return self.folder / f"{name}.kv", self.folder / f"{name}.json"

    def forget(self, key) -> None:
        for p in self._paths(key):
            try:
                p.unlink()
            except OSError:
                pass

    def restore(self, key, engine, system: str) -> int:
        """Load ``key``'s saved state into ``engine`` if it is valid for it now; returns the
        tokens restored (0: none saved, or it did not match and was deleted)."""
        kv, meta = self._paths(key)
        try:
            saved = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            if kv.exists() or meta.exists():
                self.forget(key)
            return 0
        if not isinstance(saved, dict) or saved.get("for") != fingerprint(engine, system) or not kv.is_file():
            self.forget(key)  # another model, adapters, context size or system prompt: stale
            return 0
        n = engine.load_kv(kv)
        if n == 0:
            self.forget(key)  # damaged or not llama.cpp's: never trusted
            return 0
        _touch(meta)  # most recently used
        engine.kv_owner = key
        return n

    def store(self, key, engine, system: str) -> bool:
        """Save what ``engine`` has read as ``key``'s state; False when it could not be written."""
        kv, meta = self._paths(key)
        tmp = kv.with_name(kv.name + ".tmp")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            written = engine.save_kv(tmp)
            if not written:
                raise OSError("nothing written")
            os.replace(tmp, kv)
            atomic_write_text(meta, json.dumps({"for": fingerprint(engine, system), "bytes": kv.stat().st_size}))
            _touch(meta)
        except OSError:
            for p in (tmp, kv, meta):
                try:
                    p.unlink()
                except OSError:
                    pass
            return False
        self._evict(keep=kv)
        return True

    def _evict(self, keep: Path) -> None:
        """Least recently used first, until the folder is within its bound."""
        entries = []
        for meta in self.folder.glob("conv-*.json"):
            kv = meta.with_suffix(".kv")
            try:
                entries.append((meta.stat().st_mtime, kv.stat().st_size if kv.exists() else 0, meta, kv))
            except OSError:
                continue
        total = sum(e[1] for e in entries)
        for _mtime, size, meta, kv in sorted(entries):
            if total <= self.max_bytes:
                break
            if kv == keep:
                continue
            for p in (kv, meta):
                try:
                    p.unlink()
                except OSError:
                    pass
            total -= size

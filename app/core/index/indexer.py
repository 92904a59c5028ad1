"""Bring a project's index up to date, and search it.

Two passes so the user can ask at once: the first walks and chunks every changed file into
SQLite (keyword search works as soon as a file is in), the second embeds the chunks that
have no vector yet, a batch per commit (semantic search fills in as it goes). Unchanged
files (same size and mtime, or else the same SHA-256) are not touched; a restarted run
picks up exactly the files and chunks that were not finished.
"""

from __future__ import annotations

import errno
import hashlib
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from app.core.index.chunk import chunk_file
from app.core.index.rank import RankWeights, fuse
from app.core.index.store import IndexStore, StoredChunk
from app.core.index.walk import MAX_FILE_BYTES, SourceFile, read_regular, walk_project
from app.core.atomic import describe_os_error, disk_full_at
from app.core.errors import UserError

EMBED_BATCH = 32
CANDIDATES = 50


class IndexDiskFull(UserError):
    """The disk holding the index filled up; what was indexed before is kept."""


class IndexWriteError(UserError):
    """The index could not be written (a read-only or failing disk); what was indexed before is kept."""


def _disk_full(e: BaseException) -> bool:
    if isinstance(e, sqlite3.OperationalError):
        return "full" in str(e)
    return isinstance(e, OSError) and e.errno == errno.ENOSPC


def _write_failed(e: BaseException, directory: Path) -> UserError:
    """The user's message for a write fault of the index (raised ``from`` the original)."""
    if _disk_full(e) or (isinstance(e, sqlite3.OperationalError) and "disk i/o" in str(e).lower()
                         and disk_full_at(directory)):
        return IndexDiskFull(f"The disk holding the project index is full ({directory}). Free some "
                             "space, then Update index: what was indexed so far is kept.")
    why = describe_os_error(e) if isinstance(e, OSError) else str(e)
    return IndexWriteError(f"The project index could not be written ({directory}): {why}. What was "
                           "indexed so far is kept; Update index again once the disk is writable.")


class TextEmbedder(Protocol):
    model_id: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...
    def count_tokens(self, text: str) -> int: ...


def index_dir_for(root: Path, cache_dir: Path) -> Path:
    """One index per project folder, under the user cache dir (it can always be rebuilt)."""
    key = hashlib.sha256(str(Path(root).resolve()).encode("utf-8")).hexdigest()[:16]
    return Path(cache_dir) / "indexes" / f"{Path(root).resolve().name or 'root'}-{key}"


@dataclass
class IndexProgress:
    """What the progress bar shows."""

    phase: str                 # "scanning" or "embedding"
    files_done: int = 0
    files_total: int = 0
    chunks: int = 0            # chunks in the index
    embedded: int = 0          # of which have a vector
    rate: float = 0.0          # chunks embedded per second in this run
    eta_s: float | None = None

    def text(self) -> str:
        if self.phase == "scanning":
            return f"Reading files {self.files_done}/{self.files_total} · {self.chunks} chunks"
        eta = "" if self.eta_s is None else f" · {_duration(self.eta_s)} left"
        return f"Embedding {self.embedded}/{self.chunks} chunks · {self.rate:.0f}/s{eta}"


def _duration(s: float) -> str:
    s = int(s + 0.5)
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


@dataclass
class IndexStats:
    files: int = 0
    chunks: int = 0
    embedded: int = 0
    changed: int = 0           # files (re)chunked in this run
    removed: int = 0
    embedded_now: int = 0      # chunks embedded in this run
    skipped: Counter = field(default_factory=Counter)
    cancelled: bool = False
    notices: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        skipped = sum(self.skipped.values())
        s = f"{self.files} files, {self.chunks} chunks"
        if self.embedded < self.chunks:
            s += f" ({self.embedded} embedded)"
        if self.skipped.get("undecodable"):
            s += f", {self.skipped['undecodable']} not UTF-8 (skipped)"
        if skipped:
            s += f"; {skipped} files skipped"
        return s


@dataclass(frozen=True)
class Hit:
    chunk: StoredChunk
    score: float
    dense_rank: int | None     # 1-based place in each list, None when absent
    keyword_rank: int | None

    @property
    def citation(self) -> str:
        return self.chunk.citation


class ProjectIndex:
    """A project folder and its index."""

    def __init__(self, root: Path, index_dir: Path, embedder: TextEmbedder, dim: int = 384):
        self.root = Path(root).resolve()
        self.embedder = embedder
        try:
            self.store = IndexStore(index_dir, embedder.model_id, dim)
        except (sqlite3.OperationalError, OSError) as e:
            raise _write_failed(e, Path(index_dir)) from e

    @property
    def notices(self) -> list[str]:
        return self.store.notices

    def update(self, progress: Callable[[IndexProgress], None] = lambda p: None,
               cancelled: Callable[[], bool] = lambda: False) -> IndexStats:
        """Index what changed since the last run. The whole project is walked every time (the
        watcher's paths only say *that* something changed): unchanged files cost a stat."""
        try:
            return self._update(progress, cancelled)
        except UserError:
            raise
        except (sqlite3.OperationalError, OSError) as e:
            raise _write_failed(e, self.store.directory) from e

    def _update(self, progress: Callable[[IndexProgress], None], cancelled: Callable[[], bool]) -> IndexStats:
        t0 = time.monotonic()
        stats = IndexStats(notices=list(self.store.notices))
        walked = walk_project(self.root, cancelled=cancelled)
        stats.skipped.update(walked.skipped)
        if cancelled():
            return self._finish(stats, t0, cancelled=True)
        known = self.store.files()
        current = {f.path: f for f in walked.files}
        for gone in sorted(set(known) - set(current)):
            self.store.remove_file(gone)
            stats.removed += 1
        todo = list(current.values())
        for i, f in enumerate(todo):
            if cancelled():
                return self._finish(stats, t0, cancelled=True)
            if i % 20 == 0:
                progress(IndexProgress("scanning", i, len(todo), self.store.chunk_count()))
            row = known.get(f.path)
            if row is None or row.size != f.size or row.mtime_ns != f.mtime_ns:
                try:  # the file may have changed since the walk: read what is there, as the walker would
                    raw = read_regular(self.root / f.path, MAX_FILE_BYTES + 1)
                except OSError:
                    stats.skipped["unreadable"] += 1
                    continue
                if len(raw) > MAX_FILE_BYTES:
                    stats.skipped["over 1 MB"] += 1
                    continue
                sha = hashlib.sha256(raw).hexdigest()
                if row is None or row.sha256 != sha:
                    self._read_file(f, raw, sha, stats)
                    continue
                self.store.touch_file(f.path, f.size, f.mtime_ns)  # same content, new time stamp
            if row.note == "undecodable":
                stats.skipped["undecodable"] += 1
        progress(IndexProgress("scanning", len(todo), len(todo), self.store.chunk_count()))
        self._embed(stats, progress, cancelled)
        return self._finish(stats, t0, cancelled=cancelled())

    def _read_file(self, f: SourceFile, raw: bytes, sha: str, stats: IndexStats) -> None:
        """Chunk a new or changed file into the store (an undecodable one is recorded empty)."""
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            stats.skipped["undecodable"] += 1
            self.store.replace_file(f.path, f.size, f.mtime_ns, sha, f.language, [], note="undecodable")
            return
        chunks = chunk_file(f.path, text, f.language, self.embedder.count_tokens)
        self.store.replace_file(f.path, f.size, f.mtime_ns, sha, f.language, chunks)
        stats.changed += 1

    def _embed(self, stats: IndexStats, progress: Callable[[IndexProgress], None],
               cancelled: Callable[[], bool]) -> None:
        total = self.store.chunk_count()
        done = self.store.embedded_count()
        start, t_start = done, time.monotonic()
        try:
            while not cancelled():
                batch = self.store.pending(EMBED_BATCH)
                if not batch:
                    break
                vectors = self.embedder.embed([t for _, t in batch])
                self.store.set_vectors([i for i, _ in batch], vectors)
                done += len(batch)
                stats.embedded_now += len(batch)
                elapsed = time.monotonic() - t_start
                rate = (done - start) / elapsed if elapsed > 0 else 0.0
                eta = (total - done) / rate if rate > 0 else None
                progress(IndexProgress("embedding", stats.changed, stats.changed, total, done, rate, eta))
        finally:
            if stats.embedded_now or stats.removed or stats.changed:
                self.store.save_vectors()

    def _finish(self, stats: IndexStats, t0: float, cancelled: bool) -> IndexStats:
        stats.cancelled = cancelled
        stats.files = self.store.file_count()
        stats.chunks = self.store.chunk_count()
        stats.embedded = self.store.embedded_count()
        stats.seconds = time.monotonic() - t0
        return stats

    # ---- search ------------------------------------------------------------------------------

    def search(self, query: str, k: int = 10, weights: RankWeights = RankWeights(),
               mode: str = "hybrid") -> list[Hit]:
        """The best ``k`` chunks for ``query``: "hybrid" (the shipped ranking), "dense" or "bm25"."""
        # bytes that are not UTF-8 (a command-line argument) arrive as lone surrogates, which
        # the tokenizer and SQLite refuse: they match nothing anyway
        query = query.encode("utf-8", "replace").decode("utf-8").strip()
        if not query:
            return []
        n = max(k, CANDIDATES)
        dense = [] if mode == "bm25" else self.store.dense(self.embedder.embed([query])[0], n)
        keyword = [] if mode == "dense" else self.store.keyword(query, n)
        fused = fuse(dense, keyword, weights)[:k]
        chunks = self.store.chunks(cid for cid, _ in fused)
        dpos = {c: i + 1 for i, c in enumerate(dense)}
        kpos = {c: i + 1 for i, c in enumerate(keyword)}
        return [Hit(chunks[cid], score, dpos.get(cid), kpos.get(cid)) for cid, score in fused if cid in chunks]

    def close(self) -> None:
        self.store.close()

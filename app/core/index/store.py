"""One project's index on disk: SQLite for files, chunks, keywords and vectors; hnswlib for
nearest-neighbour search.

Why this split: SQLite commits each file's chunks and each batch of vectors as one small
transaction, so an indexer killed at any point loses at most one batch, and nothing is ever
rewritten whole. The hnswlib graph is a cache of the vectors in SQLite: it is written at the
end of a run, and on opening it is reconciled with the database (vectors it lacks are added,
labels of deleted chunks are marked deleted), so a crash before it was saved costs a few
seconds of graph building, never re-embedding. A damaged database or graph is set aside
and rebuilt, with a notice for the user.

Keywords: FTS5 with BM25 over the path, the symbol, the text (identifiers kept whole:
``tokenchars '_'``) and the identifiers split on snake_case/camelCase, so ``user id`` finds
``getUserId`` and ``get_user_id`` finds itself first.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import hnswlib
import numpy as np

from app.core.index.chunk import Chunk, embed_text

SCHEMA_VERSION = 1
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 100
INITIAL_CAPACITY = 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS files(
    id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT UNIQUE NOT NULL, size INTEGER, mtime_ns INTEGER,
    sha256 TEXT, language TEXT, note TEXT DEFAULT '');
CREATE TABLE IF NOT EXISTS chunks(
    id INTEGER PRIMARY KEY AUTOINCREMENT, file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    start_line INTEGER, end_line INTEGER, symbol TEXT, kind TEXT, language TEXT, text TEXT,
    context TEXT, ehash TEXT, vector BLOB);
CREATE INDEX IF NOT EXISTS chunks_file ON chunks(file_id);
CREATE INDEX IF NOT EXISTS chunks_pending ON chunks(id) WHERE vector IS NULL;
CREATE INDEX IF NOT EXISTS chunks_embedded ON chunks(id) WHERE vector IS NOT NULL;
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(path, symbol, idents, body, tokenize="unicode61 tokenchars '_'");
"""

# BM25 column weights: path, symbol, split identifiers, text
FTS_WEIGHTS = (1.0, 4.0, 1.0, 1.0)
_STOP = {"a", "an", "the", "of", "to", "in", "is", "it", "and", "or", "for", "on", "with", "how",
         "what", "where", "which", "does", "do", "this", "that", "be", "by", "as", "are", "from",
         "at", "we", "i", "you", "can", "my", "me", "when", "why", "there", "its", "get"}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def split_identifier(word: str) -> list[str]:
    """``getHTTPResponse_code`` -> ["get", "http", "response", "code"]."""
    return [p.lower() for part in word.split("_") for p in _CAMEL.findall(part)]


def identifier_words(text: str) -> str:
    """The parts of the compound identifiers in ``text``, for the keyword index."""
    out: dict[str, None] = {}
    for w in set(_IDENT.findall(text)):
        parts = split_identifier(w)
        if len(parts) > 1:
            out.update(dict.fromkeys(parts))
    return " ".join(out)


def fts_query(query: str) -> str:
    """An FTS5 OR-query of the query's words, their lower-case forms and identifier parts."""
    terms: dict[str, None] = {}
    for w in re.findall(r"\w+", query):
        for t in [w, w.lower(), *split_identifier(w)]:
            if t.lower() not in _STOP and len(t) > 1:
                terms[t.lower()] = None
    return " OR ".join(f'"{t}"' for t in terms)


@dataclass(frozen=True)
class FileRow:
    path: str
    size: int
    mtime_ns: int
    sha256: str
    note: str


@dataclass(frozen=True)
class StoredChunk:
    id: int
    path: str
    start_line: int
    end_line: int
    symbol: str
    kind: str
    language: str
    text: str
    context: str

    @property
    def citation(self) -> str:
        return f"{self.path}:{self.start_line}-{self.end_line}"


def _rollback(db: sqlite3.Connection) -> None:
    """Roll back if a transaction is still open (SQLite ends some itself, e.g. on a full disk)."""
    if db.in_transaction:
        db.execute("ROLLBACK")


def _disk_fault(e: sqlite3.DatabaseError) -> bool:
    """An error of the disk or of another user of the file, not damage to the database."""
    text = str(e).lower()
    return isinstance(e, sqlite3.OperationalError) and any(
        w in text for w in ("full", "readonly", "read-only", "disk i/o error", "unable to open", "locked", "busy"))


def _ehash(chunk: Chunk) -> str:
    return hashlib.sha1(chunk.embed_text().encode("utf-8", "surrogatepass")).hexdigest()


class IndexStore:
    """The database and vector graph of one project. Thread-safe: the indexer writes while the
    Project panel searches; every method takes the one lock for the short time it needs."""

    def __init__(self, directory: Path, model_id: str, dim: int):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.db_path = self.directory / "index.db"
        self.hnsw_path = self.directory / "vectors.hnsw"
        self.model_id, self.dim = model_id, dim
        self.notices: list[str] = []   # what was repaired on opening, for the UI to show
        self._lock = threading.RLock()
        self._db = self._open_db()
        self._open_vectors()

    # ---- opening and repair ----------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.executescript(_SCHEMA)
        return db

    def _set_aside(self, why: str) -> None:
        for p in (self.db_path, self.db_path.with_name("index.db-wal"), self.db_path.with_name("index.db-shm"),
                  self.hnsw_path):
            if p.exists():
                os.replace(p, p.with_name(p.name + ".damaged"))
        self.notices.append(f"The project index was damaged ({why}); it is being rebuilt from the files.")

    def _open_db(self) -> sqlite3.Connection:
        try:
            db = self._connect()
            version = self._meta(db, "schema")
            ok = db.execute("PRAGMA quick_check").fetchone()[0]
            if ok != "ok":
                raise sqlite3.DatabaseError(ok)
        except sqlite3.DatabaseError as e:
            try:
                db.close()
            except Exception:  # noqa: BLE001 - closing a broken handle may fail too
                pass
            if _disk_fault(e):
                raise  # a full, read-only or busy disk: the index itself is fine, never set it aside
            self._set_aside(str(e))
            db, version = self._connect(), None
        if version is not None and version != str(SCHEMA_VERSION):
            db.close()
            self._set_aside(f"made by another version ({version})")
            db = self._connect()
        db.execute("INSERT OR REPLACE INTO meta VALUES('schema', ?)", (str(SCHEMA_VERSION),))
        if self._meta(db, "model") not in (None, self.model_id):
            # another embedder: old vectors are meaningless next to new ones
            db.execute("UPDATE chunks SET vector = NULL")
            self.hnsw_path.unlink(missing_ok=True)
            self.notices.append("The embedding model changed; the project is being embedded again.")
        db.execute("INSERT OR REPLACE INTO meta VALUES('model', ?)", (self.model_id,))
        return db

    @staticmethod
    def _meta(db: sqlite3.Connection, key: str) -> str | None:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _new_graph(self, capacity: int) -> hnswlib.Index:
        g = hnswlib.Index(space="ip", dim=self.dim)  # vectors are unit length: ip = cosine
        g.init_index(max_elements=max(capacity, INITIAL_CAPACITY), ef_construction=HNSW_EF_CONSTRUCTION, M=HNSW_M)
        g.set_num_threads(1)
        return g

    def _open_vectors(self) -> None:
        """Load the graph when its file is the one last saved, else start one; then reconcile."""
        stored = self._db.execute("SELECT count(*) FROM chunks WHERE vector IS NOT NULL").fetchone()[0]
        graph = None
        expected = self._meta(self._db, "hnsw_bytes")
        if self.hnsw_path.exists():
            size = self.hnsw_path.stat().st_size
            if expected is None or int(expected) != size:
                self.notices.append("The vector file did not match the index; it was rebuilt from stored vectors.")
            else:
                try:
                    graph = hnswlib.Index(space="ip", dim=self.dim)
                    graph.load_index(str(self.hnsw_path), max_elements=max(stored * 2, INITIAL_CAPACITY))
                    graph.set_num_threads(1)
                except (RuntimeError, ValueError, MemoryError) as e:
                    graph = None
                    self.notices.append(f"The vector file could not be read ({e}); it was rebuilt from stored vectors.")
        self._hnsw = graph if graph is not None else self._new_graph(stored * 2)
        self._reconcile()

    def _reconcile(self) -> None:
        """Make the graph hold exactly the vectors in SQLite (after a crash or a lost file)."""
        g = self._hnsw
        self._live = 0
        in_graph = set(g.get_ids_list())
        rows = self._db.execute("SELECT id FROM chunks WHERE vector IS NOT NULL").fetchall()
        wanted = {r[0] for r in rows}
        for label in in_graph - wanted:
            try:
                g.mark_deleted(label)
            except RuntimeError:
                pass  # already marked
        self._live = len(wanted & in_graph)
        missing = sorted(wanted - in_graph)
        for i in range(0, len(missing), 2000):
            ids = missing[i:i + 2000]
            q = f"SELECT id, vector FROM chunks WHERE id IN ({','.join('?' * len(ids))})"
            got = self._db.execute(q, ids).fetchall()
            self._add([r[0] for r in got], np.vstack([np.frombuffer(r[1], dtype=np.float32) for r in got]))

    def _add(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        g = self._hnsw
        need = g.get_current_count() + len(ids)
        if need > g.get_max_elements():
            g.resize_index(max(need, g.get_max_elements() * 2))
        g.add_items(vectors, np.asarray(ids, dtype=np.int64))
        self._live += len(ids)

    # ---- files and chunks ---------------------------------------------------------------

    def files(self) -> dict[str, FileRow]:
        with self._lock:
            rows = self._db.execute("SELECT path, size, mtime_ns, sha256, note FROM files").fetchall()
        return {r[0]: FileRow(*r) for r in rows}

    def touch_file(self, path: str, size: int, mtime_ns: int) -> None:
        """Same content, new time stamp: remember it so the hash is not computed again."""
        with self._lock:
            self._db.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE path = ?", (size, mtime_ns, path))

    def replace_file(self, path: str, size: int, mtime_ns: int, sha256: str, language: str,
                     chunks: Sequence[Chunk], note: str = "") -> int:
        """Put ``path``'s chunks in place of its old ones, in one transaction. A chunk whose text
        is unchanged keeps its vector; returns how many chunks still need embedding."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                old = db.execute("SELECT c.id, c.ehash, c.vector FROM chunks c JOIN files f ON f.id = c.file_id "
                                 "WHERE f.path = ?", (path,)).fetchall()
                reuse = {eh: vec for _, eh, vec in old if vec is not None}
                old_ids = [r[0] for r in old]
                self._delete_chunks(old_ids)
                db.execute("INSERT INTO files(path, size, mtime_ns, sha256, language, note) VALUES(?,?,?,?,?,?) "
                           "ON CONFLICT(path) DO UPDATE SET size=excluded.size, mtime_ns=excluded.mtime_ns, "
                           "sha256=excluded.sha256, language=excluded.language, note=excluded.note",
                           (path, size, mtime_ns, sha256, language, note))
                file_id = db.execute("SELECT id FROM files WHERE path = ?", (path,)).fetchone()[0]
                pending, kept = 0, []
                for c in chunks:
                    eh = _ehash(c)
                    vec = reuse.get(eh)
                    cur = db.execute(
                        "INSERT INTO chunks(file_id, start_line, end_line, symbol, kind, language, text, context, "
                        "ehash, vector) VALUES(?,?,?,?,?,?,?,?,?,?)",
                        (file_id, c.start_line, c.end_line, c.symbol, c.kind, c.language, c.text, c.context, eh, vec))
                    cid = cur.lastrowid
                    db.execute("INSERT INTO fts(rowid, path, symbol, idents, body) VALUES(?,?,?,?,?)",
                               (cid, c.path, c.symbol, identifier_words(c.symbol + "\n" + c.text), c.text))
                    if vec is None:
                        pending += 1
                    else:
                        kept.append((cid, vec))
                db.execute("COMMIT")
            except BaseException:
                _rollback(db)
                raise
            for label in old_ids:
                self._unlabel(label)
            if kept:
                self._add([k[0] for k in kept], np.vstack([np.frombuffer(k[1], dtype=np.float32) for k in kept]))
            return pending

    def _delete_chunks(self, ids: list[int]) -> None:
        for i in range(0, len(ids), 500):
            part = ids[i:i + 500]
            marks = ",".join("?" * len(part))
            self._db.execute(f"DELETE FROM fts WHERE rowid IN ({marks})", part)
            self._db.execute(f"DELETE FROM chunks WHERE id IN ({marks})", part)

    def _unlabel(self, label: int) -> None:
        try:
            self._hnsw.mark_deleted(label)
            self._live -= 1
        except RuntimeError:
            pass  # never embedded, or already gone

    def remove_file(self, path: str) -> None:
        with self._lock:
            ids = [r[0] for r in self._db.execute(
                "SELECT c.id FROM chunks c JOIN files f ON f.id = c.file_id WHERE f.path = ?", (path,))]
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._delete_chunks(ids)
                self._db.execute("DELETE FROM files WHERE path = ?", (path,))
                self._db.execute("COMMIT")
            except BaseException:
                _rollback(self._db)
                raise
            for label in ids:
                self._unlabel(label)

    # ---- embedding ------------------------------------------------------------------------

    def pending(self, limit: int) -> list[tuple[int, str]]:
        """Chunks without a vector yet, oldest first, as (id, text to embed)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT c.id, f.path, c.symbol, c.context, c.text FROM chunks c JOIN files f ON f.id = c.file_id "
                "WHERE c.vector IS NULL ORDER BY c.id LIMIT ?", (limit,)).fetchall()
        return [(cid, embed_text(path, symbol, context, text)) for cid, path, symbol, context, text in rows]

    def set_vectors(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        """Store one batch of vectors (one commit) and add them to the graph."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("UPDATE chunks SET vector = ? WHERE id = ?",
                                     [(vectors[i].tobytes(), int(cid)) for i, cid in enumerate(ids)])
                self._db.execute("COMMIT")
            except BaseException:
                _rollback(self._db)
                raise
            # a chunk deleted while its batch was embedded gets no place in the graph
            marks = ",".join("?" * len(ids))
            present = {r[0] for r in self._db.execute(f"SELECT id FROM chunks WHERE id IN ({marks})",
                                                      [int(c) for c in ids])}
            live = [i for i, cid in enumerate(ids) if int(cid) in present]
            if live:
                self._add([ids[i] for i in live], vectors[live])

    def save_vectors(self) -> None:
        """Write the graph (atomically), compacting it when many labels are deleted."""
        with self._lock:
            g = self._hnsw
            live = self._db.execute("SELECT count(*) FROM chunks WHERE vector IS NOT NULL").fetchone()[0]
            if g.get_current_count() > 1.5 * live + 1000:
                self._hnsw = self._new_graph(live * 2)
                self._reconcile()
                g = self._hnsw
            tmp = self.hnsw_path.with_name("vectors.hnsw.tmp")
            try:
                g.save_index(str(tmp))
                if tmp.stat().st_size == 0:
                    raise OSError(28, "No space left on device", str(tmp))  # hnswlib does not check writes
                os.replace(tmp, self.hnsw_path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            self._db.execute("INSERT OR REPLACE INTO meta VALUES('hnsw_bytes', ?)", (str(self.hnsw_path.stat().st_size),))

    # ---- search -----------------------------------------------------------------------------

    def keyword(self, query: str, k: int) -> list[int]:
        """Chunk ids by BM25, best first."""
        q = fts_query(query)
        if not q:
            return []
        w = ", ".join(str(x) for x in FTS_WEIGHTS)
        with self._lock:
            try:
                rows = self._db.execute(f"SELECT rowid FROM fts WHERE fts MATCH ? ORDER BY bm25(fts, {w}) LIMIT ?",
                                        (q, k)).fetchall()
            except sqlite3.OperationalError:
                return []
        return [r[0] for r in rows]

    def dense(self, vector: np.ndarray, k: int) -> list[int]:
        """Chunk ids by cosine similarity, best first (only chunks embedded so far)."""
        with self._lock:
            g = self._hnsw
            k = min(k, self._live)  # knn_query fails when asked for more than the live elements
            if k <= 0:
                return []
            g.set_ef(max(64, k * 2))
            try:
                labels, _ = g.knn_query(np.asarray(vector, dtype=np.float32).reshape(1, -1), k=k)
            except RuntimeError:  # fewer live elements than k
                return []
        return [int(x) for x in labels[0]]

    def chunks(self, ids: Iterable[int]) -> dict[int, StoredChunk]:
        ids = list(ids)
        if not ids:
            return {}
        with self._lock:
            rows = self._db.execute(
                "SELECT c.id, f.path, c.start_line, c.end_line, c.symbol, c.kind, c.language, c.text, c.context "
                f"FROM chunks c JOIN files f ON f.id = c.file_id WHERE c.id IN ({','.join('?' * len(ids))})",
                ids).fetchall()
        return {r[0]: StoredChunk(*r) for r in rows}

    # ---- counts ------------------------------------------------------------------------------

    def chunk_count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM chunks").fetchone()[0]

    def embedded_count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM chunks WHERE vector IS NOT NULL").fetchone()[0]

    def file_count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM files").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

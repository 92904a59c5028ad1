"""Health of the open project's index: files and chunks in it, chunks still without a vector,
files changed since the last run (stale), repairs and the last error.

The window passes its live ``ProjectIndex`` (thread-safe counts). The terminal has none, and
must not open one: opening repairs, and a different embedder wipes the vectors. It reads
``index.db`` read-only instead.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from app.core.doctor.check import FAIL, OK, WARN, Check
from app.core.paths import AppPaths
from app.core.settings import Settings

TITLE = "Project index"
UPDATE = "Use Update index in the Project panel (or `python -m app index <folder>`)."


def _read_only(db_path: Path) -> tuple[dict[str, tuple[int, int]], int, int]:
    """({path: (size, mtime_ns)}, chunks, embedded) from an index database, without writing it."""
    db = sqlite3.connect(db_path.resolve().as_uri() + "?mode=ro", uri=True, timeout=5)
    try:
        files = {r[0]: (r[1], r[2]) for r in db.execute("SELECT path, size, mtime_ns FROM files")}
        chunks = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        embedded = db.execute("SELECT count(*) FROM chunks WHERE vector IS NOT NULL").fetchone()[0]
    finally:
        db.close()
    return files, chunks, embedded


def stale_files(root: Path, indexed: dict[str, tuple[int, int]]) -> int:
    """Files new, changed (size or mtime) or deleted since the index last saw them."""
    from app.core.index.walk import walk_project

    now = {f.path: (f.size, f.mtime_ns) for f in walk_project(root).files}
    return sum(1 for p, stamp in now.items() if indexed.get(p) != stamp) + len(set(indexed) - set(now))


def check_index(paths: AppPaths, settings: Settings, project_index=None, *, last_error: str | None = None,
                indexing: bool = False) -> Check:
    """``project_index``: the window's ProjectIndex, if a project is open there."""
    from app.core.index.indexer import index_dir_for

    if project_index is not None:
        root = Path(project_index.root)
        store = project_index.store
        indexed = {p: (r.size, r.mtime_ns) for p, r in store.files().items()}
        chunks, embedded = store.chunk_count(), store.embedded_count()
        notices = list(project_index.notices)
        index_dir = store.directory
    else:
        if not settings.project_dir:
            return Check("index", TITLE, OK, "No project is open.")
        root = Path(settings.project_dir)
        if not root.is_dir():
            return Check("index", TITLE, WARN, f"The last project folder {root} no longer exists.",
                         "Open another project with File → Open Project.")
        index_dir = index_dir_for(root, paths.cache_dir)
        db_path = index_dir / "index.db"
        if not db_path.exists():
            return Check("index", TITLE, WARN, f"{root} has no index yet ({index_dir}).",
                         "Open it in the app (File → Open Project) or run `python -m app index <folder>`.")
        try:
            indexed, chunks, embedded = _read_only(db_path)
        except sqlite3.DatabaseError as e:
            return Check("index", TITLE, FAIL, f"The index of {root} cannot be read ({e}); {db_path}.",
                         "Open the project in the app: a damaged index is set aside and rebuilt from the files.")
        notices = []
    stale = stale_files(root, indexed)
    repaired = sorted(p.name for p in Path(index_dir).glob("*.damaged"))
    detail = f"{root}: {len(indexed)} files, {chunks} chunks ({embedded} with vectors), {stale} stale files"
    if indexing:
        detail += "; indexing now"
    if repaired:
        notices.append(f"a damaged index was set aside earlier ({', '.join(repaired)})")
    if notices:
        detail += ". Notices: " + " ".join(n.rstrip(".") + "." for n in notices)
    if last_error:
        return Check("index", TITLE, FAIL, f"{detail.rstrip('.')}. Last error: {last_error}",
                     "Fix what the error names (disk space, permissions), then " + UPDATE[0].lower() + UPDATE[1:])
    if not indexing and (stale or embedded < chunks):
        return Check("index", TITLE, WARN, detail.rstrip(".") + ".", UPDATE)
    return Check("index", TITLE, OK, detail.rstrip(".") + ".")

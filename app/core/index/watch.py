"""Notice file changes in the open project, so the index follows edits.

watchdog (inotify, FSEvents, ReadDirectoryChangesW) rather than QFileSystemWatcher: it
watches a tree recursively without one handle per folder, and it keeps core/ free of Qt.
Events are collected and handed on after a quiet spell (``delay``), so saving a file from an
editor (write temp, rename, touch) or ``git checkout`` gives one update, not fifty. Paths
under folders the walker never indexes (.git, node_modules, ...) are dropped here already.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from app.core.index.walk import ROOT_SKIP_DIRS, SKIP_DIRS


class ProjectWatcher(FileSystemEventHandler):
    """Calls ``on_change(relative_paths)`` on a watchdog thread after changes settle."""

    def __init__(self, root: Path, on_change: Callable[[set[str]], None], delay: float = 1.0):
        super().__init__()
        self.root = Path(root).resolve()
        self.on_change = on_change
        self.delay = delay
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._stopped = False
        self._observer = Observer()
        self._observer.daemon = True

    def start(self) -> "ProjectWatcher":
        self._observer.schedule(self, str(self.root), recursive=True)
        self._observer.start()
        return self

    def stop(self) -> None:
        """After this returns, ``on_change`` is not called again (its owner may be gone)."""
        with self._lock:
            self._stopped = True
            if self._timer is not None:
                self._timer.cancel()
        self._observer.stop()
        self._observer.join(timeout=5)

    def _relative(self, path: str | bytes) -> str | None:
        if isinstance(path, bytes):
            path = path.decode("utf-8", "surrogateescape")
        try:
            rel = Path(path).resolve().relative_to(self.root).as_posix()
        except ValueError:
            return None
        parts = rel.split("/")
        if (rel == "." or any(p in SKIP_DIRS or p.endswith(".egg-info") for p in parts[:-1])
                or (len(parts) > 1 and parts[0] in ROOT_SKIP_DIRS)):
            return None
        return rel

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        paths = [event.src_path] + ([event.dest_path] if getattr(event, "dest_path", "") else [])
        rels = {r for r in (self._relative(p) for p in paths) if r}
        if event.is_directory:
            # a folder moved or deleted: everything under it may have changed
            rels = {r + "/" for r in rels}
        if not rels:
            return
        with self._lock:
            if self._stopped:
                return
            self._pending |= rels
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.delay, self._flush)
            self._timer.daemon = True
            self._timer.start()

    def _flush(self) -> None:
        # on_change runs under the lock so stop() cannot return while it is under way
        with self._lock:
            paths, self._pending = self._pending, set()
            self._timer = None
            if paths and not self._stopped:
                self.on_change(paths)

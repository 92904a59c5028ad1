"""The project folder the user opened: its files, and the recent-projects list.

Only what the chat-and-diff pane needs: list the project's text files (skipping VCS folders,
dependencies, virtualenvs, build output and big files) and find the files a request names.
The walk itself is the indexer's (app.core.index.walk).
"""

from __future__ import annotations

import re
from pathlib import Path

from app.core.index.walk import walk_project

MAX_FILES = 20_000
RECENT_MAX = 8


def project_files(root: Path, limit: int = MAX_FILES) -> list[str]:
    """Relative POSIX paths of the project's text files, sorted: the indexer's walk (so
    .gitignore, junk folders, big and binary files are skipped the same way), any file type."""
    return [f.path for f in walk_project(Path(root), any_text=True).files[:limit]]


def mentioned_files(request: str, files: list[str]) -> list[str]:
    """Project files the request names, by relative path or by a unique file name.

    ``fix fetch in net.py`` finds ``pkg/net.py`` if no other ``net.py`` exists: what Aider
    does with mentioned file names, so the user need not add files by hand.
    """
    words = set(re.findall(r"[\w./\\-]+", request))
    words |= {w.rstrip(".,:;!?") for w in words}
    by_name: dict[str, list[str]] = {}
    for f in files:
        by_name.setdefault(f.rsplit("/", 1)[-1], []).append(f)
    found: list[str] = []
    for f in files:
        if f in words and f not in found:
            found.append(f)
    for w in sorted(words):
        hits = by_name.get(w, [])
        if len(hits) == 1 and "." in w and hits[0] not in found:
            found.append(hits[0])
    return found


def remember_recent(recent: list[str], folder: Path) -> list[str]:
    """The recent-projects list with ``folder`` first, de-duplicated, at most RECENT_MAX."""
    p = str(Path(folder).resolve())
    return ([p] + [r for r in recent if r != p])[:RECENT_MAX]

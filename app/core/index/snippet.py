"""The lines a citation points at, read from the project as it is now.

A citation in an old answer may point at a file that has changed or gone since; the lines
are read fresh (never from the index) and the reader is told when the file is missing or
shorter. Paths are checked like edit paths: a citation cannot read outside the project.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.core.edits.project_path import resolve_in_project
from app.core.index.syntax import source_lines
from app.core.index.walk import language_of
from app.core.errors import UserError


class SnippetError(UserError):
    """The cited lines cannot be shown; the message says why."""


@dataclass(frozen=True)
class Snippet:
    path: str
    start: int
    end: int
    text: str
    language: str


def read_snippet(root: Path, path: str, start: int, end: int) -> Snippet:
    rel, full = resolve_in_project(root, path)
    try:
        text = full.read_text(encoding="utf-8-sig", errors="replace")
    except FileNotFoundError:
        raise SnippetError(f"{rel} is no longer in the project.") from None
    except OSError as e:
        raise SnippetError(f"{rel} cannot be read: {e.strerror or e}.") from None
    lines = source_lines(text)
    if start < 1 or start > len(lines):
        raise SnippetError(f"{rel} has {len(lines)} lines now; line {start} is gone (the file changed).")
    end = min(max(end, start), len(lines))
    return Snippet(rel, start, end, "\n".join(lines[start - 1:end]), language_of(rel) or "")

"""A change from plan to apply to undo, with what surrounds it: syntax marks, git, checks.

The window and the command line share this, so the order is decided once: syntax problems
are found while planning (a hunk that leaves a file unparsable is marked before Apply); Apply
writes the files (``apply.apply_changes``, undo record first) and then, when the project asks
for it, commits exactly those files (``git_commit.commit_applied``): a failed commit never
undoes a good apply, it is said; Undo puts the bytes back first and then removes the commit
if it is still the tip (``git_commit.undo_applied``). The checks after Apply are
``app.core.checks.checks_after_apply``, run by the caller on its own cancellable worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from app.core.checks import SyntaxProblem, introduced_errors, problems_by_hunk
from app.core.edits.apply import UndoRecord, UndoStore, apply_changes
from app.core.edits.git import GitError, repo_state
from app.core.edits.git_commit import commit_applied, commit_blocker, commit_message, undo_applied
from app.core.edits.plan import DELETED, ChangeSet, FileChange

# path -> hunk index -> problems the change introduces there (hunk -1: a whole new file)
SyntaxMarks = dict[str, dict[int, list[SyntaxProblem]]]


def syntax_marks(cs: ChangeSet) -> SyntaxMarks:
    """The syntax errors each planned file would have and the one before did not, per hunk
    (-1: a file without hunks, a new one). Reads nothing from disk (the plan holds both
    texts); languages without a grammar get none."""
    marks: SyntaxMarks = {}
    for c in cs.changes:
        if c.status == DELETED or c.new_lines is None:
            continue
        old = c.original.contents if c.original is not None else None
        if c.hunks:
            found = problems_by_hunk(c.path, old, list(c.new_lines), c.hunks) or {}
        else:
            errors = introduced_errors(c.path, None if old is None else "\n".join(old), "\n".join(c.new_lines))
            found = {-1: errors} if errors else {}
        found = {k: v for k, v in found.items() if v}
        if found:
            marks[c.path] = found
    return marks


def texts_before(picks: Iterable[tuple[FileChange, object]]) -> dict[str, str]:
    """Each picked file's text before the change, so the checks blame only what it broke."""
    return {c.path: "\n".join(c.original.contents) for c, _ in picks if c.original is not None}


@dataclass
class Applied:
    record: UndoRecord
    commit: str | None = None                          # the new commit's sha
    notes: list[str] = field(default_factory=list)     # e.g. "Applied, but not committed: ..."


def apply_and_commit(root: Path, picks, store: UndoStore, label: str, *, commit: bool = False,
                     request: str = "", answer: str = "") -> Applied:
    """Apply the picked hunks; then, with ``commit``, commit exactly those files with a message
    from the request and the model's explanation. The apply stands whatever git says."""
    record = apply_changes(root, picks, store, label)
    out = Applied(record)
    if not commit:
        return out
    try:
        state = repo_state(root)
        blocker = commit_blocker(state)
        if blocker:
            out.notes.append(f"Applied, but not committed: {blocker}")
            return out
        out.commit = commit_applied(root, record.paths, commit_message(request or label, answer))
    except GitError as e:
        out.notes.append(f"Applied, but not committed: {e}")
        return out
    if out.commit:
        record.commit = out.commit
        store.save(record)
    return out


def undo_change(store: UndoStore, record: UndoRecord, force: bool = False) -> tuple[list[str], str | None]:
    """Undo an apply: the files byte-exactly, then its commit if it is still the last one
    (otherwise the commit stays and the warning says so)."""
    return undo_applied(store, record, record.commit, force)

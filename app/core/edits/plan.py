"""From an answer to reviewable changes: per file, the new text and its hunks.

Nothing here writes. ``plan_changes`` reads each named file once, applies the answer's
edits to its lines in memory and keeps the original (bytes, hash, endings, mode), so that
``apply`` can later check the file has not changed and write exactly the accepted hunks.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from app.core.edits.formats import FileEdit, ParsedAnswer, parse_answer
from app.core.edits.match import MatchError, find_block
from app.core.edits.partial import apply_partial
from app.core.edits.project_path import UnsafePathError, resolve_in_project
from app.core.edits.textfile import TextFile, UneditableFileError, assemble, split_lines

MODIFIED, NEW, DELETED = "modified", "new", "deleted"


EXACT_DIFF_CELLS = 2_500_000  # above len(old) * len(new) this, frequent lines stop anchoring the diff


def line_opcodes(old: list[str], new: list[str]) -> list[tuple[str, int, int, int, int]]:
    """``SequenceMatcher.get_opcodes`` for two files' lines, in time that stays sane.

    Without autojunk, a line that repeats thousands of times (blank lines, ``}``) makes the diff
    quadratic: minutes for a 20,000-line file, even against itself. So the common head and tail
    are cut off first (the usual whole-file answer changes a few places), and a middle too big
    for the exact diff lets ``autojunk`` skip the most frequent lines: the hunks are then less
    minimal, never wrong.
    """
    n = min(len(old), len(new))
    pre = 0
    while pre < n and old[pre] == new[pre]:
        pre += 1
    suf = 0
    while suf < n - pre and old[len(old) - 1 - suf] == new[len(new) - 1 - suf]:
        suf += 1
    a, b = old[pre:len(old) - suf], new[pre:len(new) - suf]
    out = [("equal", 0, pre, 0, pre)] if pre else []
    if a or b:
        exact = len(a) * len(b) <= EXACT_DIFF_CELLS
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=not exact).get_opcodes():
            out.append((tag, i1 + pre, i2 + pre, j1 + pre, j2 + pre))
    if suf:
        out.append(("equal", len(old) - suf, len(old), len(new) - suf, len(new)))
    return out


@dataclass(frozen=True)
class Hunk:
    """One contiguous change: old lines [old_start, old_end) become ``new`` (0-based)."""

    index: int
    old_start: int
    old_end: int
    new_start: int
    new_end: int
    old: tuple[str, ...]
    new: tuple[str, ...]


@dataclass
class EditProblem:
    message: str
    path: str | None = None


@dataclass
class FileChange:
    path: str                      # relative POSIX path inside the project
    target: Path                   # the real absolute path that will be written
    status: str                    # MODIFIED | NEW | DELETED
    original: TextFile | None      # None for a new file
    new_lines: list[str] | None    # line contents after the edit; None when deleted
    sources: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    hunks: list[Hunk] = field(init=False)

    def __post_init__(self) -> None:
        old = self.original.contents if self.original else []
        new = self.new_lines or []
        self._opcodes = line_opcodes(old, new)
        hunks = []
        for tag, i1, i2, j1, j2 in self._opcodes:
            if tag != "equal":
                hunks.append(Hunk(len(hunks), i1, i2, j1, j2, tuple(old[i1:i2]), tuple(new[j1:j2])))
        self.hunks = hunks

    @property
    def needs_approval(self) -> bool:
        """New and deleted files are never applied by default."""
        return self.status in (NEW, DELETED)

    def accepted_lines(self, accepted: Iterable[int] | None = None) -> list[str]:
        """The file's lines (with endings) when the hunks in ``accepted`` are applied (None: all)."""
        chosen = set(range(len(self.hunks))) if accepted is None else set(accepted)
        if self.original is None:
            return assemble([(t, False) for t in (self.new_lines or [])], "\n", True) if chosen else []
        orig = list(self.original.lines)
        new = self.new_lines or []
        out: list[tuple[str, bool]] = []
        h = 0
        for tag, i1, i2, j1, j2 in self._opcodes:
            if tag == "equal":
                out.extend((line, True) for line in orig[i1:i2])
                continue
            if h in chosen:
                out.extend((t, False) for t in new[j1:j2])
            else:
                out.extend((line, True) for line in orig[i1:i2])
            h += 1
        return assemble(out, self.original.newline, self.original.final_newline)

    def result_bytes(self, accepted: Iterable[int] | None = None) -> bytes | None:
        """What the file will hold; None means it will be deleted."""
        if self.status == DELETED:
            return None
        lines = self.accepted_lines(accepted)
        if self.original is None:
            return "".join(lines).encode("utf-8")
        return self.original.encode(lines)

    def result_text(self, accepted: Iterable[int] | None = None) -> str:
        """The new content as text with ``\\n`` endings (for showing and editing)."""
        if self.status == DELETED:
            return ""
        return "".join(line.replace("\r\n", "\n") for line in self.accepted_lines(accepted))

    def with_text(self, text: str) -> "FileChange":
        """The same change with new content typed by the user (all of it becomes the proposal)."""
        lines = [line.rstrip("\n").removesuffix("\r") for line in split_lines(text)]
        return FileChange(self.path, self.target, MODIFIED if self.original else NEW, self.original,
                          lines, self.sources + ["edited by you"], list(self.warnings))


@dataclass
class ChangeSet:
    root: Path
    answer: str
    changes: list[FileChange] = field(default_factory=list)
    problems: list[EditProblem] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # files named whose content would not change

    def change(self, path: str) -> FileChange | None:
        return next((c for c in self.changes if c.path == path), None)

    def __bool__(self) -> bool:
        return bool(self.changes or self.problems)


def _apply_edit(edit: FileEdit, cur: list[str] | None, path: str, problems: list[EditProblem],
                warnings: list[str]) -> tuple[list[str] | None, bool]:
    """(lines after the edit, deleted?) for one edit on the current in-memory state."""
    if edit.kind == "delete":
        if cur is None:
            problems.append(EditProblem(f"The answer asks to delete {path}, which does not exist.", path))
            return None, False
        return None, True
    if edit.kind == "whole":
        if edit.guessed:
            warnings.append(f"The answer did not name a file; its code block (answer line {edit.answer_line}) "
                            f"was taken as {path}, the file the request was about. Check it is meant to be.")
        if edit.unclosed:
            warnings.append(f"The answer's last block (answer line {edit.answer_line}) had no closing fence; "
                            "it was taken to run to the end of the answer. Check the end of the file.")
        if edit.path_comment is not None:
            warnings.append(f"The block's first line, {edit.path_comment.strip()!r}, named the file and was "
                            "left out of it.")
        if cur is not None and not edit.create:
            partial = apply_partial(cur, edit.lines)
            if partial is not None:
                warnings.append("The answer gave only some definitions of this file; they were put in place "
                                "of the same-named ones.")
                return partial, False
        if edit.elided:
            warnings.append(
                f"The answer leaves code out (answer line {edit.elided[0]}: \"…\"). Hunks that remove "
                "code there would delete it: reject them, or ask for the complete file.")
        return list(edit.lines), False
    # search/replace or unified diff
    if cur is None:
        if all(not r.search for r in edit.replacements):
            return [line for r in edit.replacements for line in r.replace], False
        problems.append(EditProblem(
            f"The {edit.fmt} edit (answer line {edit.answer_line}) is for {path}, which is not in the "
            "project, so there is nothing for it to match.", path))
        return None, False
    lines = list(cur)
    offset = 0  # how far earlier replacements moved the lines a diff's line numbers point at
    for n, r in enumerate(edit.replacements, 1):
        what = (f"{'SEARCH block' if edit.fmt == 'search/replace' else 'Diff hunk'} {n} for {path} "
                f"(answer line {r.answer_line})")
        if not r.search:
            lines.extend(r.replace)
            continue
        hint = r.hint_line + offset if r.hint_line is not None else None
        try:
            m = find_block(lines, r.search, r.replace, what, hint)
        except MatchError as e:
            problems.append(EditProblem(str(e), path))
            continue
        lines[m.start:m.end] = m.replacement
        offset += len(m.replacement) - (m.end - m.start)
    return lines, False


def _unsavable_line(lines: list[str] | None) -> int | None:
    """The 1-based line holding a character UTF-8 cannot encode (a lone surrogate), if any."""
    for n, line in enumerate(lines or [], 1):
        try:
            line.encode("utf-8")
        except UnicodeEncodeError:
            return n
    return None


def plan_changes(root: Path, answer: str | ParsedAnswer, default_path: str | None = None,
                 complete: bool = False) -> ChangeSet:
    """Every change an answer proposes for files under ``root``, ready to review. Reads only.

    ``default_path``, ``complete`` (the model stopped by itself): see ``parse_answer``.
    """
    root = Path(root)
    parsed = parse_answer(answer, default_path, complete) if isinstance(answer, str) else answer
    cs = ChangeSet(root, answer if isinstance(answer, str) else "")
    cs.problems.extend(EditProblem(p.message, p.path) for p in parsed.problems)
    order: list[str] = []
    by_path: dict[str, tuple[Path, list[FileEdit]]] = {}
    for edit in parsed.edits:
        try:
            rel, target = resolve_in_project(root, edit.path)
        except UnsafePathError as e:
            cs.problems.append(EditProblem(str(e), edit.path))
            continue
        if rel not in by_path:
            order.append(rel)
            by_path[rel] = (target, [])
        by_path[rel][1].append(edit)
    for rel in order:
        target, edits = by_path[rel]
        original = None
        try:
            # exists() raises, not answers False, for a name too long and the like.
            present = target.exists() or target.is_symlink()
        except OSError as e:
            cs.problems.append(EditProblem(f"Could not use {rel}: {e.strerror or e}.", rel))
            continue
        if present:
            try:
                original = TextFile.read(target, rel)
            except UneditableFileError as e:
                cs.problems.append(EditProblem(str(e), rel))
                continue
            except OSError as e:
                cs.problems.append(EditProblem(f"Could not read {rel}: {e.strerror or e}.", rel))
                continue
        cur = original.contents if original else None
        deleted = False
        warnings: list[str] = []
        for edit in edits:
            cur, deleted = _apply_edit(edit, cur, rel, cs.problems, warnings)
            if deleted:
                cur = None
        sources = sorted({e.fmt for e in edits})
        bad = _unsavable_line(cur)
        if bad is not None:
            cs.problems.append(EditProblem(
                f"The answer's new content for {rel} has a broken character (a lone surrogate) on its line "
                f"{bad}, which cannot be saved as UTF-8; that change was not used.", rel))
            continue
        if deleted and original is not None:
            cs.changes.append(FileChange(rel, target, DELETED, original, None, sources, warnings))
        elif cur is None:
            continue
        elif original is None:
            cs.changes.append(FileChange(rel, target, NEW, None, cur, sources, warnings))
        else:
            change = FileChange(rel, target, MODIFIED, original, cur, sources, warnings)
            if change.hunks:
                cs.changes.append(change)
            else:
                cs.unchanged.append(rel)
    return cs

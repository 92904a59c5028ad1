"""Function-level edits: a block that holds only some definitions of a big file.

For big files the prompt asks for the complete new version of each changed function or
class instead of the whole file (a 2-core laptop cannot afford to re-generate 800 lines).
Models also do this on their own. Treating such a block as the whole file would delete
everything else, so a block counts as partial when it starts with a definition, every
definition it shares with the file is found there, and it is clearly shorter than the file.
Each definition then replaces the same-named definition in place (re-indented to where it
lives); a definition the file does not have yet goes after the previous one placed.
"""

from __future__ import annotations

import functools
import re

DEF = re.compile(
    r"^(\s*)(?:(?:export|default|public|private|protected|internal|static|async|final|abstract|"
    r"override|inline|virtual|unsafe|pub(?:\([^)]*\))?)\s+)*"
    r"(def|class|function|fn|func|interface|struct|enum|impl|trait|module|object)\s+"
    r"(?:\([^)]*\)\s*)?([A-Za-z_$][\w$]*)")
PARTIAL_MAX_SHARE = 0.6


def _indent(s: str) -> int:
    return len(s) - len(s.lstrip())


@functools.lru_cache(maxsize=65536)
def _def_at(line: str) -> tuple[int, str, str] | None:
    """(indent, kind, name) of a definition header; cached, as ``_find_def`` rescans the file once
    per definition of the block."""
    m = DEF.match(line)
    return (len(m.group(1)), m.group(2), m.group(3)) if m else None


def _is_attached(line: str) -> bool:
    """Lines that belong to the definition below them: decorators and comments."""
    s = line.strip()
    return s.startswith(("@", "#", "//", "/*", "*", "///"))


def extent(lines: list[str], i: int) -> tuple[int, int] | None:
    """[start, end) of the definition whose header is line i, with its decorators."""
    ind = _indent(lines[i])
    start = i
    while start > 0 and lines[start - 1].strip().startswith("@") and _indent(lines[start - 1]) == ind:
        start -= 1
    header = lines[i].split("#")[0].rstrip()
    if header.endswith(":") or (header.endswith(")") and "(" in header and "{" not in header
                                and i + 1 < len(lines) and lines[i + 1].rstrip().endswith(":")):
        end = i + 1
        while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > ind):
            end += 1
        while end > i + 1 and not lines[end - 1].strip():
            end -= 1
        return start, end
    depth, seen = 0, False
    for j in range(i, len(lines)):
        for ch in lines[j]:
            if ch == "{":
                depth, seen = depth + 1, True
            elif ch == "}":
                depth -= 1
        if seen and depth <= 0:
            return start, j + 1
        if not seen and j - i >= 4:
            return None
    return None


def _segments(block: list[str]) -> list[tuple[tuple[int, str, str], list[str]]] | None:
    """The block split into top-level definitions (decorators/comments kept with them)."""
    nonblank = [b for b in block if b.strip()]
    if not nonblank:
        return None
    base = min(_indent(b) for b in nonblank)
    heads = [k for k, b in enumerate(block) if _indent(b) == base and _def_at(b)]
    if not heads:
        return None
    first_code = next(k for k, b in enumerate(block) if b.strip() and not _is_attached(b))
    if first_code != heads[0]:
        return None  # code before the first definition: imports, statements... a whole file
    cuts = []
    for h in heads:
        s = h
        while s > 0 and block[s - 1].strip() and _is_attached(block[s - 1]) and _indent(block[s - 1]) == base:
            s -= 1
        cuts.append(s)
    cuts[0] = 0
    segs = []
    for n, (h, s) in enumerate(zip(heads, cuts)):
        e = cuts[n + 1] if n + 1 < len(cuts) else len(block)
        seg = block[s:e]
        while seg and not seg[-1].strip():
            seg.pop()
        segs.append((_def_at(block[h]), seg))
    return segs


def _find_def(lines: list[str], kind: str, name: str) -> int | None:
    for i, line in enumerate(lines):
        d = _def_at(line)
        if d and d[1] == kind and d[2] == name:
            return i
    return None


def apply_partial(file_lines: list[str], block: list[str]) -> list[str] | None:
    """The file with the block's definitions swapped in, or None if the block is a whole file."""
    if len(block) >= PARTIAL_MAX_SHARE * len(file_lines):
        return None
    segs = _segments(block)
    if not segs or all(_find_def(file_lines, kind, name) is None for (_, kind, name), _ in segs):
        return None
    lines = list(file_lines)
    after: int | None = None
    for (ind, kind, name), seg in segs:
        i = _find_def(lines, kind, name)
        if i is None:
            at = after if after is not None else len(lines)
            insert = ([""] if at > 0 and lines[at - 1].strip() else []) + seg
            lines[at:at] = insert
            after = at + len(insert)
            continue
        span = extent(lines, i)
        if span is None:
            return None
        shift = _indent(lines[i]) - ind
        pad = lines[i][:shift] if shift > 0 else ""
        moved = [(pad + s if shift > 0 else s[min(-shift, _indent(s)):]) if s.strip() else s
                 for s in seg]
        lines[span[0]:span[1]] = moved
        after = span[0] + len(moved)
    return lines

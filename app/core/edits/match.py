"""Find where a SEARCH block (or a diff hunk) sits in a file, tolerantly, as Aider does.

Tried in order, stopping at the first level that finds anything:
1. exact lines;
2. ignoring trailing whitespace;
3. ignoring indentation (the replacement is re-indented by the same offset, so a model that
   dropped the indentation of a method still edits it in place);
4. ignoring blank lines as well.
A block that matches nowhere, or in more than one place, is an error that says where the
closest lines are, or where the matches are.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable

from app.core.errors import UserError


class MatchError(UserError, ValueError):
    """A SEARCH block or hunk that cannot be placed; the message shows which lines."""


@dataclass
class Match:
    start: int            # first matched line (0-based, in the file)
    end: int              # one past the last matched line
    replacement: list[str]


def _indent(s: str) -> str:
    return s[: len(s) - len(s.lstrip())]


def _reindent(search: list[str], found: list[str], replace: list[str]) -> list[str]:
    """Shift ``replace`` by the indentation difference between ``search`` and the file."""
    s_first = next((s for s in search if s.strip()), None)
    f_first = next((f for f in found if f.strip()), None)
    if s_first is None or f_first is None:
        return replace
    s_ind, f_ind = _indent(s_first), _indent(f_first)
    if s_ind == f_ind:
        return replace
    if f_ind.endswith(s_ind):  # the file is indented more: add the difference
        extra = f_ind[: len(f_ind) - len(s_ind)]
        return [extra + r if r.strip() else r for r in replace]
    if s_ind.endswith(f_ind):  # the file is indented less: remove the difference where present
        cut = s_ind[: len(s_ind) - len(f_ind)]
        return [r[len(cut):] if r.startswith(cut) else r for r in replace]
    return replace


def _find_all(file_keys: list[str], search_keys: list[str]) -> list[int]:
    """Every start of ``search_keys`` in ``file_keys``; ``list.index`` finds the candidates, so a
    20,000-line file and 2,000 hunks do not copy a slice at every line for every hunk."""
    n, out, i = len(search_keys), [], 0
    last = len(file_keys) - n
    while i <= last:
        try:
            i = file_keys.index(search_keys[0], i, last + 1)
        except ValueError:
            break
        if file_keys[i:i + n] == search_keys:
            out.append(i)
        i += 1
    return out


def _level(file_lines: list[str], search: list[str], key: Callable[[str], str],
           skip_blank: bool) -> list[tuple[int, int]]:
    if skip_blank:
        idx = [i for i, f in enumerate(file_lines) if f.strip()]
        fk = [key(file_lines[i]) for i in idx]
        sk = [key(s) for s in search if s.strip()]
        if not sk:
            return []
        return [(idx[p], idx[p + len(sk) - 1] + 1) for p in _find_all(fk, sk)]
    fk = file_lines if key is _same else [key(f) for f in file_lines]
    sk = [key(s) for s in search]
    return [(p, p + len(sk)) for p in _find_all(fk, sk)]


def _same(s: str) -> str:
    return s


LEVELS: list[tuple[Callable[[str], str], bool, bool]] = [
    (_same, False, False),
    (lambda s: s.rstrip(), False, False),
    (lambda s: s.strip(), False, True),
    (lambda s: s.strip(), True, True),
]


def find_block(file_lines: list[str], search: list[str], replace: list[str], what: str,
               hint_line: int | None = None) -> Match:
    """Where ``search`` is in ``file_lines`` and what replaces it.

    ``hint_line`` (1-based, from a diff header) picks the nearest of several matches; without
    it several matches are an error, because guessing would edit the wrong place.
    """
    if not search:
        raise MatchError(f"{what} has an empty SEARCH part, so it says nowhere to edit.")
    levels = LEVELS
    if any(s.strip() for s in search):
        # Blank lines around a SEARCH block that the REPLACE part keeps too are noise more often
        # than meaning: drop them from both, so they cannot make a block miss.
        while not search[0].strip() and replace and replace[0] == search[0]:
            search, replace = search[1:], replace[1:]
        while not search[-1].strip() and replace and replace[-1] == search[-1]:
            search, replace = search[:-1], replace[:-1]
    else:
        levels = LEVELS[:2]  # only blank lines: nothing to be tolerant about
    for key, skip_blank, reindent in levels:
        spans = _level(file_lines, search, key, skip_blank)
        if not spans:
            continue
        if len(spans) > 1:
            if hint_line is None:
                where = ", ".join(f"{a + 1}-{b}" for a, b in spans[:5])
                raise MatchError(f"{what} matches {len(spans)} places (lines {where}); "
                                 "it needs more lines around the change to be unique.")
            spans.sort(key=lambda ab: abs(ab[0] + 1 - hint_line))
        a, b = spans[0]
        repl = _reindent(search, file_lines[a:b], replace) if reindent else list(replace)
        return Match(a, b, repl)
    raise MatchError(_no_match_message(file_lines, search, what))


CLOSEST_LINES = 6        # the closest place is sought for the first lines of the block only...
CLOSEST_LINE_CHARS = 200  # ...each cut to this: a character diff of whole 200 KB blocks never ends


def _no_match_message(file_lines: list[str], search: list[str], what: str) -> str:
    n = len(search)
    k = min(n, CLOSEST_LINES)
    cut = [f.strip()[:CLOSEST_LINE_CHARS] for f in file_lines]
    # The block is the fixed side, so its character index is built once, not once per window.
    sm = difflib.SequenceMatcher(None, "", "\n".join(s.strip()[:CLOSEST_LINE_CHARS] for s in search[:k]),
                                 autojunk=False)
    best, best_at = 0.0, -1
    for i in range(max(1, len(file_lines) - n + 1)):
        sm.set_seq1("\n".join(cut[i:i + k]))
        if sm.real_quick_ratio() <= best or sm.quick_ratio() <= best:
            continue
        r = sm.ratio()
        if r > best:
            best, best_at = r, i
    shown = "\n".join(f"  {_short(s)}" for s in search[:6]) + ("\n  …" if n > 6 else "")
    msg = f"{what} does not match the file. It looks for:\n{shown}"
    if best_at >= 0 and best >= 0.5:
        msg += (f"\nClosest are lines {best_at + 1}-{min(best_at + n, len(file_lines))} "
                f"({best:.0%} alike):\n"
                + "\n".join(f"  {_short(f)}" for f in file_lines[best_at:best_at + min(n, 6)]))
    return msg


def _short(line: str) -> str:
    """A line as shown in a message: a 200 KB line would bury the message."""
    return line if len(line) <= CLOSEST_LINE_CHARS else line[:CLOSEST_LINE_CHARS] + " …"

"""The syntax check: does a planned or written file still parse?

Why tree-sitter and not each language's compiler: it is already here for every indexed language
(the grammar wheels of index/grammars.py), parses a large file in milliseconds (fast enough to
run on every planned file, before and after), and does not depend on which version of Python,
Node or Go the project uses. The price: a grammar accepts a little more than the compiler does
(tree-sitter-python does not check indentation inside a block), so a clean result means "no
error a parser can see", not "compiles".

Blame: a change is only charged with the errors it introduces. ``introduced_errors`` compares
the errors before and after (an error survives a change when its message is the same and its
line is the same line of the old file or has the same text), so a file that was broken already
does not make every hunk red. ``problems_by_hunk`` then hangs each new error on the hunk that
caused it: the first hunk its span overlaps, else the nearest hunk above it (an unclosed bracket
shows up below the hunk that opened it), else the first hunk. The errors are computed with all
hunks applied: a caller that lets the user reject hunks may re-run it on the accepted ones.

No grammar for the language (or text that grammar's native code is known to crash on, see
``grammars.native_crash_risk``): None, meaning "not checked", never "no errors".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from app.core.edits.plan import line_opcodes
from app.core.index.grammars import GRAMMARS, native_crash_risk, parser_for
from app.core.index.walk import language_of

MAX_PROBLEMS = 20               # per file: the first few say enough, and the list stays short
MAX_BYTES = 4 * 1024 * 1024     # past this a file is generated or data: not checked (None)
_NEAR = 30                      # characters of the offending text quoted in a message


@dataclass(frozen=True)
class SyntaxProblem:
    """One place the parser could not make sense of. Lines and columns count from 1; ``end_line``
    is the last line of the unparsable stretch (the same line for a missing token)."""

    line: int
    message: str
    column: int = 1
    end_line: int = 0

    def __post_init__(self) -> None:
        if self.end_line < self.line:
            object.__setattr__(self, "end_line", self.line)

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class HunkLike(Protocol):
    """What ``problems_by_hunk`` needs of a hunk (edits/plan.py's ``Hunk`` has it): its index
    and the 0-based range [new_start, new_end) it occupies in the new file."""

    index: int
    new_start: int
    new_end: int


def checkable(path: str) -> bool:
    """Whether ``path``'s language has a grammar here (so ``syntax_errors`` can say something)."""
    language = language_of(path)
    return language is not None and language in GRAMMARS and parser_for(language) is not None


def syntax_errors(path: str, text: str) -> list[SyntaxProblem] | None:
    """The syntax errors in ``text`` (the content of ``path``; the name picks the grammar), at
    most MAX_PROBLEMS, in file order. None when the language cannot be checked here."""
    language = language_of(path)
    if language is None or language not in GRAMMARS:
        return None
    data = text.encode("utf-8", errors="surrogatepass")
    if len(data) > MAX_BYTES or native_crash_risk(language, data):
        return None
    parser = parser_for(language)
    if parser is None:
        return None
    root = parser.parse(data).root_node
    if not root.has_error:
        return []
    lines = data.split(b"\n")
    problems: list[SyntaxProblem] = []
    stack = [root]
    while stack and len(problems) < MAX_PROBLEMS:
        node = stack.pop()
        if node.is_missing or node.type == "ERROR":
            problems.append(_problem(node, lines))
            continue  # an error inside an error says nothing new
        # children in reverse so the first one is looked at first (file order)
        stack.extend(c for c in reversed(node.children) if c.has_error or c.is_missing)
    problems.sort(key=lambda p: (p.line, p.column))
    return problems


def _problem(node, lines: list[bytes]) -> SyntaxProblem:
    row, col = node.start_point
    end_row = node.end_point[0]
    line = lines[row] if row < len(lines) else b""
    column = len(line[:col].decode("utf-8", errors="replace")) + 1
    if node.is_missing:
        return SyntaxProblem(row + 1, f"missing {_token(node.type)}", column, row + 1)
    shown = (node.text or b"").decode("utf-8", errors="replace").strip().split("\n", 1)[0]
    if len(shown) > _NEAR:
        shown = shown[:_NEAR - 1] + "…"
    # An error that ends at the start of a line does not reach into that line.
    if end_row > row and node.end_point[1] == 0:
        end_row -= 1
    return SyntaxProblem(row + 1, f"cannot parse near {shown!r}" if shown else "cannot parse here",
                         column, end_row + 1)


def _token(kind: str) -> str:
    """A missing node's type is the token the parser wanted: ')' or a kind such as identifier."""
    return repr(kind) if not kind.replace("_", "").isalnum() else kind.replace("_", " ")


def introduced_errors(path: str, old_text: str | None, new_text: str) -> list[SyntaxProblem] | None:
    """The errors of ``new_text`` that were not already in ``old_text`` (None or "" for a new
    file). None when the language cannot be checked."""
    after = syntax_errors(path, new_text)
    if not after:
        return after
    before = syntax_errors(path, old_text) if old_text else []
    if not before:
        return after
    old_lines, new_lines = old_text.split("\n"), new_text.split("\n")
    to_old = _line_map(old_lines, new_lines)
    unmatched = list(before)
    fresh: list[SyntaxProblem] = []
    for p in after:
        text = _line_text(new_lines, p.line)
        match = next((o for o in unmatched if o.message == p.message and
                      (to_old.get(p.line) == o.line or (text and _line_text(old_lines, o.line) == text))), None)
        if match is None:
            fresh.append(p)
        else:
            unmatched.remove(match)
    return fresh


def problems_by_hunk(path: str, old_lines: Sequence[str] | None, new_lines: Sequence[str],
                     hunks: Sequence[HunkLike]) -> dict[int, list[SyntaxProblem]] | None:
    """The syntax errors the change introduces, keyed by the index of the hunk they are charged
    to (see the module docstring). ``old_lines``/``new_lines`` are line contents without their
    endings (``FileChange.original.contents`` and ``FileChange.new_lines``); ``old_lines`` is None
    for a new file. Empty when the change breaks nothing; None when the language cannot be
    checked."""
    errors = introduced_errors(path, None if old_lines is None else "\n".join(old_lines), "\n".join(new_lines))
    if errors is None:
        return None
    out: dict[int, list[SyntaxProblem]] = {}
    if not errors or not hunks:
        return out
    for p in errors:
        out.setdefault(_blamed(p, hunks), []).append(p)
    return out


def _blamed(p: SyntaxProblem, hunks: Sequence[HunkLike]) -> int:
    first, last = p.line - 1, p.end_line - 1  # 0-based rows of the new file
    for h in hunks:
        # a pure deletion occupies no line: it sits between rows new_start - 1 and new_start
        lo, hi = (h.new_start, h.new_end - 1) if h.new_end > h.new_start else (h.new_start - 1, h.new_start)
        if lo <= last and first <= hi:
            return h.index
    above = [h for h in hunks if h.new_start <= first]
    return (above[-1] if above else hunks[0]).index


def _line_map(old: list[str], new: list[str]) -> dict[int, int]:
    """1-based new line → 1-based old line, for the lines the change left alone."""
    out: dict[int, int] = {}
    for tag, i1, i2, j1, _j2 in line_opcodes(old, new):
        if tag == "equal":
            for k in range(i2 - i1):
                out[j1 + k + 1] = i1 + k + 1
    return out


def _line_text(lines: list[str], line: int) -> str:
    return lines[line - 1].strip() if 0 < line <= len(lines) else ""

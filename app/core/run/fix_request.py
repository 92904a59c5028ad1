"""The change request a failing test run becomes, and which executed code it shows, in a budget.

Why parts of files: the edit prompt shows whole files, and a real project's modules are far
bigger than a small model's room (click's core.py is some 35,000 tokens; the room for a fix at
the default 4096-token context is about 1,400 for everything). So the request itself carries
the functions the failing test ran, nearest the failure first (``Trace.ranked``): a small file
whole (it then goes first in the edit prompt's files, where it fits by construction), a small
function whole, and of a big one its header and the lines the test ran (gaps shown as ``...``),
around its most suspect line, cut to the room left. The bug is on a line the test ran, so the
lines it ran are the ones worth the room. The answer formats the planner takes fit this: a
complete function for one shown whole (``edits.partial`` puts it in place), a SEARCH/REPLACE
block for one shown in part (a complete function there would drop the lines left out).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from app.core.run.trace import Trace, TracedFunction


class SuiteRun(Protocol):
    """What a request is built from: ``project_tests.SuiteRun`` (not imported here, since
    project_tests imports this module)."""

    result: Any
    output: str
    files: list[str]
    trace: Trace | None
    trace_note: str

ERROR_TAIL = 3000     # characters of the output's end at most
# A fix request's text and its whole files, in tokens, where the caller knows no better
# (fix_budget): the app's default context (4096) less the answer's reserve (2048), 80 % of it,
# less the system prompt and the edit instructions.
FIX_BUDGET_TOKENS = 1250
TAIL_SHARE = 0.4      # of that, the output's end at most; the executed code gets the rest
_PROGRESS = re.compile(r"^[.sxXFE]+\s*(\[\s*\d+%\])?$")  # pytest -q's progress lines

EXCERPTS_HEAD = ("Code the failing test ran, nearest the failure first (\"...\" marks lines left out). To change a "
                 "function shown whole, write its file's path and the complete new function; one shown in part, "
                 "its path and a SEARCH/REPLACE block (<<<<<<< SEARCH, the exact old lines, =======, the new "
                 "lines, >>>>>>> REPLACE):")
WHOLE_SHARE = 0.34     # a file is shown whole when it costs at most this share of the budget
FUNCTION_SHARE = 0.25  # a function whole when it costs at most this share; else the lines the test ran,
SLICE_SHARE = 0.3      # ... as many as this share holds
MAX_EXCERPTS = 12
MIN_USEFUL = 40        # tokens: less room than this ends the excerpts
_DEF = re.compile(r"^(\s*)(?:async\s+)?(?:def|class)\s")


@dataclass(frozen=True)
class Excerpt:
    path: str
    first: int               # the definition's lines, 1-based, inclusive
    last: int
    name: str
    lines: tuple[int, ...]   # the lines shown (1-based)
    block: str               # as the request shows it


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def def_span(lines: list[str], i: int) -> tuple[int, int]:
    """[start, end) of the Python definition whose header is line ``i`` (0-based): its
    decorators, a signature over several lines, and the body (deeper-indented or blank lines)."""
    ind = _indent(lines[i])
    start = i
    while start > 0 and lines[start - 1].strip().startswith("@") and _indent(lines[start - 1]) == ind:
        start -= 1
    j, depth = i, 0
    while j < min(len(lines), i + 40):
        code = lines[j].split("#", 1)[0]
        depth += sum(code.count(c) for c in "([{") - sum(code.count(c) for c in ")]}")
        if depth <= 0 and code.rstrip().endswith(":"):
            break
        j += 1
    end = j + 1
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > ind):
        end += 1
    while end > j + 1 and not lines[end - 1].strip():
        end -= 1
    return start, end


def enclosing_def(lines: list[str], line: int) -> int | None:
    """The 0-based header line of the definition at or around 1-based ``line`` (a lambda's or a
    comprehension's function), or None at module level."""
    i = min(max(line - 1, 0), len(lines) - 1)
    if _DEF.match(lines[i]):
        return i
    ind = _indent(lines[i]) if lines[i].strip() else 1 << 30
    for k in range(i - 1, -1, -1):
        if lines[k].strip() and _indent(lines[k]) < ind:
            if _DEF.match(lines[k]):
                return k
            ind = _indent(lines[k])
            if ind == 0:
                return None
    return None


def _render(f: TracedFunction, lines: list[str], shown: list[int], span: tuple[int, int]) -> str:
    """The shown lines (0-based) with "..." where lines are left out."""
    out: list[str] = []
    prev = span[0] - 1
    for i in shown:
        if i > prev + 1:
            out.append(" " * _indent(lines[i]) + "...")
        out.append(lines[i])
        prev = i
    if prev < span[1] - 1:
        out.append(" " * (_indent(lines[span[0]]) + 4) + "...")
    a, b = span[0] + 1, span[1]
    return f"{f.path} lines {a}-{b} ({f.name}{'' if len(shown) == b - a + 1 else ', in part'}):\n" \
           f"```python\n" + "\n".join(out) + "\n```\n"


def _excerpt(f: TracedFunction, lines: list[str], span: tuple[int, int], left: int, budget: int,
             count: Callable[[str], int]) -> Excerpt | None:
    """The function whole if it is small and fits; else its header and the lines the test ran,
    the ones nearest its most suspect line first, as many as fit."""
    a, b = span
    every = list(range(a, b))
    block = _render(f, lines, every, span)
    if count(block) <= min(left, budget * FUNCTION_SHARE):
        return Excerpt(f.path, a + 1, b, f.name, tuple(i + 1 for i in every), block)
    header = min(max(f.first - 1, a), b - 1)
    ran = sorted({i - 1 for x, y in f.lines for i in range(x, y + 1) if a <= i - 1 < b and i - 1 > header})
    if not ran:
        ran = list(range(max(header + 1, f.last - 4), min(b, f.last + 1)))
    hot = (f.hot or f.last) - 1
    ran.sort(key=lambda i: abs(i - hot))
    keep = len(ran)
    while keep:
        shown = list(range(a, header + 1)) + sorted(ran[:keep])
        block = _render(f, lines, shown, span)
        if count(block) <= min(left, budget * SLICE_SHARE):
            return Excerpt(f.path, a + 1, b, f.name, tuple(i + 1 for i in shown), block)
        keep = min(keep - 1, int(keep * 0.7))
    return None


def plan_excerpts(root: Path, ranked: list[TracedFunction], budget: int,
                  count: Callable[[str], int]) -> tuple[list[str], list[Excerpt]]:
    """(files to show whole, excerpts) within ``budget`` tokens, nearest the failure first: a
    small file (at most ``WHOLE_SHARE`` of the budget) whole, else the functions the test ran.
    Module-level code is left out (it ran at import, not for the test)."""
    whole: list[str] = []
    out: list[Excerpt] = []
    texts: dict[str, list[str] | None] = {}
    left = budget
    for f in ranked:
        if left < MIN_USEFUL or len(out) >= MAX_EXCERPTS:
            break
        if f.path in whole or f.name.endswith("<module>"):
            continue
        if f.path not in texts:
            try:
                texts[f.path] = (root / f.path).read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                texts[f.path] = None
        lines = texts[f.path]
        if not lines or f.first > len(lines):
            continue
        size = sum(len(ln) + 1 for ln in lines)
        if all(e.path != f.path for e in out) and size <= 6 * budget * WHOLE_SHARE:  # no tokenizing a big one
            cost = count(f"{f.path}\n```python\n" + "\n".join(lines) + "\n```\n")
            if cost <= left and cost <= budget * WHOLE_SHARE:
                whole.append(f.path)
                left -= cost
                continue
        header = enclosing_def(lines, f.first)
        if header is None:
            continue
        span = def_span(lines, header)
        if any(e.path == f.path and e.first <= span[0] + 1 and span[1] <= e.last for e in out):
            continue  # inside a function already shown
        ex = _excerpt(f, lines, span, left, budget, count)
        if ex is not None:
            out.append(ex)
            left -= count(ex.block)
    return whole, out


@dataclass
class FixRequest:
    """A failing run as a change request: its text, the files for the edit prompt (those meant
    to be shown whole first) and the excerpts of executed code the text shows."""

    text: str
    files: list[str]
    excerpts: list[Excerpt] = field(default_factory=list)


def rough_tokens(text: str) -> int:
    """A generous token estimate where no tokenizer is at hand (code runs 3-4 characters a token)."""
    return len(text) // 3 + 1


def fix_request(run: SuiteRun, note: str = "", *, budget_tokens: int = FIX_BUDGET_TOKENS,
                count: Callable[[str], int] = rough_tokens) -> FixRequest:
    """The change request a failing run becomes, within ``budget_tokens`` for its text and the
    files shown whole (what the edit prompt has left after its instructions; ``fix_budget``).
    The end of the output comes first (at most ``TAIL_SHARE`` of the budget); then, from the
    trace, small files whole and the functions of big ones, nearest the failure first, as
    long as they fit. The edit prompt shows ``files`` in order: the whole ones fit by design."""
    head = ("The project's tests fail. Change the code so that they pass; change a test "
            "only if the test itself is wrong.")
    if run.trace is not None and run.trace.test:
        head += f"\n\nFailing test: {run.trace.test}"
    head += "\n\nFiles involved: " + (", ".join(run.files) if run.files else "(none named in the output)")
    extra = "\n".join(t for t in (run.trace_note, note.strip()) if t)
    extra = f"\n{extra}" if extra else ""
    tail = _tail(run.output, int(budget_tokens * TAIL_SHARE), count) or run.result.summary()
    text = f"{head}\n\nTest output:\n\n```\n{tail}\n```{extra}"
    if run.trace is None:
        return FixRequest(text, list(run.files))
    root = Path(run.trace.root) if run.trace.root else None
    left = budget_tokens - count(text) - count(EXCERPTS_HEAD) - 16  # 16: the joins, counted apart
    whole, excerpts = plan_excerpts(root, run.trace.ranked(), left, count) if root else ([], [])
    if excerpts:
        text += "\n\n" + EXCERPTS_HEAD + "\n\n" + "\n".join(e.block for e in excerpts)
    files = whole + [f for f in run.files if f not in whole]
    return FixRequest(text, files, excerpts)


def fix_request_for_tests(run: SuiteRun, note: str = "", **budget) -> str:
    """The request's text alone (``fix_request`` has the files to show with it)."""
    return fix_request(run, note, **budget).text


def fix_budget(n_ctx: int, max_tokens: int, count: Callable[[str], int], system_prompt: str = "") -> int:
    """Tokens for a fix request and its whole files, as ``ChatService.prompt`` gives a change
    request room (80 % of the context left after the answer's reserve, less the system prompt)
    and ``build_edit_prompt`` spends it (its instructions and a 64-token margin first). Standing
    rules, when there are any, take from the same room: the estimate is then a little high and
    the edit prompt names, rather than shows, a whole file that no longer fits."""
    from app.core.chat.service import answer_reserve
    from app.core.edits.prompt import EDIT_INSTRUCTIONS
    room = int((n_ctx - answer_reserve(n_ctx, max_tokens)) * 0.8) - count(system_prompt)
    return max(0, room - count(EDIT_INSTRUCTIONS) - 64)


def _tail(output: str, budget: int, count: Callable[[str], int]) -> str:
    """The end of the output without pytest's progress lines, whole lines, within
    ``ERROR_TAIL`` characters and ``budget`` tokens."""
    lines = [ln for ln in output.rstrip().splitlines() if not _PROGRESS.match(ln)]
    text = "\n".join(lines)
    lines = text[-ERROR_TAIL:].splitlines()
    if len(text) > ERROR_TAIL and lines:
        lines = lines[1:]  # a cut first line
    while lines and count("\n".join(lines)) > budget:
        lines = lines[max(1, len(lines) // 8):]
    return "\n".join(lines)

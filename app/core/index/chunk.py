"""Cut a file into chunks a reader (and the embedder) can take in one go.

Code is cut at definitions (functions, classes, methods: ``syntax`` reads them), because a whole
function is what a question is usually about and what an answer should cite. A definition
that does not fit the embedder's 256-token window is split: a class into its header and its
methods, anything else into overlapping line windows that repeat the signature, so every
part still says what it belongs to. Text between definitions (imports, constants) and files
without a grammar are cut into overlapping line windows. Line numbers are 1-based and
inclusive and always match the file as read.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from itertools import accumulate
from typing import Callable

from app.core.index.grammars import GRAMMARS, Grammar, native_crash_risk, parser_for
from app.core.index.syntax import FoundDefinition, find_definitions, source_lines

MAX_CHUNK_TOKENS = 224      # the window is 256; the rest is for the path/symbol header
WINDOW_LINES = 40
MAX_NESTING = 32      # definitions nested deeper are cut by windows (no recursion per level)
OVERLAP_LINES = 8

_WORDISH = re.compile(r"\w+|[^\w\s]")


def approx_tokens(text: str) -> int:
    """A stand-in for the embedder's tokenizer: words and punctuation marks."""
    return len(_WORDISH.findall(text))


def embed_text(path: str, symbol: str, context: str, text: str) -> str:
    """What the embedder sees: where the code is, what it belongs to, then the code."""
    head = f"{path} {symbol}".rstrip()
    ctx = f"{context}\n" if context else ""
    return f"{head}\n{ctx}{text}"


@dataclass(frozen=True)
class Chunk:
    path: str
    start_line: int      # 1-based, inclusive
    end_line: int        # inclusive
    symbol: str          # "Class.method", "" for windows outside any definition
    language: str
    kind: str            # the definition's node type, "window", or "section"
    text: str            # exactly lines start_line..end_line of the file
    context: str = ""    # the signature, repeated for the later parts of a split definition

    @property
    def citation(self) -> str:
        return f"{self.path}:{self.start_line}-{self.end_line}"

    def embed_text(self) -> str:
        return embed_text(self.path, self.symbol, self.context, self.text)


class _Lines:
    """The file's lines with per-line token counts, so ranges are measured without re-tokenizing."""

    def __init__(self, text: str, count_tokens: Callable[[str], int]):
        self.lines = source_lines(text)
        self._cum = [0, *accumulate(count_tokens(ln) if ln.strip() else 0 for ln in self.lines)]

    def __len__(self) -> int:
        return len(self.lines)

    def tokens(self, a: int, b: int) -> int:
        """Tokens in lines a..b (0-based, inclusive)."""
        return self._cum[b + 1] - self._cum[a]

    def text(self, a: int, b: int) -> str:
        return "\n".join(self.lines[a:b + 1])

    def blank(self, a: int, b: int) -> bool:
        """True when lines a..b hold nothing worth a chunk (blank lines, lone braces)."""
        return not any(ch.isalnum() for ln in self.lines[a:b + 1] for ch in ln)


def _nested(node, grammar: Grammar, prefix: str) -> list[FoundDefinition]:
    """Definitions inside a definition's body (a class's methods)."""
    for child in node.named_children:
        if child.type in grammar.containers or child.type in ("body", "class_body", "block"):
            found = find_definitions(child, grammar, prefix)
            if found:
                return found
    return []


class _Cutter:
    def __init__(self, path: str, language: str, lines: _Lines, max_tokens: int,
                 count_tokens: Callable[[str], int]):
        self.path, self.language, self.lines = path, language, lines
        self.max_tokens, self.count = max_tokens, count_tokens
        self.out: list[Chunk] = []

    def emit(self, a: int, b: int, symbol: str, kind: str, context: str = "") -> None:
        if b < a or self.lines.blank(a, b):
            return
        self.out.append(Chunk(self.path, a + 1, b + 1, symbol, self.language, kind,
                              self.lines.text(a, b), context))

    def windows(self, a: int, b: int, symbol: str, kind: str, context: str = "",
                first_has_context: bool = False) -> None:
        """Overlapping line windows over a..b, each within the token budget. ``context`` is
        repeated in every window (but the first when it already starts with it)."""
        budget = max(32, self.max_tokens - (self.count(context) if context else 0))
        start = a
        while start <= b:
            end = start
            while (end < b and end + 1 - start < WINDOW_LINES
                   and self.lines.tokens(start, end + 1) <= budget):
                end += 1
            self.emit(start, end, symbol, kind, "" if start == a and first_has_context else context)
            if end >= b:
                break
            if b - end <= OVERLAP_LINES:
                # a few lines left: one last window ending at b, reaching back as far as fits,
                # rather than a crumb of one or two lines
                start = end + 1
                while start - 1 > a and self.lines.tokens(start - 1, b) <= budget and b - start + 1 < WINDOW_LINES:
                    start -= 1
                self.emit(start, b, symbol, kind, context)
                break
            start = max(end + 1 - OVERLAP_LINES, start + 1)
            if self.lines.tokens(start, end) >= budget // 2:  # overlap must leave room to move on
                start = end + 1

    def lead(self, floor: int, start: int) -> int:
        """Comment lines right above a definition (its doc comment) belong to it."""
        while start - 1 >= floor and self.lines.lines[start - 1].lstrip().startswith(_COMMENT):
            start -= 1
        return start

    def gaps(self, a: int, b: int, defs: list[FoundDefinition], symbol: str, context: str,
             depth: int = 0) -> None:
        """Cover a..b: definitions by ``definition`` (small neighbours packed into one chunk up
        to the budget, so a class of one-line methods is not forty crumbs), the text between
        them by windows."""
        pos, i = a, 0
        fits = [self.lines.tokens(d.start, d.end) <= self.max_tokens for d in defs]
        while i < len(defs):
            d = defs[i]
            start = self.lead(pos, d.start) if d.start >= pos else pos
            if start > pos:
                self.windows(pos, start - 1, symbol, "window", context)
            if fits[i]:
                j = i
                while (j + 1 < len(defs) and fits[j + 1] and defs[j + 1].start > defs[j].end
                       and self.lines.tokens(start, defs[j + 1].end) <= self.max_tokens):
                    j += 1
                group = defs[i:j + 1]
                kind = d.kind if j == i else "definitions"
                self.emit(start, defs[j].end, ", ".join(x.symbol for x in group if x.symbol), kind, context)
                pos, i = max(pos, defs[j].end + 1), j + 1
            else:
                self.definition(d, start, depth)
                pos, i = max(pos, d.end + 1), i + 1
        if pos <= b:
            self.windows(pos, b, symbol, "window", context)

    def definition(self, d: FoundDefinition, start: int, depth: int = 0) -> None:
        """A definition too big for one chunk (``start`` includes its leading comments). Below
        ``MAX_NESTING`` levels (a generated file, 5,000 nested classes) it is cut by windows: each
        level costs stack frames, and the recursion limit must not cost the file."""
        signature = self.lines.lines[d.start].strip()
        grammar = GRAMMARS[self.language]
        inner = [] if depth >= MAX_NESTING else [x for x in _nested(d.node, grammar, d.symbol) if x.start > d.start]
        if inner:
            # the header (class line, docstring, fields) up to the first method, then the methods
            head_end = self.lead(d.start + 1, inner[0].start) - 1
            if head_end >= start:
                self.windows(start, head_end, d.symbol, d.kind, signature, True)
            self.gaps(head_end + 1, d.end, inner, d.symbol, signature, depth + 1)
        else:
            self.windows(start, d.end, d.symbol, d.kind, signature, start == d.start)


_COMMENT = ("#", "//", "/*", "*", "--", ";;", "@")
_HEADING = re.compile(r"^#{1,6}\s+\S")


def chunk_file(path: str, text: str, language: str,
               count_tokens: Callable[[str], int] = approx_tokens,
               max_tokens: int = MAX_CHUNK_TOKENS) -> list[Chunk]:
    """The chunks of one file, in line order."""
    lines = _Lines(text, count_tokens)
    if not len(lines):
        return []
    cut = _Cutter(path, language, lines, max_tokens, count_tokens)
    last = len(lines) - 1
    parser = parser_for(language)
    data = text.encode("utf-8", "surrogatepass")
    if parser is not None and native_crash_risk(language, data):
        parser = None  # cut by lines: a crash here would end the app, not just this file's structure
    if parser is not None:
        try:
            tree = parser.parse(data)
            defs = find_definitions(tree.root_node, GRAMMARS[language])
            cut.gaps(0, last, defs, "", "")
        except Exception:  # noqa: BLE001 - a chunker bug must cost this file its structure, not the project
            logging.getLogger(__name__).warning("chunking %r by its syntax failed; cut by lines", path,
                                                exc_info=True)
            cut = _Cutter(path, language, lines, max_tokens, count_tokens)
            cut.windows(0, last, "", "window")
    elif language == "markdown":
        starts = [i for i, ln in enumerate(lines.lines) if _HEADING.match(ln)]
        bounds = sorted({0, *starts})
        for i, s in enumerate(bounds):
            e = bounds[i + 1] - 1 if i + 1 < len(bounds) else last
            title = lines.lines[s].lstrip("#").strip() if s in starts else ""
            cut.windows(s, e, title, "section", lines.lines[s] if s in starts else "", True)
    else:
        cut.windows(0, last, "", "window")
    return cut.out


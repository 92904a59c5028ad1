"""Where a fenced block of an answer ends, with fences of any length (CommonMark); the fence to
show a file in; the labels that name a block's file (path line, info string, first-line comment).

A fence is three or more backticks or tildes; the block ends at a line holding only the same
character, at least as many (a closing fence has no info string), indented less than four
columns deeper than the opener (deeper is content, as in CommonMark). Inside a four-backtick
fence, ``` lines are content: that is what the prompt shows and asks for (``fence_for``).

Small models still wrap a Markdown file holding ``` blocks in three backticks, so inside a
block the fences that could close it are read as nested blocks: a fence line with an info
string (```` ```bash ````) opens an inner block, and the next bare fence closes that one; only a
bare fence outside inner blocks can close the outer block. A bare inner opener (```` ``` ````
then code) cannot be told from a close by its own line, so:

- in a document (Markdown, reStructuredText, plain text: by the path's extension or the fence
  language), a bare fence followed by a blank line or the end closes the block (a code block
  does not start with a blank line); one followed by more text is taken as an inner opener
  when more bare fences follow it, and the block closes at the last such fence before the
  answer ends or a block for another file starts (a path line, or a path in a fence's info).
  Choosing other than the first bare fence is a guess the caller reports (``guessed``);
- in code, a bare fence closes the block, as it always did; when text follows it at once
  and the next fence is bare too, the block may be cut, which the caller reports
  (``maybe_cut``).

Neither silently truncates: a guess or a possible cut is reported, and a block whose close is
never found is unclosed (the caller decides whether the answer was complete). The look-ahead
past a candidate close has a budget of about the answer's lines, so a pathological
answer stays linear (once it is spent, a bare fence closes a document's block as in code).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

FENCE_LINE = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")
DOC_EXTS = {".md", ".markdown", ".mdown", ".mkd", ".mdx", ".rst", ".txt", ".adoc", ".asciidoc", ".qmd",
            ".rmd", ".textile", ".org"}
DOC_LANGS = {"markdown", "md", "mdx", "rst", "restructuredtext", "text", "txt", "plaintext", "plain",
             "asciidoc", "adoc", "org"}


# ---- the labels that name a block's file ------------------------------------------------------
_EXT = re.compile(r"\.[A-Za-z][\w+-]{0,11}$")
_PATHCHARS = re.compile(r"^[\w.\-/\\+@]+$")
EXTENSIONLESS = {"Makefile", "Dockerfile", "LICENSE", "Procfile", "Gemfile", "Rakefile",
                 "Jenkinsfile", "Vagrantfile", "CMakeLists.txt", ".gitignore", ".env.example"}


def looks_like_path(s: str) -> bool:
    if not s or len(s) > 260 or not _PATHCHARS.match(s):
        return False
    base = s.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    if base in EXTENSIONLESS:
        return True
    return bool(_EXT.search(base)) and any(c.isalpha() for c in base.split(".")[0] or "x")


def path_from_line(line: str) -> str | None:
    """The path on a line such as ``src/app.py``, ``**src/app.py**:``, ``### File: `x.py` ``."""
    s = line.strip()
    if not s or len(s) > 300:
        return None
    s = re.sub(r"^(#{1,6}|\d+\.|[-*>])\s+", "", s)
    for _ in range(2):
        s = s.strip().strip("*_`").strip().rstrip(":").strip().strip("*_`").strip()
        s = re.sub(r"^(file(name)?|path)\s*[:=]\s*", "", s, flags=re.IGNORECASE)
    return s if looks_like_path(s) else None


def path_from_info(info: str) -> str | None:
    """A path in a fence's info string: ``python src/a.py``, ``python:src/a.py``, ``title="a.py"``."""
    for token in info.replace(":", " ").split():
        token = re.sub(r"^(title|file(name)?|path)=", "", token, flags=re.IGNORECASE).strip("\"'`")
        if looks_like_path(token):
            return token
    return None


_COMMENT = re.compile(r"^(?:#|//|--|;|/\*|<!--)\s*(.*?)\s*(?:\*/|-->)?$")


def path_from_comment(line: str) -> str | None:
    """The path in a comment that is a whole line: ``# src/app.py``, ``// File: app.js``, ``<!-- a.html -->``."""
    s = line.strip()
    if len(s) > 300 or s.startswith("#!"):
        return None
    m = _COMMENT.match(s)
    if m is None:
        return None
    body = re.sub(r"^(file(name)?|path)\s*[:=]\s*", "", m.group(1), flags=re.IGNORECASE).strip("`'\"*")
    return body if looks_like_path(body) else None


@functools.lru_cache(maxsize=256)
def glued_language(path: str) -> str | None:
    """The language a path in a fence's info seems glued to (``pythonsrc/app.py``: python), or None."""
    from pygments.lexers import get_lexer_for_filename
    from pygments.util import ClassNotFound
    try:
        aliases = get_lexer_for_filename(path).aliases
    except ClassNotFound:
        return None
    for alias in sorted(aliases, key=len, reverse=True):
        rest = path[len(alias):]
        if len(alias) >= 2 and path.startswith(alias) and rest[:1].isalpha() and "/" in rest and looks_like_path(rest):
            return alias
    return None


# ---- fences ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fence:
    indent: str     # the whitespace before the fence, as written
    char: str       # "`" or "~"
    length: int
    info: str       # the info string, stripped ("" for a bare fence)


def fence_of(line: str) -> Fence | None:
    """The fence a line is, or None. A backtick fence's info string may not hold a backtick
    (CommonMark), so ```` ```x``` ```` is inline code, not a fence."""
    m = FENCE_LINE.match(line)
    if m is None:
        return None
    run, info = m.group(2), m.group(3).strip()
    if run[0] == "`" and "`" in info:
        return None
    return Fence(m.group(1), run[0], len(run), info)


def columns(indent: str) -> int:
    return sum(4 if c == "\t" else 1 for c in indent)


def is_document(path: str | None, lang: str) -> bool:
    """Whether fenced code blocks are ordinary content of this file (Markdown and the like)."""
    if lang in DOC_LANGS:
        return True
    if not path:
        return False
    base = path.replace("\\", "/").rsplit("/", 1)[-1].lower()
    return "." in base and base[base.rindex("."):] in DOC_EXTS


def fence_for(text: str) -> str:
    """Backticks longer than any backtick fence inside ``text`` (at least three), so that a
    file holding ``` lines is shown, and can be answered, without ambiguity. Lines are read
    as the parser reads them (any leading whitespace, any info string)."""
    longest = 0
    for line in text.split("\n"):
        m = FENCE_LINE.match(line)
        if m is not None and m.group(2)[0] == "`":
            longest = max(longest, len(m.group(2)))
    return "`" * max(3, longest + 1)


@dataclass
class BlockEnd:
    end: int | None          # index of the closing fence line; None: never closed
    guessed: bool = False    # a later bare fence than the first was taken as the close
    maybe_cut: bool = False  # the first bare fence closed it, but the text after looks like more of it


class FenceScanner:
    """Where each block of one answer ends (``end``); its fence lines are read once."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        self.fences = [fence_of(line) for line in lines]
        n = len(lines)
        self.next = [n] * (n + 1)   # index of the first fence line at or after k
        for k in range(n - 1, -1, -1):
            self.next[k] = k if self.fences[k] is not None else self.next[k + 1]
        self.budget = n + 64  # look-ahead steps past a candidate close, for the whole answer

    def _relevant(self, k: int, opener: Fence) -> Fence | None:
        f = self.fences[k]
        if (f is None or f.char != opener.char or f.length < opener.length
                or columns(f.indent) - columns(opener.indent) >= 4):
            return None
        return f

    def _label_before(self, k: int) -> bool:
        j = k - 1
        self.budget -= 1
        while j >= 0 and not self.lines[j].strip():
            j -= 1
            self.budget -= 1
        return j >= 0 and path_from_line(self.lines[j]) is not None

    def _text_after(self, k: int) -> bool:
        return k + 1 < len(self.lines) and bool(self.lines[k + 1].strip())

    def end(self, i: int, opener: Fence, document: bool) -> BlockEnd:
        """Where the block opened by ``opener`` on line ``i`` ends (see the module docstring)."""
        n = len(self.lines)
        depth, inner = 0, 0
        first = fallback = None   # the first candidate close; the last one gone past (documents)
        bare_after = False        # a relevant bare fence seen after the first candidate
        k = i + 1
        while True:
            k = self.next[k]
            if k >= n:
                break
            f = self._relevant(k, opener)
            if f is None:
                k += 1
                continue
            if fallback is not None:
                self.budget -= 1
                if (f.info or depth) and ((f.info and path_from_info(f.info)) or self._label_before(k)):
                    return self._chosen(fallback, first, bare_after)  # another file's block starts here
            if depth:
                if not f.info and f.length >= inner:
                    depth = 0
                    bare_after = bare_after or fallback is not None
                k += 1
                continue
            if f.info:
                depth, inner = 1, f.length
                k += 1
                continue
            if first is None:
                first = k
            else:
                bare_after = True
            text_after = self._text_after(k)
            if not document or not text_after or self.budget <= 0:
                if k != first:
                    return BlockEnd(k, guessed=True)
                return BlockEnd(k, maybe_cut=text_after and self._bare_next(k, opener))
            fallback, depth, inner = k, 1, f.length
            k += 1
        if fallback is not None:
            return self._chosen(fallback, first, bare_after)
        return BlockEnd(None)

    def _chosen(self, k: int, first: int | None, bare_after: bool) -> BlockEnd:
        """A document's block closed at ``k``, a candidate gone past (text follows it)."""
        return BlockEnd(k, guessed=True) if k != first else BlockEnd(k, maybe_cut=bare_after)

    def _bare_next(self, k: int, opener: Fence) -> bool:
        """Whether the next fence after line k is a bare one that could have closed this block
        and is not the opener of another file's block."""
        m = self.next[k + 1]
        f = self._relevant(m, opener) if m < len(self.lines) else None
        return f is not None and not f.info and not self._label_before(m)

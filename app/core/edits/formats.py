"""Every edit format the app understands, in one place (as Aider keeps them).

``parse_answer`` turns a model's answer into ``FileEdit``s without looking at the disk:

- **whole file** (the default we ask for: small models get it right): a fenced block whose
  path is on the line before the fence (``src/app.py``, ``**src/app.py**``, ``### src/app.py``,
  ``File: src/app.py``) or in the fence's info string (```` ```python src/app.py ````).
- **SEARCH/REPLACE** blocks (``<<<<<<< SEARCH`` / ``=======`` / ``>>>>>>> REPLACE``),
  fenced or not, with the path on the line before.
- **unified diffs** (```` ```diff ```` or bare ``---``/``+++``/``@@``); line numbers are
  only hints, because models get them wrong.
- ``DELETE path/to/file`` on a line of its own.

What cannot be used becomes a ``ParseProblem`` with the answer line, never an exception:
an answer cut off inside a block proposes nothing for that block (a truncated file would
delete the rest of the real one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

FENCE_OPEN = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")
SEARCH_HEAD = re.compile(r"^\s*<{5,9} ?SEARCH\b.*$")
DIVIDER = re.compile(r"^\s*={5,9}\s*$")
REPLACE_TAIL = re.compile(r"^\s*>{5,9} ?(REPLACE|UPDATED)\b.*$")
HUNK_HEAD = re.compile(r"^@@+\s*-(\d+)(?:,(\d+))?\s+\+(\d+)(?:,(\d+))?\s*@@+.*$")
DELETE_LINE = re.compile(r"^\s*DELETE(?: FILE)?:?\s+`?([^`\s]+)`?\s*$")
# Matched against the stripped line, with no two adjacent \s* (those backtrack quadratically on a
# 200 KB line of spaces), and the words searched for separately.
ELIDED = re.compile(r"(?:#|//|/\*|--|<!--|;)?\s*(?:\.\.\.|…)(.*)", re.DOTALL)
ELIDED_WORDS = re.compile(r"\b(rest|existing|remaining|other|previous|unchanged|same|omitted|code)\b",
                          re.IGNORECASE)
_EXT = re.compile(r"\.[A-Za-z][\w+-]{0,11}$")
_PATHCHARS = re.compile(r"^[\w.\-/\\+@]+$")
EXTENSIONLESS = {"Makefile", "Dockerfile", "LICENSE", "Procfile", "Gemfile", "Rakefile",
                 "Jenkinsfile", "Vagrantfile", "CMakeLists.txt", ".gitignore", ".env.example"}
DIFF_LANGS = {"diff", "patch", "udiff"}


@dataclass
class Replacement:
    """Replace the lines ``search`` with ``replace`` (line contents, no endings)."""

    search: list[str]
    replace: list[str]
    hint_line: int | None = None  # 1-based line in the old file, from a unified diff header
    answer_line: int = 0


@dataclass
class FileEdit:
    path: str                     # as the model wrote it; checked later against the project
    kind: str                     # "whole" | "replace" | "delete"
    fmt: str                      # "whole file" | "search/replace" | "unified diff" | "delete line"
    lines: list[str] = field(default_factory=list)          # kind == "whole": the new content
    replacements: list[Replacement] = field(default_factory=list)  # kind == "replace"
    answer_line: int = 0          # 1-based line of the answer where the edit starts
    create: bool = False          # a unified diff from /dev/null: the file must be new
    guessed: bool = False         # the answer named no file: the request's only file was assumed
    elided: list[int] = field(default_factory=list)  # lines of a whole block that say "... rest unchanged"


@dataclass
class ParseProblem:
    message: str
    path: str | None = None
    answer_line: int = 0


@dataclass
class ParsedAnswer:
    edits: list[FileEdit] = field(default_factory=list)
    problems: list[ParseProblem] = field(default_factory=list)


def looks_like_path(s: str) -> bool:
    if not s or len(s) > 260 or not _PATHCHARS.match(s):
        return False
    base = s.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    if base in EXTENSIONLESS:
        return True
    return bool(_EXT.search(base)) and any(c.isalpha() for c in base.split(".")[0] or "x")


def is_elided(line: str) -> bool:
    """Whether a line of code says code was left out: ``...``, ``# ... rest unchanged``."""
    m = ELIDED.fullmatch(line.strip())
    return m is not None and (not m.group(1).strip() or ELIDED_WORDS.search(m.group(1)) is not None)


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


def _is_close(line: str, fence: str) -> bool:
    s = line.strip()
    return len(s) >= len(fence) and set(s) == {fence[0]}


def _dedent(body: list[str], indent: str) -> list[str]:
    if indent and all(not b.strip() or b.startswith(indent) for b in body):
        return [b[len(indent):] for b in body]
    return body


def _fits(lang: str, path: str) -> bool:
    """Whether a fence language can be the language of ``path`` (no language: yes)."""
    if not lang:
        return True
    from pygments.lexers import get_lexer_for_filename
    from pygments.util import ClassNotFound
    try:
        return lang in get_lexer_for_filename(path).aliases
    except ClassNotFound:
        return False


class _Parser:
    def __init__(self, text: str, default_path: str | None = None):
        self.lines = [line.rstrip("\r") for line in text.split("\n")]
        self.out = ParsedAnswer()
        self.candidate: str | None = None
        self.default_path = default_path

    def problem(self, message: str, path: str | None, line: int) -> None:
        self.out.problems.append(ParseProblem(message, path, line))

    def run(self) -> ParsedAnswer:
        lines, i = self.lines, 0
        while i < len(lines):
            line = lines[i]
            m = FENCE_OPEN.match(line)
            if m:
                i = self._fenced(i, m)
                continue
            if SEARCH_HEAD.match(line):
                j = self._block_end(i)
                self._search_replace(lines[i:j], self.candidate, i + 1)
                self.candidate, i = None, j
                continue
            if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
                j = i + 2
                while j < len(lines) and (lines[j][:1] in (" ", "+", "-", "@", "\\")
                                          or lines[j].startswith(("diff ", "index "))):
                    j += 1
                self._udiff(lines[i:j], self.candidate, i + 1)
                self.candidate, i = None, j
                continue
            d = DELETE_LINE.match(line)
            if d:
                self.out.edits.append(FileEdit(d.group(1), "delete", "delete line", answer_line=i + 1))
                i += 1
                continue
            p = path_from_line(line)
            if p:
                self.candidate = p
            elif line.strip() and not line.rstrip().endswith(":"):
                self.candidate = None
            i += 1
        return self.out

    def _block_end(self, i: int) -> int:
        """End (exclusive) of an unfenced SEARCH/REPLACE run starting at line i."""
        j = i
        while j < len(self.lines):
            if REPLACE_TAIL.match(self.lines[j]):
                j += 1
                if j < len(self.lines) and SEARCH_HEAD.match(self.lines[j]):
                    continue
                return j
            j += 1
        return j

    def _fenced(self, i: int, m: re.Match) -> int:
        indent, fence, info = m.group(1), m.group(2), m.group(3).strip()
        j = i + 1
        while j < len(self.lines) and not _is_close(self.lines[j], fence):
            j += 1
        body = _dedent(self.lines[i + 1:j], indent)
        path = path_from_info(info) or self.candidate
        self.candidate = None
        if j >= len(self.lines):
            if path or any(SEARCH_HEAD.match(b) for b in body):
                self.problem(
                    f"The answer ends inside the code block for {path or 'a SEARCH/REPLACE edit'} "
                    f"(answer line {i + 1}): it was cut off, so that block was not used. "
                    "Ask again, or raise the answer length in Settings.", path, i + 1)
            return j
        lang = info.split()[0].lower() if info.split() else ""
        guessed = False
        if (path is None and self.default_path and any(b.strip() for b in body)
                and lang not in DIFF_LANGS and _fits(lang, self.default_path)):
            path, guessed = self.default_path, True
        if any(SEARCH_HEAD.match(b) for b in body):
            self._search_replace(body, path, i + 2)
        elif lang in DIFF_LANGS or _looks_like_udiff(body):
            self._udiff(body, path, i + 2)
        elif path:
            elided = [i + 2 + k for k, b in enumerate(body) if is_elided(b)]
            self.out.edits.append(FileEdit(path, "whole", "whole file", lines=body, answer_line=i + 1,
                                           elided=elided, guessed=guessed))
        return j + 1

    def _search_replace(self, body: list[str], path: str | None, first_line: int) -> None:
        k, state = 0, None
        search: list[str] = []
        replace: list[str] = []
        start = first_line

        def broken(why: str) -> None:
            self.problem(f"The SEARCH/REPLACE block at answer line {start} {why}; it was not used.", path, start)

        while k < len(body):
            b = body[k]
            if state is None:
                if SEARCH_HEAD.match(b):
                    state, search, replace, start = "search", [], [], first_line + k
                else:
                    p = path_from_line(b)
                    if p:
                        path = p
            elif state == "search":
                if DIVIDER.match(b):
                    state = "replace"
                elif SEARCH_HEAD.match(b) or REPLACE_TAIL.match(b):
                    broken("has no ======= line")
                    state = None
                    continue
                else:
                    search.append(b)
            elif state == "replace":
                if REPLACE_TAIL.match(b):
                    self._add_replacement(path, Replacement(search, replace, answer_line=start), start)
                    state = None
                elif SEARCH_HEAD.match(b):
                    broken("has no >>>>>>> REPLACE line")
                    state = None
                    continue
                else:
                    replace.append(b)
            k += 1
        if state is not None:
            broken("is not finished (no >>>>>>> REPLACE line)")

    def _add_replacement(self, path: str | None, r: Replacement, line: int) -> None:
        if not path:
            self.problem(f"The SEARCH/REPLACE block at answer line {line} names no file: put the "
                         "file's path on the line before it.", None, line)
            return
        last = self.out.edits[-1] if self.out.edits else None
        if last is not None and last.kind == "replace" and last.path == path and last.fmt == "search/replace":
            last.replacements.append(r)
        else:
            self.out.edits.append(FileEdit(path, "replace", "search/replace", replacements=[r], answer_line=line))

    def _udiff(self, body: list[str], path: str | None, first_line: int) -> None:
        old_path = new_path = path
        current: FileEdit | None = None
        hunk: Replacement | None = None

        def start_file(line_no: int) -> FileEdit | None:
            if new_path == "/dev/null":
                if old_path in (None, "/dev/null"):
                    return None
                e = FileEdit(old_path, "delete", "unified diff", answer_line=line_no)
            elif old_path == "/dev/null":
                if not new_path:
                    self.problem(f"The diff at answer line {line_no} creates a file but names none.", None,
                                 line_no)
                    return None
                e = FileEdit(new_path, "whole", "unified diff", answer_line=line_no, create=True)
            elif new_path or old_path:
                e = FileEdit(new_path or old_path, "replace", "unified diff", answer_line=line_no)
            else:
                self.problem(f"The diff at answer line {line_no} names no file.", None, line_no)
                return None
            self.out.edits.append(e)
            return e

        k = 0
        while k < len(body):
            b, line_no = body[k], first_line + k
            if b.startswith("--- ") and k + 1 < len(body) and body[k + 1].startswith("+++ "):
                old_path, new_path = _diff_path(b[4:]), _diff_path(body[k + 1][4:])
                current, hunk = start_file(line_no), None
                k += 2
                continue
            m = HUNK_HEAD.match(b)
            if m:
                if current is None:
                    current = start_file(line_no)
                hunk = None
                if current is not None and current.kind != "delete":
                    hunk = Replacement([], [], hint_line=_line_number(m.group(1)),
                                       answer_line=line_no)
                    if current.kind == "replace":
                        current.replacements.append(hunk)
                k += 1
                continue
            if hunk is not None and current is not None:
                if b.startswith("\\"):
                    pass  # "\ No newline at end of file"
                elif b.startswith("+"):
                    (current.lines if current.kind == "whole" else hunk.replace).append(b[1:])
                elif b.startswith("-"):
                    hunk.search.append(b[1:])
                elif current.kind == "replace":
                    text = b[1:] if b.startswith(" ") else b  # models often drop the space
                    hunk.search.append(text)
                    hunk.replace.append(text)
            k += 1
        for e in self.out.edits:
            if e.kind == "replace" and e.fmt == "unified diff" and not e.replacements:
                self.problem(f"The diff for {e.path} (answer line {e.answer_line}) has no @@ hunks.",
                             e.path, e.answer_line)
        self.out.edits = [e for e in self.out.edits
                          if not (e.kind == "replace" and e.fmt == "unified diff" and not e.replacements)]


def _line_number(digits: str) -> int | None:
    """A hunk header's line number, only a hint: none for 5,000 digits (``int`` refuses those)."""
    return int(digits) if len(digits) <= 12 else None


def _diff_path(s: str) -> str | None:
    s = s.split("\t")[0].strip()
    if s == "/dev/null":
        return s
    if s.startswith(("a/", "b/")):
        s = s[2:]
    return s or None


def _looks_like_udiff(body: list[str]) -> bool:
    for k, b in enumerate(body[:-1]):
        if b.startswith("--- ") and body[k + 1].startswith("+++ "):
            return True
    return bool(body) and HUNK_HEAD.match(body[0]) is not None


def parse_answer(text: str, default_path: str | None = None) -> ParsedAnswer:
    """All file edits in an answer, in order, plus what could not be used and why.

    ``default_path``: when a change request was about one file only, a code block that
    names no file (small models often forget the path line) is taken as that file, in the
    file's language only, and marked ``guessed``; the user sees it says so.
    """
    return _Parser(text, default_path).run()

"""Every edit format the app understands, in one place (as Aider keeps them).

``parse_answer`` turns a model's answer into ``FileEdit``s without looking at the disk:

- **whole file** (the default we ask for: small models get it right): a fenced block whose
  path is on the line before the fence (``src/app.py``, ``**src/app.py**``, ``### src/app.py``,
  ``File: src/app.py``), in the fence's info string (```` ```python src/app.py ````,
  ```` ```python:src/app.py ````, ```` ```py title="x.py" ````), or, when neither names one, on
  the block's first line as a comment (``# src/app.py``, ``// src/app.py``: that line is the
  label, not content). A glued ```` ```pythonsrc/app.py ```` is not split (it is read as written,
  and a note says so). Fences of any length and nested ``` blocks: see ``fences``.
- **SEARCH/REPLACE** blocks (``<<<<<<< SEARCH`` / ``=======`` / ``>>>>>>> REPLACE``),
  fenced or not, with the path on the line before.
- **unified diffs** (```` ```diff ```` or bare ``---``/``+++``/``@@``); line numbers are
  only hints, because models get them wrong.
- ``DELETE path/to/file`` on a line of its own.

What cannot be used becomes a ``ParseProblem`` with the answer line, never an exception:
an answer cut off inside a block proposes nothing for that block (a truncated file would
delete the rest of the real one), unless the caller says the answer was complete (the model
stopped by itself): then a last block without its closing fence is used, marked ``unclosed``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from app.core.edits.fences import (FENCE_LINE, Fence, FenceScanner, glued_language, is_document, looks_like_path,
                                   path_from_comment, path_from_info, path_from_line)

__all__ = ["FileEdit", "ParseProblem", "ParsedAnswer", "Replacement", "parse_answer", "is_elided",
           "looks_like_path", "path_from_line", "path_from_info", "path_from_comment",  # from fences, as before
           "FENCE_OPEN", "SEARCH_HEAD", "DIVIDER", "REPLACE_TAIL", "HUNK_HEAD", "DELETE_LINE"]

FENCE_OPEN = FENCE_LINE  # kept for git_commit.explanation
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
    unclosed: bool = False        # the answer ended inside this block (accepted: the answer was complete)
    path_comment: str | None = None  # the block's first line named the file (``# x.py``); left out of it


@dataclass
class ParseProblem:
    message: str
    path: str | None = None
    answer_line: int = 0


@dataclass
class ParsedAnswer:
    edits: list[FileEdit] = field(default_factory=list)
    problems: list[ParseProblem] = field(default_factory=list)


def is_elided(line: str) -> bool:
    """Whether a line of code says code was left out: ``...``, ``# ... rest unchanged``."""
    m = ELIDED.fullmatch(line.strip())
    return m is not None and (not m.group(1).strip() or ELIDED_WORDS.search(m.group(1)) is not None)


def _dedent(body: list[str], indent: str) -> list[str]:
    if indent and all(not b.strip() or b.startswith(indent) for b in body):
        return [b[len(indent):] for b in body]
    return body


@functools.lru_cache(maxsize=1024)
def _fits(lang: str, path: str) -> bool:
    """Whether a fence language can be the language of ``path`` (no language: yes). Cached: a
    pygments look-up by file name takes about a millisecond, and an answer asks once a block."""
    if not lang:
        return True
    from pygments.lexers import get_lexer_for_filename
    from pygments.util import ClassNotFound
    try:
        return lang in get_lexer_for_filename(path).aliases
    except ClassNotFound:
        return False


class _Parser:
    def __init__(self, text: str, default_path: str | None = None, complete: bool = False):
        self.lines = [line.rstrip("\r") for line in text.split("\n")]
        self.out = ParsedAnswer()
        self.candidate: str | None = None
        self.default_path = default_path
        self.complete = complete
        self.scan = FenceScanner(self.lines)

    def problem(self, message: str, path: str | None, line: int) -> None:
        self.out.problems.append(ParseProblem(message, path, line))

    def run(self) -> ParsedAnswer:
        lines, i = self.lines, 0
        while i < len(lines):
            line = lines[i]
            fence = self.scan.fences[i]
            if fence is not None:
                i = self._fenced(i, fence)
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

    def _block_path(self, info: str) -> str | None:
        """The path the info string or the label line before gives (a label beats a glued info)."""
        path = path_from_info(info)
        label = self.candidate
        if path and label and path != label and path.endswith(label) and path[:-len(label)].isalpha():
            return label  # ```pythonsrc/app.py under a src/app.py label
        return path or label

    def _fenced(self, i: int, fence: Fence) -> int:
        lines, info = self.lines, fence.info
        lang = info.split()[0].lower() if info.split() else ""
        path = self._block_path(info)
        self.candidate = None
        default = self.default_path if lang not in DIFF_LANGS else None
        comment_path = path_from_comment(lines[i + 1]) if i + 1 < len(lines) else None
        doc_path = path or comment_path
        if doc_path is None and default and is_document(default, "") and _fits(lang, default):
            doc_path = default
        end = self.scan.end(i, fence, is_document(doc_path, lang))
        j = len(lines) if end.end is None else end.end
        body = _dedent(lines[i + 1:j], fence.indent)
        is_search = any(SEARCH_HEAD.match(b) for b in body)
        is_diff = not is_search and (lang in DIFF_LANGS or _looks_like_udiff(body))
        comment = None
        if path is None and comment_path and body and not is_search and not is_diff:
            path, comment, body = comment_path, body[0], body[1:]
        if end.end is None:
            while body and not body[-1].strip():
                body.pop()  # the answer's last newline, or blank lines before a fence never written
            if not self.complete or not any(b.strip() for b in body):
                if path or is_search:
                    self.problem(
                        f"The answer ends inside the code block for {path or 'a SEARCH/REPLACE edit'} "
                        f"(answer line {i + 1}): it was cut off, so that block was not used. "
                        "Ask again, or raise the answer length in Settings.", path, i + 1)
                return j
        guessed = False
        if path is None and default and any(b.strip() for b in body) and _fits(lang, default):
            path, guessed = default, True
        if path and (end.guessed or end.maybe_cut):
            self._fence_warning(path, fence, i, j, end.guessed)
        if info == path and not guessed:
            alias = glued_language(path)
            if alias:
                self.problem(f"The code block at answer line {i + 1} names {path}; it was used as written. "
                             f"If the language {alias} is glued to the path, reject it and ask again "
                             f"(```{alias} {path[len(alias):]}).", path, i + 1)
        if is_search:
            self._search_replace(body, path, i + 2)
        elif is_diff:
            self._udiff(body, path, i + 2)
        elif path:
            first = i + 3 if comment is not None else i + 2
            elided = [first + k for k, b in enumerate(body) if is_elided(b)]
            self.out.edits.append(FileEdit(path, "whole", "whole file", lines=body, answer_line=i + 1,
                                           elided=elided, guessed=guessed, unclosed=end.end is None,
                                           path_comment=comment))
        return j + 1

    def _fence_warning(self, path: str, fence: Fence, i: int, j: int, guessed: bool) -> None:
        short, longer = fence.char * 3, fence.char * (fence.length + 1)
        if guessed:
            why = (f"holds {short} lines of its own, so where it ends was guessed (answer line {j + 1}). "
                   "Check the end of the file in the diff.")
        else:
            why = (f"may end too early: more {short} lines follow its closing fence (answer line {j + 1}), "
                   "so part of the file may be missing. Check the end of the file in the diff.")
        self.problem(f"The block for {path} (answer line {i + 1}) {why} A longer fence ({longer}) around "
                     "a file that holds fences makes it exact.", path, i + 1)

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


def parse_answer(text: str, default_path: str | None = None, complete: bool = False) -> ParsedAnswer:
    """All file edits in an answer, in order, plus what could not be used and why.

    ``default_path``: when a change request was about one file only, a code block that
    names no file (small models often forget the path line) is taken as that file, in the
    file's language only, and marked ``guessed``; the user sees it says so.
    ``complete``: the model stopped by itself (``finish_reason == "stop"``), so a last block
    without a closing fence is the whole block: used, and marked ``unclosed``. Otherwise it
    may have been cut off by the length limit, and is refused.
    """
    return _Parser(text, default_path, complete).run()

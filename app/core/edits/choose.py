"""Which files a /code request is about, when the request does not say.

Why: the /code prompt showed only the files a request names, so "add a retry to the download"
showed the model nothing although the project index knows where the download code is. The
files come in this order, each with a short reason the user sees (and can overrule):

1. ``@path`` mentions: always kept, any file of the project; an unknown one is a problem
   message, never an exception;
2. files the request names (``project.mentioned_files``), also always kept;
3. while there is room, the index: one ``search`` of the request, hits summed per file (earlier
   hits weigh more); a definition the request names (``download_file``, `` `edit` ``,
   "download") lifts its file, as does a file name it spells; changelogs are left out (their
   text matches every request, and they are history, not code). Then, for the best file: the
   files that import a definition the request names from it (Python and JS/TS imports, with a
   light parser; a Python package re-exporting it counts), and its test file (test_x.py ...).

Nothing is re-indexed; files are only read to find importers, when a definition was named.
bench/file_choice.py measures this on a project's git history (recall@3/@5 vs plain search).
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from app.core.edits.project_path import UnsafePathError, resolve_in_project
from app.core.errors import UserError
from app.core.index.store import split_identifier
from app.core.index.walk import language_of
from app.core.project import mentioned_files

CANDIDATES = 40          # hits asked of the index
MAX_QUERY_CHARS = 2000   # a pasted log: its start says what it is about, and FTS gets no 10k-word OR
RANK_K = 5               # a hit at place r weighs RANK_K / (RANK_K + r)
DECAY = 0.5              # a file's hits: the best counts whole, the next half, ...
DEF_BOOST = 1.0          # a definition the request names, at full strength
PATH_BOOST = 0.5         # a file name the request spells
IMPORT_SHARE = 0.5       # an importer's score, as a share of the best file's
TESTS_SHARE = 0.5        # the best file's test file, likewise
IMPORTERS_MAX = 2
MAX_SCAN_FILES = 2000    # files whose imports may be read for one request
MAX_SCAN_BYTES = 256_000
CODE_LANGUAGES = ("python", "javascript", "typescript", "tsx")

_STOP = set("""a an the of to in on at by for from with without into onto as is are be been being it its
this that these those and or not no nor but if when while then than so such can cannot could should would
will shall may might must do does did doing done has have had having get gets got make makes made use uses
used using add adds added adding fix fixes fixed fixing remove removes removed removing update updates
updated change changes changed allow allows allowed support supports supported new old more less also only
all any some each every other instead now still just we you i my our your they them there here what which
who how why where please code file files function method class project request want need like""".split())
_MENTION = re.compile(r"(?<![\w@.])@([^\s,;:!?'\"`()\[\]{}<>@]+)")
_BARE_MENTION = re.compile(r"(?<![\w@.])@([\w.-]+)")
_CHANGELOG = re.compile(r"(^|/)(CHANGES|CHANGELOG|HISTORY|NEWS)([._-][^/]*)?$", re.I)
_CODE_SPAN = re.compile(r"`([^`\n]{1,200})`")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CODEY = re.compile(r"[A-Za-z0-9]_|[a-z][A-Z]|\(\)$")
_PY_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]+)"
                        r"|import[ \t]+([\w., \t]+))", re.M)
_JS_IMPORT = re.compile(r"""(?:\bfrom|\bimport|\brequire\s*\(|\bimport\s*\()\s*['"](\.{1,2}/[^'"\n]+)['"]""")
_DOTTED = re.compile(r"\b(?=(\w+)\.(\w+))")  # overlapping: a.b.c gives (a, b) and (b, c)
_JS_EXT = (".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts")


@dataclass(frozen=True)
class ChosenFile:
    path: str      # relative POSIX path in the project
    reason: str    # short, for the user: "named in the request", "@path", "defines retry_download", ...


def at_mentions(request: str) -> list[str]:
    """The ``@path`` tokens of a request, in order, without the ``@`` (``@src/a.py`` ->
    ``src/a.py``). Only path-like ones, with a ``/`` or a known file type, so that a decorator
    (``@property``) is not taken for a file; e-mail addresses are not mentions."""
    out: list[str] = []
    for m in _MENTION.finditer(request or ""):
        tok = m.group(1).rstrip(".")
        if tok and ("/" in tok or "\\" in tok or language_of(tok) is not None) and tok not in out:
            out.append(tok)
    return out


def request_terms(request: str) -> dict[str, float]:
    """The request's words that may name code, lower-cased, with a strength: 1.0 for what looks
    like code (in backticks, snake_case, camelCase, ``call()``), 0.5 for a plain word."""
    terms = {w.lower(): 1.0 for w in _WORD.findall(" ".join(_CODE_SPAN.findall(request))) if len(w) > 1}
    for m in re.finditer(r"[A-Za-z_][A-Za-z0-9_]*(?:\(\))?", request):
        low = m.group(0).rstrip("()").lower()
        if low not in terms and len(low) > 2 and low not in _STOP:
            terms[low] = 1.0 if _CODEY.search(m.group(0)) else 0.5
    return terms


def _def_match(symbol: str, terms: dict[str, float]) -> tuple[float, str, str, bool]:
    """How strongly the request names one of a chunk's definitions (a chunk of small ones has
    the symbol "a, b"): (strength, the term, the definition, whether a whole name matched)."""
    best = (0.0, "", "", False)
    for sym in (s.strip() for s in symbol.split(",")):
        names = [n for n in sym.split(".") if n]
        for i, name in enumerate(reversed(names)):  # its own name, then its class's (half)
            own = 1.0 if i == 0 else 0.5
            if name.lower() in terms:
                best = max(best, (terms[name.lower()] * own, name.lower(), sym, True))
                continue
            parts = [p for p in split_identifier(name) if len(p) > 2]
            hit = [p for p in parts if p in terms]
            if hit and i == 0:  # "download" in download_file: a weaker hint
                best = max(best, (0.4 * max(terms[p] for p in hit) * len(hit) / len(parts), hit[0], sym, False))
    return best


def _path_match(path: str, terms: dict[str, float]) -> tuple[float, str]:
    stem = path.rsplit("/", 1)[-1].split(".")[0]
    low = stem.lower().lstrip("_")
    if len(low) > 2 and low in terms:
        return terms[low], low
    parts = [p for p in split_identifier(stem) if len(p) > 2]
    if len(parts) > 1 and all(p in terms for p in parts):
        return min(terms[p] for p in parts), stem
    return 0.0, ""


def _read_text(root: Path, rel: str) -> str | None:
    try:
        with open(root / rel, "rb") as f:
            raw = f.read(MAX_SCAN_BYTES + 1)
    except OSError:
        return None
    return None if len(raw) > MAX_SCAN_BYTES or b"\x00" in raw[:8192] else raw.decode("utf-8", "replace")


# ---- imports -------------------------------------------------------------------------------

def _py_imports(path: str, text: str) -> list[tuple[str, list[str]]]:
    """(absolute dotted module, names imported from it) for each import of a Python file; a
    relative import is resolved against the file's own package."""
    pkg = path.split("/")[:-1]
    out: list[tuple[str, list[str]]] = []
    for m in _PY_IMPORT.finditer(text):
        if m.group(3) is not None:
            out += [(part.split()[0], []) for part in m.group(3).split(",") if part.split()]
            continue
        mod = m.group(1)
        names = [n.split()[0] for n in m.group(2).strip("() \t\n").replace("\n", ",").split(",")
                 if n.split() and n.split()[0] != "\\"]
        dots = len(mod) - len(mod.lstrip("."))
        if dots:
            if dots - 1 > len(pkg):
                continue
            mod = ".".join(pkg[:len(pkg) - dots + 1] + [p for p in mod[dots:].split(".") if p])
        out.append((mod, names))
        out += [(f"{mod}.{n}" if mod else n, []) for n in names]  # "from pkg import module"
    return out


def _py_module_names(path: str) -> set[str]:
    """The dotted names a Python file can be imported by: every tail of its path
    (``src/click/core.py`` -> src.click.core, click.core, core), a package by its folder."""
    parts = path[:-3].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return {".".join(parts[i:]) for i in range(len(parts))}


def _js_target(path: str, spec: str, fileset: set[str]) -> str | None:
    base = path.split("/")[:-1]
    for part in spec.split("/"):
        if part == "..":
            if not base:
                return None
            base.pop()
        elif part not in ("", "."):
            base.append(part)
    p = "/".join(base)
    for cand in (p, *(p + e for e in _JS_EXT), *(f"{p}/index{e}" for e in _JS_EXT)):
        if cand in fileset:
            return cand
    return None


def importers(root: Path, target: str, files: Sequence[str], symbols: Sequence[str] = ()
              ) -> list[tuple[str, list[str], str]]:
    """Files importing ``target`` (Python, JS/TS): (path, the ``symbols`` it uses from it, the
    package it came through or ""). A Python file that imports a package above the target
    (``import click``) and uses a symbol through it (``click.edit``) counts: packages re-export.
    Only files that mention the target's name or a symbol are read, at most MAX_SCAN_FILES."""
    lang = language_of(target)
    if lang not in CODE_LANGUAGES or (lang == "python" and not target.endswith(".py")):
        return []
    stem = target.rsplit("/", 1)[-1].split(".")[0]
    if lang == "python":
        stem = target.rsplit("/", 2)[-2] if stem == "__init__" and "/" in target else stem
        names, family = _py_module_names(target), {"python"}
    else:
        names, family = set(), set(CODE_LANGUAGES[1:])
    packages = {n.rsplit(".", 1)[0] for n in names if "." in n}
    fileset, wanted = set(files), set(symbols)
    found: list[tuple[str, list[str], str]] = []
    for f in [f for f in files if f != target and language_of(f) in family][:MAX_SCAN_FILES]:
        text = _read_text(root, f)
        if text is None or (stem not in text and not any(s in text for s in wanted)):
            continue
        used: set[str] = set()
        hit, via = False, ""
        if lang == "python":
            dotted = set(_DOTTED.findall(text)) if wanted else set()  # ("click", "edit") for click.edit
            for mod, imported in _py_imports(f, text):
                alias = mod.rsplit(".", 1)[-1]
                through = {s for s in wanted if s in imported or (alias, s) in dotted}
                if mod in names:  # the module itself: its names imported, or used as module.name
                    hit, via = True, ""
                    used |= through
                elif mod in packages and through:
                    hit, via = True, via if hit else mod
                    used |= through
        else:
            hit = any(_js_target(f, m.group(1), fileset) == target for m in _JS_IMPORT.finditer(text))
            used = {s for s in wanted if re.search(rf"\b{re.escape(s)}\b", text)} if hit else set()
        if hit:
            found.append((f, sorted(used), via))
    return found


def checked_by(path: str, files: Sequence[str]) -> list[str]:
    """The project's test files named after ``path`` (test_x.py, x_test.go, x.test.ts,
    x.spec.js, XTest.java, x_spec.rb): where a change to ``x`` is checked."""
    stem, _, ext = path.rsplit("/", 1)[-1].partition(".")
    stem = stem.lstrip("_")
    if not stem or stem.lower().startswith("test") or stem.endswith(("_test", "Test", "Tests", "_spec")):
        return []
    wanted = {f"test_{stem}.{ext}", f"test_{stem}s.{ext}", f"{stem}_test.{ext}", f"{stem}.test.{ext}",
              f"{stem}.spec.{ext}", f"{stem}Test.{ext}", f"{stem}Tests.{ext}", f"{stem}_spec.{ext}"}
    return [f for f in files if f.rsplit("/", 1)[-1] in wanted]


# ---- choosing ------------------------------------------------------------------------------

@dataclass
class _Candidate:
    path: str
    parts: list[float] = field(default_factory=list)
    reason: str = ""
    weight: float = -1.0                       # how strong the reason shown is
    symbols: tuple[str, ...] = ()              # definitions the request names in this file

    def add(self, part: float, reason: str, weight: float) -> None:
        self.parts.append(part)
        if weight > self.weight:
            self.reason, self.weight = reason, weight

    def score(self) -> float:
        return sum(c * DECAY ** i for i, c in enumerate(sorted(self.parts, reverse=True)))


def _resolve_mention(tok: str, root: Path, files: Sequence[str], fileset: set[str]) -> tuple[str | None, str | None]:
    """(project path, None) or (None, the problem for the user)."""
    t = tok.replace("\\", "/")
    while t.startswith("./"):
        t = t[2:]
    if t in fileset:
        return t, None
    tails = [f for f in files if f.endswith("/" + t)]
    if len(tails) == 1:
        return tails[0], None
    if len(tails) > 1:
        shown = ", ".join(tails[:3]) + (", …" if len(tails) > 3 else "")
        return None, f"@{tok} matches {len(tails)} files ({shown}): write more of its path, e.g. @{tails[0]}."
    try:
        rel, real = resolve_in_project(root, t)
    except UnsafePathError as e:
        return None, f"@{tok} is not a file of the project: {e}"
    if real.is_dir():
        return None, f"@{tok} is a folder: mention the files in it you mean, e.g. @{rel}/name."
    if not real.is_file():
        return None, f"@{tok} is not a file of the project; check the path (relative to the project folder)."
    return rel, None


def _from_index(request: str, files: Sequence[str], search: Callable[[str, int], list],
                problems: list[str]) -> dict[str, _Candidate]:
    terms = request_terms(request)
    fileset = set(files)
    try:
        hits = search(request[:MAX_QUERY_CHARS], CANDIDATES)
    except (UserError, sqlite3.Error, OSError, RuntimeError) as e:
        problems.append(f"The project index could not be searched ({e}); only the files named are used.")
        hits = []
    matched = [(rank, h.chunk, *_def_match(h.chunk.symbol or "", terms)) for rank, h in enumerate(hits)
               if h.chunk.path in fileset and not _CHANGELOG.search(h.chunk.path)]
    df: dict[str, set[str]] = defaultdict(set)  # a term named by definitions in many files says less
    for _, c, m, term, _, _ in matched:
        if m:
            df[term].add(c.path)
    cands: dict[str, _Candidate] = {}
    for rank, c, m, term, sym, whole in matched:
        boost = DEF_BOOST * m / math.sqrt(len(df[term])) if m else 0.0
        cand = cands.setdefault(c.path, _Candidate(c.path))
        shown = sym or c.symbol.split(",")[0]
        where = f"lines {c.start_line}-{c.end_line}"
        if whole:
            cand.add(RANK_K / (RANK_K + rank) + boost, f"defines {sym}", 1.0 + boost)
            if sym.rsplit(".", 1)[-1] not in cand.symbols:
                cand.symbols += (sym.rsplit(".", 1)[-1],)
        else:
            cand.add(RANK_K / (RANK_K + rank) + boost, f"search match: {shown} ({where})" if shown
                     else f"search match: {where}", 0.0)
    for f in (files if terms else ()):
        m, term = _path_match(f, terms)
        if m and not _CHANGELOG.search(f):
            cands.setdefault(f, _Candidate(f)).add(PATH_BOOST * m, f"file name matches '{term}'", 0.9)
    return cands


def _add_related(root: Path, files: Sequence[str], cands: dict[str, _Candidate], top: _Candidate) -> None:
    """The best file's importers that use a definition the request names, and its test file."""
    name = top.path.rsplit("/", 1)[-1]
    if top.symbols:
        found = importers(root, top.path, files, top.symbols)
        found = [fu for fu in found if fu[1]]
        found.sort(key=lambda fu: (-len(fu[1]), -(cands[fu[0]].score() if fu[0] in cands else 0.0), fu[0]))
        for f, used, via in found[:IMPORTERS_MAX]:
            why = f"uses {', '.join(used[:2])} from {name} (through {via})" if via else \
                f"imports {', '.join(used[:2])} from {name}"
            cands.setdefault(f, _Candidate(f)).add(IMPORT_SHARE * top.score(), why, 0.8)
    for f in checked_by(top.path, files)[:1]:
        cands.setdefault(f, _Candidate(f)).add(TESTS_SHARE * top.score(), f"tests of {name}", 0.7)


def choose_files(request: str, root: Path, files: list[str], search: Callable[[str, int], list] | None,
                 limit: int = 5, max_bytes: int | None = None) -> tuple[list[ChosenFile], list[str]]:
    """(files for the /code prompt, best first, each with its reason; problems for the user).

    ``files``: the project's files (``project.project_files``). ``search``: the project index's
    ``search(query, k)`` (``ProjectIndex.search``), or None without an index: then mentioned and
    named files only. At most ``limit`` files in all, but mentioned and named files are always
    kept; ``max_bytes`` skips an index file that would take the chosen files over that size (the
    prompt could not show it whole anyway, and a smaller relevant file can).
    """
    request, root, fileset = request or "", Path(root), set(files)
    chosen: list[ChosenFile] = []
    problems: list[str] = []

    def take(path: str, reason: str) -> None:
        if path not in {c.path for c in chosen}:
            chosen.append(ChosenFile(path, reason))

    for tok in at_mentions(request):
        path, problem = _resolve_mention(tok, root, files, fileset)
        if problem:
            problems.append(problem)
        else:
            take(path, f"@{tok}")
    for tok in _BARE_MENTION.findall(request):  # a project file without a type: @Makefile
        if tok in fileset:
            take(tok, f"@{tok}")
    for f in mentioned_files(request, files):
        take(f, "named in the request")
    if search is None or len(chosen) >= limit or not request.strip():
        return chosen, problems
    cands = _from_index(request, files, search, problems)
    ranked = sorted(cands.values(), key=lambda c: (-c.score(), c.path))
    if ranked:
        _add_related(root, files, cands, ranked[0])
        ranked = sorted(cands.values(), key=lambda c: (-c.score(), c.path))
    size = sum(_size(root, c.path) for c in chosen)
    for cand in ranked:
        if len(chosen) >= limit:
            break
        if max_bytes is not None and cand.path not in {c.path for c in chosen}:
            if size + _size(root, cand.path) > max_bytes:
                continue
            size += _size(root, cand.path)
        take(cand.path, cand.reason)
    return chosen, problems


def _size(root: Path, rel: str) -> int:
    try:
        return (root / rel).stat().st_size
    except OSError:
        return 0

"""Which files of a project get indexed.

The same rules a developer expects from their tools: ``.gitignore`` files (the root one and
nested ones, with negation, through ``pathspec``'s git semantics), no VCS folders, dependencies,
virtualenvs or build output, nothing over 1 MB, no binaries, no symlinks (they can point out
of the project). Only files in a language we know are indexed; the counts of everything
skipped are kept so the Project panel can say why a file is missing.
"""

from __future__ import annotations

import os
import re
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pathspec

# Never source, at any depth.
SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", ".tox", ".nox", ".mypy_cache",
             ".pytest_cache", ".ruff_cache", ".idea", ".vscode", ".gradle", ".next", ".nuxt", "site-packages",
             "bower_components", ".eggs", ".terraform"}
# Build output and dependencies by convention, but also real package names deeper down
# (pip/_internal/operations/build, the stdlib's venv): skipped only at the project root.
# A virtualenv under any name is recognised by its pyvenv.cfg.
ROOT_SKIP_DIRS = {"build", "dist", "target", "obj", "out", "vendor", "venv", "env", "htmlcov", "coverage"}
MAX_FILE_BYTES = 1_000_000
SNIFF_BYTES = 8192

# extension -> language name (the chunker picks a grammar by this name)
LANGUAGES: dict[str, str] = {
    ".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript",
    ".jsx": "javascript", ".ts": "typescript", ".mts": "typescript", ".cts": "typescript",
    ".tsx": "tsx", ".java": "java", ".c": "c", ".h": "c", ".cpp": "cpp", ".cc": "cpp",
    ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp", ".hxx": "cpp", ".cs": "csharp", ".go": "go",
    ".rs": "rust", ".rb": "ruby", ".php": "php", ".kt": "kotlin", ".kts": "kotlin",
    ".swift": "swift", ".scala": "scala", ".sh": "bash", ".bash": "bash", ".zsh": "bash",
    ".sql": "sql", ".md": "markdown", ".markdown": "markdown", ".rst": "rst", ".txt": "text",
    ".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".json": "json", ".html": "html",
    ".htm": "html", ".css": "css", ".scss": "css", ".vue": "html", ".svelte": "html",
    ".xml": "xml", ".ini": "ini", ".cfg": "ini", ".gradle": "kotlin", ".lua": "lua",
    ".r": "r", ".dart": "dart", ".pl": "perl", ".ex": "elixir", ".exs": "elixir",
}
NAMED_FILES = {"Makefile": "make", "Dockerfile": "docker", "CMakeLists.txt": "cmake",
               "Gemfile": "ruby", "Rakefile": "ruby", "Jenkinsfile": "groovy"}
# Lock files and generated maps are text in a known language but say nothing to a reader.
SKIP_NAMES = {"package-lock.json", "yarn.lock", "pnpm-lock.yaml", "poetry.lock", "Cargo.lock",
              "composer.lock", "Gemfile.lock", "uv.lock"}


def language_of(path: str) -> str | None:
    """The language the indexer files ``path`` under, or None when it is not indexed."""
    name = path.rsplit("/", 1)[-1]
    if name in NAMED_FILES:
        return NAMED_FILES[name]
    if name in SKIP_NAMES or name.endswith((".min.js", ".min.css", ".map")):
        return None
    dot = name.rfind(".")
    return LANGUAGES.get(name[dot:].lower()) if dot > 0 else None


@dataclass(frozen=True)
class SourceFile:
    path: str        # relative, POSIX separators
    size: int
    mtime_ns: int
    language: str


@dataclass
class WalkResult:
    files: list[SourceFile] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)  # reason -> count


_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
               | getattr(os, "O_BINARY", 0))


def read_regular(path: Path | str, limit: int) -> bytes:
    """At most ``limit`` bytes of ``path``, which must be a regular file, not a link. Opened
    without following links and without blocking: a file may turn into a FIFO (open would wait
    for a writer forever) or a link to /dev/zero (read would fill memory) between the walk and
    the read. Raises OSError otherwise."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"not a regular file: {path}")
        parts, left = [], limit
        while left > 0:
            b = os.read(fd, min(left, 1 << 20))
            if not b:
                break
            parts.append(b)
            left -= len(b)
        return b"".join(parts)
    finally:
        os.close(fd)


def _is_binary(path: Path) -> bool:
    try:
        head = read_regular(path, SNIFF_BYTES)
    except OSError:
        return True
    return b"\0" in head


class _Ignores:
    """The .gitignore files met on the way down, deepest deciding (git's precedence)."""

    def __init__(self) -> None:
        self._specs: list[tuple[str, pathspec.GitIgnoreSpec]] = []  # (dir prefix "" or "a/b/", spec)

    def load(self, root: Path, rel_dir: str) -> None:
        f = root / rel_dir / ".gitignore"
        try:  # a regular file only, as git (a FIFO or a link to /dev/zero must not hang the walk)
            lines = read_regular(f, MAX_FILE_BYTES).decode("utf-8", "replace").splitlines()
        except OSError:
            return
        prefix = f"{rel_dir}/" if rel_dir else ""
        self._specs.append((prefix, pathspec.GitIgnoreSpec.from_lines(lines)))

    def ignored(self, rel: str, is_dir: bool) -> bool:
        verdict = False
        for prefix, spec in self._specs:
            if prefix and not rel.startswith(prefix):
                continue
            sub = rel[len(prefix):] + ("/" if is_dir else "")
            res = spec.check_file(sub)
            if res.include is not None:
                verdict = bool(res.include)
        return verdict


ODD_NAME = "name not UTF-8 or with control characters"
# C0 and C1 controls, and the Unicode line and paragraph separators (str.splitlines and Qt
# break lines at \x85, \u2028 and \u2029 too)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def odd_name(name: str) -> bool:
    """A name that cannot be stored or cited as text: bytes that are not UTF-8 (Python keeps them
    as lone surrogates, which SQLite refuses) or control characters (a newline splits a citation
    over two lines). Such a file costs itself, never the project."""
    if _CONTROL.search(name):
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def walk_project(root: Path, max_bytes: int = MAX_FILE_BYTES, any_text: bool = False,
                 cancelled: Callable[[], bool] = lambda: False) -> WalkResult:
    """The files to index under ``root``, sorted by path.

    ``any_text`` keeps files of unknown type too (the edit pane may change a LICENSE or a
    Procfile), still without binaries.
    """
    root = Path(root)
    out = WalkResult()
    ignores = _Ignores()
    for dirpath, dirnames, filenames in os.walk(root):
        if cancelled():
            break
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir
        if ".gitignore" in filenames:
            ignores.load(root, rel_dir)
        keep = []
        for d in sorted(dirnames):
            rel = f"{rel_dir}/{d}" if rel_dir else d
            if odd_name(d):
                out.skipped[ODD_NAME] += 1
            elif (d in SKIP_DIRS or (not rel_dir and d in ROOT_SKIP_DIRS) or d.endswith(".egg-info")
                    or os.path.islink(os.path.join(dirpath, d))):
                out.skipped["skipped folder"] += 1
            elif ignores.ignored(rel, True):
                out.skipped["ignored"] += 1
            elif os.path.exists(os.path.join(dirpath, d, "pyvenv.cfg")):
                out.skipped["skipped folder"] += 1  # a virtualenv under any name
            else:
                keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            p = Path(dirpath) / name
            if odd_name(name):
                out.skipped[ODD_NAME] += 1
                continue
            if ignores.ignored(rel, False):
                out.skipped["ignored"] += 1
                continue
            lang = language_of(rel) or ("text" if any_text else None)
            if lang is None:
                out.skipped["unsupported type"] += 1
                continue
            try:
                st = p.lstat()
            except OSError:
                out.skipped["unreadable"] += 1
                continue
            if p.is_symlink() or not p.is_file():
                out.skipped["link or special"] += 1
            elif st.st_size > max_bytes:
                out.skipped["over 1 MB"] += 1
            elif _is_binary(p):
                out.skipped["binary"] += 1
            else:
                out.files.append(SourceFile(rel, st.st_size, st.st_mtime_ns, lang))
    out.files.sort(key=lambda f: f.path)
    return out

"""/fix on the project's own tests: run them in the sandbox, and turn a failure into a change request.

Why a copy: the tests run on a copy of the project inside the sandbox folder, never in the
project itself. Test suites write (caches, ``__pycache__``, temporary files, sometimes their
inputs), and under the python-guard fallback the file system is not read-only, so running in
place could change the user's files without the diff pane ever seeing it. The copy skips what
tests do not need (VCS folders, virtualenvs, caches, ``node_modules``) and is size-capped.

Which Python: the project's own virtualenv when it has one (``.venv``, ``venv``, ``env``), so its
dependencies are importable; the virtualenv itself stays where it is and is read (read-only)
from the sandbox. Otherwise the app's interpreter (or, in a frozen build, ``python3`` on PATH).
The sandbox hides the user's home; when the project (and so its venv) lies there, the original
project folder is brought back read-only for the run (a venv's editable installs point at it),
as are the interpreter's prefixes (see mounts.py).

Which runner: pytest when that interpreter has it, else ``unittest discover`` (it always
exists). pytest runs with ``-x`` (stop at the first failure: one failure at a time is what a
small model can fix), short tracebacks, no colour and no cache plugin. Only Python projects are
supported; other languages' test runners are not detected (documented, not guessed).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from app.core.run.result import RunResult, SandboxLimits
from app.core.run.sandbox import SandboxError, code_python, make_folder, run_in_folder
from app.core.run.fix_request import (  # noqa: F401 - the /fix request is part of this module's API
    FixRequest, fix_budget, fix_request, fix_request_for_tests, rough_tokens)
from app.core.run.trace import PYTEST_ARGS, FailingTest, Trace, TraceError, trace_failing_test

Search = Callable[[str, int], list]  # (query, k) -> the project index's hits (app.core.index.indexer.Hit)


# Tests take longer than a snippet: generous time and memory, still bounded.
TEST_LIMITS = SandboxLimits(time_s=300.0, memory_mb=4096, output_bytes=400_000, file_mb=256)
COPY_MAX_BYTES = 300 * 1024 * 1024
COPY_MAX_FILES = 20_000
NO_TESTS = 5  # pytest's exit code when nothing was collected
MAX_FIX_FILES = 8     # source files named for the fix (then the tests)
SEARCH_HITS = 5

_SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".pytest_cache", ".mypy_cache",
              ".ruff_cache", ".tox", ".nox", ".idea", ".vscode", ".eggs"}
_VENV_NAMES = (".venv", "venv", "env", ".env")

_RUNNER = r'''
import os, sys
PROJECT = {project!r}
ARGS = {args!r}
os.chdir(PROJECT)
sys.path.insert(0, PROJECT)
sys.dont_write_bytecode = True
try:
    import pytest
except ImportError:
    pytest = None
if pytest is not None:
    sys.exit(pytest.main(ARGS))
import unittest
print("pytest is not installed for %s; running unittest discover" % sys.executable, flush=True)
argv = ["python -m unittest", "discover"] + (["-s", "tests"] if os.path.isdir("tests") else [])
prog = unittest.main(module=None, argv=argv, exit=False, failfast=True)
result = prog.result
sys.exit(5 if result.testsRun == 0 else (0 if result.wasSuccessful() else 1))
'''


@dataclass
class SuiteRun:
    """One run of the project's tests, with paths in the output as the project knows them."""

    result: RunResult
    python: str
    output: str                     # stdout + stderr, sandbox paths mapped back to project paths
    files: list[str] = field(default_factory=list)  # files for the fix, most relevant first
    trace: Trace | None = None      # what the first failing test ran (its traced re-run)
    trace_note: str = ""            # why there is no trace, when tracing was tried and failed

    @property
    def passed(self) -> bool:
        return self.result.exit_code == 0

    def summary(self) -> str:
        r = self.result
        if r.exit_code == NO_TESTS and not (r.timed_out or r.cancelled):
            return "no tests were found"
        if r.exit_code == 0:
            return f"tests pass in {r.duration_s:.1f} s"
        if r.exit_code == 1 and not (r.timed_out or r.cancelled or r.memory_exceeded):
            return f"tests fail after {r.duration_s:.1f} s"
        return "tests " + r.summary()


def project_python(project: Path) -> str:
    """The interpreter that has the project's dependencies: its virtualenv's, else ours."""
    for name in _VENV_NAMES:
        venv = project / name
        if not (venv / "pyvenv.cfg").is_file():
            continue
        for rel in ("bin/python", "bin/python3", "Scripts/python.exe"):
            candidate = venv / rel
            if candidate.exists():
                return str(candidate)
    return code_python()  # the app's own, or (frozen) python3 on PATH


def has_tests(project: Path) -> bool:
    """Whether the project looks like it has Python tests. Cheap enough for the GUI thread:
    only the top two levels are listed (a tests/ folder, test_*.py / *_test.py files, or a
    pytest configuration); deeper tests are still found by pytest with ``/fix tests``."""
    if any((project / n).is_dir() for n in ("tests", "test")) or (project / "pytest.ini").is_file():
        return True
    try:
        top = list(project.iterdir())
    except OSError:
        return False
    levels = [p for p in top if p.is_file()]
    for d in top:
        if d.is_dir() and d.name not in _SKIP_DIRS and not _is_venv(d):
            try:
                levels += [p for p in d.iterdir() if p.is_file()]
            except OSError:
                continue
    return any(p.suffix == ".py" and (p.name.startswith("test_") or p.name.endswith("_test.py"))
               for p in levels)


def _is_venv(d: Path) -> bool:
    return (d / "pyvenv.cfg").is_file()


def _walk(project: Path, limit: int):
    """The project's files for the copy (VCS, caches, virtualenvs and dependencies skipped)."""
    count = 0
    for dirpath, dirnames, filenames in os.walk(project):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not _is_venv(here / d))
        for f in sorted(filenames):
            count += 1
            if count > limit:
                return
            yield here / f


def copy_project(project: Path, dest: Path) -> int:
    """Copy the project's files into ``dest``; symlinks that leave the project are skipped.
    Returns the bytes copied; raises SandboxError past the caps (the message names them)."""
    project = project.resolve()
    total = files = 0
    for src in _walk(project, limit=COPY_MAX_FILES + 1):
        files += 1
        if files > COPY_MAX_FILES:
            raise SandboxError(f"The project has more than {COPY_MAX_FILES:,} files; it is too big to copy "
                               "into the sandbox for a test run. Run a part of it: /fix tests path/to/tests")
        rel = src.relative_to(project)
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            try:
                resolved = src.resolve(strict=True)
                resolved.relative_to(project)
            except (OSError, ValueError):
                continue  # outside the project (or dangling): not the tests' business
            if resolved.is_dir():
                continue
            shutil.copyfile(resolved, target)
        elif src.is_file():
            total += src.stat().st_size
            if total > COPY_MAX_BYTES:
                raise SandboxError(f"The project is bigger than {COPY_MAX_BYTES // 2**20} MB without its "
                                   "virtualenvs and caches; too big to copy into the sandbox for a test run.")
            shutil.copy2(src, target)
    return total


_PYTEST_LOC = re.compile(r"^(?:_+ )?([\w./\\-]+\.py):(\d+)", re.M)
_TRACE_LOC = re.compile(r'File "([^"]+\.py)", line (\d+)')


def named_files(output: str, project: Path) -> list[str]:
    """Project files the output's locations name, in order of first mention."""
    seen: list[str] = []
    for m in list(_PYTEST_LOC.finditer(output)) + list(_TRACE_LOC.finditer(output)):
        raw = m.group(1).replace("\\", "/")
        path = Path(raw)
        if path.is_absolute():
            try:
                raw = path.resolve().relative_to(project.resolve()).as_posix()
            except (OSError, ValueError):
                continue
        if raw.startswith("./"):
            raw = raw[2:]
        if raw not in seen and (project / raw).is_file():
            seen.append(raw)
    return seen


def is_test_file(p: str) -> bool:
    name = p.rsplit("/", 1)[-1]
    return name.startswith("test_") or name.endswith("_test.py") or "/tests/" in f"/{p}" or name == "conftest.py"


def failing_files(output: str, project: Path) -> list[str]:
    """Project files named in failure output, code before tests (the code is what to fix first):
    the file choice without a trace."""
    seen = named_files(output, project)
    tests = [p for p in seen if is_test_file(p)]
    code = [p for p in seen if not is_test_file(p)]
    for t in tests:  # an assertion in a test names only the test: add the project modules it imports
        code += [m for m in imported_modules(project, t) if m not in code and m not in tests]
    return code + tests


def imported_modules(project: Path, rel: str) -> list[str]:
    """Project files a Python file imports (``import a.b`` / ``from a.b import c``), found at the
    project root or under ``src/``; anything else (the standard library, packages) is ignored."""
    import ast
    try:
        tree = ast.parse((project / rel).read_text(encoding="utf-8", errors="replace"))
    except (OSError, SyntaxError, ValueError):
        return []
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
    found: list[str] = []
    for name in names:
        parts = name.split(".")
        for base in ("", "src/"):
            for cand in (base + "/".join(parts) + ".py", base + "/".join(parts) + "/__init__.py"):
                if (project / cand).is_file() and cand not in found and cand != rel:
                    found.append(cand)
    return found


def run_project_tests(project: Path, args: list[str] | None = None, *, limits: SandboxLimits | None = None,
                      on_output: Callable[[str, str], None] | None = None,
                      cancelled: Callable[[], bool] | None = None, python: str | None = None,
                      trace: bool = True, trace_limits: SandboxLimits | None = None,
                      search: Search | None = None) -> SuiteRun:
    """Run the project's tests on a copy of it in the sandbox; the project is never written.
    After a failure, the first failing test runs again under the tracer (``trace``; trace.py) on
    the same copy, and ``search`` (the project index, optional) adds files that match the
    failure's words; ``run.files`` is then the ranked choice of ``fix_files``."""
    project = Path(project).resolve()
    if not project.is_dir():
        raise SandboxError(f"The project folder {project} does not exist any more.")
    python = python or project_python(project)
    root = make_folder()
    try:
        copy = root / "project"
        copy.mkdir()
        copy_project(project, copy)
        runner = root / "run_tests.py"
        runner.write_text(_RUNNER.format(project=str(copy), args=PYTEST_ARGS + list(args or [])), encoding="utf-8")
        prefix = str(copy) + os.sep

        def mapped(text: str) -> str:
            return text.replace(prefix, "").replace(str(copy), ".")

        def forward(stream: str, text: str) -> None:
            if on_output is not None:
                on_output(stream, mapped(text))
        result = run_in_folder(root, [python, "-B", "-u", "-X", "utf8", str(runner)],
                               limits=limits or TEST_LIMITS, on_output=forward, cancelled=cancelled,
                               python=python, keep=[project])
        result.stdout, result.stderr = mapped(result.stdout), mapped(result.stderr)
        run = SuiteRun(result, python, result.stdout + result.stderr)
        if trace and _traceable(result, cancelled):
            test = failing_test(run.output)
            try:
                if test is None:
                    raise TraceError("the output names no failing test to run again")
                run.trace = trace_failing_test(root, copy, project, python, test, list(args or []),
                                               limits=trace_limits, cancelled=cancelled)
                if not run.trace.failed:
                    run.trace_note = ("The failing test passed when run again with fewer tests around it (it may "
                                      "depend on tests before it); the code shown is what it ran then.")
            except (TraceError, OSError) as e:  # never the end of the /fix: its files come from the output then
                run.trace_note = f"The failing test could not be traced: {e}; the files are those the output names."
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if not run.passed:
        run.files = fix_files(project, run.output, run.trace, search)
    return run


def _traceable(result: RunResult, cancelled: Callable[[], bool] | None) -> bool:
    """A plain failure (not a stop, a time-out or a crash), and the user has not stopped /fix."""
    return (result.exit_code == 1 and not (result.timed_out or result.cancelled or result.memory_exceeded)
            and not (cancelled is not None and cancelled()))


_SUMMARY = re.compile(r"^(?:FAILED|ERROR) (.+?)\s*$", re.M)
_HEADLINE = re.compile(r"^_{3,} (.+?) _{3,}$", re.M)
_UNITTEST = re.compile(r"^(?:FAIL|ERROR): (\S+) \(([^)\s]*)\)", re.M)


def failing_test(output: str) -> FailingTest | None:
    """The first failing test named in the output of the first run, or None (a collection error,
    a crash before any test, an output without names). Odd pytest ids are kept whole: the
    summary line ``FAILED id - message`` gives every cut at " - " as a candidate (a parameter
    may hold " - " too), and the tracer takes the longest one that names a collected test."""
    if "running unittest discover" in output:  # the runner's own line (see _RUNNER)
        m = _UNITTEST.search(output)
        if m is None or m.group(2).startswith("unittest."):
            return None
        name, where = m.group(1), m.group(2)
        test_id = where if where.endswith("." + name) or name.startswith(("setUp", "tearDown")) else f"{where}.{name}"
        return FailingTest("unittest", (test_id,), start="tests")  # as the first run discovered, if it exists
    for m in _SUMMARY.finditer(output):
        rest = m.group(1)
        if "::" not in rest:
            continue  # "ERROR tests/test_x.py": a collection error, no test to run
        cuts = [rest] + [rest[:i] for i in range(len(rest)) if rest.startswith(" - ", i)]
        return FailingTest("pytest", tuple(c for c in cuts if "::" in c))
    names = [n for n in _HEADLINE.findall(output) if " " not in n.strip() or "[" in n]
    names = [n for n in names if not n.startswith(("ERROR", "short test summary"))]
    return FailingTest("pytest", (), names=(names[0],)) if names else None


def failure_words(output: str, trace: Trace | None) -> str:
    """The failure's own words (the assertion or the exception), for the index search."""
    if trace is not None and trace.message:
        return trace.message[:300]
    lines = [ln[1:].strip() for ln in output.splitlines() if ln.startswith("E ")]
    lines = lines or [ln.strip() for ln in output.splitlines() if re.match(r"\w*(Error|Exception)\b", ln.strip())]
    return " ".join(lines[:4])[:300]


def fix_files(project: Path, output: str, trace: Trace | None, search: Search | None = None) -> list[str]:
    """Files for the fix, most relevant first: project source in the failure's traceback, the
    files of the functions the test ran (nearest the failure first), the index's matches for
    the failure's words, then the test files. Without a trace: the output's files with the
    modules the tests import (the choice before tracing), index matches before the tests."""
    project = Path(project).resolve()
    if trace is None:
        named = failing_files(output, project)
    else:
        named = named_files(output, project) + trace.stack_files()
    code = [p for p in named if not is_test_file(p)]
    tests = [p for p in named if is_test_file(p)]
    if trace is not None:
        code += [f.path for f in trace.ranked()]
    words = failure_words(output, trace) if search is not None else ""
    if words:
        try:
            code += [h.chunk.path for h in search(words, SEARCH_HITS)]
        except Exception:  # noqa: BLE001 - a broken index must not stop the /fix; the files are optional
            pass
    out: list[str] = []
    for p in code:
        if p not in out and p not in tests and len(out) < MAX_FIX_FILES and (project / p).is_file():
            out.append(p)
    return out + [t for i, t in enumerate(tests) if t not in tests[:i]]


@dataclass(frozen=True)
class FixTarget:
    kind: str          # "tests", "code" or "auto"
    args: list[str]    # pytest arguments (tests only)
    note: str          # anything else: passed to the model with the error


def parse_fix(text: str) -> FixTarget:
    """``/fix`` → auto; ``/fix tests [pytest args]`` → the project's tests; ``/fix code [note]``
    → the newest code block; ``/fix <note>`` → auto with a note for the model."""
    words = text.split()
    if words and words[0].lower() in ("tests", "test"):
        return FixTarget("tests", words[1:], "")
    if words and words[0].lower() == "code":
        return FixTarget("code", [], " ".join(words[1:]))
    return FixTarget("auto", [], text.strip())

"""Run the checks after Apply: the syntax check, the project's linters, and (when the user
enabled it) its tests. Blocks; the window calls it from a worker and can cancel it.

Where linters run: in the sandbox (run/sandbox.py: no network, rlimits, the whole process group
killed at the timeout or on cancel), on the project itself, not a copy. Linters only read, and
in the sandbox every file system but the sandbox folder is read-only, so they cannot change the
project even if one tried; a copy (as the tests need, see run/project_tests.py) would cost a
full project copy per Apply for nothing. Their caches are turned off (``ruff --no-cache``) or
land in the sandbox folder (Go's build cache under the sandbox's HOME). The exception is cargo,
which must write ``Cargo.lock``: it gets a copy without ``target/`` (``copy_for_check``) and a
build folder in the sandbox, so nothing is reused between runs. The project folder and the
tool's own folders are brought back read-only when they lie under a hidden home (mounts.py).

How: a small runner script (``_RUNNER``) is the sandboxed program. It points its stdout and
stderr at a file in the sandbox folder, sets the tool's environment, changes into the project
and execs the tool, or runs a Python tool's module in place (which also works under the
python-guard fallback, where no other program may start; a native tool cannot run there and
says so). Output goes to a file rather than the pipe so that a tool printing megabytes is cut
to ``OUTPUT_BYTES`` with an exact "… 3.2 MB more cut" note, and the file-size limit
(``Linter.file_mb``, 64 MB for most) stops one printing without end.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

from app.core.checks import syntax
from app.core.checks.linters import Detection, Linter, detect
from app.core.checks.settings import ProjectSettings
from app.core.run.project_tests import NO_TESTS, TEST_LIMITS, fix_request_for_tests, run_project_tests
from app.core.run.result import PYTHON_GUARD, SandboxLimits
from app.core.run.sandbox import SandboxError, code_python, make_folder, run_in_folder

PASSED, FAILED, TIMED_OUT, CANCELLED, ERROR, NOTICE = (
    "passed", "failed", "timed out", "cancelled", "error", "notice")
OUTPUT_BYTES = 200_000       # kept and shown per check; the rest is counted and cut
FIX_OUTPUT_CHARS = 3000      # of the output, handed to the fix round (a small model's prompt)
_LOCATION = re.compile(r"^(?:\./)?([^\s:][^:\n]*?\.\w+):(\d+)", re.M)
_ESLINT_ROW = re.compile(r"^\s+\d+:\d+\s+(?:error|warning)\b", re.M)

_RUNNER = r'''
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "check.json"), encoding="utf-8") as f:
    cfg = json.load(f)
fd = os.open(cfg["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.dup2(fd, 1)
os.dup2(fd, 2)
os.close(fd)
os.environ.update(cfg["env"])
os.chdir(cfg["cwd"])
if cfg["module"]:
    import runpy
    sys.argv = [cfg["module"]] + cfg["args"]
    runpy.run_module(cfg["module"], run_name="__main__", alter_sys=True)
else:
    try:
        os.execv(cfg["argv"][0], cfg["argv"])
    except PermissionError as e:  # the python-guard: no other program may start
        print("not started: %s" % e, flush=True)
        sys.exit(126)
'''


@dataclass
class CheckResult:
    """One check's outcome, for the Changes pane. ``fix_text`` is set only for a failure the
    fix round can act on (the code is wrong, not the tool): the request with the real output."""

    name: str                      # "syntax", "ruff", …, "tests", or "checks" for a notice
    status: str                    # PASSED, FAILED, TIMED_OUT, CANCELLED, ERROR or NOTICE
    summary: str                   # one line
    output: str = ""               # at most OUTPUT_BYTES, with a note saying how much was cut
    duration_s: float = 0.0
    command: str = ""              # as a person would type it in the project folder
    fix_text: str = ""
    files: list[str] = field(default_factory=list)  # project files the output names

    @property
    def ok(self) -> bool:
        """Nothing for the user to act on (a pass, or a notice)."""
        return self.status in (PASSED, NOTICE)


def run_checks(root: Path, changed_paths: Iterable[str], settings: ProjectSettings, *,
               cancel: threading.Event | None = None, on_progress: Callable[[str], None] | None = None,
               before: dict[str, str] | None = None, detection: Detection | None = None) -> list[CheckResult]:
    """Check the files an Apply wrote (``changed_paths``, relative to ``root``; deleted ones are
    skipped). ``before``: path → text before the change, so the syntax check charges the change
    only with errors it introduced. ``cancel`` set: the running check is killed at once and no
    further one starts. ``on_progress(text)`` is called before each check.

    Notices are said once: this sets ``settings.no_checks_said`` / ``settings.missing_said``;
    the caller saves the settings afterwards (``checks_after_apply`` does both)."""
    root = Path(root).resolve()
    cancelled = cancel.is_set if cancel is not None else (lambda: False)
    paths = _existing(root, changed_paths)
    detection = detection or detect(root, settings)
    results: list[CheckResult] = []
    fresh = [(n, why) for n, why in detection.missing if n not in settings.missing_said]
    if fresh:
        settings.missing_said = list(dict.fromkeys(list(settings.missing_said) + [n for n, _ in fresh]))
        results.append(CheckResult("checks", NOTICE, "Configured but not installed, so not run: "
                                   + "; ".join(f"{n} ({why})" for n, why in fresh)))
    if not detection.found and not settings.run_tests_after_apply and not settings.no_checks_said:
        settings.no_checks_said = True
        what = "only the syntax check runs" if settings.syntax_check else "nothing is checked"
        results.append(CheckResult("checks", NOTICE, (
            f"This project has no checks after Apply: {what}. No linter is configured and installed "
            "(ruff, flake8, pyflakes, eslint, go vet, cargo check), and 'run tests after Apply' is off. "
            "This is said once; the project's check settings can change it.")))
    steps: list[tuple[str, Callable[[], CheckResult | None]]] = []
    if settings.syntax_check:
        steps.append(("syntax", lambda: _syntax_check(root, paths, before)))
    for linter in detection.found:
        files = [p for p in paths if p.endswith(linter.extensions)] if linter.extensions else []
        if linter.extensions and not files:
            continue  # no changed file is this tool's business
        steps.append((linter.name, lambda x=linter, f=files: run_linter(
            root, x, f, timeout_s=settings.check_timeout_s, cancelled=cancelled)))
    if settings.run_tests_after_apply:
        steps.append(("tests", lambda: run_tests(root, settings.tests_timeout_s, cancelled)))
    for i, (name, step) in enumerate(steps, 1):
        if cancelled():
            break
        if on_progress is not None:
            on_progress(f"Checking: {name} ({i} of {len(steps)})…")
        result = step()
        if result is not None:
            results.append(result)
    return results


def _existing(root: Path, changed: Iterable[str]) -> list[str]:
    """The changed paths as project-relative POSIX paths of files that exist now (a path that
    leads out of the project, by ``..`` or a symlink, is left out)."""
    out: list[str] = []
    for p in changed:
        try:
            rel = (root / p).resolve().relative_to(root).as_posix()
        except (OSError, ValueError):
            continue
        if rel not in out and (root / rel).is_file():
            out.append(rel)
    return out


# ---- syntax -----------------------------------------------------------------------------------------
def _syntax_check(root: Path, paths: list[str], before: dict[str, str] | None) -> CheckResult | None:
    started = time.monotonic()
    checked, rows, broken = 0, [], []
    for p in paths:
        if not syntax.checkable(p):
            continue
        try:
            text = (root / p).read_bytes().decode("utf-8", errors="replace")
        except OSError:
            continue
        errors = syntax.introduced_errors(p, (before or {}).get(p), text) if before is not None \
            else syntax.syntax_errors(p, text)
        if errors is None:
            continue
        checked += 1
        if errors:
            broken.append(p)
            rows += [f"{p}:{e.line}:{e.column}: {e.message}" for e in errors]
    if not checked:
        return None
    took = round(time.monotonic() - started, 3)
    if not rows:
        return CheckResult("syntax", PASSED, f"syntax: no errors in {_count(checked, 'file')}", duration_s=took)
    output = "\n".join(rows)
    fix = (f"The last change left code that does not parse. Fix the syntax errors below without "
           f"changing what the code is for.\n\nFiles involved: {', '.join(broken)}\n\n"
           f"Syntax errors:\n\n```\n{output[:FIX_OUTPUT_CHARS]}\n```")
    return CheckResult("syntax", FAILED, f"syntax: {_count(len(rows), 'error')} in {', '.join(broken)}",
                       output, took, "", fix, broken)


# ---- linters ----------------------------------------------------------------------------------------
def run_linter(root: Path, linter: Linter, files: list[str], *, timeout_s: float,
               cancelled: Callable[[], bool] | None = None) -> CheckResult:
    """One linter on ``files`` (all of the project when the tool takes none), in the sandbox."""
    root = Path(root).resolve()
    shown = linter.shown(files)
    folder = make_folder()
    try:
        out = folder / "output.txt"
        env = dict(linter.env)
        cwd = root
        if linter.copy:
            cwd = folder / "project"
            try:
                copy_for_check(root, cwd)
            except SandboxError as e:
                return CheckResult(linter.name, ERROR, f"{linter.name} could not run: {e}", command=shown)
        if linter.name == "cargo check":
            env["CARGO_TARGET_DIR"] = str(folder / "target")  # never the project's own target/
        argv = linter.command(files)
        cfg = {"cwd": str(cwd), "output": str(out), "env": env, "module": linter.module,
               "args": argv[3:] if linter.module else [], "argv": [] if linter.module else argv}
        (folder / "check.json").write_text(json.dumps(cfg), encoding="utf-8")
        (folder / "check.py").write_text(_RUNNER, encoding="utf-8")
        python = linter.python or code_python()
        limits = SandboxLimits(time_s=timeout_s, memory_mb=linter.memory_mb, output_bytes=OUTPUT_BYTES,
                               file_mb=linter.file_mb)
        try:
            run = run_in_folder(folder, [python, "-B", "-u", "-X", "utf8", str(folder / "check.py")],
                                limits=limits, cancelled=cancelled, python=python,
                                keep=[root, *linter.keep])
        except SandboxError as e:
            return CheckResult(linter.name, ERROR, f"{linter.name} could not run: {e}", command=shown)
        output, total = _read_cut(out)
        extra = (run.stdout + run.stderr).strip()  # the sandbox's own words (a failed start)
        if extra:
            output = f"{output}\n{extra}" if output else extra
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    took = run.duration_s

    def result(status: str, summary: str, fix: str = "", named: list[str] | None = None) -> CheckResult:
        return CheckResult(linter.name, status, summary, output, took, shown, fix, named or [])
    if run.cancelled:
        return result(CANCELLED, f"{linter.name}: cancelled after {took:.1f} s")
    if run.timed_out:
        return result(TIMED_OUT, f"{linter.name}: timed out after {timeout_s:g} s and was stopped")
    if total >= linter.file_mb * 1024 * 1024:
        return result(ERROR, f"{linter.name}: printed more than {linter.file_mb} MB and was stopped")
    if run.isolation == PYTHON_GUARD and not linter.module:
        return result(ERROR, f"{linter.name} cannot run here: this system does not let the app cut a "
                             "program off from the network, and only Python tools can be watched without that")
    if run.exit_code == 0:
        what = _count(len(files), "changed file") if files else "the project"
        return result(PASSED, f"{linter.name}: no problems in {what}")
    if run.exit_code in linter.problem_codes:
        named = _named_files(root, output)
        n = len(_LOCATION.findall(output)) or len(_ESLINT_ROW.findall(output))
        found = _count(n, "problem") if n else "problems"
        return result(FAILED, f"{linter.name}: {found}", _fix_text(linter.name, shown, output, named), named)
    return result(ERROR, f"{linter.name} stopped with exit code {run.exit_code} (a problem of the tool or "
                         "its configuration, not necessarily of the change)")


COPY_MAX_BYTES = 300 * 1024 * 1024
COPY_MAX_FILES = 20_000
_COPY_SKIP = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".pytest_cache", ".mypy_cache",
              ".ruff_cache", ".tox", ".nox", ".idea", ".vscode", "target"}


def copy_for_check(root: Path, dest: Path) -> None:
    """Copy the project for a tool that writes in it: build output (``target``), VCS folders,
    caches and dependencies left out; symlinks copied as links (the copy is read only by the
    tool, and everything outside the sandbox folder is read-only). SandboxError past the caps."""
    total = files = 0
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if d not in _COPY_SKIP and not (here / d / "pyvenv.cfg").exists()]
        target = dest / here.relative_to(root)
        target.mkdir(parents=True, exist_ok=True)
        for name in filenames + [d for d in dirnames if (here / d).is_symlink()]:
            src = here / name
            files += 1
            if files > COPY_MAX_FILES:
                raise SandboxError(f"The project has more than {COPY_MAX_FILES:,} files; too many to copy "
                                   "into the sandbox for the check.")
            if src.is_symlink():
                os.symlink(os.readlink(src), target / name)
            elif src.is_file():
                total += src.stat().st_size
                if total > COPY_MAX_BYTES:
                    raise SandboxError(f"The project is bigger than {COPY_MAX_BYTES // 2**20} MB without its "
                                       "build output and caches; too big to copy into the sandbox for the check.")
                shutil.copy2(src, target / name)
        dirnames[:] = [d for d in dirnames if not (here / d).is_symlink()]


def _read_cut(path: Path) -> tuple[str, int]:
    """The first OUTPUT_BYTES of the output file, with a note on what was cut, and its size."""
    try:
        total = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(OUTPUT_BYTES)
    except OSError:
        return "", 0
    text = head.decode("utf-8", errors="replace")
    if total > OUTPUT_BYTES:
        text = text.rstrip("\ufffd") + f"\n… {human_size(total - OUTPUT_BYTES)} more cut"
    return text, total


def human_size(n: int) -> str:
    """Bytes in words: "812 bytes", "48.2 kB", "3.2 MB" (decimal, as file managers show)."""
    if n < 1000:
        return f"{n} bytes"
    if n < 1000 ** 2:
        return f"{n / 1000:.1f} kB"
    return f"{n / 1000 ** 2:.1f} MB"


def _named_files(root: Path, output: str) -> list[str]:
    out: list[str] = []
    for m in _LOCATION.finditer(output):
        p = m.group(1).replace("\\", "/")
        if p.startswith(str(root)):
            p = p[len(str(root)):].lstrip("/")
        if p not in out and not p.startswith("../") and (root / p).is_file():
            out.append(p)
    return out[:20]


def _fix_text(name: str, shown: str, output: str, files: list[str]) -> str:
    head = output[:FIX_OUTPUT_CHARS].rstrip()
    if len(output) > FIX_OUTPUT_CHARS:
        head += "\n…"
    return (f"{name} reports problems in the code after the last change. Change the code so that "
            f"`{shown}` passes; keep what the change was for, and do not silence a warning unless it "
            f"is wrong.\n\nFiles involved: {', '.join(files) or '(none named in the output)'}\n\n"
            f"{name} output:\n\n```\n{head}\n```")


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# ---- tests ------------------------------------------------------------------------------------------
def run_tests(root: Path, timeout_s: float, cancelled: Callable[[], bool] | None = None) -> CheckResult:
    """The project's tests (run/project_tests.py: a copy in the sandbox), as a check."""
    try:
        run = run_project_tests(root, limits=replace(TEST_LIMITS, time_s=timeout_s), cancelled=cancelled)
    except SandboxError as e:
        return CheckResult("tests", ERROR, f"tests could not run: {e}")
    r = run.result
    output = run.output
    if len(output.encode("utf-8")) > OUTPUT_BYTES:
        cut = output.encode("utf-8")
        output = cut[:OUTPUT_BYTES].decode("utf-8", errors="ignore") + \
            f"\n… {human_size(len(cut) - OUTPUT_BYTES)} more cut"
    command = f"{Path(run.python).name} -m pytest -x -q --tb=short (on a copy of the project)"

    def result(status: str, summary: str, fix: str = "") -> CheckResult:
        return CheckResult("tests", status, summary, output, r.duration_s, command, fix, list(run.files))
    if r.cancelled:
        return result(CANCELLED, f"tests: cancelled after {r.duration_s:.1f} s")
    if r.timed_out:
        return result(TIMED_OUT, f"tests: timed out after {timeout_s:g} s and were stopped")
    if r.exit_code in (0, NO_TESTS):
        return result(PASSED, run.summary())
    if r.exit_code in (1, 2) and not r.memory_exceeded:  # failures, or errors while collecting
        return result(FAILED, run.summary() if r.exit_code == 1 else "tests: errors while collecting them",
                      fix_request_for_tests(run))
    return result(ERROR, run.summary())

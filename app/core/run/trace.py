"""Which project code a failing test ran: the test run once more under a tracer, and a ranking.

Why: the failure output names the test and the frames of the exception, nothing else. A test
that imports only a package and asserts on a result names no module, and the bug sits in code
the test ran several calls away. So after a failing run the first failing test (its pytest node
id, or its unittest id) runs again in the same sandbox folder under ``sys.settrace``
(dependency-free, any Python), with up to ``NEIGHBOURS`` tests of its file before and after it.
Only the project's own source is traced (the copy and, for an editable install, the original
folder; tests, conftest files and virtualenvs left out). Per function the failing test ran: its
first and last line run, when it last ran, calls, the line ranges it ran, and an Ochiai
suspicion: the best of its lines by failing tests that ran the line against all that ran it, so
code that passing neighbours ran too counts less. Also the project frames of the failure's
exception (and of those it chains) and where project code raised. The record goes to a JSON
file in the sandbox folder, bounded in records, ranges and bytes; the run has its own time limit
and is cancellable like the first. Anything that goes wrong raises ``TraceError`` in words; /fix
then keeps its output-only file choice and says so in the request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from app.core import safe_json
from app.core.errors import UserError
from app.core.run.result import SandboxLimits
from app.core.run.sandbox import SandboxError, run_in_folder

# pytest as /fix runs it (-x: one failure at a time is what a small model can fix); here so that
# project_tests and the traced re-run share it without importing each other.
PYTEST_ARGS = ["-x", "-q", "--tb=short", "--color=no", "-p", "no:cacheprovider"]
TRACE_LIMITS = SandboxLimits(time_s=60.0, memory_mb=4096, output_bytes=100_000, file_mb=64)
TRACE_FILE = "trace.json"
MAX_FUNCTIONS = 3000       # records written (the most recent); the tracer follows at most 4x that
MAX_RAISED = 200
MAX_STACK = 60
MAX_EVENTS = 20_000_000    # line events; past them only calls are counted (keeps a hot loop bounded)
MAX_TRACE_BYTES = 2_000_000
NEIGHBOURS = 15            # tests of the same file before and after the failing one, traced too
MAX_RANGES = 50            # executed line ranges kept per function


class TraceError(UserError, RuntimeError):
    """The failing test could not be traced; the message says why (the /fix goes on without)."""


_TRACER = r'''
import json, os, sys, threading
CFG = json.loads(%(cfg)r)
os.chdir(CFG["project"])
sys.path.insert(0, CFG["project"])
sys.dont_write_bytecode = True
VENVS = {".venv", "venv", "env", ".env", "site-packages", "dist-packages", ".tox", ".nox"}
LIMIT = CFG["limits"]
where, COV, FUNCS, TALLY, TARGET, RAISED = {}, {}, {}, {}, {}, []
S = {"clock": 0, "target": False, "passing": 0, "failing": 0, "failure_order": 0, "failed": False,
     "selected": "", "error": "", "message": "", "stack": [], "written": False}


def rel_of(filename, tests=False):
    key = (filename, tests)
    if key not in where:
        rel, path = "", os.path.abspath(filename)
        for root in CFG["roots"]:
            if path.startswith(root + os.sep):
                r = path[len(root) + 1:].replace(os.sep, "/")
                parts = r.split("/")
                test = ({"tests", "test"} & set(parts[:-1]) or parts[-1].startswith("test_")
                        or parts[-1].endswith("_test.py") or parts[-1] == "conftest.py")
                if (r.endswith(".py") and not VENVS & set(parts[:-1]) and (tests or not test)
                        and os.path.isfile(path)):
                    rel = r
                break
        where[key] = rel
    return where[key]


def name_of(code):
    return getattr(code, "co_qualname", code.co_name)[:200]


def local(frame, event, arg):
    S["clock"] += 1
    code = frame.f_code
    lines = COV.get(code)
    if lines is not None:
        lines.setdefault(frame.f_lineno, S["clock"])
    rec = FUNCS.get(code)
    if rec is not None:
        rec[3], rec[4] = frame.f_lineno, S["clock"]
        if event == "exception" and len(RAISED) < LIMIT["raised"]:
            RAISED.append([rec[0], frame.f_lineno, rec[1], S["clock"]])
    return local if S["clock"] < LIMIT["events"] else None


def on_call(frame, event, arg):
    if event != "call":
        return None
    code = frame.f_code
    if code not in COV:
        if not rel_of(code.co_filename) or len(COV) >= LIMIT["functions"] * 4:
            return None
        COV[code] = {}
        if S["target"]:
            FUNCS[code] = [rel_of(code.co_filename), name_of(code), code.co_firstlineno, code.co_firstlineno, 0, 0]
    S["clock"] += 1
    rec = FUNCS.get(code)
    if rec is not None:
        rec[4] = S["clock"]
        rec[5] += 1
    return local if S["clock"] < LIMIT["events"] else None


def start(target):
    COV.clear()
    S["target"] = target
    threading.settrace(on_call)
    sys.settrace(on_call)


def stop():
    sys.settrace(None)
    threading.settrace(None)


def count(failing):
    """One test's coverage into the per-line tallies: [failing tests, passing tests] that ran it."""
    stop()
    S["failing" if failing else "passing"] += 1
    for code, lines in COV.items():
        tally = TALLY.setdefault(code, [[0, 0], {}])
        tally[0][0 if failing else 1] += 1
        for n in lines:
            tally[1].setdefault(n, [0, 0])[0 if failing else 1] += 1
    if S["target"]:
        TARGET.update(COV)
    COV.clear()


def failed(exc, tb):
    S["failure_order"], S["failed"] = S["clock"], True
    S["message"] = ("%%s: %%s" %% (type(exc).__name__, exc))[:600]
    chain = []
    while exc is not None and len(chain) < 4 and all(exc is not e for e, _ in chain):
        chain.append((exc, tb))
        exc = exc.__cause__ or exc.__context__
        tb = exc.__traceback__ if exc is not None else None
    frames = []
    for exc, tb in reversed(chain):  # the innermost cause first, the failure itself last
        while tb is not None:
            rel = rel_of(tb.tb_frame.f_code.co_filename, tests=True)
            if rel:
                frames.append([rel, tb.tb_lineno, name_of(tb.tb_frame.f_code)])
            tb = tb.tb_next
    S["stack"] = frames[-LIMIT["stack"]:]


def ranges(lines):
    out = []
    for n in sorted(lines):
        if out and n == out[-1][1] + 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return out[:LIMIT["ranges"]]


def write():
    """Per function the test ran: its record, Ochiai suspicion (the best of its lines: failing
    tests that ran the line over the root of all failing times all that ran it), tallies, lines."""
    stop()
    recs, fails = [], max(S["failing"], 1)
    for code, rec in FUNCS.items():
        (nf, np), per_line = TALLY.get(code, [[1, 0], {}])
        lines = TARGET.get(code, {})
        score = {n: t[0] / (fails * (t[0] + t[1])) ** 0.5 for n, t in ((n, per_line.get(n, [1, 0])) for n in lines)}
        best = max(score.values() or [0])
        hot = min((n for n in score if score[n] == best), key=lines.get, default=rec[3])
        recs.append(rec + [round(best, 4), nf, np, ranges(lines), hot])
    recs = sorted(recs, key=lambda r: -r[4])[:LIMIT["functions"]]
    data = {k: v for k, v in S.items() if k not in ("written", "target", "clock")}
    data.update(functions=recs, raised=RAISED[-LIMIT["raised"]:])
    with open(CFG["out"] + ".part", "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(CFG["out"] + ".part", CFG["out"])
    S["written"] = True


def run_pytest():
    import pytest

    class Select:
        def pytest_collection_modifyitems(self, session, config, items):
            ids = set(CFG["ids"])
            keep = sorted([i for i in items if i.nodeid in ids], key=lambda i: -len(i.nodeid))[:1]
            keep = keep or [i for i in items if i.location[2] in CFG["names"] or i.name in CFG["names"]][:1]
            if keep:  # its neighbours in the same file, run and traced too: what passing tests ran is less suspect
                at, path = items.index(keep[0]), keep[0].location[0]
                near = [i for i in items[max(0, at - CFG["neighbours"]):at + CFG["neighbours"] + 1] if i.location[0] == path]
                S["selected"], keep = keep[0].nodeid, near
            config.hook.pytest_deselected(items=[i for i in items if i not in keep])
            items[:] = keep

        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_setup(self, item):
            start(item.nodeid == S["selected"])
            yield

        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_makereport(self, item, call):
            outcome = yield
            report = outcome.get_result()
            if call.when == "teardown" or (call.when == "setup" and report.passed):
                return
            if getattr(report, "wasxfail", None) is not None or report.skipped:
                stop()
                COV.clear()
                return
            if S["target"] and report.failed:
                failed(call.excinfo.value, call.excinfo.tb)
            count(report.failed)
            if S["target"]:
                write()  # a later test that hangs does not lose it

    pytest.main(CFG["args"], plugins=[Select()])
    S["error"] = "" if S["selected"] else "the failing test was not found again"


def run_unittest():
    import unittest
    if CFG["start"]:
        sys.path.insert(0, os.path.abspath(CFG["start"]))
    suite = unittest.defaultTestLoader.loadTestsFromName(CFG["ids"][0])
    S["selected"] = CFG["ids"][0]

    class Result(unittest.TextTestResult):
        def startTest(self, test):
            super().startTest(test)
            start(True)

        def addSuccess(self, test):
            count(False)
            super().addSuccess(test)

        def addFailure(self, test, err):
            failed(err[1], err[2])
            count(True)
            super().addFailure(test, err)

        addError = addFailure

    unittest.TextTestRunner(resultclass=Result).run(suite)


try:
    run_pytest() if CFG["runner"] == "pytest" else run_unittest()
finally:
    write()
'''


@dataclass(frozen=True)
class FailingTest:
    """The first failing test of a run, as the runner names it."""

    runner: str                 # "pytest" | "unittest"
    ids: tuple[str, ...]        # candidate pytest node ids (the longest that exists wins), or the unittest id
    names: tuple[str, ...] = ()  # pytest's failure headlines ("TestX.test_y[1]"), when no id was printed
    start: str = ""             # unittest: the folder discovery started in ("tests"), "" for the root

    @property
    def path(self) -> str:
        """The test file, when the id says it (pytest's node ids do)."""
        if self.runner == "pytest" and self.ids and ".py" in self.ids[0]:
            return self.ids[0].split("::", 1)[0]
        return ""


@dataclass(frozen=True)
class TracedFunction:
    path: str     # relative to the project, POSIX
    name: str     # qualified name ("IntRange.convert")
    first: int    # its first line (the ``def``, after decorators)
    last: int     # the last line of it that ran
    order: int    # when it last ran (a clock over every traced event)
    calls: int
    suspicion: float = 0.0   # Ochiai of its most suspect line over the traced tests (0..1)
    failing: int = 0         # traced tests that ran it and failed, and that passed
    passing: int = 0
    lines: tuple[tuple[int, int], ...] = ()  # the line ranges the failing test ran in it
    hot: int = 0             # its most suspect line (the first to run of equals)


@dataclass
class Trace:
    """What the failing test ran, as the tracer wrote it."""

    test: str
    failed: bool                    # the re-run failed too (else the ranking is only by recency)
    functions: list[TracedFunction]
    stack: list[tuple[str, int, str]] = field(default_factory=list)   # (path, line, function), innermost last
    raised: list[tuple[str, int, str, int]] = field(default_factory=list)  # (path, line, function, order)
    failure_order: int = 0
    message: str = ""
    root: str = ""                  # the project the paths are relative to (set by the caller)
    passing: int = 0                # tests traced that passed (the neighbours) and that failed
    failing: int = 0
    duration_s: float = 0.0         # the traced run's (set by the caller)

    def stack_files(self) -> list[str]:
        """Project files of the failure's frames, innermost first."""
        out: list[str] = []
        for path, _line, _name in reversed(self.stack):
            if path not in out:
                out.append(path)
        return out

    def ranked(self) -> list[TracedFunction]:
        """Functions nearest the failure first: those in its traceback (innermost first), then
        by suspicion (lines that failing tests ran and passing ones did not), then those that
        raised during the test, then the ones that ran last before the failure."""
        by_key = {(f.path, f.name): f for f in self.functions}
        limit = self.failure_order or max((f.order for f in self.functions), default=0)
        raised: dict[tuple[str, str], int] = {}
        for path, _line, name, order in self.raised:
            raised[(path, name)] = max(order, raised.get((path, name), 0))
        first = [by_key[k] for k in dict.fromkeys((p, n) for p, _l, n in reversed(self.stack)) if k in by_key]
        rest = sorted((f for f in self.functions if f not in first),
                      key=lambda f: (-f.suspicion, -raised.get((f.path, f.name), 0),
                                     -f.order if f.order <= limit else f.order))
        return first + rest


def parse_trace(text: str) -> Trace:
    """The tracer's JSON, checked; a damaged or foreign file raises TraceError."""
    try:
        data = safe_json.loads(text, max_depth=8, max_bytes=MAX_TRACE_BYTES)
        funcs = [TracedFunction(str(p), str(n), int(a), int(b), int(o), int(c), float(s), int(nf), int(np),
                                tuple((int(x), int(y)) for x, y in lines[:MAX_RANGES]), int(hot))
                 for p, n, a, b, o, c, s, nf, np, lines, hot in data["functions"][:MAX_FUNCTIONS]]
        stack = [(str(p), int(n), str(f)) for p, n, f in data.get("stack", [])[-MAX_STACK:]]
        raised = [(str(p), int(n), str(f), int(o)) for p, n, f, o in data.get("raised", [])[-MAX_RAISED:]]
        error = str(data.get("error") or "")
        trace = Trace(str(data.get("selected") or ""), bool(data.get("failed")), funcs, stack, raised,
                      int(data.get("failure_order") or 0), str(data.get("message") or "")[:600],
                      passing=int(data.get("passing") or 0), failing=int(data.get("failing") or 0))
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise TraceError(f"the tracer's record could not be read ({type(e).__name__})") from None
    if error:
        raise TraceError(error)
    return trace


def trace_failing_test(root: Path, copy: Path, project: Path, python: str, test: FailingTest,
                       args: list[str], *, limits: SandboxLimits | None = None,
                       cancelled: Callable[[], bool] | None = None) -> Trace:
    """Run ``test`` once more in the sandbox folder ``root`` (its project copy ``copy``, made for
    the first run) under the tracer; the record comes back through a file in ``root``."""
    out = root / TRACE_FILE
    out.unlink(missing_ok=True)
    if test.runner == "pytest":
        where = args or ([test.path] if test.path and (copy / test.path).is_file() else [])
        run_args = [a for a in PYTEST_ARGS if a != "-x"] + ["-p", "no:randomly"] + list(where)
    else:
        run_args = []
    limits = limits or TRACE_LIMITS
    cfg = {"project": str(copy), "roots": sorted({str(copy), str(Path(project).resolve())}, key=len, reverse=True),
           "out": str(out), "runner": test.runner, "ids": list(test.ids), "names": list(test.names),
           "args": run_args, "start": test.start if (copy / test.start).is_dir() else "", "neighbours": NEIGHBOURS,
           "limits": {"ranges": MAX_RANGES, "functions": MAX_FUNCTIONS, "raised": MAX_RAISED, "stack": MAX_STACK, "events": MAX_EVENTS}}
    source = _TRACER % {"cfg": json.dumps(cfg)}
    script = root / "trace_test.py"
    script.write_text(source, encoding="utf-8")
    try:
        result = run_in_folder(root, [python, "-B", "-u", "-X", "utf8", str(script)], limits=limits,
                               cancelled=cancelled, python=python, keep=[project])
    except SandboxError as e:
        raise TraceError(f"the sandbox could not run it ({e})") from None
    if result.cancelled:
        raise TraceError("it was stopped")
    if result.timed_out and not out.is_file():  # a neighbour that hung after the failing test: its record stands
        raise TraceError(f"it ran past its time limit ({limits.time_s:g} s)")
    try:
        if out.stat().st_size > MAX_TRACE_BYTES:
            raise TraceError("the tracer's record was too big")
        text = out.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        tail = (result.stdout + result.stderr).strip().splitlines()[-1:] or [result.summary()]
        raise TraceError(f"the tracer wrote no record ({tail[0][:200]})") from None
    trace = parse_trace(text)
    trace.root, trace.duration_s = str(Path(project).resolve()), result.duration_s
    return trace

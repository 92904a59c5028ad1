"""/fix on the tests shows the code the failing test ran: a real re-run under the tracer in the
sandbox, on real small projects; the fallback when it cannot be traced; odd test ids."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from app.core.edits.prompt import EDIT_INSTRUCTIONS, EditRequest, build_edit_prompt
from app.core.run import trace as trace_mod
from app.core.run.fix_request import def_span
from app.core.run.project_tests import (
    failing_files, failing_test, fix_budget, fix_request, fix_request_for_tests, rough_tokens, run_project_tests)
from app.core.run.result import SandboxLimits
from app.core.run.trace import MAX_TRACE_BYTES, TraceError, parse_trace

INIT = ('"""Shapes: the tests import only this package."""\n'
        "from shapes.area import rectangle_area\nfrom shapes.util import clean\n\n\n"
        "def describe(w, h):\n    return f\"{clean(w)}x{clean(h)} = {rectangle_area(w, h)}\"\n")
UTIL = "def clean(x):\n    return int(x)\n"
AREA = ("def rectangle_area(w, h):\n    if w < 0 or h < 0:\n        raise ValueError('negative side')\n"
        "    return w * h + 1\n")  # the bug: + 1
TEST = "import shapes\n\n\ndef test_describe():\n    assert shapes.describe(2, 3) == '2x3 = 6'\n"
FILLER = "".join(f"\n\ndef helper_{i}(values):\n    total = 0\n    for v in values:\n        total += v * {i}\n"
                 f"    return total - {i}\n" for i in range(60))


def make_shapes(root: Path, area: str = AREA, test: str = TEST) -> Path:
    (root / "shapes").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "shapes" / "__init__.py").write_text(INIT)
    (root / "shapes" / "util.py").write_text(UTIL)
    (root / "shapes" / "area.py").write_text(area)
    (root / "tests" / "test_shapes.py").write_text(test)
    return root


def test_the_module_with_the_bug_is_shown_though_the_test_imports_only_the_package(tmp_path):
    project = make_shapes(tmp_path / "proj")
    run = run_project_tests(project)
    assert run.result.exit_code == 1 and "'2x3 = 7' == '2x3 = 6'" in run.output
    # The choice before tracing: the package and the modules it names, never the buggy module.
    assert "shapes/area.py" not in failing_files(run.output, project)
    assert run.trace is not None and run.trace_note == ""
    assert run.trace.test == "tests/test_shapes.py::test_describe" and run.trace.failed
    names = [(f.path, f.name) for f in run.trace.functions]
    assert ("shapes/area.py", "rectangle_area") in names and ("shapes/util.py", "clean") in names
    assert not any(p.startswith("tests/") for p, _ in names)  # tests are not traced as code
    assert "shapes/area.py" in run.files and run.files[-1] == "tests/test_shapes.py"

    fix = fix_request(run)
    assert "shapes/area.py" in fix.files and "Failing test: tests/test_shapes.py::test_describe" in fix.text
    # The small files go first and fit the edit prompt's room whole, the buggy one with them.
    room = fix_budget(4096, 2048, rough_tokens) + rough_tokens(EDIT_INSTRUCTIONS) + 64
    _system, user, shown = build_edit_prompt(EditRequest(project, fix.text, list(fix.files)), room, 2048, rough_tokens)
    assert "shapes/area.py" in shown and "return w * h + 1" in user


def test_a_big_module_is_shown_as_the_functions_the_test_ran(tmp_path):
    project = make_shapes(tmp_path / "proj", area=AREA + FILLER)
    run = run_project_tests(project)
    fix = fix_request(run, budget_tokens=700)
    parts = [e for e in fix.excerpts if e.path == "shapes/area.py"]
    assert parts and parts[0].name == "rectangle_area" and 4 in parts[0].lines
    assert "return w * h + 1" in fix.text and "def helper_7" not in fix.text
    assert rough_tokens(fix.text) <= 700
    assert fix_request_for_tests(run, budget_tokens=700) == fix.text


def test_the_tests_around_the_failing_one_make_the_buggy_function_most_suspect(tmp_path):
    area = (AREA + "\n\ndef perimeter(w, h):\n    return 2 * (w + h)\n")
    test = ("from shapes.area import perimeter, rectangle_area\n\n\n"
            "def test_perimeter():\n    assert perimeter(2, 3) == 10\n\n\n"
            "def test_area():\n    assert perimeter(1, 1) == 4 and rectangle_area(2, 3) == 6\n\n\n"
            "def test_perimeter_again():\n    assert perimeter(0, 1) == 2\n")
    run = run_project_tests(make_shapes(tmp_path / "proj", area=area, test=test))
    t = run.trace
    assert t is not None and t.test == "tests/test_shapes.py::test_area" and (t.passing, t.failing) == (2, 1)
    ranked = t.ranked()
    assert (ranked[0].path, ranked[0].name) == ("shapes/area.py", "rectangle_area")
    assert ranked[0].suspicion == 1.0 and ranked[1].name == "perimeter" and ranked[1].suspicion < 1.0


def test_a_test_whose_traced_run_times_out_falls_back_with_a_note(tmp_path):
    hangs = ("import sys\nimport time\n\nimport shapes\n\n\ndef test_describe():\n"
             "    if sys.gettrace() is not None:\n        time.sleep(60)\n"
             "    assert shapes.describe(2, 3) == '2x3 = 6'\n")
    project = make_shapes(tmp_path / "proj", test=hangs)
    run = run_project_tests(project, trace_limits=SandboxLimits(time_s=3.0, memory_mb=1024))
    assert run.result.exit_code == 1 and run.trace is None
    assert "could not be traced" in run.trace_note and "time limit (3 s)" in run.trace_note
    assert run.files == failing_files(run.output, project)  # the choice without a trace
    fix = fix_request(run)
    assert run.trace_note in fix.text and fix.files == run.files and fix.excerpts == []


def test_a_stop_during_the_traced_run_stops_it_and_keeps_the_first_runs_result(tmp_path, monkeypatch):
    stop = threading.Event()
    real = trace_mod.run_in_folder

    def traced_run(*args, **kwargs):  # the user presses Stop as the re-run starts
        stop.set()
        return real(*args, **kwargs)
    monkeypatch.setattr(trace_mod, "run_in_folder", traced_run)
    run = run_project_tests(make_shapes(tmp_path / "proj"), cancelled=stop.is_set)
    assert run.result.exit_code == 1 and not run.result.cancelled
    assert run.trace is None and "it was stopped" in run.trace_note


def test_a_collection_error_has_no_test_to_trace(tmp_path):
    project = make_shapes(tmp_path / "proj", test="import shapes\n\nthis is not python\n")
    run = run_project_tests(project)
    assert run.result.exit_code != 0 and run.trace is None and run.trace_note == ""


def test_odd_pytest_ids_are_run_again_exactly(tmp_path):
    test = ("import pytest\n\nimport shapes\n\n\n@pytest.mark.parametrize('text', ['plain', 'a - b [x]', 'ü ::'])\n"
            "def test_odd(text):\n    assert text != 'a - b [x]' or shapes.describe(2, 3) == '2x3 = 6'\n")
    run = run_project_tests(make_shapes(tmp_path / "proj", test=test))
    assert run.trace is not None, run.trace_note
    assert run.trace.test == "tests/test_shapes.py::test_odd[a - b [x]]" and run.trace.failing == 1
    assert "shapes/area.py" in run.files


def test_failing_test_reads_the_ids_runners_print():
    out = "FAILED tests/t.py::TestA::test_b[a - b] - assert 1 - 2 == 0\n"
    t = failing_test(out)
    assert t.runner == "pytest" and t.path == "tests/t.py"
    assert "tests/t.py::TestA::test_b[a - b]" in t.ids and "tests/t.py::TestA::test_b[a" in t.ids
    assert failing_test("ERROR tests/t.py - SyntaxError\n") is None
    headline = failing_test("____ TestA.test_b[1] ____\nE  assert 0\n")
    assert headline.ids == () and headline.names == ("TestA.test_b[1]",)
    u = failing_test("running unittest discover\nFAIL: test_add (test_calc.AddTest.test_add)\n")
    assert (u.runner, u.ids) == ("unittest", ("test_calc.AddTest.test_add",))
    old = failing_test("running unittest discover\nERROR: test_add (test_calc.AddTest)\n")
    assert old.ids == ("test_calc.AddTest.test_add",)
    assert failing_test("running unittest discover\nERROR: x (unittest.loader._FailedTest.x)\n") is None
    assert failing_test("no names here") is None


def test_unittest_projects_are_traced_too(tmp_path):
    test = ("import unittest\n\nimport shapes\n\n\nclass DescribeTest(unittest.TestCase):\n"
            "    def test_describe(self):\n        self.assertEqual(shapes.describe(2, 3), '2x3 = 6')\n")
    project = make_shapes(tmp_path / "proj", test=test)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(project / ".venv")], check=True)
    run = run_project_tests(project)
    assert "running unittest discover" in run.output and run.trace is not None, run.trace_note
    assert run.trace.test == "test_shapes.DescribeTest.test_describe" and "shapes/area.py" in run.files


def test_the_tracers_record_is_bounded(tmp_path, monkeypatch):
    many = "".join(f"def f{i}():\n    return {i}\n\n\n" for i in range(300))
    test = ("from shapes import many\n\n\ndef test_all():\n"
            "    assert sum(getattr(many, f'f{i}')() for i in range(300)) == 0\n")
    project = make_shapes(tmp_path / "proj", test=test)
    (project / "shapes" / "many.py").write_text(many)
    monkeypatch.setattr(trace_mod, "MAX_FUNCTIONS", 40)
    run = run_project_tests(project)
    t = run.trace
    assert t is not None and len(t.functions) == 40
    # It follows at most 4 x 40 functions (f0-f159) and keeps the 40 that ran last.
    assert {f.name for f in t.functions} == {f"f{i}" for i in range(120, 160)}
    big = json.dumps({"functions": [["a.py", "f", 1, 1, 1, 1, 0, 0, 0, [], 1]] * 50_000})
    assert len(big) > MAX_TRACE_BYTES
    with pytest.raises(TraceError, match="could not be read"):
        parse_trace(big)
    with pytest.raises(TraceError, match="could not be read"):
        parse_trace('{"functions": [["a.py", "f"]]}')


def test_def_span_covers_decorators_long_signatures_and_the_body():
    lines = ["class A:", "    @property", "    def f(", "        self,", "    ) -> int:", "        x = 1",
             "", "        return x", "", "    def g(self):", "        pass"]
    assert def_span(lines, 2) == (1, 8)
    assert def_span(lines, 9) == (9, 11)


def test_index_matches_for_the_failures_words_come_after_the_traced_files(tmp_path):
    from app.core.index.embed import Embedder
    from app.core.index.indexer import ProjectIndex
    project = make_shapes(tmp_path / "proj")
    (project / "shapes" / "legacy.py").write_text(
        'def legacy_describe():\n    """The old text of a 2x3 rectangle: 2x3 = 6."""\n    return "2x3 = 6"\n')
    index = ProjectIndex(project, tmp_path / "index", Embedder())
    asked = []
    try:
        index.update()

        def search(query, k):
            asked.append((query, k))
            return index.search(query, k)
        run = run_project_tests(project, search=search)
    finally:
        index.close()
    assert asked and "2x3 = 7" in asked[0][0]  # the failure's own words
    files = run.files
    assert "shapes/legacy.py" in files and files[-1] == "tests/test_shapes.py"
    assert files.index("shapes/area.py") < files.index("shapes/legacy.py")  # executed code first
    # A broken index costs its matches, never the /fix.
    again = run_project_tests(project, search=search)
    assert "shapes/area.py" in again.files and "shapes/legacy.py" not in again.files

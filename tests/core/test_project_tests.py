"""/fix on the project's own tests: a real pytest (or unittest) run on a copy of a real project in
the sandbox; the project itself is never written, whatever the tests do."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path


from app.core.run import sandbox
from app.core.run.result import NETNS, PYTHON_GUARD, READ_ONLY
from app.core.run.project_tests import (
    NO_TESTS, copy_project, failing_files, has_tests, parse_fix, project_python, run_project_tests,
    fix_request_for_tests,
)
from tests.support.calc_project import BUGGY, FIXED, UNITTEST_TEST, make_project





def snapshot(root: Path) -> dict[str, str]:
    """Every path under root (files and folders) with a hash of each file."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = "dir"
        for f in filenames:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, root)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def test_failing_tests_are_run_reported_and_name_the_code_to_fix(tmp_path):
    project = make_project(tmp_path / "proj")
    before = snapshot(project)
    streamed = []
    run = run_project_tests(project, on_output=lambda _s, text: streamed.append(text))
    assert not run.passed and run.result.exit_code == 1
    assert "FAILED tests/test_calc.py::test_add" in run.output and "assert -1 == 5" in run.output
    assert "".join(streamed).strip() == run.output.strip()  # streamed as it ran, same text
    assert str(tmp_path) not in run.output and "offline-coder-run" not in run.output  # paths are the project's
    assert run.files == ["calc.py", "tests/test_calc.py"]  # the code under test first
    assert run.summary().startswith("tests fail")
    assert run.result.isolation == NETNS and run.result.filesystem == READ_ONLY
    assert snapshot(project) == before  # no __pycache__, no .pytest_cache, nothing

    request = fix_request_for_tests(run)
    assert "Files involved: calc.py, tests/test_calc.py" in request and "assert -1 == 5" in request

    (project / "calc.py").write_text(FIXED)
    again = run_project_tests(project)
    assert again.passed and again.summary().startswith("tests pass") and again.files == []


def test_tests_that_write_files_change_only_the_copy_even_without_namespaces(tmp_path, monkeypatch):
    writer = ("from pathlib import Path\n\n\ndef test_writes():\n"
              "    Path('calc.py').write_text('broken = True\\n')\n"
              "    Path('new.txt').write_text('x')\n"
              "    Path(__file__).write_text('')\n")
    project = make_project(tmp_path / "proj", test=writer, code=FIXED)
    before = snapshot(project)
    for use_ns in (True, False):
        monkeypatch.setattr(sandbox, "USE_NAMESPACES", use_ns)
        run = run_project_tests(project)
        assert run.passed, run.output
        assert run.result.isolation == (NETNS if use_ns else PYTHON_GUARD)
        assert snapshot(project) == before


def test_the_projects_own_virtualenv_is_used_and_unittest_runs_without_pytest(tmp_path):
    project = make_project(tmp_path / "proj", test=UNITTEST_TEST)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(project / ".venv")], check=True)
    python = project_python(project)
    assert Path(python).parent.parent == project / ".venv"
    run = run_project_tests(project)
    assert run.python == python
    assert "pytest is not installed" in run.output and "running unittest discover" in run.output
    assert run.result.exit_code == 1 and "AssertionError: -1 != 5" in run.output
    assert run.files == ["calc.py", "tests/test_calc.py"]
    (project / "calc.py").write_text(FIXED)
    assert run_project_tests(project).passed


def test_no_tests_is_said_plainly(tmp_path):
    project = tmp_path / "empty"
    project.mkdir()
    (project / "main.py").write_text("print('hi')\n")
    assert not has_tests(project)
    run = run_project_tests(project)
    assert run.result.exit_code == NO_TESTS and run.summary() == "no tests were found"


def test_pytest_arguments_select_tests(tmp_path):
    project = make_project(tmp_path / "proj")
    (project / "tests" / "test_ok.py").write_text("def test_ok():\n    assert True\n")
    run = run_project_tests(project, ["tests/test_ok.py"])
    assert run.passed and "1 passed" in run.output


def test_cancel_stops_a_long_test_run(tmp_path):
    project = make_project(tmp_path / "proj", test="import time\n\n\ndef test_slow():\n    time.sleep(60)\n")
    stop = threading.Event()
    threading.Timer(1.5, stop.set).start()
    t0 = time.monotonic()
    run = run_project_tests(project, cancelled=stop.is_set)
    assert run.result.cancelled and time.monotonic() - t0 < 10


def test_copy_skips_vcs_venvs_dependencies_and_links_out_of_the_project(tmp_path):
    project = make_project(tmp_path / "proj")
    for d in (".git", "node_modules/x", "__pycache__", "env"):
        (project / d).mkdir(parents=True)
        (project / d / "f").write_text("x")
    (project / "env" / "pyvenv.cfg").write_text("home = /usr\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    (project / "link_out").symlink_to(secret)
    (project / "link_in").symlink_to(project / "calc.py")
    dest = tmp_path / "copy"
    copy_project(project, dest)
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()) == [
        "calc.py", "link_in", "tests/test_calc.py"]
    assert (dest / "link_in").read_text() == BUGGY and not (dest / "link_in").is_symlink()


def test_failing_files_reads_pytest_and_traceback_locations(tmp_path):
    project = make_project(tmp_path / "proj")
    (project / "pkg").mkdir()
    (project / "pkg" / "util.py").write_text("x = 1\n")
    out = ('tests/test_calc.py:4: in test_add\n'
           'File "pkg/util.py", line 1, in <module>\n'
           'File "/usr/lib/python3.11/json/__init__.py", line 3\n'
           'missing.py:3: in f\n')
    assert failing_files(out, project) == ["pkg/util.py", "calc.py", "tests/test_calc.py"]


def test_parse_fix_and_has_tests(tmp_path):
    assert parse_fix("") .kind == "auto"
    assert parse_fix("tests -k add tests/test_calc.py") == parse_fix("tests -k add tests/test_calc.py")
    t = parse_fix("tests -k add")
    assert (t.kind, t.args) == ("tests", ["-k", "add"])
    c = parse_fix("code it should print 3")
    assert (c.kind, c.note) == ("code", "it should print 3")
    a = parse_fix("the output should be sorted")
    assert (a.kind, a.note) == ("auto", "the output should be sorted")
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "calc_test.py").write_text("")
    assert has_tests(flat) and has_tests(make_project(tmp_path / "proj"))


SECRET_TEST = ("import unittest\n\n\nclass SecretTest(unittest.TestCase):\n"
               "    def test_home_is_hidden(self):\n"
               "        with self.assertRaises(OSError):\n"
               "            open({path!r}).read()\n")


def test_a_virtualenv_project_under_the_hidden_home_still_runs(tmp_path, monkeypatch):
    """The home is hidden from the tests, but the project and its .venv (and the interpreter the
    venv points at, here under /root/.pyenv) come back read-only, so the tests still run."""
    home = tmp_path / "home"
    key = home / ".ssh" / "id_rsa"
    key.parent.mkdir(parents=True)
    key.write_text("TOP-SECRET-KEY\n")
    monkeypatch.setenv("HOME", str(home))
    project = make_project(home / "code" / "proj", test=UNITTEST_TEST)
    (project / "tests" / "test_secret.py").write_text(SECRET_TEST.format(path=str(key)))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(project / ".venv")], check=True)
    run = run_project_tests(project)
    assert run.python == project_python(project) and Path(run.python).parent.parent == project / ".venv"
    assert run.result.isolation == NETNS, run.result
    assert str(home) in run.result.hidden, run.result
    assert "TOP-SECRET-KEY" not in run.output
    assert run.result.exit_code == 1 and "AssertionError: -1 != 5" in run.output, run.output
    (project / "calc.py").write_text(FIXED)
    again = run_project_tests(project)
    assert again.passed and "Ran 2 tests" in again.output, again.output

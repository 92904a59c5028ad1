"""Checks after Apply, run for real: ruff, pyflakes and cargo check in the real sandbox on real
projects in tmp_path, the project's tests through pytest. Where a third-party tool misbehaves
(hangs, prints megabytes) or is not installed here (eslint), a real script on PATH stands in for
it; everything of ours is the shipped code.

ruff comes from the dev virtualenv (``pip install ruff``); its folder is put on PATH, as a user's
install would be."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import threading
from pathlib import Path

import pytest

from app.core.checks import (CANCELLED, ERROR, FAILED, NOTICE, PASSED, TIMED_OUT, ProjectSettings,
                             checks_after_apply, detect, load_project_settings, project_settings_path,
                             run_checks)
from app.core.checks.run import FIX_OUTPUT_CHARS, OUTPUT_BYTES
from app.core.run import sandbox
from tests.support.calc_project import FIXED, make_project

VENV_BIN = Path(sys.executable).parent
needs_ruff = pytest.mark.skipif(not (VENV_BIN / "ruff").exists(), reason="ruff: .venv/bin/pip install ruff")
needs_cargo = pytest.mark.skipif(shutil.which("cargo") is None, reason="cargo is not installed here")


def snapshot(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        out[os.path.relpath(dirpath, root)] = "dir"
        for f in filenames:
            p = Path(dirpath) / f
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def tool(folder: Path, name: str, body: str) -> Path:
    """A real executable script on PATH standing in for a third-party tool."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(0o755)
    return path


@pytest.fixture
def ruff_project(tmp_path, monkeypatch):
    root = tmp_path / "proj"
    root.mkdir()
    (root / "ruff.toml").write_text('[lint]\nselect = ["F"]\n', encoding="utf-8")
    (root / "a.py").write_text("import os\n\nprint('hi')\n", encoding="utf-8")
    (root / "b.py").write_text("def twice(x):\n    return 2 * x\n", encoding="utf-8")
    (root / "c.py").write_text("import sys\n", encoding="utf-8")  # broken, but not changed
    monkeypatch.setenv("PATH", f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return root


def by_name(results):
    return {r.name: r for r in results}


# ---- bad input first ----------------------------------------------------------------------------------
def test_a_hanging_linter_is_killed_at_its_timeout(ruff_project, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    tool(bin_dir, "ruff", "exec sleep 987654\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    results = run_checks(ruff_project, ["a.py"], ProjectSettings(check_timeout_s=2))
    ruff = by_name(results)["ruff"]
    assert ruff.status == TIMED_OUT and not ruff.ok and not ruff.fix_text
    assert ruff.summary == "ruff: timed out after 2 s and was stopped"
    alive = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if b"987654" in Path(f"/proc/{pid}/cmdline").read_bytes():
                alive.append(pid)
        except OSError:
            pass
    assert alive == []


def test_a_linter_printing_megabytes_is_cut_with_a_note(ruff_project, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    tool(bin_dir, "ruff", "yes 'a.py:1:8: F401 `os` imported but unused' | head -c 5000000\nexit 1\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    ruff = by_name(run_checks(ruff_project, ["a.py"], ProjectSettings()))["ruff"]
    assert ruff.status == FAILED
    assert ruff.output.endswith("\n… 4.8 MB more cut")
    assert len(ruff.output.encode("utf-8")) < OUTPUT_BYTES + 100
    assert ruff.output.startswith("a.py:1:8: F401")
    assert len(ruff.fix_text) < FIX_OUTPUT_CHARS + 1000 and "a.py:1:8: F401" in ruff.fix_text


def test_a_linter_printing_without_end_is_stopped_at_the_file_limit(ruff_project, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    tool(bin_dir, "ruff", "exec yes 'a.py:1:8: F401 again'\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    ruff = by_name(run_checks(ruff_project, ["a.py"], ProjectSettings(check_timeout_s=120)))["ruff"]
    assert ruff.status == ERROR and ruff.summary == "ruff: printed more than 64 MB and was stopped"
    assert ruff.output.endswith("\n… 66.9 MB more cut") and not ruff.fix_text


def test_a_project_with_no_checks_is_told_once(tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    (root / "README.md").write_text("# notes\n", encoding="utf-8")
    data = tmp_path / "data"
    first = checks_after_apply(data, root, ["README.md"])
    assert [r.status for r in first] == [NOTICE]
    assert "no checks after Apply" in first[0].summary and "said once" in first[0].summary
    assert checks_after_apply(data, root, ["README.md"]) == []
    settings, problem = load_project_settings(project_settings_path(data, root))
    assert problem is None and settings.no_checks_said is True
    assert not any(p.name != "README.md" for p in root.iterdir())  # nothing of ours in the project


def test_a_configured_tool_that_is_not_installed_is_said_once_and_not_run(tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    (root / "setup.cfg").write_text("[metadata]\nname = x\n\n[flake8]\nmax-line-length = 100\n", encoding="utf-8")
    (root / "a.py").write_text("x = 1\n", encoding="utf-8")
    detection = detect(root)
    assert not detection.found  # flake8 is configured, so pyflakes is not guessed
    assert detection.missing == [("flake8", ("[flake8] in setup.cfg, but flake8 is not installed "
                                             "(not in the project's virtualenv, not on PATH)"))]
    settings = ProjectSettings()
    first = run_checks(root, ["a.py"], settings)
    assert [r.status for r in first if r.name == "checks"] == [NOTICE, NOTICE]
    assert "flake8 ([flake8] in setup.cfg" in first[0].summary
    assert settings.missing_said == ["flake8"]
    again = run_checks(root, ["a.py"], settings)
    assert [r.name for r in again] == ["syntax"]


@pytest.mark.skipif(shutil.which("go") is not None, reason="go is installed here")
def test_go_vet_is_said_missing_when_go_is_not_installed(tmp_path):
    (tmp_path / "go.mod").write_text("module example.com/x\n\ngo 1.22\n", encoding="utf-8")
    assert detect(tmp_path).missing == [("go vet", "go.mod in the project, but go is not on PATH")]


# ---- real linters -------------------------------------------------------------------------------------
@needs_ruff
def test_ruff_finds_an_unused_import_in_a_changed_file(ruff_project):
    before = snapshot(ruff_project)
    assert detect(ruff_project).lines() == ["ruff: ruff.toml in the project"]
    (ruff_project.parent / "outside.py").write_text("import os\n", encoding="utf-8")
    changed = ["a.py", "b.py", "gone.py", "../outside.py", "a.py"]  # deleted, outside, twice: left out
    results = by_name(run_checks(ruff_project, changed, ProjectSettings()))
    assert results["syntax"].status == PASSED
    ruff = results["ruff"]
    assert ruff.status == FAILED and ruff.summary == "ruff: 1 problem"
    assert "a.py:1:8: F401" in ruff.output and "c.py" not in ruff.output
    assert ruff.command.startswith("ruff check") and ruff.command.endswith("a.py b.py")
    assert ruff.files == ["a.py"]
    assert "Files involved: a.py" in ruff.fix_text and "a.py:1:8: F401" in ruff.fix_text
    assert snapshot(ruff_project) == before  # no cache, nothing written


@needs_ruff
def test_a_clean_changed_file_passes_ruff(ruff_project):
    results = by_name(run_checks(ruff_project, [str(ruff_project / "b.py")], ProjectSettings()))
    assert results["ruff"].status == PASSED and results["ruff"].ok
    assert results["ruff"].summary == "ruff: no problems in 1 changed file"


def test_pyflakes_checks_a_python_project_with_no_linter_configured(tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    (root / "setup.py").write_text("from setuptools import setup\nsetup()\n", encoding="utf-8")
    (root / "m.py").write_text("def f():\n    return undefined_name\n", encoding="utf-8")
    (root / "notes.md").write_text("x\n", encoding="utf-8")
    (found,) = detect(root).found
    assert found.name == "pyflakes" and found.why.startswith("a Python project with no linter configured")
    results = by_name(run_checks(root, ["m.py", "notes.md"], ProjectSettings(syntax_check=False)))
    assert list(results) == ["pyflakes"]
    assert results["pyflakes"].status == FAILED and "undefined name 'undefined_name'" in results["pyflakes"].output
    assert results["pyflakes"].command == "python -m pyflakes m.py"


@needs_ruff
def test_without_namespaces_python_tools_still_run_and_native_ones_say_why_not(ruff_project, monkeypatch):
    monkeypatch.setattr(sandbox, "USE_NAMESPACES", False)
    ruff = by_name(run_checks(ruff_project, ["a.py"], ProjectSettings()))["ruff"]
    assert ruff.status == ERROR and "cannot run here" in ruff.summary and not ruff.fix_text
    settings = ProjectSettings(linters=["pyflakes"], syntax_check=False)
    (pyflakes,) = run_checks(ruff_project, ["a.py"], settings)
    assert pyflakes.status == FAILED and "'os' imported but unused" in pyflakes.output


def test_cancel_stops_the_running_check_and_the_rest(ruff_project, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    tool(bin_dir, "ruff", "exec sleep 600\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    cancel = threading.Event()
    seen = []

    def progress(text: str) -> None:
        seen.append(text)
        if "ruff" in text:
            threading.Timer(0.5, cancel.set).start()
    settings = ProjectSettings(check_timeout_s=300, run_tests_after_apply=True)
    results = by_name(run_checks(ruff_project, ["a.py"], settings, cancel=cancel, on_progress=progress))
    assert results["ruff"].status == CANCELLED and results["ruff"].summary.startswith("ruff: cancelled after")
    assert "tests" not in results
    assert seen == ["Checking: syntax (1 of 3)…", "Checking: ruff (2 of 3)…"]


def test_a_stand_in_eslint_gets_only_the_changed_javascript_files(tmp_path):
    if shutil.which("node") is None:
        pytest.skip("node is not installed here")
    root = tmp_path / "web"
    root.mkdir()
    (root / "eslint.config.js").write_text("export default [];\n", encoding="utf-8")
    tool(root / "node_modules" / ".bin", "eslint", 'echo "cwd=$(pwd) args=$*"\n')
    (root / "app.js").write_text("const a = 1;\n", encoding="utf-8")
    (root / "scripts").mkdir()
    (root / "scripts" / "tool.py").write_text("x = 1\n", encoding="utf-8")  # not a Python project
    (found,) = detect(root).found
    assert (found.name, found.why) == ("eslint", "eslint.config.js in the project")
    results = by_name(run_checks(root, ["app.js", "scripts/tool.py"], ProjectSettings(syntax_check=False)))
    assert results["eslint"].status == PASSED
    assert results["eslint"].output.strip() == f"cwd={root} args=--no-color app.js"


@needs_cargo
def test_cargo_check_finds_a_type_error_without_writing_the_project(tmp_path):
    root = tmp_path / "crate"
    (root / "src").mkdir(parents=True)
    (root / "Cargo.toml").write_text('[package]\nname = "crate"\nversion = "0.1.0"\nedition = "2021"\n',
                                     encoding="utf-8")
    (root / "src" / "main.rs").write_text('fn main() {\n    let x: i32 = "a";\n}\n', encoding="utf-8")
    before = snapshot(root)
    settings = ProjectSettings(check_timeout_s=120)
    results = by_name(run_checks(root, ["src/main.rs"], settings))
    assert results["syntax"].status == PASSED  # it parses; the types are cargo's business
    cargo = results["cargo check"]
    assert cargo.status == FAILED and cargo.files == ["src/main.rs"]
    assert "src/main.rs:2:" in cargo.output and "mismatched types" in cargo.output
    assert snapshot(root) == before  # no Cargo.lock, no target/
    (root / "src" / "main.rs").write_text('fn main() {\n    let x: i32 = 1;\n    println!("{x}");\n}\n')
    assert by_name(run_checks(root, ["src/main.rs"], settings))["cargo check"].status == PASSED


def test_syntax_after_apply_blames_only_what_the_change_broke(tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    old = "def f(:\n    return 1\n"
    (root / "m.py").write_text(old + "\n\ndef g(:\n    return 2\n", encoding="utf-8")
    settings = ProjectSettings(linters=[])
    (syntax,) = [r for r in run_checks(root, ["m.py"], settings, before={"m.py": old}) if r.name == "syntax"]
    assert syntax.status == FAILED and syntax.output == "m.py:5:7: missing ')'"
    assert "m.py:5:7: missing ')'" in syntax.fix_text and syntax.files == ["m.py"]
    (root / "m.py").write_text(old.replace("return 1", "return 2"), encoding="utf-8")
    (syntax,) = [r for r in run_checks(root, ["m.py"], settings, before={"m.py": old}) if r.name == "syntax"]
    assert syntax.status == PASSED


# ---- tests after Apply --------------------------------------------------------------------------------
def test_failing_tests_come_with_the_request_for_the_fix_round(tmp_path):
    root = make_project(tmp_path / "calc")
    settings = ProjectSettings(run_tests_after_apply=True, syntax_check=False, linters=[])
    (tests,) = run_checks(root, ["calc.py"], settings)
    assert tests.status == FAILED and tests.summary.startswith("tests fail after")
    assert "assert" in tests.output and "calc.py" in tests.files
    assert tests.fix_text.startswith("The project's tests fail.") and "test_calc.py" in tests.fix_text
    (root / "calc.py").write_text(FIXED, encoding="utf-8")
    (tests,) = run_checks(root, ["calc.py"], settings)
    assert tests.status == PASSED and tests.ok and not tests.fix_text

"""Checks after Apply, the parts that run nothing: the per-project settings file (bad input first)
and the tree-sitter syntax check with its blame per hunk. Real files, real tree-sitter, the real
FileChange of the Changes pane. (test_checks_run.py runs real linters and tests.)"""

from __future__ import annotations

import tomllib
from pathlib import Path

from app.core.checks import (AUTO, NOTICE, ProjectSettings, ProjectSettingsError, checks_after_apply,
                             introduced_errors, load_project_settings, problems_by_hunk,
                             project_settings_path, save_project_settings, syntax_errors)
from app.core.edits.plan import MODIFIED, NEW, FileChange
from app.core.edits.textfile import TextFile


# ---- settings: bad input first -----------------------------------------------------------------------
def test_unreadable_settings_file_gives_defaults_a_message_naming_it_and_is_kept(tmp_path):
    path = project_settings_path(tmp_path / "data", tmp_path / "proj")
    path.parent.mkdir(parents=True)
    bad = b'linters = ["ruff"\nrun_tests_after_apply = tru\n'
    path.write_bytes(bad)
    settings, problem = load_project_settings(path)
    assert settings == ProjectSettings()
    assert isinstance(problem, ProjectSettingsError) and isinstance(problem, ValueError)
    assert str(path) in str(problem) and "not valid TOML" in str(problem) and "defaults apply" in str(problem)
    assert path.read_bytes() == bad  # loading never touches it

    # a save over it keeps the user's text beside it
    save_project_settings(path, ProjectSettings(run_tests_after_apply=True), tmp_path / "proj")
    assert (path.parent / (path.name + ".bad")).read_bytes() == bad
    assert load_project_settings(path) == (ProjectSettings(run_tests_after_apply=True), None)


def test_a_bad_value_keeps_its_default_and_the_rest_of_the_file(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('linters = ["ruff", "pylint"]\nsyntax_check = "yes"\ncheck_timeout_s = -3\n'
                    'run_tests_after_apply = true\nfuture_key = 1\n', encoding="utf-8")
    settings, problem = load_project_settings(path)
    assert settings.linters == ["ruff"]               # the unknown name is dropped, not the list
    assert settings.syntax_check is True              # default
    assert settings.check_timeout_s == 60.0           # default
    assert settings.run_tests_after_apply is True     # the good value is kept
    text = str(problem)
    assert "'pylint'" in text and "'syntax_check'" in text and "'check_timeout_s'" in text
    assert "future_key" not in text                   # unknown keys are ignored quietly


def test_binary_and_huge_settings_files_are_refused_with_reasons(tmp_path):
    path = tmp_path / "p.toml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert "not UTF-8" in str(load_project_settings(path)[1])
    path.write_bytes(b"#" * (100 * 1024))
    settings, problem = load_project_settings(path)
    assert settings == ProjectSettings() and "bytes" in str(problem)


def test_checks_after_apply_says_the_settings_problem_and_keeps_the_file(tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    (root / "notes.txt").write_text("hello\n")
    data = tmp_path / "data"
    path = project_settings_path(data, root)
    path.parent.mkdir(parents=True)
    path.write_text("syntax_check = [", encoding="utf-8")
    results = checks_after_apply(data, root, ["notes.txt"])
    assert results[0].status == NOTICE and str(path) in results[0].summary
    assert path.read_text(encoding="utf-8") == "syntax_check = ["


def test_settings_round_trip_and_one_file_per_project(tmp_path):
    data = tmp_path / "data"
    a, b = project_settings_path(data, tmp_path / "a"), project_settings_path(data, tmp_path / "b")
    assert a != b and a.parent == b.parent == data / "projects" and a.name.startswith("a-")
    assert project_settings_path(data, tmp_path / "x" / ".." / "a") == a
    original = ProjectSettings(linters=["ruff", "cargo check"], syntax_check=False, run_tests_after_apply=True,
                               commit_after_apply=True, check_timeout_s=12.5, no_checks_said=True,
                               missing_said=["eslint"])
    save_project_settings(a, original, tmp_path / "a")
    assert load_project_settings(a) == (original, None)
    assert a.read_text(encoding="utf-8").startswith(f"# Offline Coder: checks after Apply for {tmp_path / 'a'}")
    assert not (a.parent / (a.name + ".bad")).exists()  # a good file needs no copy
    save_project_settings(a, ProjectSettings())
    assert tomllib.loads(a.read_text(encoding="utf-8"))["linters"] == AUTO


def test_a_failed_save_says_so_and_changes_nothing(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "projects").write_text("a file where the folder should be")  # the folder cannot be made
    path = project_settings_path(data, tmp_path / "proj")
    try:
        save_project_settings(path, ProjectSettings(no_checks_said=True))
    except ProjectSettingsError as e:
        assert str(path) in str(e) and "previous file is kept" in str(e)
    else:
        raise AssertionError("the save should have failed")
    assert (data / "projects").read_text() == "a file where the folder should be"


# ---- syntax -------------------------------------------------------------------------------------------
def test_python_and_javascript_errors_are_found_on_the_right_line():
    py = "import os\n\n\ndef f(a, b:\n    return a + b\n"
    (p,) = syntax_errors("pkg/mod.py", py)
    assert p.line == 4 and "def f(a, b:" in p.message and str(p).startswith("line 4: ")
    js = "function f() {\n  const a = ;\n  return a;\n}\n"
    errors = syntax_errors("web/app.js", js)
    assert [e.line for e in errors] == [2] and "cannot parse near '='" in errors[0].message
    unclosed = "function f() {\n  return 1;\n"
    assert [(e.line, e.message) for e in syntax_errors("a.mjs", unclosed)] == [(2, "missing '}'")]


def test_valid_files_have_no_errors_and_unknown_languages_are_not_checked():
    assert syntax_errors("a.py", Path(__file__).read_text(encoding="utf-8")) == []
    assert syntax_errors("a.ts", "const x: number = 1;\nexport function f(): string { return 'a'; }\n") == []
    assert syntax_errors("notes.txt", "def f(:") is None
    assert syntax_errors("Makefile", "all:\n\techo") is None
    # tree-sitter-bash crashes natively on '{' before a 4-byte character: never parsed
    assert syntax_errors("prompt.sh", "f() { echo \U000F0001; }\n") is None
    assert syntax_errors("prompt.sh", "f() { echo hi; }\n") == []


def test_a_file_that_was_broken_already_is_not_blamed():
    old = "def f(:\n    return 1\n\n\ndef g():\n    return 2\n"
    new = "def f(:\n    return 1\n\n\ndef g():\n    return 3\n"
    assert syntax_errors("a.py", new)            # still broken ...
    assert introduced_errors("a.py", old, new) == []  # ... but not by this change
    # a change that adds a second error is charged with that one only
    newer = "x = 1\ndef f(:\n    return 1\n\n\ndef g(:\n    return 2\n"
    fresh = introduced_errors("a.py", old, newer)
    assert [(e.line, e.message) for e in fresh] == [(6, "missing ')'")]
    # a new file: everything is the change's
    assert [e.line for e in introduced_errors("b.py", None, "def h(:\n    pass\n")] == [1]


def _change(tmp_path: Path, name: str, old: str | None, new: str) -> FileChange:
    target = tmp_path / name
    original = TextFile.parse(old.encode("utf-8")) if old is not None else None
    return FileChange(name, target, MODIFIED if old is not None else NEW, original, new.splitlines())


def test_errors_are_charged_to_the_hunk_that_made_them(tmp_path):
    old = "def a():\n    return 1\n\n\ndef b():\n    return 2\n\n\ndef c():\n    return 3\n"
    # hunk 0 is harmless, hunk 1 opens a bracket it never closes
    new = "def a():\n    return 10\n\n\ndef b():\n    return max(2,\n\n\ndef c():\n    return 3\n"
    change = _change(tmp_path, "m.py", old, new)
    assert [h.new_start for h in change.hunks] == [1, 5]
    by_hunk = problems_by_hunk("m.py", change.original.contents, change.new_lines, change.hunks)
    assert set(by_hunk) == {1}
    assert all(p.line >= 6 or p.end_line >= 6 for p in by_hunk[1])

    clean = old.replace("return 2", "return 20")
    change = _change(tmp_path, "m.py", old, clean)
    assert problems_by_hunk("m.py", change.original.contents, change.new_lines, change.hunks) == {}
    assert problems_by_hunk("m.txt", change.original.contents, change.new_lines, change.hunks) is None


def test_an_error_below_its_hunk_goes_to_the_nearest_hunk_above(tmp_path):
    old = "function f() {\n  return 1;\n}\n\nfunction g() {\n  return 2;\n}\n"
    # the first hunk deletes f's closing brace; the parser only notices at the end of the file
    new = "function f() {\n  return 1;\n\nfunction g() {\n  return 2;\n}\n"
    change = _change(tmp_path, "x.js", old, new)
    by_hunk = problems_by_hunk("x.js", change.original.contents, change.new_lines, change.hunks)
    assert list(by_hunk) == [0] and by_hunk[0]


def test_a_new_file_that_does_not_parse_is_charged_to_its_one_hunk(tmp_path):
    change = _change(tmp_path, "new.py", None, "class A:\n    def m(self)\n        pass\n")
    by_hunk = problems_by_hunk("new.py", None, change.new_lines, change.hunks)
    assert list(by_hunk) == [0] and by_hunk[0][0].line <= 2 <= by_hunk[0][0].end_line

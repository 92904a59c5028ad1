"""The edit pipeline on real files: parse → plan → apply → undo, and every way it must refuse."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from app.core.edits import (DELETED, MODIFIED, NEW, ApplyError, StaleFileError, UndoConflict, UndoStore,
                            UnsafePathError, apply_changes, parse_answer, plan_changes, resolve_in_project,
                            undo)

FENCE = "```"


@pytest.fixture
def project(tmp_path) -> Path:
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "net.py").write_text(
        "import time\n\n\ndef fetch(url):\n    return get(url)\n\n\ndef other():\n    return 1\n")
    (root / "README.md").write_text("# Demo\n")
    return root


@pytest.fixture
def store(tmp_path) -> UndoStore:
    return UndoStore(tmp_path / "undo")


def apply_all(root, cs, store):
    return apply_changes(root, [(c, None) for c in cs.changes], store)


# ---- formats -----------------------------------------------------------------------------------
@pytest.mark.parametrize("label", ["pkg/net.py", "**pkg/net.py**", "### pkg/net.py", "File: `pkg/net.py`",
                                   "`pkg/net.py`:"])
def test_whole_file_block_path_on_the_line_before(label):
    parsed = parse_answer(f"Sure.\n\n{label}\n{FENCE}python\nprint(1)\n{FENCE}\n")
    assert [(e.path, e.kind, e.lines) for e in parsed.edits] == [("pkg/net.py", "whole", ["print(1)"])]
    assert not parsed.problems


@pytest.mark.parametrize("info", ["python pkg/net.py", "python:pkg/net.py", 'python title="pkg/net.py"',
                                  "pkg/net.py"])
def test_whole_file_block_path_in_the_fence_info(info):
    parsed = parse_answer(f"{FENCE}{info}\nprint(1)\n{FENCE}\n")
    assert [(e.path, e.lines) for e in parsed.edits] == [("pkg/net.py", ["print(1)"])]


def test_code_without_a_path_is_not_an_edit_and_prose_breaks_the_label():
    parsed = parse_answer(f"pkg/net.py\nThis file is long, here is an example of use.\n{FENCE}python\nx = 1\n{FENCE}\n"
                          f"{FENCE}\ny = 2\n{FENCE}\n")
    assert parsed.edits == [] and parsed.problems == []


def test_unclosed_fence_proposes_nothing_and_says_it_was_cut_off():
    parsed = parse_answer(f"pkg/net.py\n{FENCE}python\ndef fetch(url):\n    return")
    assert parsed.edits == []
    assert len(parsed.problems) == 1 and "cut off" in parsed.problems[0].message
    assert parsed.problems[0].path == "pkg/net.py" and parsed.problems[0].answer_line == 2


def test_search_replace_blocks_fenced_and_bare():
    answer = (f"pkg/net.py\n{FENCE}python\n<<<<<<< SEARCH\n    return get(url)\n=======\n    return get(url, retries=3)\n"
              f">>>>>>> REPLACE\n{FENCE}\n\nREADME.md\n<<<<<<< SEARCH\n# Demo\n=======\n# Demo app\n>>>>>>> REPLACE\n")
    parsed = parse_answer(answer)
    assert [(e.path, e.fmt, len(e.replacements)) for e in parsed.edits] == [
        ("pkg/net.py", "search/replace", 1), ("README.md", "search/replace", 1)]
    assert parsed.edits[0].replacements[0].replace == ["    return get(url, retries=3)"]


def test_malformed_search_replace_blocks_are_reported():
    missing_divider = "a.py\n<<<<<<< SEARCH\nx = 1\n>>>>>>> REPLACE\n"
    unfinished = f"a.py\n{FENCE}\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n{FENCE}\n"
    no_path = f"Change this:\n{FENCE}\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n{FENCE}\n"
    for answer, words in [(missing_divider, "no ======="), (unfinished, "not finished"), (no_path, "names no file")]:
        parsed = parse_answer(answer)
        assert parsed.edits == [], answer
        assert len(parsed.problems) == 1 and words in parsed.problems[0].message


def test_unified_diff_fenced_with_new_and_deleted_files():
    answer = (f"{FENCE}diff\n--- a/pkg/net.py\n+++ b/pkg/net.py\n@@ -4,2 +4,2 @@\n def fetch(url):\n-    return get(url)\n"
              f"+    return get(url, timeout=5)\n--- /dev/null\n+++ b/pkg/new.py\n@@ -0,0 +1,2 @@\n+A = 1\n+B = 2\n"
              f"--- a/README.md\n+++ /dev/null\n@@ -1 +0,0 @@\n-# Demo\n{FENCE}\n")
    parsed = parse_answer(answer)
    assert [(e.path, e.kind) for e in parsed.edits] == [("pkg/net.py", "replace"), ("pkg/new.py", "whole"),
                                                       ("README.md", "delete")]
    assert parsed.edits[0].replacements[0].hint_line == 4
    assert parsed.edits[1].lines == ["A = 1", "B = 2"] and parsed.edits[1].create


def test_delete_line():
    assert [(e.path, e.kind) for e in parse_answer("DELETE old/thing.py\n").edits] == [("old/thing.py", "delete")]


# ---- planning: what each format does to real files ----------------------------------------------
def test_whole_file_change_has_hunks_and_nothing_is_written(project):
    before = (project / "pkg/net.py").read_bytes()
    new = "import time\n\n\ndef fetch(url, retries=3):\n    return get(url)\n\n\ndef other():\n    return 1\n"
    cs = plan_changes(project, f"pkg/net.py\n{FENCE}python\n{new}{FENCE}\n")
    (c,) = cs.changes
    assert c.status == MODIFIED and len(c.hunks) == 1
    assert c.hunks[0].old == ("def fetch(url):",) and c.hunks[0].new == ("def fetch(url, retries=3):",)
    assert c.result_bytes() == new.encode()
    assert (project / "pkg/net.py").read_bytes() == before


def test_search_that_matches_nothing_names_the_closest_lines(project):
    cs = plan_changes(project, "pkg/net.py\n<<<<<<< SEARCH\ndef fetch(uri):\n    return get(uri)\n=======\nx\n>>>>>>> REPLACE\n")
    assert cs.changes == []
    (p,) = cs.problems
    assert "does not match" in p.message and "Closest are lines 4-5" in p.message and "def fetch(url):" in p.message


def test_search_that_matches_twice_names_both_places(project):
    dup = project / "dup.py"
    dup.write_text("x = 1\nprint(x)\nx = 1\n")
    cs = plan_changes(project, "dup.py\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n")
    assert cs.changes == [] and "matches 2 places (lines 1-1, 3-3)" in cs.problems[0].message
    # Blank lines around a SEARCH block are trimmed, so they do not make it ambiguous.
    once = plan_changes(project, "pkg/net.py\n<<<<<<< SEARCH\n\n\nimport time\n=======\nimport os\n>>>>>>> REPLACE\n")
    assert once.changes[0].new_lines[0] == "import os"


def test_search_replace_is_tolerant_of_indentation_and_reindents(project):
    cs = plan_changes(project, "pkg/net.py\n<<<<<<< SEARCH\nreturn get(url)\n=======\nif url:\n    return get(url)\n"
                               ">>>>>>> REPLACE\n")
    (c,) = cs.changes
    assert c.new_lines[4:6] == ["    if url:", "        return get(url)"]


def test_search_replace_for_a_file_that_does_not_exist(project):
    cs = plan_changes(project, "nope.py\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n")
    assert cs.changes == [] and "not in the project" in cs.problems[0].message


def test_unified_diff_uses_the_line_hint_to_choose_between_equal_places(project):
    (project / "dup.py").write_text("x = 1\nprint(x)\nx = 1\n")
    cs = plan_changes(project, "--- a/dup.py\n+++ b/dup.py\n@@ -3 +3 @@\n-x = 1\n+x = 3\n")
    assert cs.changes[0].result_bytes() == b"x = 1\nprint(x)\nx = 3\n"


def test_function_level_block_replaces_only_that_function(tmp_path):
    root = tmp_path / "p"
    root.mkdir()
    body = ["import os", "", "", "class Client:", "    def __init__(self):", "        self.n = 0", "",
            "    def fetch(self, url):", "        return url", ""]
    body += [f"    def m{k}(self):\n        return {k}\n" for k in range(10)]
    (root / "c.py").write_text("\n".join(body) + "\n")
    answer = f"c.py\n{FENCE}python\ndef fetch(self, url):\n    for attempt in range(3):\n        return url\n{FENCE}\n"
    (c,) = plan_changes(root, answer).changes
    text = c.result_text()
    assert "    def fetch(self, url):\n        for attempt in range(3):\n            return url\n" in text
    assert "import os" in text and "def m9" in text and "def __init__" in text
    assert c.warnings and "some definitions" in c.warnings[0]


def test_elided_code_is_flagged(project):
    cs = plan_changes(project, f"pkg/net.py\n{FENCE}python\nimport time\n\n# ... rest of the code unchanged ...\n{FENCE}\n")
    (c,) = cs.changes
    assert any("leaves code out" in w for w in c.warnings)


def test_a_file_named_with_identical_content_is_unchanged(project):
    text = (project / "README.md").read_text()
    cs = plan_changes(project, f"README.md\n{FENCE}\n{text}{FENCE}\n")
    assert cs.changes == [] and cs.unchanged == ["README.md"]


# ---- safety ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["../outside.py", "pkg/../../outside.py", "/etc/passwd", "C:\\Windows\\x.py",
                                 "..\\outside.py", ".git/config", "pkg/\x00.py"])
def test_paths_outside_the_project_are_refused_and_named(project, bad):
    with pytest.raises(UnsafePathError) as e:
        resolve_in_project(project, bad)
    assert repr(bad) in str(e.value)  # the message names what the model asked for
    cs = plan_changes(project, f"{FENCE}python {bad}\nboom\n{FENCE}\n")
    assert cs.changes == []
    assert list(project.parent.glob("outside*")) == []


def test_symlink_escape_is_refused(project, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text("KEY = 1\n")
    (project / "link").symlink_to(outside)
    cs = plan_changes(project, f"link/secret.py\n{FENCE}python\nKEY = 2\n{FENCE}\n")
    assert cs.changes == [] and "outside the project" in cs.problems[0].message
    assert (outside / "secret.py").read_text() == "KEY = 1\n"


def test_symlink_swapped_in_after_planning_is_refused_at_apply(project, store, tmp_path):
    (project / "sub").mkdir()
    (project / "sub" / "a.py").write_text("a = 1\n")
    cs = plan_changes(project, f"sub/a.py\n{FENCE}\na = 2\n{FENCE}\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "a.py").write_text("a = 1\n")
    os.rename(project / "sub", tmp_path / "sub-moved")
    (project / "sub").symlink_to(outside)
    with pytest.raises(ApplyError):
        apply_all(project, cs, store)
    assert (outside / "a.py").read_text() == "a = 1\n"


def test_binary_and_non_utf8_files_are_never_edited(project):
    (project / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (project / "latin.txt").write_bytes("café\n".encode("latin-1"))
    cs = plan_changes(project, f"logo.png\n{FENCE}\nnot an image\n{FENCE}\nlatin.txt\n{FENCE}\ncafe\n{FENCE}\n")
    assert cs.changes == []
    msgs = " ".join(p.message for p in cs.problems)
    assert "binary" in msgs and "not UTF-8" in msgs


# ---- apply and undo ------------------------------------------------------------------------------
def test_crlf_no_trailing_newline_bom_and_mode_are_preserved(tmp_path, store):
    root = tmp_path / "p"
    root.mkdir()
    f = root / "win.py"
    original = b"\xef\xbb\xbfa = 1\r\nb = 2\r\nc = 3"
    f.write_bytes(original)
    f.chmod(0o755)
    cs = plan_changes(root, f"win.py\n{FENCE}\na = 1\nb = 20\nc = 3\nd = 4\n{FENCE}\n")
    record = apply_all(root, cs, store)
    assert f.read_bytes() == b"\xef\xbb\xbfa = 1\r\nb = 20\r\nc = 3\r\nd = 4"
    assert stat.S_IMODE(f.stat().st_mode) == 0o755
    undo(store, record)
    assert f.read_bytes() == original and stat.S_IMODE(f.stat().st_mode) == 0o755


def test_mixed_line_endings_keep_their_own_on_untouched_lines(tmp_path, store):
    root = tmp_path / "p"
    root.mkdir()
    (root / "m.txt").write_bytes(b"one\r\ntwo\nthree\r\nfour\r\n")
    cs = plan_changes(root, f"m.txt\n{FENCE}\none\nTWO\nthree\nfour\n{FENCE}\n")
    apply_all(root, cs, store)
    assert (root / "m.txt").read_bytes() == b"one\r\nTWO\r\nthree\r\nfour\r\n"


def test_new_file_in_new_folder_needs_nothing_but_approval_and_undo_removes_folders(project, store):
    cs = plan_changes(project, f"src/deep/er/new.py\n{FENCE}python\nX = 1\n{FENCE}\n")
    (c,) = cs.changes
    assert c.status == NEW and c.needs_approval
    assert not (project / "src").exists()
    record = apply_changes(project, [(c, None)], store)
    assert (project / "src/deep/er/new.py").read_text() == "X = 1\n"
    undo(store, record)
    assert not (project / "src").exists()


def test_delete_then_undo_restores_bytes_and_mode(project, store):
    f = project / "README.md"
    f.chmod(0o600)
    cs = plan_changes(project, "DELETE README.md\n")
    (c,) = cs.changes
    assert c.status == DELETED and c.needs_approval
    record = apply_changes(project, [(c, None)], store)
    assert not f.exists()
    undo(store, record)
    assert f.read_bytes() == b"# Demo\n" and stat.S_IMODE(f.stat().st_mode) == 0o600


def test_a_subset_of_hunks_is_applied_exactly(project, store):
    new = "import sys\n\n\ndef fetch(url):\n    return get(url, 5)\n\n\ndef other():\n    return 2\n"
    cs = plan_changes(project, f"pkg/net.py\n{FENCE}python\n{new}{FENCE}\n")
    (c,) = cs.changes
    assert len(c.hunks) == 3
    apply_changes(project, [(c, {1})], store)
    assert (project / "pkg/net.py").read_text() == \
        "import time\n\n\ndef fetch(url):\n    return get(url, 5)\n\n\ndef other():\n    return 1\n"


def test_stale_file_refuses_and_recompute_works(project, store):
    cs = plan_changes(project, f"README.md\n{FENCE}\n# Demo 2\n{FENCE}\npkg/net.py\n{FENCE}\nx = 1\n{FENCE}\n")
    (project / "README.md").write_text("# Changed by the user\n")
    with pytest.raises(StaleFileError) as e:
        apply_all(project, cs, store)
    assert e.value.paths == ["README.md"] and "Recompute" in str(e.value)
    assert (project / "pkg/net.py").read_text().startswith("import time")  # all or nothing
    assert store.records() == []
    again = plan_changes(project, cs.answer)
    apply_all(project, again, store)
    assert (project / "README.md").read_text() == "# Demo 2\n"


def test_new_file_that_appeared_meanwhile_is_stale(project, store):
    cs = plan_changes(project, f"new.py\n{FENCE}\nx = 1\n{FENCE}\n")
    (project / "new.py").write_text("mine\n")
    with pytest.raises(StaleFileError):
        apply_all(project, cs, store)
    assert (project / "new.py").read_text() == "mine\n"


def test_undo_survives_a_restart_and_refuses_to_clobber_later_changes(project, tmp_path):
    cs = plan_changes(project, f"README.md\n{FENCE}\n# Demo 2\n{FENCE}\n")
    apply_all(project, cs, UndoStore(tmp_path / "undo"))
    reopened = UndoStore(tmp_path / "undo")  # as after a restart
    record = reopened.last_undoable(project)
    assert record is not None and record.paths == ["README.md"]
    (project / "README.md").write_text("# user typed more\n")
    with pytest.raises(UndoConflict) as e:
        undo(reopened, record)
    assert e.value.paths == ["README.md"]
    assert (project / "README.md").read_text() == "# user typed more\n"
    undo(reopened, record, force=True)
    assert (project / "README.md").read_text() == "# Demo\n"
    assert reopened.last_undoable(project) is None


def test_nothing_accepted_is_an_error_not_a_silent_success(project, store):
    cs = plan_changes(project, f"README.md\n{FENCE}\n# Demo 2\n{FENCE}\n")
    with pytest.raises(ApplyError, match="Nothing to apply"):
        apply_changes(project, [(cs.changes[0], set())], store)


@pytest.fixture
def tiny_disk(tmpfs):
    return tmpfs("64k")


def test_full_disk_writes_nothing_and_says_so(tiny_disk, store):
    root = tiny_disk / "p"
    root.mkdir()
    (root / "a.py").write_text("a = 1\n")
    (root / "b.py").write_text("b = 1\n")
    big = "x = '" + "y" * 100_000 + "'"
    cs = plan_changes(root, f"a.py\n{FENCE}\na = 2\n{FENCE}\nb.py\n{FENCE}\n{big}\n{FENCE}\n")
    with pytest.raises(ApplyError, match="disk is full"):
        apply_all(root, cs, store)
    assert (root / "a.py").read_text() == "a = 1\n" and (root / "b.py").read_text() == "b = 1\n"
    assert sorted(p.name for p in root.iterdir()) == ["a.py", "b.py"]  # no temporaries left
    assert store.records() == []


def test_full_disk_for_the_undo_copy_writes_nothing(tmp_path, tiny_disk):
    root = tmp_path / "p"
    root.mkdir()
    (root / "big.txt").write_text("z" * 100_000 + "\n")
    cs = plan_changes(root, f"big.txt\n{FENCE}\nsmall\n{FENCE}\n")
    with pytest.raises(ApplyError, match="undo copy"):
        apply_all(root, cs, UndoStore(tiny_disk / "undo"))
    assert (root / "big.txt").read_text().startswith("zzz")

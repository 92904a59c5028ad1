"""Fuzzing the edit parser and planner (tests/support/fuzz.py holds the contract).

Any answer, any path it names, any bytes already on disk: ``plan_changes`` returns a ChangeSet
(problems are messages, never exceptions) and writes nothing; ``apply_changes`` writes only
inside the project or refuses with a message naming the file; undo gives back every byte.
The correctness of good edits is tests/core/test_edits_property.py's job, not this file's.
"""

from __future__ import annotations

import os
import stat
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import currently_in_test_context, event, given
from hypothesis import strategies as st

from app.core.edits import (ApplyError, ChangeSet, UndoStore, apply_changes, parse_answer, plan_changes,
                            resolve_in_project, undo)
from app.core.errors import UserError
from tests.support.fuzz import examples, holds, surface

MAIN = "def f():\n    return 1\n\n\nx = 1\n"
SLOW = 10.0  # seconds: far above what any input here needs; over it is a hang, not a slow machine


# ---- a real project, and what is on disk ----------------------------------------------------------
def make_project(tmp: Path, main: bytes = MAIN.encode()) -> Path:
    """A project with a file, a folder, a FIFO, a symlink out, a symlink loop; files outside it."""
    root = tmp / "p"
    (root / "sub").mkdir(parents=True)
    (root / "m.py").write_bytes(main)
    (root / "sub" / "n.txt").write_text("one\ntwo\n")
    os.mkfifo(root / "pipe.py")
    (tmp / "secret").mkdir()
    (tmp / "secret" / "x.py").write_text("secret = 1\n")
    (tmp / "outside.py").write_text("outside = 1\n")
    (root / "link_out").symlink_to(tmp / "secret")
    (root / "loop.py").symlink_to(root / "loop.py")
    return root


def tree(top: Path) -> dict[str, tuple]:
    """Everything under ``top``, without following links: files with their bytes and mode."""
    out: dict[str, tuple] = {}
    for d, dirs, files in os.walk(top):
        for name in dirs + files:
            p = Path(d) / name
            st_ = p.lstat()
            rel = str(p.relative_to(top))
            if stat.S_ISLNK(st_.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st_.st_mode):
                out[rel] = ("dir",)
            elif stat.S_ISREG(st_.st_mode):
                out[rel] = ("file", p.read_bytes(), stat.S_IMODE(st_.st_mode))
            else:
                out[rel] = ("special",)
    return out


def _event(what: str) -> None:
    """Tally an outcome for --hypothesis-show-statistics (the plain tests have no tally)."""
    if currently_in_test_context():
        event(what)


def plan(root: Path, answer: str, target: str | None, name: str) -> ChangeSet:
    """plan_changes under the contract: a ChangeSet whose problems are messages, quickly."""
    t0 = time.monotonic()
    cs = holds(lambda: plan_changes(root, answer, target), name)
    assert time.monotonic() - t0 < SLOW, f"planning took {time.monotonic() - t0:.1f}s"
    assert isinstance(cs, ChangeSet), cs  # planning reports problems; it never raises
    _event(f"plan: {'changes' if cs.changes else 'no change'}, {'problems' if cs.problems else 'no problem'}")
    for p in cs.problems:
        assert p.message.strip() and "Traceback" not in p.message, p
    real_root = root.resolve()
    for c in cs.changes:
        assert real_root in c.target.parents, c.target
    return cs


def apply_and_undo(tmp: Path, root: Path, cs: ChangeSet, before: dict, name: str) -> None:
    """Apply every change, then undo: writes stay inside the project, and undo restores all."""
    store_dir = Path(tempfile.mkdtemp(prefix="undo-"))
    try:
        store = UndoStore(store_dir)
        out = holds(lambda: apply_changes(root, [(c, None) for c in cs.changes], store), name)
        after = tree(tmp)
        outside = {k: v for k, v in before.items() if not k.startswith("p/") and k != "p"}
        assert {k: v for k, v in after.items() if not k.startswith("p/") and k != "p"} == outside
        _event(f"apply: {type(out).__name__}")
        if isinstance(out, UserError):
            assert after == before, "a refused apply changed files"
            assert not any(store_dir.iterdir()), "a refused apply left an undo record"
            return
        touched = {"p/" + c.path for c in cs.changes}
        for k, v in before.items():
            if k.startswith("p/") and k not in touched and not any(t.startswith(k + "/") for t in touched):
                assert after.get(k) == v, f"{k} changed, but no change names it"
        holds(lambda: undo(store, out), name)
        assert tree(tmp) == before, "undo did not give back every byte"
    finally:
        for d, _, files in os.walk(store_dir, topdown=False):
            for f in files:
                os.unlink(os.path.join(d, f))
            os.rmdir(d)


# ---- what a model may write -----------------------------------------------------------------------
SURROGATES = ["\ud800", "\udc80", "\udfff"]
ODD_TEXT = st.text(st.one_of(st.characters(), st.sampled_from(["\x00", "\r", "\t", "`", "~", "<", ">", "=",
                                                                "@", "-", "+", "\\", "/", ".", ":"] + SURROGATES)),
                   max_size=40)
PATHS = st.one_of(
    st.sampled_from([
        "m.py", "./m.py", "sub/n.txt", "sub\\n.txt", "new/dir/a.py", "sub", "sub/", ".", "/", "", " ", "``",
        "..", "../outside.py", "../../etc/passwd", "sub/../../outside.py", "..\\outside.py", "sub\\..\\..\\x.py",
        "/etc/passwd", "/tmp/x.py", "C:\\x\\y.py", "C:x.py", "c:/x/y.py", "\\\\server\\share\\x.py", "~/x.py",
        "m.py\x00", "x\x00.py", ".git/config", "sub/.git/HEAD", "pipe.py", "loop.py", "loop.py/x.py",
        "link_out", "link_out/x.py", "link_out/new.py", "m.py/x.py", "sub/n.txt/deeper.py",
        "a" * 4000, "a/" * 2000 + "x.py", "b" * 300 + ".py", "sub/" + "c" * 256, "nul.py", "CON", "aux.txt",
        "x.py\udcff", "\ud800.py", "é/ü.py", "x.py:stream", "dir with space/x.py", "x.py ", "x.py.",
    ]),
    st.text(st.sampled_from("ab./\\:~-_ \x00é"), max_size=12),
    ODD_TEXT,
)
CONTENT = st.sampled_from(["def f():", "    return 1", "", "x = 1", "x = 2", "    return 2", "def g():",
                           "class A:", "...", "# ... rest unchanged", "}", "{"]) | ODD_TEXT


@st.composite
def fence(draw) -> str:
    return draw(st.sampled_from("`~")) * draw(st.integers(3, 20))


@st.composite
def fragment(draw) -> list[str]:
    """A few answer lines: prose, a path label, a fence, a SEARCH/REPLACE part, a diff part..."""
    p = draw(PATHS)
    kind = draw(st.sampled_from(["prose", "label", "fence", "fenced", "search", "divider", "tail", "block",
                                 "diffhead", "hunkhead", "hunkline", "newfile", "delete", "content"]))
    if kind == "prose":
        return [draw(ODD_TEXT)]
    if kind == "label":
        return [draw(st.sampled_from(["{}", "**{}**", "### {}", "File: `{}`", "{}:", "`{}`:"])).format(p)]
    if kind == "fence":
        info = draw(st.sampled_from(["", "python", "diff", "py", "python {}", "python:{}", 'title="{}"', "{}"]))
        return [draw(st.sampled_from(["", "  ", "\t"])) + draw(fence()) + info.format(p)]
    if kind == "fenced":
        f = draw(fence())
        body = draw(st.lists(CONTENT, max_size=6))
        closed = draw(st.booleans())
        return [p, f + draw(st.sampled_from(["", "python", "diff"]))] + body + ([f] if closed else [])
    if kind == "search":
        return [draw(st.sampled_from(["<<<<<<< SEARCH", "<<<<< SEARCH", "<<<<<<<<< SEARCH", "<<<<<<<SEARCH",
                                      "  <<<<<<< SEARCH x", "<<<< SEARCH"]))]
    if kind == "divider":
        return [draw(st.sampled_from(["=======", "=====", "=========", " ======= ", "======"]))]
    if kind == "tail":
        return [draw(st.sampled_from([">>>>>>> REPLACE", ">>>>>>> UPDATED", ">>>>>REPLACE", ">>>> REPLACE"]))]
    if kind == "block":
        search = draw(st.lists(CONTENT, max_size=4))
        replace = draw(st.lists(CONTENT, max_size=4))
        return [p, "<<<<<<< SEARCH", *search, "=======", *replace, ">>>>>>> REPLACE"]
    if kind == "diffhead":
        return [f"--- {draw(st.sampled_from(['a/', '', '/dev/null']))}{p}", f"+++ b/{p}"]
    if kind == "hunkhead":
        n = draw(st.one_of(st.integers(0, 10).map(str), st.integers(0, 10**6).map(str), st.just("1" * 5000)))
        return [f"@@ -{n},{draw(st.integers(0, 9))} +{n} @@{draw(st.sampled_from(['', ' def f():', '@']))}"]
    if kind == "hunkline":
        return [draw(st.sampled_from(" +-\\")) + draw(CONTENT)]
    if kind == "newfile":
        return ["--- /dev/null", f"+++ b/{p}", "@@ -0,0 +1,2 @@", "+" + draw(CONTENT), "+y = 3"]
    if kind == "delete":
        return [draw(st.sampled_from(["DELETE {}", "DELETE FILE: {}", "DELETE `{}`", "  DELETE: {}"])).format(p)]
    return [draw(CONTENT)]


@st.composite
def answers(draw) -> str:
    lines = [line for frag in draw(st.lists(fragment(), max_size=14)) for line in frag]
    return draw(st.sampled_from(["\n", "\r\n", "\r"])).join(lines) + draw(st.sampled_from(["", "\n"]))


TARGETS = st.one_of(st.none(), st.just("m.py"), PATHS)


# ---- properties -----------------------------------------------------------------------------------
@examples(ci=120)
@given(answer=answers(), target=TARGETS, apply=st.booleans())
def test_any_answer_plans_without_writing_and_applies_only_inside(answer, target, apply):
    """Arbitrary answers: fences of any length, broken blocks, diffs, hostile paths, NUL bytes."""
    with surface("edits: answers"), tempfile.TemporaryDirectory() as t:
        tmp = Path(t).resolve()
        root = make_project(tmp)
        before = tree(tmp)
        cs = plan(root, answer, target, "edits: answers")
        assert tree(tmp) == before, "planning wrote something"
        if apply and cs.changes:
            apply_and_undo(tmp, root, cs, before, "edits: answers")


@examples(ci=120)
@given(path=PATHS, form=st.sampled_from(["label", "info", "search", "diff", "newdiff", "deldiff", "delete",
                                         "target"]))
def test_any_path_in_any_form_stays_inside_the_project(path, form):
    """Whatever path the answer names, and however: refused with its name, or a file inside."""
    answer = {
        "label": f"{path}\n```python\nx = 2\n```\n",
        "info": f"```python {path}\nx = 2\n```\n",
        "search": f"{path}\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n",
        "diff": f"--- a/{path}\n+++ b/{path}\n@@ -5 +5 @@\n-x = 1\n+x = 2\n",
        "newdiff": f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n+x = 2\n",
        "deldiff": f"--- a/{path}\n+++ /dev/null\n@@ -1 +0,0 @@\n-x = 1\n",
        "delete": f"DELETE {path}\n",
        "target": "```python\nx = 2\n```\n",
    }[form]
    with surface("edits: paths"), tempfile.TemporaryDirectory() as t:
        tmp = Path(t).resolve()
        root = make_project(tmp)
        before = tree(tmp)
        cs = plan(root, answer, path if form == "target" else "m.py", "edits: paths")
        assert tree(tmp) == before, "planning wrote something"
        if cs.changes:
            apply_and_undo(tmp, root, cs, before, "edits: paths")


@examples(ci=60)
@given(lines=st.lists(ODD_TEXT, max_size=8), form=st.sampled_from(["whole", "search", "newdiff", "newfile"]))
def test_any_content_an_edit_proposes_is_saved_or_refused_by_name(lines, form):
    """Whatever characters the new content holds (NUL, CR, lone surrogates): applied or named."""
    body = "\n".join(lines)
    answer = {
        "whole": f"m.py\n```python\n{body}\n```\n",
        "search": f"m.py\n<<<<<<< SEARCH\nx = 1\n=======\n{body}\n>>>>>>> REPLACE\n",
        "newdiff": "--- /dev/null\n+++ b/new.py\n@@ -0,0 +1 @@\n" + "".join(f"+{x}\n" for x in lines),
        "newfile": f"new.py\n```python\n{body}\n```\n",
    }[form]
    with surface("edits: proposed content"), tempfile.TemporaryDirectory() as t:
        tmp = Path(t).resolve()
        root = make_project(tmp)
        before = tree(tmp)
        cs = plan(root, answer, "m.py", "edits: proposed content")
        assert tree(tmp) == before, "planning wrote something"
        if cs.changes:
            apply_and_undo(tmp, root, cs, before, "edits: proposed content")


ENDINGS = st.sampled_from(["\n", "\r\n", "\r", ""])
DISK_LINE = st.one_of(st.sampled_from(["def f():", "    return 1", "", "x = 1"]), st.text(max_size=20),
                      st.integers(0, 300_000).map(lambda n: "y" * n))


@st.composite
def disk_bytes(draw) -> bytes:
    """The target file's bytes: text with any endings, a BOM, NULs, invalid UTF-8, huge lines."""
    kind = draw(st.sampled_from(["text", "text", "binary", "latin1", "bom"]))
    if kind == "binary":
        return draw(st.binary(max_size=300))
    lines = draw(st.lists(DISK_LINE, max_size=12))
    data = "".join(line + draw(ENDINGS) for line in lines).encode("utf-8", "surrogatepass")
    if kind == "latin1":
        data = data + draw(st.sampled_from([b"\xe9", b"\xff\xfe", b"\x80abc", b"\xed\xa0\x80", b"\x00"]))
    if kind == "bom":
        data = b"\xef\xbb\xbf" + data
    return data


@examples(ci=80)
@given(data=disk_bytes(), answer=st.sampled_from([
    "m.py\n```python\ndef f():\n    return 2\n```\n",
    "m.py\n```python\ndef f():\n    return 2\n\n\nx = 1\n```\n",
    "m.py\n<<<<<<< SEARCH\n    return 1\n=======\n    return 2\n>>>>>>> REPLACE\n",
    "m.py\n<<<<<<< SEARCH\n\n=======\nz = 0\n>>>>>>> REPLACE\n",
    "--- a/m.py\n+++ b/m.py\n@@ -2 +2 @@\n-    return 1\n+    return 2\n",
    "DELETE m.py\n",
    "```python\nx = 5\n```\n",
]), apply=st.booleans())
def test_any_bytes_on_disk_are_refused_by_name_or_kept_exactly(data, answer, apply):
    """The edited file holds anything: binary, not UTF-8, CR/CRLF, BOM, NUL, 300 KB lines."""
    with surface("edits: file on disk"), tempfile.TemporaryDirectory() as t:
        tmp = Path(t).resolve()
        root = make_project(tmp, data)
        before = tree(tmp)
        cs = plan(root, answer, "m.py", "edits: file on disk")
        assert tree(tmp) == before, "planning wrote something"
        for p in cs.problems:
            if "binary" in p.message or "UTF-8" in p.message:
                assert "m.py" in p.message, p.message
        if apply and cs.changes:
            apply_and_undo(tmp, root, cs, before, "edits: file on disk")


MUTATIONS = ["delete", "directory", "rewrite", "symlink out", "parent is a file", "fifo", "same bytes"]


@examples(ci=40)
@given(answer=st.sampled_from([
    ("m.py", "m.py\n```python\nx = 2\n```\n"),
    ("m.py", "DELETE m.py\n"),
    ("new/a.py", "new/a.py\n```python\nx = 2\n```\n"),
    ("sub/n.txt", "sub/n.txt\n<<<<<<< SEARCH\ntwo\n=======\nthree\n>>>>>>> REPLACE\n"),
]), mutation=st.sampled_from(MUTATIONS))
def test_a_target_that_changes_between_plan_and_apply_is_refused_by_name(answer, mutation):
    """Between review and Apply the file vanishes, becomes a folder, a FIFO, a link out..."""
    path, text = answer
    with surface("edits: target changed before apply"), tempfile.TemporaryDirectory() as t:
        tmp = Path(t).resolve()
        root = make_project(tmp)
        cs = plan(root, text, None, "edits: target changed before apply")
        (change,) = cs.changes
        mutate(root, path, mutation)
        before = tree(tmp)
        store_dir = tmp / "undo"
        t0 = time.monotonic()
        out = holds(lambda: apply_changes(root, [(change, None)], UndoStore(store_dir)),
                    "edits: target changed before apply", mentions=() if mutation == "same bytes" else (path,))
        assert time.monotonic() - t0 < SLOW
        if mutation == "same bytes":
            return  # nothing changed that matters: applying is right
        assert isinstance(out, ApplyError), out
        assert tree(tmp) == before and not store_dir.exists()


def mutate(root: Path, path: str, how: str) -> None:
    target = root / path
    if target.exists():
        old = target.read_bytes()
        target.unlink()
    else:
        old = None
    if how == "delete":
        if old is None:  # a new file cannot vanish: something else appears instead
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("made meanwhile\n")
    elif how == "directory":
        target.mkdir(parents=True)
        (target / "inside.txt").write_text("keep\n")
    elif how == "rewrite":
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("rewritten meanwhile\n")
    elif how == "symlink out":
        target.parent.mkdir(parents=True, exist_ok=True)
        outside = root.parent / "outside.py"
        if old is not None:
            outside.write_bytes(old)
        target.symlink_to(outside)
    elif how == "parent is a file":
        parent = target.parent
        if parent == root:
            target.write_text("rewritten meanwhile\n")
        else:
            if parent.exists():
                for p in parent.iterdir():
                    p.unlink()
                parent.rmdir()
            parent.write_text("a file where the folder was\n")
    elif how == "fifo":
        target.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(target)
    elif how == "same bytes" and old is not None:
        target.write_bytes(old)


# ---- long inputs: linear time, never a hang ---------------------------------------------------------
N = 200_000  # characters: a long answer, far beyond what the app asks for
LONG = {
    "spaces": " " * N + "x",
    "elided spaces": "... " + " " * N + "x",
    "backticks": "`" * N,
    "tildes": "~" * N + "python m.py",
    "fence opens": "```\n" * (N // 4),
    "hunk digits": "@@ -" + "1" * N + " +1 @@",
    "hunk spaces": "@@ -1" + " " * N + "x",
    "at signs": "@" * N,
    "search marks": "<" * N + " SEARCH",
    "equals": "=" * N + " x",
    "replace marks": ">" * N,
    "search heads": "<<<<<<< SEARCH\n" * (N // 15),
    "delete": "DELETE " + "a" * N + " x",
    "delete spaces": "DELETE a" + " " * N + "b",
    "diff head": "--- " + "a" * N + "\n+++ " + "b" * N,
    "def lines": "def f():\n" * (N // 9),
    "def prefixes": "export " * (N // 7) + "x",
    "label": "**" + "a/" * (N // 2) + "x.py**",
    "nuls": "\x00" * N,
    "cr": "\r" * N,
    "tabs": "\t" * N + "x",
}
WRAPS = {
    "bare": "{}",
    "fenced": "m.py\n```python\n{}\n```\n",
    "search": "m.py\n<<<<<<< SEARCH\n{}\n=======\nx = 2\n>>>>>>> REPLACE\n",
    "diff": "--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-{}\n+x\n",
}


@pytest.mark.parametrize("wrap", list(WRAPS))
def test_long_pathological_answers_plan_in_sane_time(wrap):
    """200 KB of what makes regexes backtrack, in each place a regex reads it."""
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t).resolve()
        root = make_project(tmp, ("def f():\n    return 1\n" * 3000 + "y" * N + "\n").encode())
        for name, text in LONG.items():
            with surface("edits: long answers"):
                t0 = time.monotonic()
                plan(root, WRAPS[wrap].format(text), "m.py", "edits: long answers")
                assert time.monotonic() - t0 < SLOW / 2, f"{name}: {time.monotonic() - t0:.1f}s"


def _big_file() -> str:
    """20,000 lines of repetitive code: many near-matches for every block."""
    return "".join(f"def f{i}():\n    return {i % 7}\n\n" for i in range(6700))


BIG = {
    "search misses": lambda: "m.py\n<<<<<<< SEARCH\n" + "".join(f"def f{i}():\n    return {i % 5}\n\n"
                                                                 for i in range(2000))
                             + "=======\nx = 2\n>>>>>>> REPLACE\n",
    "whole file, every line new": lambda: "m.py\n```python\n" + "".join(f"def g{i}():\n    return {i % 3}\n\n"
                                                                         for i in range(6700)) + "```\n",
    "partial, many definitions": lambda: "m.py\n```python\n" + "".join(f"def f{i * 3}():\n    return 9\n\n"
                                                                        for i in range(2000)) + "```\n",
    "diff, many hunks": lambda: "--- a/m.py\n+++ b/m.py\n" + "".join(f"@@ -{i} +{i} @@\n-    return {i % 7}\n+    pass\n"
                                                                     for i in range(2000)),
}


@pytest.mark.parametrize("case", list(BIG))
def test_big_files_and_big_answers_plan_in_sane_time(case):
    """A 20,000-line file and a 2,000-block answer: what the matcher and differ must survive."""
    with tempfile.TemporaryDirectory() as t, surface("edits: big files"):
        tmp = Path(t).resolve()
        root = make_project(tmp, _big_file().encode())
        t0 = time.monotonic()
        plan(root, BIG[case](), "m.py", "edits: big files")
        assert time.monotonic() - t0 < SLOW, f"{case}: {time.monotonic() - t0:.1f}s"


# ---- what the fuzzing found, kept as plain regression tests ----------------------------------------
def _project(tmp_path: Path) -> Path:
    return make_project(tmp_path.resolve())


def test_a_200kb_line_of_spaces_in_a_block_is_not_a_regex_hang(tmp_path):
    """ELIDED had two adjacent \\s*: quadratic backtracking, minutes for one long line."""
    root = _project(tmp_path)
    t0 = time.monotonic()
    cs = plan_changes(root, "m.py\n```python\n" + " " * 200_000 + "x\n```\n", "m.py")
    assert time.monotonic() - t0 < 2 and len(cs.changes) == 1
    parsed = parse_answer("m.py\n```python\na = 1\n# ... rest unchanged\n...\n... more\n```\n")
    assert parsed.edits[0].elided == [4, 5]  # the words still count; "... more" is code


def test_a_hunk_header_with_5000_digits_is_only_a_missing_hint(tmp_path):
    """int() refuses over 4,300 digits: a ValueError escaped the parser."""
    root = _project(tmp_path)
    cs = plan_changes(root, "--- a/m.py\n+++ b/m.py\n@@ -" + "1" * 5000 + " +1 @@\n-x = 1\n+x = 2\n")
    assert not cs.problems and cs.changes[0].result_text().endswith("x = 2\n")


def test_a_diff_creating_a_file_without_a_name_is_a_problem(tmp_path):
    """``+++ b/`` after ``--- /dev/null``: the edit had path None, an AttributeError."""
    cs = plan_changes(_project(tmp_path), "--- /dev/null\n+++ b/\n@@ -0,0 +1 @@\n+x\n")
    assert not cs.changes and "names none" in cs.problems[0].message


def test_a_name_too_long_for_the_disk_is_a_problem_naming_it(tmp_path):
    """Path.exists() raises ENAMETOOLONG for a 4,000-character name: an OSError escaped."""
    name = "a" * 4000 + ".py"
    cs = plan_changes(_project(tmp_path), f"--- /dev/null\n+++ b/{name}\n@@ -0,0 +1 @@\n+x\n")
    assert not cs.changes and name in cs.problems[0].message and "too long" in cs.problems[0].message


def test_a_symlink_loop_is_refused_by_name(tmp_path):
    """Path.resolve() raises RuntimeError on a loop: it escaped resolve_in_project."""
    root = _project(tmp_path)
    cs = plan_changes(root, "loop.py\n```python\nx = 2\n```\n")
    assert not cs.changes and "loop.py" in cs.problems[0].message
    assert "cannot be resolved" in holds(lambda: resolve_in_project(root, "loop.py"), mentions=("loop.py",)).args[0]


def test_a_lone_surrogate_in_new_content_is_refused_at_plan_not_at_apply(tmp_path):
    """apply_changes raised UnicodeEncodeError writing it; now the plan names file and line."""
    cs = plan_changes(_project(tmp_path), "m.py\n```python\nok = 1\nx = '\ud800'\n```\n")
    assert not cs.changes and "m.py" in cs.problems[0].message and "line 2" in cs.problems[0].message
    cs = plan_changes(_project(tmp_path / "2"), "--- a/\ud800.py\n+++ b/\ud800.py\n@@ -1 +1 @@\n-a\n+b\n")
    assert not cs.changes and "surrogate" in cs.problems[0].message


@pytest.mark.parametrize("mutation", ["fifo", "directory", "parent is a file"])
def test_a_target_replaced_by_a_fifo_or_folder_before_apply_is_refused(tmp_path, mutation):
    """apply read the target blindly: a FIFO hung it forever, a folder raised IsADirectoryError."""
    root = _project(tmp_path)
    cs = plan_changes(root, "sub/n.txt\n<<<<<<< SEARCH\ntwo\n=======\nthree\n>>>>>>> REPLACE\n")
    mutate(root, "sub/n.txt", mutation)
    before = tree(tmp_path)
    out = holds(lambda: apply_changes(root, [(cs.changes[0], None)], UndoStore(tmp_path / "undo")),
                mentions=("sub/n.txt",))
    assert isinstance(out, ApplyError) and tree(tmp_path) == before


def test_a_file_of_repeated_lines_diffs_in_linear_time(tmp_path):
    """Without autojunk, 3,000 equal lines made the line diff quadratic (minutes), even unchanged."""
    root = make_project(tmp_path.resolve(), ("}\n" * 20_000).encode())
    t0 = time.monotonic()
    cs = plan_changes(root, "m.py\n```\n" + "}\n" * 19_000 + "x\n" + "}\n" * 999 + "```\n")
    assert time.monotonic() - t0 < 2
    assert [(h.old, h.new) for h in cs.changes[0].hunks] == [(("}",), ("x",))]


def test_a_search_block_that_misses_a_big_file_says_so_quickly(tmp_path):
    """The closest-lines hint diffed the whole block against every window, per character."""
    root = make_project(tmp_path.resolve(), ("z" * 200_000 + "\n" + "def f():\n    return 1\n" * 3000).encode())
    t0 = time.monotonic()
    cs = plan_changes(root, "m.py\n<<<<<<< SEARCH\n" + "y" * 200_000 + "\n=======\nx\n>>>>>>> REPLACE\n")
    assert time.monotonic() - t0 < 2
    assert "does not match" in cs.problems[0].message and len(cs.problems[0].message) < 2000


def test_a_fifo_put_in_place_of_an_applied_file_does_not_block_undo(tmp_path):
    """undo read the files blindly: a FIFO there since the apply would have blocked it forever."""
    from app.core.edits import UndoConflict

    root = _project(tmp_path)
    store = UndoStore(tmp_path / "undo")
    cs = plan_changes(root, "sub/n.txt\n<<<<<<< SEARCH\ntwo\n=======\nthree\n>>>>>>> REPLACE\n")
    record = apply_changes(root, [(cs.changes[0], None)], store)
    original = cs.changes[0].original.raw
    (root / "sub/n.txt").unlink()
    os.mkfifo(root / "sub/n.txt")
    with pytest.raises(UndoConflict, match="sub/n.txt"):
        undo(store, record)
    assert undo(store, record, force=True) == ["sub/n.txt"]
    assert (root / "sub/n.txt").read_bytes() == original


def test_a_path_thousands_of_folders_deep_is_refused_not_created(tmp_path):
    """The long run: "a/a/…/x.py" 2,000 deep was created, and os.walk and rmtree then hit
    Python's recursion limit on the project (the user's own tools would too)."""
    root = _project(tmp_path)
    deep = "a/" * 2000 + "x.py"
    cs = plan_changes(root, f"--- /dev/null\n+++ b/{deep}\n@@ -0,0 +1 @@\n+print(1)\n")
    assert not cs.changes and any("goes 2001 folders deep" in p.message for p in cs.problems)
    assert not (root / "a").exists()


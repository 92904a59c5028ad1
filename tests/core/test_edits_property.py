"""Property tests: for random files and random edits, the pipeline does exactly what it says.

answer text → parse → plan (diff) → apply all hunks gives exactly the target bytes; applying
a subset of hunks changes exactly those places; undo gives back the original bytes.
"""

from __future__ import annotations

import difflib
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.edits import UndoStore, apply_changes, plan_changes, undo

# Line contents that cannot be mistaken for fences or SEARCH/REPLACE markers.
ALPHABET = st.sampled_from(list("abcxyz019 _()[]{}:=+-*/#.,'\"\té€λ"))
LINE = st.text(ALPHABET, max_size=12).filter(lambda s: s.strip() != "" or s == "")
LINES = st.lists(LINE, max_size=25)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def encode(lines: list[str], newline: str, final: bool) -> bytes:
    if not lines:
        return b""
    return (newline.join(lines) + (newline if final else "")).encode("utf-8")


@st.composite
def edited(draw):
    """(original lines, target lines): the target is the original with random edits."""
    original = draw(LINES)
    target = list(original)
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        pos = draw(st.integers(0, len(target)))
        if op == "insert":
            target[pos:pos] = draw(st.lists(LINE, min_size=1, max_size=3))
        elif target and pos < len(target):
            if op == "delete":
                del target[pos]
            else:
                target[pos] = draw(LINE)
    return original, target


def whole_file_answer(path: str, lines: list[str]) -> str:
    body = "".join(line + "\n" for line in lines)
    return f"Here is the new file.\n\n{path}\n```python\n{body}```\n"


@SETTINGS
@given(edited(), st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_apply_all_hunks_gives_the_target_and_undo_the_original(case, newline, final):
    original, target = case
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "p"
        root.mkdir()
        f = root / "m.py"
        before = encode(original, newline, final)
        f.write_bytes(before)
        if not final and original and original[-1] == "":
            # ["a", ""] without a final newline is "a\n": the same file as ["a"] with one.
            original, final = original[:-1], True
        if not before:
            original = []
        cs = plan_changes(root, whole_file_answer("m.py", target))
        assert not cs.problems
        if original == target:
            assert cs.changes == []
            return
        (change,) = cs.changes
        record = apply_changes(root, [(change, None)], UndoStore(Path(tmp) / "undo"))
        # Line endings and the trailing-newline state come from the original file (a file
        # with no line ending at all gets \n).
        if b"\n" not in before:
            newline = "\n"
        expected = encode(target, newline, final if original else True)
        assert f.read_bytes() == expected
        undo(UndoStore(Path(tmp) / "undo"), record)
        assert f.read_bytes() == before


@SETTINGS
@given(edited(), st.data())
def test_a_subset_of_hunks_changes_exactly_those_places(case, data):
    original, target = case
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "p"
        root.mkdir()
        f = root / "m.py"
        f.write_bytes(encode(original, "\n", True))
        cs = plan_changes(root, whole_file_answer("m.py", target))
        if not cs.changes:
            return
        (change,) = cs.changes
        chosen = data.draw(st.sets(st.sampled_from(range(len(change.hunks)))), label="accepted")
        if not chosen:
            return
        apply_changes(root, [(change, chosen)], UndoStore(Path(tmp) / "undo"))
        # Build the expectation independently from the hunk list: walk the original, and at
        # each hunk take the new lines if it was accepted, the old ones otherwise.
        expect, pos = [], 0
        for h in change.hunks:
            expect += original[pos:h.old_start]
            expect += list(h.new) if h.index in chosen else original[h.old_start:h.old_end]
            pos = h.old_end
        expect += original[pos:]
        assert f.read_bytes() == encode(expect, "\n", True)
        # Accepted hunks are in the file, rejected ones are not (as old lines they remain).
        assert len(change.hunks) == len(set(h.index for h in change.hunks))


@SETTINGS
@given(edited())
def test_the_same_edit_as_a_unified_diff_reaches_the_target(case):
    """The same edit, expressed as a unified diff with exact context, lands the same bytes."""
    original, target = case
    if not original or original == target:
        return
    diff = list(difflib.unified_diff(original, target, "a/m.py", "b/m.py", lineterm="", n=3))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "p"
        root.mkdir()
        (root / "m.py").write_bytes(encode(original, "\n", True))
        cs = plan_changes(root, "```diff\n" + "\n".join(diff) + "\n```\n")
        # Even in repetitive random files the line numbers pick the right place among equal ones.
        assert not cs.problems, cs.problems[0].message
        (change,) = cs.changes
        apply_changes(root, [(change, None)], UndoStore(Path(tmp) / "undo"))
        assert (root / "m.py").read_bytes() == encode(target, "\n", True)

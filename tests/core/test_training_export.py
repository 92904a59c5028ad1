"""Export training data from a seeded chat database (a real SQLite file): exactly the expected
examples in chat ``messages`` form, the filters, no key or home path in the file, a split that
is stable and keeps each conversation on one side, the notebook's loader reading the file as it
is, and a failed write that leaves the old file and says why."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from app.core import secrets
from app.core.learn.training_export import (DUPLICATE, NOT_RATED, OTHER_PROJECT, OUTSIDE_DATES, RATED_DOWN, STOPPED,
                                      TOO_SHORT, WEB_ANSWER, ExportError, ExportFilter, export_training_data)
from app.core.storage import Storage
from training.data import normalise, prepare, read_jsonl

KEY = "tvly-planted-key-for-the-export-test-0042"
SYSTEM = "You are Offline Coder."
P1, P2 = "/work/projects/shop", "/work/projects/blog"
HOME = str(Path.home())
FIX_REQUEST = "This code fails:\n```python\ndiv(1, 0)\n```\nZeroDivisionError: division by zero\nFix it."


@pytest.fixture
def memory_keyring(memory_keyring):
    """conftest's in-memory keyring, holding a Tavily key that must never reach an export."""
    secrets.set_key("tavily", KEY)
    return memory_keyring


def u(text):
    return {"role": "user", "content": text}


def a(text):
    return {"role": "assistant", "content": text}


def turn(s: Storage, conv: int, question: str | None, answer: str | None, rating: int = 0, source: str = "user",
         answer_meta: dict | None = None, question_meta: dict | None = None):
    if question is not None:
        s.add_message(conv, "user", question, question_meta)
    if answer is None:
        return None
    m = s.add_message(conv, "assistant", answer, {"finish_reason": "stop", **(answer_meta or {})})
    if rating or source != "user":
        s.rate(m.id, rating, source)
    return m


def seed(s: Storage) -> dict:
    """Nine conversations covering every rule; returns ids the tests refer to."""
    ids = {}
    c1 = s.create_conversation()
    s.set_conversation_project(c1.id, P1)
    turn(s, c1.id, "How do I reverse a list in Python?", "Use xs[::-1] or list(reversed(xs)).", 1)
    turn(s, c1.id, "And sort it?", "Use sorted(xs), which returns a new list.")
    turn(s, c1.id, "Sort it descending?", "sorted(xs, reverse=True) sorts from largest to smallest.", 1)
    ids["c1"] = c1.id

    c2 = s.create_conversation()
    s.set_conversation_project(c2.id, P1)
    turn(s, c2.id, "Read my config file", "Wrong: open it with eval().", -1)
    turn(s, c2.id, "Try again, properly",
         f"Use tomllib. Your key {KEY} must not be in the file; it lives in {HOME}/shop/config.toml "
         "or /home/alice/shop/config.toml, and password = \"hunter2hunter\" too.", 1)
    ids["c2"] = c2.id

    c3 = s.create_conversation()
    s.set_conversation_project(c3.id, P2)
    turn(s, c3.id, "/code add a docstring to add in util.py",
         "util.py\n```python\ndef add(a, b):\n    \"\"\"Sum.\"\"\"\n    return a + b\n```", source="applied")

    c4 = s.create_conversation()
    turn(s, c4.id, "Hi", "Hello!", 1)  # too short

    c5 = s.create_conversation()
    turn(s, c5.id, "/search python walrus", "- [PEP 572](https://peps.python.org/pep-0572/)",
         answer_meta={"tool": "search"})  # a results list: not an answer at all
    turn(s, c5.id, "/web what is new in Python 3.13?", "Python 3.13 adds a new REPL [1].", 1,
         answer_meta={"tool": "web", "sources": ["https://docs.python.org/3.13/whatsnew"]})

    c6 = s.create_conversation()
    turn(s, c6.id, "how do I reverse a list in python?", "Use  xs[::-1] or list(reversed(xs)).", 1)  # duplicate

    c7 = s.create_conversation()
    turn(s, c7.id, "Write a long essay on lists", "Lists are ordered, mutable sequences and", 0,
         answer_meta={"finish_reason": "cancelled"})  # stopped, not rated
    turn(s, c7.id, "Write a short note on tuples", "Tuples are immutable sequences; use them as keys.", 1,
         answer_meta={"finish_reason": "cancelled"})  # stopped, but the user liked it

    c9 = s.create_conversation()
    turn(s, c9.id, "Write a function that divides two numbers", "def div(a, b):\n    return a / b")
    turn(s, c9.id, "/fix", None)
    s.add_message(c9.id, "system", "ZeroDivisionError: division by zero", {"tool": "run", "exit_code": 1})
    turn(s, c9.id, FIX_REQUEST, "def div(a, b):\n    return a / b if b else float('nan')", 1,
         answer_meta={"tool": "fix"}, question_meta={"tool": "fix"})
    s.add_message(c9.id, "system", "Remembered for every project: Tabs", {"tool": "remember"})
    ids["c9"] = c9.id
    return ids


@pytest.fixture
def db(tmp_path, memory_keyring):
    s = Storage(tmp_path / "app.db")
    ids = seed(s)
    yield s, ids
    s.close()


def rows_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def sys_(*messages):
    return [{"role": "system", "content": SYSTEM}, *messages]


def test_the_export_holds_exactly_the_good_answers(db, tmp_path):
    s, _ = db
    out = tmp_path / "exports" / "chats.jsonl"
    report = export_training_data(s, out, ExportFilter(min_chars=10), system_prompt=SYSTEM)
    rows = rows_of(out)
    scrubbed_answer = ("Use tomllib. Your key <secret removed> must not be in the file; it lives in ~/shop/config.toml "
                       "or ~/shop/config.toml, and password = \"<secret removed>\" too.")
    assert [r["messages"] for r in rows] == [
        sys_(u("How do I reverse a list in Python?"), a("Use xs[::-1] or list(reversed(xs)).")),
        sys_(u("How do I reverse a list in Python?"), a("Use xs[::-1] or list(reversed(xs))."),
             u("And sort it?"), a("Use sorted(xs), which returns a new list."),
             u("Sort it descending?"), a("sorted(xs, reverse=True) sorts from largest to smallest.")),
        # the answer rated down and its question are not in the context
        sys_(u("Try again, properly"), a(scrubbed_answer)),
        # an applied change: the request without /code
        sys_(u("add a docstring to add in util.py"),
             a("util.py\n```python\ndef add(a, b):\n    \"\"\"Sum.\"\"\"\n    return a + b\n```")),
        sys_(u("Write a short note on tuples"), a("Tuples are immutable sequences; use them as keys.")),
        # /fix: the command, sandbox output and /remember notes are not turns; the real error is
        sys_(u("Write a function that divides two numbers"), a("def div(a, b):\n    return a / b"),
             u(FIX_REQUEST), a("def div(a, b):\n    return a / b if b else float('nan')")),
    ]
    assert [r["source"] for r in rows] == ["rated", "rated", "rated", "applied", "rated", "rated"]
    assert all(set(r) == {"messages", "split", "source"} and r["split"] in ("train", "valid") for r in rows)
    assert (report.written, report.train + report.valid) == (6, 6)
    assert report.train == sum(r["split"] == "train" for r in rows) and report.valid >= 1 and report.train >= 1
    assert report.skipped == {NOT_RATED: 3, RATED_DOWN: 1, TOO_SHORT: 1, WEB_ANSWER: 1, DUPLICATE: 1}
    assert report.sources == {"rated": 5, "applied": 1}
    assert report.summary() == (f"Wrote 6 examples ({report.train} train / {report.valid} validation) to {out}; "
                                "skipped 7: 3 not rated, 1 rated down, 1 web answer (the pages it read are not kept), "
                                "1 too short, 1 duplicate.")
    text = out.read_text(encoding="utf-8")
    assert KEY not in text and HOME + "/" not in text and "/home/alice" not in text and "hunter2" not in text


def test_filters(db, tmp_path):
    s, ids = db
    out = tmp_path / "all.jsonl"
    r = export_training_data(s, out, ExportFilter(only_rated=False))
    assert r.written == 9 and r.skipped == {RATED_DOWN: 1, WEB_ANSWER: 1, DUPLICATE: 1, STOPPED: 1}
    assert sorted(r.sources.items()) == [("applied", 1), ("rated", 6), ("unrated", 2)]
    assert all(m["role"] != "system" for row in rows_of(out) for m in row["messages"])  # no system prompt given

    r = export_training_data(s, out, ExportFilter(project=P1))
    assert r.written == 3 and r.skipped == {NOT_RATED: 1, RATED_DOWN: 1, OTHER_PROJECT: 8}
    contents = {m["content"] for row in rows_of(out) for m in row["messages"]}
    assert {"Try again, properly", "Sort it descending?"} <= contents

    # Dates: conversation 1 moved to last year; the day filter is inclusive at both ends.
    con = sqlite3.connect(s.path)
    year_ago = time.time() - 365 * 86400
    con.execute("UPDATE messages SET created = ? WHERE conversation_id = ?", (year_ago, ids["c1"]))
    con.commit()
    con.close()
    today = date.today()
    r = export_training_data(s, out, ExportFilter(since=today, until=today, min_chars=10))
    assert r.written == 5 and r.skipped[OUTSIDE_DATES] == 3
    assert DUPLICATE not in r.skipped  # conversation 6's copy of the first answer is the only one now
    old_day = date.fromtimestamp(year_ago)
    r = export_training_data(s, out, ExportFilter(since=old_day - timedelta(days=1), until=old_day))
    assert r.written == 2 and "How do I reverse a list in Python?" in out.read_text()


def test_the_split_is_stable_and_keeps_conversations_together(db, tmp_path):
    s, ids = db
    first, second = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    export_training_data(s, first, ExportFilter(only_rated=False))
    export_training_data(s, second, ExportFilter(only_rated=False))
    assert first.read_bytes() == second.read_bytes()
    rows = rows_of(first)
    # conversation 1's three examples all start with the same question: one side for all
    sides = {r["split"] for r in rows if r["messages"][0]["content"] == "How do I reverse a list in Python?"}
    assert len(sides) == 1
    assert {r["split"] for r in rows} == {"train", "valid"}

    # A new conversation does not move the old ones (their split is a hash of the conversation).
    c = s.create_conversation()
    turn(s, c.id, "What is a generator?", "A function that yields values lazily, one at a time.", 1)
    third = tmp_path / "three.jsonl"
    export_training_data(s, third, ExportFilter(only_rated=False))
    again = {json.dumps(r["messages"]): r["split"] for r in rows_of(third)}
    moved = [r for r in rows if again[json.dumps(r["messages"])] != r["split"]]
    assert len(moved) <= sum(1 for r in rows if r["split"] == "valid")  # at most the group forced to valid


def test_the_notebooks_loader_reads_the_file_as_it_is(db, tmp_path):
    s, _ = db
    out = tmp_path / "chats.jsonl"
    report = export_training_data(s, out, ExportFilter(only_rated=False), system_prompt=SYSTEM)
    rows = read_jsonl(out)
    normalised = normalise("my_chats", rows)
    assert None not in normalised and len(normalised) == report.written
    assert [n["messages"] for n in normalised] == [r["messages"] for r in rows]
    data = prepare({"my_chats": normalised}, seed=3)
    assert (data.summary["train"], data.summary["eval"]) == (report.train, report.valid)
    assert data.summary["split_from_file"] == report.written and data.summary["duplicates"] == 0
    valid = sorted(json.dumps(r["messages"]) for r in rows if r["split"] == "valid")
    assert sorted(json.dumps(r["messages"]) for r in data.eval) == valid


def test_a_path_that_is_a_folder_is_refused(db, tmp_path):
    s, _ = db
    with pytest.raises(ExportError, match="is a folder; choose a file name"):
        export_training_data(s, tmp_path)


def test_a_full_disk_keeps_the_previous_file(db, tmpfs):
    s, _ = db
    disk = tmpfs("64k")
    out = disk / "chats.jsonl"
    out.write_text("the previous export\n")
    c = s.create_conversation()
    turn(s, c.id, "Write a big table", "| n | n² |\n" + "".join(f"| {i} | {i * i} |\n" for i in range(8000)), 1)
    with pytest.raises(ExportError, match="Could not write .*No space left on device. The previous file is unchanged."):
        export_training_data(s, out)
    assert out.read_text() == "the previous export\n"
    assert [p.name for p in disk.iterdir()] == ["chats.jsonl"]  # no temporary left behind


def test_nothing_to_export_says_why_and_writes_nothing(tmp_path, memory_keyring):
    s = Storage(tmp_path / "app.db")
    out = tmp_path / "chats.jsonl"
    with pytest.raises(ExportError, match=r"Nothing to export \(there are no answers yet\)"):
        export_training_data(s, out)
    c = s.create_conversation()
    turn(s, c.id, "Q1?", "Answer one.")
    turn(s, c.id, "Q2?", "Answer two.", -1)
    with pytest.raises(ExportError, match=r"\(1 rated down, 1 not rated\). Rate good answers 👍 Good"):
        export_training_data(s, out)
    assert not out.exists()
    s.close()


def test_the_command_line_exports_with_the_same_rules(tmp_path, memory_keyring):
    from app.core.paths import app_paths

    home = tmp_path / "home"
    s = Storage(app_paths(home).database)
    seed(s)
    s.close()
    out = tmp_path / "cli.jsonl"

    def run(*args):
        return subprocess.run([sys.executable, "-m", "app", "--home", str(home), "export-chats", *args],
                              capture_output=True, text=True, timeout=120)

    r = run(str(out), "--min-chars", "10")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Wrote 6 examples (") and "3 not rated" in r.stdout
    assert len(rows_of(out)) == 6 and rows_of(out)[0]["messages"][0]["role"] == "system"  # the app's prompt
    r = run(str(out), "--all", "--project", P1)
    assert r.returncode == 0 and r.stdout.startswith("Wrote 4 examples") and "8 other project" in r.stdout
    r = run(str(out), "--since", "yesterday")
    assert r.returncode == 2 and "YYYY-MM-DD" in r.stderr
    r = run(str(tmp_path))
    assert r.returncode == 1 and "is a folder" in r.stderr


def test_accepted_edits_feed_the_project_training_set(db, tmp_path):
    """Issue #11's "plus the user's accepted edits": the applied answer of that project only,
    then written by the project set beside its own pairs."""
    from app.core.learn.dataset import Scrubber
    from app.core.learn.project_set import build_project_set
    from app.core.learn.training_export import accepted_edits

    s, _ = db
    edits = accepted_edits(s, P2, Scrubber())
    assert [e.source for e in edits] == ["applied"]
    assert edits[0].messages[-2]["content"] == "add a docstring to add in util.py"
    assert accepted_edits(s, P1, Scrubber()) == []
    project = tmp_path / "blog"
    project.mkdir()
    (project / "util.py").write_text('def add(a, b):\n    """Sum two numbers."""\n    return a + b\n')
    built = build_project_set(project, extra=edits)
    assert any(e.source == "applied" for e in built.examples)

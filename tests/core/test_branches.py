"""Conversations as a tree, in the real SQLite file: a version 2 database migrated into branches
(and search), regenerate and edit keeping the earlier versions, the branch on show being what
later prompts and the training export read, answers saved while they are written (and after a
SIGKILL). The list (search, pins, deletes, Markdown export): test_chat_list.py."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from app.core.chat.service import SAVE_EVERY_S, CannotRegenerate, ChatService, EmptyQuestion, history_as_sent
from app.core.engine import GenerationResult
from app.core.learn.training_export import ExportFilter, collect_examples
from app.core.settings import Settings
from app.core.storage import ChatGoneError, Storage

ROOT = Path(__file__).resolve().parents[2]

# The schema as version 2 of the app left it (copied, not imported: the test must keep
# describing the old file when the migrations change), with chats written in turns.
V2_DATABASE = """
CREATE TABLE conversations (id INTEGER PRIMARY KEY, title TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL,
    project TEXT);
CREATE TABLE messages (id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content TEXT NOT NULL, created REAL NOT NULL, meta TEXT NOT NULL DEFAULT '{}');
CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
CREATE TABLE ratings (message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    source TEXT NOT NULL CHECK (source IN ('user', 'applied', 'rejected')),
    value INTEGER NOT NULL CHECK (value IN (-1, 1)), created REAL NOT NULL, PRIMARY KEY (message_id, source));
CREATE TABLE rules (id INTEGER PRIMARY KEY, text TEXT NOT NULL CHECK (length(trim(text)) > 0), project TEXT,
    created REAL NOT NULL, updated REAL NOT NULL);
CREATE INDEX rules_by_project ON rules(project, updated);
INSERT INTO conversations VALUES (1, 'Reverse a list', 1000.0, 1005.0, '/work/shop');
INSERT INTO conversations VALUES (2, 'Café orders', 1001.0, 1004.0, NULL);
INSERT INTO messages VALUES (1, 1, 'user', 'How do I reverse a list?', 1000.0, '{}');
INSERT INTO messages VALUES (2, 2, 'user', 'Sum the café orders', 1001.0, '{}');
INSERT INTO messages VALUES (3, 1, 'assistant', 'Use xs[::-1].', 1002.0, '{"asked_as": "code\\n\\nHow do I reverse a list?"}');
INSERT INTO messages VALUES (4, 2, 'assistant', 'sum(o.total for o in orders)', 1003.0, '{}');
INSERT INTO messages VALUES (5, 2, 'system', 'Offline is on.', 1004.0, '{"tool": "network"}');
INSERT INTO messages VALUES (6, 1, 'user', 'And in place?', 1005.0, '{}');
INSERT INTO ratings VALUES (3, 'user', 1, 1003.0);
INSERT INTO rules VALUES (1, 'Use pytest', NULL, 1000.0, 1000.0);
PRAGMA user_version = 2;
"""


def answered(result_text="an answer", reason="stop"):
    return GenerationResult(result_text, 20, 5, 0.1, 0.5, reason, 5)


def turn(chat: ChatService, cid: int, question: str, answer: str):
    pending = chat.ask(cid, question)
    return pending, chat.finish(pending, answered(answer), "starter")


def shown(s: Storage, cid: int) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in s.messages(cid)]


@pytest.fixture
def chat(tmp_path):
    s = Storage(tmp_path / "app.db")
    yield ChatService(s, Settings())
    s.close()


# ---- migration --------------------------------------------------------------------------------

def test_a_version_2_database_file_becomes_one_branch_per_chat_and_is_searchable(tmp_path):
    db = tmp_path / "app.db"
    old = sqlite3.connect(db)
    old.executescript(V2_DATABASE)
    old.close()

    s = Storage(db)
    assert s.schema_version() == 3
    assert shown(s, 1) == [("user", "How do I reverse a list?"), ("assistant", "Use xs[::-1]."),
                           ("user", "And in place?")]
    assert shown(s, 2) == [("user", "Sum the café orders"), ("assistant", "sum(o.total for o in orders)"),
                           ("system", "Offline is on.")]
    assert [m.parent_id for m in s.messages(1)] == [None, 1, 3]  # filled from the order they were written
    assert s.versions(1) == {} and s.siblings(3).count == 1
    assert s.rating(3).value == 1 and [r.text for r in s.rules()] == ["Use pytest"]
    assert s.conversation(1).project == "/work/shop" and not s.conversation(1).pinned
    # The search index was built from the old rows: text, titles, accents folded, prefixes.
    assert [c.id for c in s.search_conversations("xs")] == [1]
    assert [c.id for c in s.search_conversations("cafe")] == [2]
    assert [c.id for c in s.search_conversations("ORDER")] == [2]
    # Prompts keep reading the old turns as they were sent.
    history, _ = history_as_sent(s.messages(1))
    assert history[0]["content"] == "code\n\nHow do I reverse a list?"
    m = s.add_message(1, "assistant", "xs.reverse()")  # new messages go on the old branch
    assert m.parent_id == 6 and s.messages(1)[-1].id == m.id
    s.close()
    s = Storage(db)  # opened again: nothing migrates twice, everything is there
    assert s.schema_version() == 3 and len(s.messages(1)) == 4 and [c.id for c in s.search_conversations("cafe")] == [2]
    s.close()
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# ---- regenerate, versions, edit --------------------------------------------------------------

def test_regenerate_keeps_every_answer_and_later_turns_build_on_the_one_on_show(chat):
    s = chat.storage
    cid = s.create_conversation().id
    q1, a1 = turn(chat, cid, "How do I sort a dict?", "sorted(d.items())")
    s.update_message(a1.id, a1.content, {**a1.meta, "asked_as": "code\n\nHow do I sort a dict?"})

    pending = chat.regenerate(a1.id)
    assert pending.history == [{"role": "user", "content": "How do I sort a dict?"}]  # the question, asked again
    assert pending.question.id == q1.question.id and pending.answer_parent == q1.question.id
    a2 = chat.finish(pending, answered("dict(sorted(d.items(), key=lambda kv: kv[1]))"), "starter")
    assert a2.parent_id == a1.parent_id
    assert (s.siblings(a2.id).index, s.siblings(a2.id).count) == (2, 2)
    assert shown(s, cid)[-1] == ("assistant", "dict(sorted(d.items(), key=lambda kv: kv[1]))")

    s.show_branch(a1.id)  # ◀: the first answer is on show again
    assert [m.id for m in s.messages(cid)] == [q1.question.id, a1.id]
    follow = chat.ask(cid, "By value?")
    # The follow-up is built on the answer on show, the question as it was sent with it.
    assert follow.history == [{"role": "user", "content": "code\n\nHow do I sort a dict?"},
                              {"role": "assistant", "content": "sorted(d.items())"},
                              {"role": "user", "content": "By value?"}]
    a3 = chat.finish(follow, answered("key=lambda kv: kv[1]"), "starter")
    assert s.versions(cid)[a1.id].index == 1 and s.versions(cid)[a1.id].count == 2

    s.show_branch(a2.id)  # ▶: the second answer; the follow-up lives on the first one's branch
    assert [m.id for m in s.messages(cid)] == [q1.question.id, a2.id]
    s.show_branch(a1.id)  # back: down to the end of that branch
    assert [m.id for m in s.messages(cid)] == [q1.question.id, a1.id, follow.question.id, a3.id]
    assert len(s.all_messages(cid)) == 5


def test_editing_a_question_branches_there_and_the_old_branch_stays_reachable(chat):
    s = chat.storage
    cid = s.create_conversation().id
    p1, a1 = turn(chat, cid, "Write fizzbuzz", "for i in range(1, 101): ...")
    p2, a2 = turn(chat, cid, "Now in Rust", "fn main() { ... }")

    edited = chat.edit(p2.question.id, "  Now in Go  ")
    assert edited.question.content == "Now in Go" and edited.question.parent_id == a1.id
    assert edited.history[-1] == {"role": "user", "content": "Now in Go"} and len(edited.history) == 3
    a2b = chat.finish(edited, answered("func main() { ... }"), "starter")
    assert shown(s, cid)[2:] == [("user", "Now in Go"), ("assistant", "func main() { ... }")]
    v = s.versions(cid)[edited.question.id]
    assert (v.index, v.count, v.step(-1), v.step(1)) == (2, 2, p2.question.id, None)
    s.show_branch(v.step(-1))
    assert [m.id for m in s.messages(cid)] == [p1.question.id, a1.id, p2.question.id, a2.id]
    assert a2b.id not in {m.id for m in s.messages(cid)}

    # The first question edited: the title, made from it, follows.
    assert s.conversation(cid).title == "Write fizzbuzz"
    chat.edit(p1.question.id, "Write fizzbuzz in Python 3")
    assert s.conversation(cid).title == "Write fizzbuzz in Python 3"
    assert shown(s, cid) == [("user", "Write fizzbuzz in Python 3")]


def test_bad_input_to_branches_is_a_message_and_writes_nothing(chat):
    s = chat.storage
    cid = s.create_conversation().id
    p, a = turn(chat, cid, "Explain decorators", "A decorator wraps a function.")
    search = s.add_message(cid, "assistant", "1. [a](https://a.example)", {"tool": "search"})
    before = len(s.all_messages(cid))

    with pytest.raises(EmptyQuestion):
        chat.edit(p.question.id, "   ")
    with pytest.raises(CannotRegenerate, match="Only an answer"):
        chat.regenerate(p.question.id)
    with pytest.raises(CannotRegenerate):
        chat.regenerate(search.id)
    orphan = s.add_message(cid, "assistant", "an answer with no question", parent_id=None)
    with pytest.raises(CannotRegenerate, match="no question before it"):
        chat.regenerate(orphan.id)
    assert len(s.all_messages(cid)) == before + 1

    s.delete_conversation(cid)  # meanwhile, the conversation is deleted
    with pytest.raises(ChatGoneError, match="was deleted"):
        chat.edit(p.question.id, "Explain class decorators")
    with pytest.raises(ChatGoneError):
        chat.regenerate(a.id)
    with pytest.raises(ChatGoneError):
        s.add_message(cid, "user", "into a deleted chat")  # was a bare sqlite3.IntegrityError
    with pytest.raises(ChatGoneError):
        s.show_branch(a.id)
    with pytest.raises(ChatGoneError):
        s.update_message(a.id, "late tokens", {"unfinished": True})
    other = s.create_conversation().id
    with pytest.raises(ChatGoneError, match="no longer exists in that conversation"):
        s.add_message(other, "assistant", "under another chat's message", parent_id=a.id)
    assert s._db.execute("SELECT count(*) FROM messages").fetchone()[0] == 0
    assert s.siblings(a.id) is None and s.messages(cid) == []


# ---- answers saved while written ---------------------------------------------------------------

def test_the_answer_is_saved_as_it_grows_at_most_every_two_seconds_then_completed_in_place(chat, tmp_path):
    s = chat.storage
    cid = s.create_conversation().id
    pending = chat.ask(cid, "Explain generators")
    assert not chat.keep_partial(pending, "   ", now=100.0)  # nothing worth keeping yet
    assert chat.keep_partial(pending, "A generator", now=100.0)  # the first text at once
    row = pending.answer.id
    other = sqlite3.connect(tmp_path / "app.db")  # what a crash now would leave
    assert other.execute("SELECT content, meta FROM messages WHERE id = ?", (row,)).fetchone() == (
        "A generator", json.dumps({"unfinished": True}))
    assert not chat.keep_partial(pending, "A generator yields", now=100.0 + SAVE_EVERY_S - 0.1)
    assert chat.keep_partial(pending, "A generator yields values", now=100.0 + SAVE_EVERY_S)
    assert other.execute("SELECT content FROM messages WHERE id = ?", (row,)).fetchone() == ("A generator yields values",)
    assert [c.id for c in s.search_conversations("yields")] == [cid]  # the search follows the updates

    stored = chat.finish(pending, answered("A generator yields values lazily.", "cancelled"), "starter")
    assert stored.id == row and "unfinished" not in stored.meta and stored.meta["finish_reason"] == "cancelled"
    assert shown(s, cid) == [("user", "Explain generators"), ("assistant", "A generator yields values lazily.")]
    assert not chat.keep_partial(pending, "A gen", now=1e9)  # a late token cannot undo the end
    assert s.message(row).content == "A generator yields values lazily." and "unfinished" not in s.message(row).meta
    other.close()


def test_a_regenerated_answer_saved_while_written_goes_beside_the_old_one(chat):
    s = chat.storage
    cid = s.create_conversation().id
    _, a1 = turn(chat, cid, "What is a closure?", "A function with its scope.")
    pending = chat.regenerate(a1.id)
    chat.keep_partial(pending, "A closure", now=5.0)
    assert pending.answer.parent_id == a1.parent_id and s.messages(cid)[-1].id == pending.answer.id
    a2 = chat.finish(pending, answered("A closure keeps the variables it uses."), "starter")
    assert a2.id == pending.answer.id and s.siblings(a2.id).ids == (a1.id, a2.id)


def test_a_partial_answer_is_exported_for_training_only_when_the_user_rated_it(chat):
    s = chat.storage
    cid = s.create_conversation().id
    pending = chat.ask(cid, "How do I read a file line by line in Python?")
    chat.keep_partial(pending, "Use `for line in open(path):` and strip each line.", now=0.0)
    s.rate(pending.answer.id, 1, "applied")  # an implicit signal does not vouch for half an answer
    examples, skipped = collect_examples(s, ExportFilter(only_rated=True), lambda t: t)
    assert examples == [] and skipped == {"stopped before the end": 1}
    s.rate(pending.answer.id, 1)  # the user's thumbs do
    examples, _ = collect_examples(s, ExportFilter(only_rated=True), lambda t: t)
    assert len(examples) == 1


def test_the_training_export_takes_the_version_on_show(chat):
    s = chat.storage
    cid = s.create_conversation().id
    _, a1 = turn(chat, cid, "How do I reverse a list in Python?", "Use xs[::-1] to get a reversed copy.")
    a2 = chat.finish(chat.regenerate(a1.id), answered("Call xs.reverse() to reverse it in place."), "starter")
    for a in (a1, a2):
        s.rate(a.id, 1)

    def exported() -> list[str]:
        examples, _ = collect_examples(s, ExportFilter(only_rated=True), lambda t: t)
        return [e.messages[-1]["content"] for e in examples]

    assert exported() == ["Call xs.reverse() to reverse it in place."]
    s.show_branch(a1.id)
    assert exported() == ["Use xs[::-1] to get a reversed copy."]


CRASH_CHILD = r"""
import sys, time
from app.core.chat.service import ChatService
from app.core.engine import Engine, EngineConfig
from app.core.models.embedded import starter_model
from app.core.settings import Settings
from app.core.storage import Storage
s = Storage(sys.argv[1])
chat = ChatService(s, Settings())
engine = Engine(starter_model().path, EngineConfig(n_ctx=2048))
params = chat.params()
params.max_tokens, params.temperature = 1500, 0.8
cid = s.create_conversation().id
print("conv", cid, flush=True)
saves = {}
for attempt in range(6):
    pending = chat.ask(cid, "Write a long, detailed tutorial about Python classes with many code examples.")
    text = []
    def on_token(t):
        text.append(t)
        if chat.keep_partial(pending, "".join(text)):
            n = saves[pending.answer.id] = saves.get(pending.answer.id, 0) + 1
            print("saved", pending.answer.id, len("".join(text)), flush=True)
            if n == 2:
                time.sleep(120)  # killed here, mid-answer
    result = engine.chat(chat.prompt(engine, pending), params, on_token=on_token)
    chat.finish(pending, result, "starter")
print("never killed", flush=True)
"""


def test_a_partial_answer_survives_sigkill_mid_answer_and_can_be_regenerated(tmp_path):
    db = tmp_path / "app.db"
    p = subprocess.Popen([sys.executable, "-c", CRASH_CHILD, str(db)], cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(180, p.kill)  # a hung child must not hang the suite
    watchdog.start()
    reports: list[list[str]] = []
    saves: dict[str, int] = {}  # answer id -> saves reported (each printed after its commit)
    try:
        while max(saves.values(), default=0) < 2:
            line = p.stdout.readline()
            if not line:
                pytest.fail(f"the child ended early: {p.wait()} {p.stderr.read()[-2000:]}")
            reports.append(line.split())
            if reports[-1][0] == "saved":
                saves[reports[-1][1]] = saves.get(reports[-1][1], 0) + 1
        p.send_signal(signal.SIGKILL)
        p.communicate()
    finally:
        watchdog.cancel()
    assert p.returncode == -signal.SIGKILL
    cid = int(reports[0][1])
    mid, length = int(reports[-1][1]), int(reports[-1][2])
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    s = Storage(db)
    try:
        answer = s.messages(cid)[-1]
        assert answer.id == mid and answer.role == "assistant"
        assert len(answer.content) == length and length > 0  # as far as the last save, not lost
        assert answer.meta.get("unfinished") is True  # shown as interrupted
        assert s.messages(cid)[-2].role == "user"
        pending = ChatService(s, Settings()).regenerate(answer.id)  # and it can be asked again
        assert pending.answer_parent == answer.parent_id and pending.history[-1]["role"] == "user"
    finally:
        s.close()

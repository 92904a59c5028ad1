"""Feedback in core: ratings and rules in the real SQLite file (migrated from a version 1
database), /remember routing, rules in the prompts ChatService builds for the real starter
model (within their budget), and the shared training-data exit (scrubbing, de-duplication,
a stable split by group)."""

from __future__ import annotations

import sqlite3

import pytest

from app.core import secrets
from app.core.chat.service import ChatService
from app.core.learn.dataset import (SECRET_MARK, Example, Scrubber, assign_splits, dedup_key, split_of, unique,
                              write_jsonl)
from app.core.edits.prompt import EDIT_INSTRUCTIONS, EditRequest
from app.core.engine import GenerationResult
from app.core.chat.intent import Intent, route
from app.core.chat.rules import MAX_RULE_CHARS, RULES_HEADER, RULES_SHARE, fit_rules, parse_remember
from app.core.settings import Settings
from app.core.storage import Rating, Storage

# The schema as version 1 of the app created it (copied, not imported: the test must keep
# describing the old file even when the migrations list grows).
V1_SCHEMA = """
CREATE TABLE conversations (id INTEGER PRIMARY KEY, title TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content TEXT NOT NULL, created REAL NOT NULL, meta TEXT NOT NULL DEFAULT '{}');
CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
INSERT INTO conversations VALUES (1, 'Old chat', 1000.0, 1001.0);
INSERT INTO messages VALUES (1, 1, 'user', 'How do I reverse a list?', 1000.0, '{}');
INSERT INTO messages VALUES (2, 1, 'assistant', 'Use xs[::-1].', 1001.0, '{"model": "starter"}');
PRAGMA user_version = 1;
"""


def chat_with_answer(s: Storage, q="How do I sort?", a="Use sorted(xs)."):
    c = s.create_conversation()
    s.add_message(c.id, "user", q)
    return c, s.add_message(c.id, "assistant", a)


# ---- storage: migration, ratings, rules ---------------------------------------------------------

def test_a_version_1_database_is_migrated_and_keeps_its_chats(tmp_path):
    db = tmp_path / "app.db"
    old = sqlite3.connect(db)
    old.executescript(V1_SCHEMA)
    old.close()

    s = Storage(db)
    assert s._db.execute("PRAGMA user_version").fetchone()[0] == 3  # v1 → v2 (feedback) → v3 (branches, pins, search)
    [conv] = s.conversations()
    assert (conv.id, conv.title, conv.project) == (1, "Old chat", None)
    assert [(m.role, m.content, m.meta) for m in s.messages(1)] == [
        ("user", "How do I reverse a list?", {}), ("assistant", "Use xs[::-1].", {"model": "starter"})]
    assert s.rate(2, 1) == Rating(user=1)  # the new tables work on the old rows
    s.close()
    s = Storage(db)  # opening again migrates nothing and keeps everything
    assert s.rating(2).value == 1 and len(s.messages(1)) == 2
    s.close()


def test_ratings_persist_and_the_users_thumbs_win_over_applied_or_discarded(tmp_path):
    db = tmp_path / "app.db"
    s = Storage(db)
    c, a = chat_with_answer(s)
    _, b = chat_with_answer(s, "Q2", "A2")
    assert s.rate(a.id, 1) == Rating(user=1, implicit=0)
    assert s.rate(b.id, 0, "applied") == Rating(user=0, implicit=1)
    s.close()

    s = Storage(db)
    assert s.ratings(c.id) == {a.id: Rating(1, 0)}
    r = s.rating(b.id)
    assert (r.value, r.source) == (1, "applied")
    r = s.rate(b.id, -1)  # the user knows better than the click on Apply
    assert (r.value, r.source) == (-1, "user")
    r = s.rate(b.id, 0)  # taking the thumbs back falls back to the implicit signal
    assert (r.value, r.source) == (1, "applied")
    r = s.rate(b.id, 0, "rejected")  # one implicit signal per answer: the newest
    assert r == Rating(0, -1) and r.source == "rejected"
    assert s.rate(a.id, 0) == Rating() and s.rating(a.id).source == ""

    question = s.messages(c.id)[0]
    with pytest.raises(ValueError, match="Only answers can be rated"):
        s.rate(question.id, 1)
    with pytest.raises(ValueError, match=r"\+1, -1 or 0"):
        s.rate(a.id, 5)
    s.delete_conversation(b.conversation_id)
    assert s._db.execute("SELECT count(*) FROM ratings WHERE message_id = ?", (b.id,)).fetchone()[0] == 0
    with pytest.raises(ValueError, match="no longer exists"):
        s.rate(b.id, 1)
    s.close()


def test_rules_persist_with_their_scope_newest_first(tmp_path):
    db = tmp_path / "app.db"
    proj, other = tmp_path / "proj", tmp_path / "other"
    s = Storage(db)
    g = s.add_rule("  Use pytest,\n not unittest  ")
    p = s.add_rule("Always use TypeScript", proj)
    o = s.add_rule("Tabs, not spaces", other)
    assert g.text == "Use pytest, not unittest" and g.project is None and p.project == str(proj)
    s.close()

    s = Storage(db)
    assert [r.text for r in s.rules()] == ["Tabs, not spaces", "Always use TypeScript", "Use pytest, not unittest"]
    assert [r.id for r in s.active_rules(proj)] == [p.id, g.id]
    assert [r.id for r in s.active_rules(None)] == [g.id]
    again = s.add_rule("use PYTEST, not   unittest")  # the same rule is not stored twice...
    assert again.id == g.id and s.active_rules(None)[0].id == g.id  # ...it becomes the newest
    assert len(s.rules()) == 3

    edited = s.update_rule(p.id, "Always use TypeScript with strict mode")
    assert edited.text.endswith("strict mode") and edited.project == str(proj)
    assert s.update_rule(o.id, project=None).project is None  # now for every project
    assert o.id in [r.id for r in s.active_rules(proj)]
    with pytest.raises(ValueError, match="needs some text"):
        s.update_rule(p.id, "   ")
    assert s.rule(p.id).text.endswith("strict mode")  # a refused edit changes nothing
    with pytest.raises(ValueError, match=f"under {MAX_RULE_CHARS}"):
        s.add_rule("x" * (MAX_RULE_CHARS + 1))
    s.remove_rule(p.id)
    s.close()
    s = Storage(db)
    assert s.rule(p.id) is None and len(s.rules()) == 2
    with pytest.raises(ValueError, match="no longer exists"):
        s.update_rule(p.id, "back")
    s.close()


# ---- /remember ------------------------------------------------------------------------------------

def test_remember_is_a_command_and_the_sentence_is_not():
    assert route("/remember Use pytest, not unittest") == Intent("remember", "Use pytest, not unittest")
    assert route("/REMEMBER --project Always use TypeScript").kind == "remember"
    assert route("remember to use tabs in this file").kind == "chat"
    assert route("Do you remember what I said?").kind == "chat"
    assert parse_remember("Use pytest") == ("Use pytest", False)
    assert parse_remember("--project  Always use TypeScript") == ("Always use TypeScript", True)
    assert parse_remember("-p Tabs") == ("Tabs", True)
    assert parse_remember("--global Tabs") == ("Tabs", False)
    assert parse_remember("--projects are nice") == ("--projects are nice", False)  # not the flag
    for empty in ("", "   ", "--project", "-p  "):
        with pytest.raises(ValueError, match="/remember Use pytest"):
            parse_remember(empty)


def test_fit_rules_keeps_the_newest_that_fit():
    words = lambda text: len(text.split())  # noqa: E731 - a counter the test can reason about
    header = len(RULES_HEADER.split())
    rules = ["newest rule here", "a much longer rule " * 5, "old one", "oldest rule of all"]
    block, left = fit_rules(rules, header + 4 + 3, words)  # "- newest rule here" is 4 words, "- old one" 3
    assert block == f"{RULES_HEADER}\n- newest rule here\n- old one"
    assert left == 2
    assert fit_rules([], 100, words) == ("", 0)
    assert fit_rules(["x"], 1, words) == ("", 1)


# ---- rules in the prompt (the real model's tokenizer) -----------------------------------------------

@pytest.fixture
def chat(tmp_path):
    s = Storage(tmp_path / "app.db")
    yield ChatService(s, Settings())
    s.close()


def system_of(messages) -> str:
    assert messages[0]["role"] == "system"
    return messages[0]["content"]


def test_a_rule_is_in_every_prompt_until_removed(chat, engine, tmp_path):
    s = chat.storage
    proj, other = tmp_path / "proj", tmp_path / "other"
    proj.mkdir()
    other.mkdir()
    (proj / "util.py").write_text("def add(a, b):\n    return a + b\n")
    g = s.add_rule("Use pytest, not unittest")
    s.add_rule("Always use TypeScript", proj)
    c = s.create_conversation()

    system = system_of(chat.prompt(engine, chat.ask(c.id, "How do I test a function?")))
    assert system.startswith(chat.settings.system_prompt)
    assert f"{RULES_HEADER}\n- Use pytest, not unittest" in system
    assert "TypeScript" not in system  # another project's rule
    assert s.conversation(c.id).project is None

    chat.project = proj
    pending = chat.ask(c.id, "And how do I run the tests?")
    system = system_of(chat.prompt(engine, pending))
    assert "- Always use TypeScript\n- Use pytest, not unittest" in system  # newest first
    assert pending.messages[0]["content"] == system and pending.messages[-1]["content"] == "And how do I run the tests?"
    assert s.conversation(c.id).project == str(proj)

    # A /code request: the rules, then the edit instructions; the file goes with the request.
    request = "add a docstring to add in util.py"
    edit = chat.ask(c.id, f"/code {request}", EditRequest(proj, request))
    messages = chat.prompt(engine, edit)
    system = system_of(messages)
    assert system.index("- Use pytest") < system.index(EDIT_INSTRUCTIONS[:40])
    assert edit.files_shown == ["util.py"] and "def add(a, b)" in messages[-1]["content"]
    # A /web answer: the rules in the system prompt; the pages' text comes with the question.
    web = chat.ask(c.id, "/web what is new in pytest 9?")
    web.web = "[1] pytest 9 — https://example.org/pytest9\nThe text of the page."
    messages = chat.prompt(engine, web)
    assert "- Use pytest" in system_of(messages) and "The text of the page." not in system_of(messages)
    assert messages[-1]["content"].startswith(web.web) and messages[-1]["content"].endswith("pytest 9?")
    # /fix builds its prompt from base_system.
    fix_system, left = chat.base_system(engine, chat.rules_now(), 1000)
    assert "- Always use TypeScript" in fix_system and left == 0

    chat.project = other
    assert "TypeScript" not in system_of(chat.prompt(engine, chat.ask(c.id, "Q?")))

    s.remove_rule(g.id)
    chat.project = None
    system = system_of(chat.prompt(engine, chat.ask(c.id, "Which test runner?")))
    assert system == chat.settings.system_prompt and "pytest" not in system and RULES_HEADER not in system


def test_rules_stay_within_their_share_of_the_prompt(chat, engine):
    s = chat.storage
    for i in range(40):
        s.add_rule(f"Rule number {i}: " + "always write very careful and well documented code " * 3)
    c = s.create_conversation()
    pending = chat.ask(c.id, "Write hello world.")
    system = system_of(chat.prompt(engine, pending))
    budget = engine.n_ctx - 1024  # answer_reserve(2048, 2048) is half the context
    block = system[system.index(RULES_HEADER):]
    assert engine.count_tokens(block) <= int(budget * RULES_SHARE)
    assert "Rule number 39:" in block and "Rule number 0:" not in block  # the newest first
    kept = block.count("\n- ")
    assert kept >= 3 and pending.rules_left_out == 40 - kept
    answer = chat.finish(pending, GenerationResult("print('hello')", 10, 3, 0.1, 0.2, "stop", 3), "starter")
    assert answer.meta["rules_left_out"] == 40 - kept


def test_the_command_line_ask_sends_the_rules_too(tmp_path, engine):
    from app.__main__ import cli_turn
    from app.core.paths import app_paths

    def system_of(project):
        _pending, messages, _params = cli_turn(app_paths(home), Settings(), engine, "hi", project)
        assert messages[0]["role"] == "system" and messages[-1] == {"role": "user", "content": "hi"}
        return messages[0]["content"]

    home, proj = tmp_path / "home", tmp_path / "proj"
    proj.mkdir()
    s = Storage(app_paths(home).database)
    s.add_rule("Use pytest, not unittest")
    s.add_rule("Always use TypeScript", proj.resolve())
    s.close()
    system = system_of(str(proj))
    assert system.startswith(Settings().system_prompt)
    assert system.endswith(f"{RULES_HEADER}\n- Always use TypeScript\n- Use pytest, not unittest")
    assert "TypeScript" not in system_of(None)


def test_a_system_note_does_not_stop_the_first_question_naming_the_chat(chat):
    s = chat.storage
    c = s.create_conversation()
    s.add_message(c.id, "system", "Remembered for every project: Tabs", {"tool": "remember"})
    pending = chat.ask(c.id, "How do I read a file?")
    assert s.conversation(c.id).title == "How do I read a file?"
    assert pending.history == [{"role": "user", "content": "How do I read a file?"}]  # the note is not a turn


# ---- app/core/learn/dataset.py: what may leave the machine -------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("key = sk-proj-AbCdEf0123456789xyzXYZ", f"key = {SECRET_MARK}"),
    ("export OPENAI_API_KEY=sk-abcdefghijklmnop1234", f"export OPENAI_API_KEY={SECRET_MARK}"),
    ('password = "hunter2hunter"', f'password = "{SECRET_MARK}"'),
    ("{'api_key': 'abc123def456'}", f"{{'api_key': '{SECRET_MARK}'}}"),
    ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789", f"token {SECRET_MARK}"),
    ("AKIAABCDEFGHIJKLMNOP is the id", f"{SECRET_MARK} is the id"),
    ("Authorization: Bearer abcdefghijklmnop.qrstuv", f"Authorization: {SECRET_MARK}"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nxyz\n-----END RSA PRIVATE KEY-----\nrest", f"{SECRET_MARK}\nrest"),
    ("open('/home/alice/project/data.csv')", "open('~/project/data.csv')"),
    ("cd /home/bob && ls", "cd ~ && ls"),
    ("/Users/carol/dev/app.py:3", "~/dev/app.py:3"),
    (r"C:\Users\Dave\code\main.py", r"~\code\main.py"),
    ('"C:\\\\Users\\\\Dave\\\\x"', '"~\\\\x"'),
    ("/root/.cache/x", "~/.cache/x"),
    # left alone: ordinary code and paths that are not anyone's home
    ("sorted(xs, key=len)  # token count 5", "sorted(xs, key=len)  # token count 5"),
    ("/usr/lib/python3.11/os.py and /homework/notes", "/usr/lib/python3.11/os.py and /homework/notes"),
    ("password = input()", "password = input()"),
])
def test_scrubber_removes_credentials_and_home_paths(text, expected):
    assert Scrubber(home="/home/alice", keys=[])(text) == expected


def test_scrubber_removes_the_keys_in_the_keyring_and_the_own_home(memory_keyring, tmp_path):
    key = "my-own-tavily-key-0192837465"
    secrets.set_key("tavily", key)
    home = str(tmp_path / "users" / "erin")
    scrub = Scrubber(home=home)
    assert key in scrub.keys
    text = f"The key {key} is in {home}/proj/.env and {home}"
    assert scrub(text) == f"The key {SECRET_MARK} is in ~/proj/.env and ~"
    assert scrub.messages([{"role": "user", "content": key, "id": 3}]) == [{"role": "user", "content": SECRET_MARK}]


def test_dedup_ignores_case_whitespace_and_system_prompts():
    a = [{"role": "system", "content": "one"}, {"role": "user", "content": "Sort  a list"},
         {"role": "assistant", "content": "sorted(xs)"}]
    b = [{"role": "user", "content": "sort a\nlist "}, {"role": "assistant", "content": "SORTED(xs)"}]
    c = [{"role": "user", "content": "sort a list"}, {"role": "assistant", "content": "xs.sort()"}]
    assert dedup_key(a) == dedup_key(b) != dedup_key(c)
    kept, dropped = unique([Example(a, "g1"), Example(b, "g2"), Example(c, "g3")])
    assert [e.group for e in kept] == ["g1", "g3"] and dropped == 1


def test_split_is_stable_grouped_and_about_one_in_ten(tmp_path):
    groups = [f"conversation-{i}" for i in range(2000)]
    sides = [split_of(g) for g in groups]
    assert sides == [split_of(g) for g in groups]  # the same in every run
    assert 0.07 < sides.count("valid") / len(sides) < 0.13
    examples = [Example([{"role": "user", "content": f"{g} {k}"}], g) for g in groups[:50] for k in range(3)]
    assign_splits(examples)
    by_group: dict[str, set] = {}
    for e in examples:
        by_group.setdefault(e.group, set()).add(e.split)
    assert all(len(s) == 1 for s in by_group.values())  # a conversation never straddles the split
    assert {e.split for e in examples} == {"train", "valid"}
    # Two groups that both hash to train: one is moved, so validation is never empty.
    train_only = [g for g in groups if split_of(g) == "train"][:2]
    pair = [Example([{"role": "user", "content": g}], g) for g in train_only]
    assign_splits(pair)
    assert sorted(e.split for e in pair) == ["train", "valid"]
    write_jsonl(tmp_path / "x.jsonl", pair)
    assert (tmp_path / "x.jsonl").read_text().count('"split": "valid"') == 1

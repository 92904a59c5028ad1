"""The conversation list's storage in the real SQLite file: full-text search over titles and
message text (FTS5 syntax in what the user types is only text; the index follows renames,
updates and cascading deletes), pins, several chats deleted at once (all or none), and one
conversation exported as Markdown with its code blocks and sources."""

from __future__ import annotations

from datetime import datetime

import pytest

from app.core.chat.markdown_export import (MarkdownExportError, close_fences, conversation_markdown,
                                           export_markdown, file_name_for)
from app.core.storage import Storage, StorageError, fts_query


@pytest.fixture
def s(tmp_path):
    storage = Storage(tmp_path / "app.db")
    yield storage
    storage.close()


def test_search_quotes_what_the_user_types_and_follows_deletes_and_renames(s):
    a = s.create_conversation("Parsing JSON").id
    s.add_message(a, "user", 'How do I parse {"key": 1} with json.loads?')
    b = s.create_conversation("Threads").id
    s.add_message(b, "user", "Why does my thread_pool(max_workers=4) hang?")
    for query in ['"', '"unclosed', "json AND", "NEAR(", "a OR b", "*", "-x", "key:", "(", "^", "{}", "''", "\\",
                  "json)", "col:value", "NOT", "thread_pool(", "💥"]:
        s.search_conversations(query)  # none raises
    assert fts_query("  ") is None and fts_query('say "hi"') == '"say"* "hi"*'
    assert [c.id for c in s.search_conversations('json.loads("')] == [a]
    assert [c.id for c in s.search_conversations("thread_pool(max")] == [b]
    assert [c.id for c in s.search_conversations("pars")] == [a]  # title, by prefix
    assert {c.id for c in s.search_conversations("(")} == {a, b}  # no word: nothing filtered
    assert s.search_conversations("json threads") == []  # every word must match
    s.rename_conversation(a, "Decoding")
    assert s.search_conversations("parsing") == [] and [c.id for c in s.search_conversations("decod")] == [a]
    s.delete_conversation(b)  # its messages go by cascade; the triggers take them out of the index
    assert s.search_conversations("hang") == []
    for table in ("messages_fts", "titles_fts"):  # the index matches its tables exactly
        s._db.execute(f"INSERT INTO {table}({table}, rank) VALUES ('integrity-check', 1)")
    assert s._db.execute("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'hang'").fetchone()[0] == 0


def test_pinned_chats_come_first_and_several_are_deleted_at_once(s):
    ids = [s.create_conversation(f"chat {i}").id for i in range(4)]
    for i in ids:
        s.add_message(i, "user", f"question {i}")
    s.pin_conversation(ids[0])
    assert [c.id for c in s.conversations()] == [ids[0], ids[3], ids[2], ids[1]]
    assert s.conversation(ids[0]).pinned
    s.add_message(ids[1], "user", "newest")
    assert [c.id for c in s.conversations()][:2] == [ids[0], ids[1]]
    s.pin_conversation(ids[0], False)
    assert s.conversations()[0].id == ids[1]
    s.delete_conversations([ids[1], ids[2]])
    assert [c.id for c in s.conversations()] == [ids[3], ids[0]]
    assert s._db.execute("SELECT count(*) FROM messages WHERE conversation_id IN (?, ?)",
                         (ids[1], ids[2])).fetchone()[0] == 0


def test_deleting_several_on_a_read_only_database_deletes_none(tmp_path):
    db = tmp_path / "app.db"
    s = Storage(db)
    ids = [s.create_conversation(f"c{i}").id for i in range(3)]
    s.close()
    ro = Storage(db)
    ro._db.execute("PRAGMA query_only = ON")  # every write refused, as on a read-only disk
    with pytest.raises(StorageError, match="The chats were not deleted.*Earlier chats are kept"):
        ro.delete_conversations(ids)
    ro._db.execute("PRAGMA query_only = OFF")
    assert [c.id for c in ro.conversations()] == ids[::-1]
    ro.close()


def test_markdown_export_keeps_code_blocks_sources_and_closes_a_cut_block(s, tmp_path):
    cid = s.create_conversation("Add: two numbers").id
    s.set_conversation_project(cid, "/work/calc")
    s.add_message(cid, "user", "Write add()")
    s.add_message(cid, "assistant", "Here:\n\n```python\ndef add(a, b):\n    return a + b\n```",
                  {"sources": ["calc/ops.py:1-4", "https://docs.python.org/3/"], "finish_reason": "stop"})
    s.add_message(cid, "system", "3\n```\n", {"tool": "run"})
    s.add_message(cid, "user", "Now subtract")
    s.add_message(cid, "assistant", "```python\ndef sub(a, b):\n    return a -", {"unfinished": True})

    md = conversation_markdown(s.conversation(cid), s.messages(cid), when=datetime(2024, 6, 1, 9, 30))
    assert md.startswith("# Add: two numbers\n\n_Exported 2024-06-01 09:30 · project `/work/calc`_\n\n## You\n\nWrite add()")
    assert "```python\ndef add(a, b):\n    return a + b\n```\n\nSources: `calc/ops.py:1-4`, <https://docs.python.org/3/>" in md
    assert "## Output\n\n````text\n3\n```\n````" in md  # output holding a fence gets a longer one
    assert md.endswith("## Assistant _(interrupted)_\n\n```python\ndef sub(a, b):\n    return a -\n```\n")
    assert close_fences("~~~~\ncode\n~~~") == "~~~~\ncode\n~~~\n~~~~" and close_fences("a\n```\nb\n```") == "a\n```\nb\n```"

    out = export_markdown(s, cid, tmp_path / "out" / file_name_for("Add: two/numbers?"))
    assert out.name == "Add two numbers.md" and out.read_text(encoding="utf-8").count("## ") == 5
    with pytest.raises(MarkdownExportError, match="is a folder"):
        export_markdown(s, cid, tmp_path)
    s.delete_conversation(cid)
    with pytest.raises(MarkdownExportError, match="no longer exists"):
        export_markdown(s, cid, tmp_path / "gone.md")
    assert not (tmp_path / "gone.md").exists()

"""Chats in SQLite, prompt building within the context budget, settings on disk."""

import sqlite3

import pytest

from app.core.chat.service import ChatService, answer_reserve, build_messages, title_from
from app.core.engine import GenerationResult
from app.core.settings import Settings
from app.core.storage import DEFAULT_TITLE, Storage, StorageError


def words(messages):
    return sum(len(m["content"].split()) for m in messages)


def test_conversations_survive_reopening(tmp_path):
    db = tmp_path / "app.db"
    s = Storage(db)
    a = s.create_conversation()
    b = s.create_conversation("Second")
    s.add_message(a.id, "user", "hello")
    s.add_message(a.id, "assistant", "hi there", {"model": "m"})
    s.rename_conversation(b.id, "  Renamed  ")
    s.close()

    s = Storage(db)
    convs = s.conversations()
    assert [c.title for c in convs] == [DEFAULT_TITLE, "Renamed"]  # a was active last
    msgs = s.messages(a.id)
    assert [(m.role, m.content) for m in msgs] == [("user", "hello"), ("assistant", "hi there")]
    assert msgs[1].meta == {"model": "m"}
    s.delete_conversation(a.id)
    assert s.messages(a.id) == []
    assert [c.id for c in s.conversations()] == [b.id]


def test_a_committed_message_survives_a_crash(tmp_path):
    """Each message is committed at once: another connection sees it with no close()."""
    s = Storage(tmp_path / "app.db")
    c = s.create_conversation()
    s.add_message(c.id, "user", "question before the crash")
    other = sqlite3.connect(tmp_path / "app.db")
    assert other.execute("SELECT content FROM messages").fetchall() == [("question before the crash",)]


def test_a_corrupt_database_is_a_clear_error(tmp_path):
    db = tmp_path / "app.db"
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError, match="cannot be opened"):
        Storage(db)


def test_build_messages_keeps_newest_history_within_budget():
    history = []
    for i in range(10):
        history.append({"role": "user", "content": f"question {i} " + "x " * 20})
        history.append({"role": "assistant", "content": f"answer {i} " + "y " * 20})
    history.append({"role": "user", "content": "last question"})
    out = build_messages("sys", history, prompt_budget=100, count=words)
    assert out[0] == {"role": "system", "content": "sys"}
    assert out[-1]["content"] == "last question"
    assert words(out) <= 100
    assert out[1]["role"] == "user"  # never starts with an orphaned answer
    assert len(out) > 3  # it kept some history
    # Kept turns are the newest ones, in order.
    kept = [m["content"].split()[1] for m in out[1:-1]]
    assert kept == sorted(kept)
    assert "9" in kept


def test_build_messages_always_keeps_the_question():
    out = build_messages("", [{"role": "user", "content": "z " * 500}], prompt_budget=10, count=words)
    assert len(out) == 1 and out[0]["content"].startswith("z")


def test_answer_reserve_and_titles():
    assert answer_reserve(4096, 2048) == 2048
    assert answer_reserve(2048, 4000) == 1024
    assert title_from("  How do I\nreverse a list?  ") == "How do I reverse a list?"
    long = title_from("word " * 40)
    assert len(long) <= 60 and long.endswith("…")


def test_chat_service_stores_question_then_answer(tmp_path):
    s = Storage(tmp_path / "app.db")
    chat = ChatService(s, Settings())
    c = s.create_conversation()
    with pytest.raises(ValueError):
        chat.ask(c.id, "   ")
    pending = chat.ask(c.id, "How do I sort a dict by value?")
    assert s.conversation(c.id).title == "How do I sort a dict by value?"
    assert pending.history == [{"role": "user", "content": "How do I sort a dict by value?"}]
    result = GenerationResult("Use sorted().", 20, 4, 0.1, 0.5, "cancelled", 4)
    stored = chat.finish(pending, result, "starter")
    assert stored.meta["finish_reason"] == "cancelled" and stored.meta["model"] == "starter"
    assert chat.finish(pending, GenerationResult("  ", 20, 0, None, 0.1, "cancelled"), "m") is None
    assert [m.role for m in s.messages(c.id)] == ["user", "assistant"]


def test_settings_round_trip_and_tolerate_bad_files(tmp_path):
    p = tmp_path / "settings.toml"
    s = Settings()
    assert (s.n_ctx, s.generation.temperature, s.generation.top_p, s.generation.top_k,
            s.generation.max_tokens) == (4096, 0.3, 0.95, 50, 2048)
    s.n_threads = 3
    s.generation.temperature = 0.7
    s.save(p)
    loaded = Settings.load(p)
    assert loaded.n_threads == 3 and loaded.generation.temperature == 0.7

    p.write_text('n_ctx = "big"\nunknown = 1\n[generation]\ntop_k = 7\ntemperature = 1\n')
    loaded = Settings.load(p)
    assert loaded.n_ctx == 4096  # wrong type: default
    assert loaded.generation.top_k == 7 and loaded.generation.temperature == 1.0

    p.write_text("this is [not toml")
    assert Settings.load(p) == Settings()


def test_one_sampling_type_from_settings_to_engine(tmp_path):
    """The engine's GenerationParams is the settings' GenerationSettings; the unset seed (None,
    which TOML cannot hold) is left out of the file and loads back as None."""
    from app.core.engine import GenerationParams
    from app.core.settings import GenerationSettings
    assert GenerationParams is GenerationSettings
    p = tmp_path / "settings.toml"
    s = Settings()
    s.generation.top_k = 9
    s.save(p)
    assert "seed" not in p.read_text(encoding="utf-8") and "top_k = 9" in p.read_text(encoding="utf-8")
    assert Settings.load(p).generation == s.generation and s.generation.seed is None
    g = GenerationParams.greedy(30)
    assert (g.temperature, g.top_p, g.top_k, g.max_tokens, g.repeat_penalty, g.seed) == (0.0, 1.0, 1, 30, 1.0, None)
    # what the chat hands the engine: the user's settings, a copy a caller may change
    chat = ChatService(Storage(tmp_path / "db.sqlite"), s)
    params = chat.params()
    assert params == s.generation and params is not s.generation
    params.max_tokens = 5
    assert s.generation.max_tokens == 2048

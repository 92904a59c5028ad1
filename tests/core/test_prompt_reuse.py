"""The prompt laid out for reuse, the reading progress and the code budget by speed (real
starter model, a real project index, real SQLite)."""

from __future__ import annotations

import json

import pytest

from app.core.chat.service import ChatService, history_as_sent, reading_line
from app.core.engine import Engine, EngineConfig, GenerationParams, GenerationResult, ReadingProgress
from app.core.index.context import PROMPT_CHUNKS, build_context
from app.core.index.embed import Embedder
from app.core.index.indexer import ProjectIndex
from app.core.models.speed import MIN_SAMPLE_TOKENS, Speed, SpeedBook, code_budget, estimate
from app.core.settings import Settings
from app.core.storage import Storage
from tests.support.index_project import make_project

QUESTIONS = ["How is a card charged?", "And how is a request signed?", "What does apply_discount return?"]


@pytest.fixture(scope="module")
def project_index(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("p") / "shop")
    pi = ProjectIndex(root, tmp_path_factory.mktemp("idx"), Embedder())
    pi.update()
    yield pi
    pi.close()


@pytest.fixture
def chat(tmp_path, project_index):
    storage = Storage(tmp_path / "app.db")
    settings = Settings()
    settings.generation.max_tokens = 256  # (the engine fixture's context is 2,048 tokens)
    service = ChatService(storage, settings)
    service.project = project_index.root
    service.retriever = lambda q: project_index.search(q, PROMPT_CHUNKS)
    yield service
    storage.close()


def turn(chat, engine, conv, question, answer=None):
    pending = chat.ask(conv, question)
    messages = chat.prompt(engine, pending)
    if answer is None:
        result = engine.chat(messages, GenerationParams.greedy(24))
    else:
        result = GenerationResult(answer, 0, 5, 0.1, 0.2, "stop")
    chat.finish(pending, result, "starter")
    return pending, messages, result


def test_each_follow_up_starts_with_the_previous_prompt_byte_for_byte(chat, engine):
    conv = chat.storage.create_conversation().id
    rendered, tokens, seen = [], [], []
    for q in QUESTIONS:
        pending, messages, result = turn(chat, engine, conv, q)
        text = engine.render_chat(messages)
        if rendered:
            assert text.startswith(rendered[-1]), q  # the earlier prompt and its answer, untouched
            assert engine.tokenize(text)[:len(tokens[-1])] == tokens[-1]
        rendered.append(text + result.text)
        tokens.append(engine.tokenize(text))
        # code the conversation already showed is not shown again, yet still cited
        assert not set(pending.shown_now) & set(seen), q
        seen += pending.shown_now
        assert {h.citation for h in pending.sources} >= set(pending.shown_now)
    assert seen and len(seen) == len(set(seen))
    # the code each question showed comes with it in the system-free history, in its place
    history, shown = history_as_sent(chat.storage.messages(conv))
    assert [h["role"] for h in history] == ["user", "assistant"] * 3
    assert all(c in history[0]["content"] for c in shown[0]) and history[0]["content"].endswith(QUESTIONS[0])
    # the system prompt holds no project code: it stays the same whatever is asked
    assert "```" not in pending.messages[0]["content"] and "cite every piece" in pending.messages[0]["content"]


def test_llama_cpp_reads_only_the_new_tokens_of_a_follow_up(chat, starter_path):
    engine = Engine(starter_path, EngineConfig(n_ctx=2048))
    try:
        conv = chat.storage.create_conversation().id
        readings = []
        for q in QUESTIONS[:2]:
            pending = chat.ask(conv, q)
            messages = chat.prompt(engine, pending)
            seen: list[ReadingProgress] = []
            result = engine.chat(messages, GenerationParams.greedy(16), on_reading=seen.append)
            chat.finish(pending, result, "starter")
            readings.append(seen)
        first, second = readings[0][-1], readings[1][-1]
        assert first.reused == 0 and first.done == first.total > 200
        assert [p.done for p in readings[0]] == sorted(p.done for p in readings[0])  # progress only grows
        # the follow-up re-read at most the end of the earlier answer, not the earlier prompt
        assert second.reused >= first.total - 2 and second.total < first.total
    finally:
        engine.close()


def test_old_turns_dropped_for_room_are_counted_and_their_code_comes_back(tmp_path, project_index, starter_path):
    engine = Engine(starter_path, EngineConfig(n_ctx=512))
    storage = Storage(tmp_path / "app.db")
    try:
        settings = Settings()
        settings.generation.max_tokens = 128
        chat = ChatService(storage, settings)
        chat.retriever = lambda q: project_index.search(q, PROMPT_CHUNKS)
        conv = storage.create_conversation().id
        first, _, _ = turn(chat, engine, conv, QUESTIONS[0], "It calls the gateway. " * 30)
        assert first.shown_now
        pending, messages, _ = turn(chat, engine, conv, QUESTIONS[0] + " Again, briefly.", "Yes.")
        assert pending.turns_left_out >= 2  # the first question and its long answer no longer fit
        again = set(first.shown_now) & {h.citation for h in pending.sources}
        assert again and again <= set(pending.shown_now)  # shown again, since the old turn is gone
        stored = storage.messages(conv)[-1]
        assert stored.meta["turns_left_out"] == pending.turns_left_out
    finally:
        storage.close()
        engine.close()


def test_the_reading_line_says_what_is_read_and_how_long_is_left():
    from app.core.chat.service import PendingAnswer
    from app.core.storage import StoredMessage

    p = PendingAnswer(1, StoredMessage(1, 1, "user", "q", 0.0), [], shown_now=["a:1-2"] * 6)
    assert reading_line(p, ReadingProgress(0, 1900, 0, 0.0)) == "Reading your question and 6 pieces of project code: 0 / 1,900 tokens"
    line = reading_line(p, ReadingProgress(640, 1900, 1200, 12.8))
    assert line == ("Reading your question and 6 pieces of project code: 640 / 1,900 tokens · about 25 s left "
                    "(1,200 read before, kept)")
    p.shown_now = []
    assert reading_line(p, ReadingProgress(10, 10, 0, 1.0)).startswith("Reading your question: 10 / 10 tokens")


def test_the_code_budget_follows_the_speed_and_keeps_the_best_piece(chat, engine, project_index):
    fast, slow = Speed(250.0, 100.0, True), Speed(15.0, 7.0, True)
    assert code_budget(fast, 20.0, 100, 1500) == 1500          # capped
    assert code_budget(Speed(65.0, 30.0, True), 20.0, 100, 1500) == 1200
    assert code_budget(slow, 20.0, 100, 1500) == 200
    assert code_budget(slow, 5.0, 100, 1500) == 0              # nothing fits in time...
    hits = project_index.search(QUESTIONS[0], PROMPT_CHUNKS)
    ctx = build_context(hits, 0, engine.count_tokens, instructions=False, at_least_one=True)
    assert [h.citation for h in ctx.hits] == [hits[0].citation]  # ...but the single best piece goes in
    # through the chat: a slow model gets fewer pieces than a fast one, never none
    counts = {}
    for name, speed in (("fast", fast), ("slow", Speed(3.0, 1.0, True))):
        chat.speed = speed
        pending = chat.ask(chat.storage.create_conversation().id, QUESTIONS[0])
        chat.prompt(engine, pending)
        counts[name] = len(pending.shown_now)
    assert counts["fast"] > counts["slow"] == 1


def test_a_first_question_is_read_within_the_target_system_prompt_included(chat, engine):
    """The budget counts everything a first question makes the model read, not only the question:
    at 40 tokens/s and 20 s the whole prompt stays within 800 tokens (with a best piece that
    fits), where counting the question alone let the system prompt push it over."""
    chat.speed = Speed(40.0, 10.0, True)
    pending = chat.ask(chat.storage.create_conversation().id, QUESTIONS[0])
    messages = chat.prompt(engine, pending)
    read = len(engine.tokenize(engine.render_chat(messages)))
    assert pending.shown_now and read <= 40.0 * chat.settings.retrieval.first_answer_s


def test_the_speed_book_measures_estimates_and_survives_a_bad_file(tmp_path, starter_path):
    book = SpeedBook(tmp_path / "speeds.json")
    est = book.speed(starter_path)
    assert not est.measured and est == estimate(starter_path.stat().st_size)
    book.record(starter_path, MIN_SAMPLE_TOKENS - 1, 0.1)          # too short to say anything
    assert not book.speed(starter_path).measured
    book.record(starter_path, 1000, 4.0, gen_tps=90.0)
    book.record(starter_path, 1000, 5.0, gen_tps=80.0)
    again = SpeedBook(tmp_path / "speeds.json").speed(starter_path)  # kept on disk
    assert again.measured and again.prompt_tps == pytest.approx(0.7 * 250 + 0.3 * 200)
    assert again.gen_tps == pytest.approx(0.7 * 90 + 0.3 * 80)
    (tmp_path / "speeds.json").write_text("{ not json")
    assert not SpeedBook(tmp_path / "speeds.json").speed(starter_path).measured  # damaged: estimated again
    (tmp_path / "speeds.json").write_text(json.dumps([1, 2]))
    assert not SpeedBook(tmp_path / "speeds.json").speed(starter_path).measured

"""The engine on the real starter model through the real llama.cpp."""

import threading
import time

import pytest

from app.core.engine import Engine, EngineConfig, EngineError, GenerationParams, ModelLoadError
from app.core.settings import Settings

SYSTEM = Settings().system_prompt


def ask(text):
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]


def test_answers_a_fixed_prompt_greedily_and_repeatably(engine):
    a = engine.chat(ask("What is the capital of France?"), GenerationParams.greedy(40))
    b = engine.chat(ask("What is the capital of France?"), GenerationParams.greedy(40))
    assert "Paris" in a.text
    assert a.text == b.text
    assert a.finish_reason == "stop"


def test_uses_the_models_chat_template_for_code(engine):
    r = engine.chat(ask("Write a Python function that adds two numbers."), GenerationParams.greedy(80))
    assert "def " in r.text and "return" in r.text


def test_streams_in_many_chunks_with_stats(engine):
    pieces = []
    r = engine.chat(ask("Write a Python function that adds two numbers."),
                    GenerationParams.greedy(60), on_token=pieces.append)
    assert len(pieces) > 5
    assert "".join(pieces) == r.text
    assert r.prompt_tokens > 10
    assert r.completion_tokens >= len(pieces)
    assert r.time_to_first_token_s is not None and 0 < r.time_to_first_token_s < r.total_s
    assert r.tokens_per_s > 1


def test_default_sampling_is_the_products(engine):
    p = GenerationParams()
    assert (p.temperature, p.top_p, p.top_k, p.max_tokens) == (0.3, 0.95, 50, 2048)
    r = engine.chat(ask("Say hello."), GenerationParams(max_tokens=20, seed=1))
    assert r.text.strip()


def test_cancel_stops_within_a_second(engine):
    stop = threading.Event()
    asked_at = []
    seen = []

    def on_token(t):
        seen.append(t)
        if len(seen) == 3:
            asked_at.append(time.perf_counter())
            stop.set()

    r = engine.chat(ask("Write a very long story about a programmer, with many chapters."),
                    GenerationParams(max_tokens=2000, temperature=0.8), on_token=on_token,
                    cancelled=stop.is_set)
    took = time.perf_counter() - asked_at[0]
    assert r.cancelled
    assert took < 1.0
    assert len(seen) < 10


def test_cancel_interrupts_prompt_evaluation(starter_path):
    """A long prompt is evaluated in one llama_decode call; cancel must not wait for it."""
    e = Engine(starter_path, EngineConfig(n_ctx=4096, n_batch=4096))
    try:
        long_prompt = ask("Summarise this:\n" + "def f(x):\n    return x * 2\n" * 150)
        stop = threading.Event()
        timer = threading.Timer(0.3, stop.set)
        t0 = time.perf_counter()
        timer.start()
        r = e.chat(long_prompt, GenerationParams.greedy(20), cancelled=stop.is_set)
        took = time.perf_counter() - t0
        assert r.cancelled and r.text == ""
        assert took < 1.3
        # The engine is still usable and not confused by the aborted batch.
        again = e.chat(ask("What is the capital of France?"), GenerationParams.greedy(40))
        assert "Paris" in again.text
    finally:
        e.close()


def test_too_long_for_context_is_a_clear_error(starter_path):
    e = Engine(starter_path, EngineConfig(n_ctx=256))
    try:
        with pytest.raises(EngineError, match="too long for the model's context"):
            e.chat(ask("word " * 600), GenerationParams.greedy(10))
    finally:
        e.close()


def test_one_generation_at_a_time(engine):
    started = threading.Event()
    release = threading.Event()

    def on_token(_):
        started.set()
        release.wait(5)

    t = threading.Thread(target=engine.chat, args=(ask("Count to ten."), GenerationParams.greedy(5)),
                         kwargs={"on_token": on_token})
    t.start()
    assert started.wait(10)
    with pytest.raises(EngineError, match="already generating"):
        engine.chat(ask("Hi"), GenerationParams.greedy(5))
    release.set()
    t.join()


def test_truncated_file_gives_clear_error(truncated_gguf):
    with pytest.raises(ModelLoadError) as e:
        Engine(truncated_gguf)
    assert str(truncated_gguf) in str(e.value) and "truncated" in str(e.value)


def test_text_file_gives_clear_error(text_as_gguf):
    with pytest.raises(ModelLoadError) as e:
        Engine(text_as_gguf)
    assert str(text_as_gguf) in str(e.value) and "not a GGUF model file" in str(e.value)


def test_thread_count_defaults_to_physical_cores_and_is_settable(starter_path):
    from app.core.hardware import physical_cores
    assert EngineConfig().threads() == physical_cores()
    e = Engine(starter_path, EngineConfig(n_ctx=512, n_threads=1))
    try:
        assert e.model.n_threads == 1
        assert "Paris" in e.chat(ask("What is the capital of France?"), GenerationParams.greedy(30)).text
    finally:
        e.close()

"""Settings out of range and what Preferences… may take: clamped with a note on load, refused
with the reason when typed, and the memory a context size needs (on the real starter model)."""

from __future__ import annotations

import dataclasses

import pytest

from app.core.chat.service import ChatService
from app.core.errors import UserError
from app.core.hardware import Hardware
from app.core.models.gguf_info import read_gguf_info
from app.core.settings import (DEFAULT_SYSTEM_PROMPT, RANGES, SEARCH_PROVIDERS, Preferences, Settings,
                               SettingsValueError, clamp_context_to_model, context_memory, context_problem)

GB = 1_000_000_000


def test_out_of_range_numbers_are_clamped_with_a_note_and_the_file_is_kept(tmp_path):
    p = tmp_path / "settings.toml"
    text = ("n_ctx = 99999999\nfix_rounds = 500\nn_threads = -3\n[generation]\ntemperature = 7\ntop_p = -0.5\n"
            "top_k = 40\nrepeat_penalty = nan\n[retrieval]\nfirst_answer_s = 0.0\n")
    p.write_text(text, encoding="utf-8")
    s, notes = Settings.load_checked(p)
    assert (s.n_ctx, s.fix_rounds, s.n_threads) == (RANGES["n_ctx"][1], 100, 0)
    assert (s.generation.temperature, s.generation.top_p, s.generation.top_k) == (5.0, 0.0, 40)
    assert s.retrieval.first_answer_s == 0.1
    assert type(s.n_ctx) is int and type(s.generation.temperature) is float
    assert s.generation.repeat_penalty == Settings().generation.repeat_penalty  # NaN is not a number to clamp
    by_key = {k: [n for n in notes if f"'{k}'" in n] for k in
              ("n_ctx", "fix_rounds", "n_threads", "generation.temperature", "generation.top_p",
               "retrieval.first_answer_s", "generation.repeat_penalty")}
    assert all(len(v) == 1 for v in by_key.values()), notes
    assert "above the most it may be (5); 5.0 is used" in by_key["generation.temperature"][0]
    assert "below the least it may be (0); 0 is used" in by_key["n_threads"][0]
    assert "the default 1.1 applies" in by_key["generation.repeat_penalty"][0]
    assert len(notes) == 7 and all(n.startswith("settings.toml: ") for n in notes)
    assert p.read_text(encoding="utf-8") == text  # loading never rewrites the user's file
    s.save(p)
    assert Settings.load_checked(p) == (s, [])  # the next save writes the clamped values, no notes after


def test_a_context_above_the_model_s_trained_length_is_lowered_with_a_note():
    s = Settings(n_ctx=32768)
    note = clamp_context_to_model(s, 8192)
    assert s.n_ctx == 8192 and "context size 32,768 is more than this model was trained on" in note
    assert "8,192 is used" in note
    assert clamp_context_to_model(s, 8192) is None and clamp_context_to_model(Settings(), None) is None


def test_preferences_refuse_bad_values_with_the_reason_and_change_nothing():
    s = Settings()
    before = dataclasses.replace(s, generation=dataclasses.replace(s.generation))
    prefs = dataclasses.replace(Preferences.of(s), temperature=-0.5, n_ctx=9000, search_provider="bing",
                                system_prompt="a\x00b", top_p=float("nan"))
    problems = prefs.problems(trained_ctx=8192)
    assert "Temperature must be from 0 to 5, not -0.5." in problems
    assert "Top-p must be a number, not nan." in problems
    assert any("Context size 9,000 is more than this model was trained on (8,192 tokens)" in p
               and "Choose 8,192 or less" in p for p in problems)
    assert any(p.startswith("Web search must be one of duckduckgo, tavily") for p in problems)
    assert "The system prompt cannot hold a NUL character." in problems
    with pytest.raises(SettingsValueError) as e:
        prefs.check(trained_ctx=8192)
    assert isinstance(e.value, UserError) and isinstance(e.value, ValueError) and "9,000" in str(e.value)
    assert s == before  # a refused set of values touched nothing
    assert Preferences.of(s).problems(trained_ctx=8192) == []
    assert context_problem(8192, 8192) is None and context_problem(10**6, None) is None  # unknown length: no limit


def test_applied_preferences_reach_the_next_answer_s_parameters_and_the_file(tmp_path):
    s = Settings()
    chat = ChatService(None, s)
    generation, retrieval = s.generation, s.retrieval
    prefs = dataclasses.replace(Preferences.of(s), temperature=0.7, max_tokens=64, top_k=12, first_answer_s=8.0,
                                fix_rounds=5, search_provider="tavily", system_prompt="Be brief.")
    assert prefs.changed(s) == ["temperature", "top_k", "max_tokens", "system_prompt", "first_answer_s",
                                "search_provider", "fix_rounds"]
    assert not prefs.needs_reload(s)
    prefs.apply(s)
    assert s.generation is generation and s.retrieval is retrieval  # in place: every holder sees them
    params = chat.params()
    assert (params.temperature, params.max_tokens, params.top_k) == (0.7, 64, 12)
    assert s.retrieval.first_answer_s == 8.0 and s.fix_rounds == 5 and s.system_prompt == "Be brief."
    p = tmp_path / "settings.toml"
    s.save(p)
    assert Preferences.of(Settings.load(p)) == prefs


def test_only_context_and_threads_need_a_reload_and_can_be_held_back():
    s = Settings()
    prefs = dataclasses.replace(Preferences.of(s), n_ctx=2048, max_tokens=100)
    assert prefs.needs_reload(s)
    assert dataclasses.replace(Preferences.of(s), n_threads=1).needs_reload(s)
    prefs.apply(s, skip=("n_ctx", "n_threads"))  # "not now": everything but what needs the reload
    assert s.n_ctx == 4096 and s.generation.max_tokens == 100
    prefs.apply(s)
    assert s.n_ctx == 2048


def test_the_memory_a_context_needs_on_the_starter_model(starter_path):
    info = read_gguf_info(starter_path)
    assert info.context_length == 8192
    big = Hardware(total_ram=16 * GB, available_ram=8 * GB, physical_cores=4, free_disk=100 * GB)
    small, large = context_memory(info, 2048, big), context_memory(info, 8192, big)
    assert small.needed < large.needed and large.needed - small.needed > 50_000_000  # the KV cache grows
    assert small.fits and small.possible and small.words.startswith("Needs 0.") and "context 2,048" in small.words
    assert "fits (a model may use 50% of your 16.0 GB)" in small.words
    tiny = Hardware(total_ram=small.needed + 1, available_ram=0, physical_cores=1, free_disk=0)
    squeezed = context_memory(info, 2048, tiny)
    assert squeezed.possible and not squeezed.fits and "too big for a model here" in squeezed.words
    over = context_memory(info, 8192, tiny)
    assert not over.possible and "more than this computer has" in over.words
    prefs = dataclasses.replace(Preferences.of(Settings()), n_ctx=8192)
    assert prefs.problems(8192, small) == [] and prefs.problems(8192, over) == [over.words]


def test_defaults_are_within_bounds_and_the_system_prompt_default_is_one_constant():
    s = Settings()
    assert s.system_prompt == DEFAULT_SYSTEM_PROMPT and s.search_provider in SEARCH_PROVIDERS
    assert Preferences.of(s).problems(trained_ctx=s.n_ctx) == []

"""Per-token loss on the live engine, and the adapter verdict built on it (app/core/adapters/verdict.py).

Real llama.cpp on the starter model throughout: the engine's numbers are checked against a
direct llama-cpp-python computation (logits for every position, log-softmax in numpy), and
adapters are real converted GGUF LoRAs (zero, random) built by tests/adapter_zip.py.
"""

from __future__ import annotations

import json
import math
import os
import time

import numpy as np
import pytest

from tests.support.adapter_zip import make_adapter_zip, tree
from app.core.adapters import verdict as verdict_mod
from app.core.adapters.errors import AdapterError
from app.core.adapters.importer import ModelChoice, import_adapter
from app.core.adapters.store import AdapterStore
from app.core.adapters.validation import read_examples
from app.core.adapters.verdict import BETTER, SAME, SLIGHTLY, WORSE, Verdict, evaluate, evaluate_stored, select
from app.core.engine import Engine, EngineConfig, EvaluationCancelled, GenerationParams, ScoredTokens
from tests.support.verdict_data import CHATS, jsonl, validation_zip

TEXT = ('def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n    a, b = 0, 1\n'
        "    for _ in range(n):\n        a, b = b, a + b\n    return a\n\n\n"
        "print([fibonacci(i) for i in range(10)])  # the first ten\n")


@pytest.fixture(scope="module")
def direct(starter_path):
    """A second llama.cpp instance that keeps logits for every position (what the engine avoids)."""
    from app.core.llama_backend import load_llama_cpp

    llm = load_llama_cpp().Llama(model_path=str(starter_path), n_ctx=512, n_batch=512, logits_all=True,
                          n_threads=2, verbose=False)
    yield llm
    llm.close()


def direct_nll(llm, tokens: list[int]) -> np.ndarray:
    """-log p(token i | tokens before it) for i >= 1, from the full logits, in float64."""
    llm.reset()
    llm.eval(tokens)
    logits = np.array(llm.scores[:len(tokens)], dtype=np.float64)
    top = logits.max(axis=1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    return lse[:-1] - logits[np.arange(len(tokens) - 1), tokens[1:]]


@pytest.fixture
def store(tmp_path):
    return AdapterStore(tmp_path / "adapters")


@pytest.fixture
def models(starter_path):
    return [ModelChoice("SmolLM2 starter", starter_path)]






# ---- the engine's loss ----------------------------------------------------------------------

def test_text_loss_matches_a_direct_llama_cpp_computation(engine, direct):
    item = engine.encode_text(TEXT)
    assert item.tokens == direct.tokenize(TEXT.encode(), add_bos=True) and len(item.tokens) > 60
    got = engine.score([item])
    want = direct_nll(direct, item.tokens)
    assert got.tokens == len(item.tokens) - 1 == len(want)
    assert np.max(np.abs(np.array(got.per_token) - want)) < 1e-3
    assert abs(got.loss - want.mean()) < 1e-3
    assert got.perplexity == pytest.approx(math.exp(want.mean()), rel=1e-3)


def test_a_long_text_is_read_in_overlapping_windows(starter_path, direct):
    small = Engine(starter_path, EngineConfig(n_ctx=256, n_threads=2, n_batch=64))
    try:
        w = small.n_ctx
        assert w == 256  # (llama.cpp rounds a context up to a multiple of 256)
        item = small.encode_text(TEXT * 4)
        n = len(item.tokens)
        assert w < n <= w + w // 2  # two windows
        got = np.array(small.score([item]).per_token)
        assert len(got) == n - 1  # every token scored exactly once
        # window 1 is tokens 0..w-1; then windows of w that start w/2 back, scoring w/2 new tokens
        want = list(direct_nll(direct, item.tokens[:w]))
        end = w
        while end < n:
            start, new_end = end - w // 2, min(end + w // 2, n)
            want += list(direct_nll(direct, item.tokens[start:new_end])[end - start - 1:])
            end = new_end
        assert np.max(np.abs(got - np.array(want))) < 1e-3
    finally:
        small.close()


def test_chat_scoring_covers_exactly_the_tokens_training_labels(engine):
    """The verdict's loss is over the tokens the notebook trains and validates on."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    from tests.support.tiny_model import STARTER_GGUF, starter_gguf_folder
    from training.train import IGNORE_INDEX, encode

    tokenizer = AutoTokenizer.from_pretrained(str(starter_gguf_folder()), gguf_file=STARTER_GGUF)
    for messages in CHATS:
        ours = engine.encode_chat(messages)
        theirs = encode(tokenizer, messages, 4096)
        assert ours.tokens == theirs["input_ids"]
        assert ours.scored == [label != IGNORE_INDEX for label in theirs["labels"]]
    two_turns = engine.encode_chat(CHATS[1])
    scored = [t for t, s in zip(two_turns.tokens, two_turns.scored) if s]
    text = engine._llm.detokenize(scored, special=True).decode()
    assert text == ("```python\ndef add(a, b):\n    return a + b\n```<|im_end|>\n"
                    "def sub(a, b):\n    return a - b  # ünïcode ✓<|im_end|>\n")


def test_zero_adapter_leaves_the_loss_unchanged_and_a_random_one_changes_it(engine, store, models, tmp_path):
    zero = import_adapter(make_adapter_zip(tmp_path / "zero-lora.zip"), store, models, probe=False)
    noisy = import_adapter(make_adapter_zip(tmp_path / "noisy-lora.zip", b_scale=0.5, seed=1), store, models,
                           probe=False)
    items = [engine.encode_text(TEXT), engine.encode_chat(CHATS[0])]
    base = engine.score(items)
    with_zero = engine.score(items, adapters=[(zero.file, 1.0)])
    with_noise = engine.score(items, adapters=[(noisy.file, 1.0)])
    assert with_zero.tokens == base.tokens > 70
    assert abs(with_zero.loss - base.loss) < 1e-4
    assert abs(with_noise.loss - base.loss) > 1e-2
    assert engine.adapters == []  # borrowed adapters are gone again
    assert engine.score(items).loss == pytest.approx(base.loss, abs=1e-6)


def test_evaluation_puts_the_engines_own_adapters_back(engine, store, models, tmp_path):
    noisy = import_adapter(make_adapter_zip(tmp_path / "noisy-lora.zip", b_scale=0.5, seed=1), store, models,
                           probe=False)
    prompt = [{"role": "user", "content": "Write a Python function that adds two numbers."}]
    item = engine.encode_text(TEXT)
    base = engine.score([item]).loss
    try:
        engine.set_adapters([(noisy.file, 1.0)])
        tuned_answer = engine.chat(prompt, GenerationParams.greedy(16)).text
        tuned = engine.score([item]).loss
        assert engine.score([item], adapters=[]).loss == pytest.approx(base, abs=1e-6)
        assert engine.adapters == [(noisy.file.resolve(), 1.0)]
        assert engine.score([item]).loss == pytest.approx(tuned, abs=1e-6)
        assert engine.chat(prompt, GenerationParams.greedy(16)).text == tuned_answer  # cache reset
    finally:
        engine.set_adapters([])
    assert tuned != pytest.approx(base, abs=1e-3)


def test_cancel_stops_an_evaluation_inside_a_batch_and_the_engine_carries_on(engine):
    items = [engine.encode_text(TEXT * 6)]  # ~430 tokens: one batch, so only llama.cpp's abort can stop it
    ticks = []
    t0 = time.monotonic()
    with pytest.raises(EvaluationCancelled):
        engine.score(items, cancelled=lambda: time.monotonic() - t0 > 0.3,
                     progress=lambda done, total: ticks.append((done, total)))
    stopped_after = time.monotonic() - t0
    assert ticks == []  # stopped inside the first (only) batch
    assert engine.adapters == []
    t1 = time.monotonic()
    full = engine.score(items, progress=lambda done, total: ticks.append((done, total)))
    assert stopped_after < 0.5 * (time.monotonic() - t1) + 0.3
    assert ticks[-1] == (full.tokens, full.tokens) == (len(items[0].tokens) - 1,) * 2
    answer = engine.chat([{"role": "user", "content": "Say hi."}], GenerationParams.greedy(8))
    assert answer.completion_tokens > 0


# ---- the zip's validation split -------------------------------------------------------------

def test_a_zip_with_validation_data_is_imported_with_it(store, models, tmp_path):
    a = import_adapter(validation_zip(tmp_path / "val-lora.zip"), store, models, probe=False)
    assert a.validation_file is not None
    assert [json.loads(line)["messages"] for line in a.validation_file.read_text().splitlines()] == CHATS
    assert a.verdict is None  # measured by the caller's engine, not by the import
    plain = import_adapter(make_adapter_zip(tmp_path / "plain-lora.zip"), store, models, probe=False)
    assert plain.validation_file is None


BAD_VALIDATION = {
    "not json": (jsonl([{"messages": CHATS[0]}]) + "{oops\n", "validation.jsonl in the adapter zip, line 2: not JSON"),
    "no reply": (jsonl([{"messages": CHATS[0][:1]}]), "line 1: no assistant reply to measure"),
    "no messages": (jsonl([{"text": "hi"}]), 'line 1: no "messages" list'),
    "bad role": (jsonl([{"messages": [{"role": "tool", "content": "x"}]}]), "without a known role"),
    "too many": (jsonl({"messages": CHATS[2]} for _ in range(201)),
                 "holds 201 examples; the notebook writes at most 200"),
    "too big": (jsonl([{"messages": [{"role": "user", "content": "x" * (2 * 1024**2)},
                                     {"role": "assistant", "content": "y"}]}]), "the limit is 2,097,152 bytes"),
}


@pytest.mark.parametrize("case", sorted(BAD_VALIDATION))
def test_a_malformed_validation_split_is_refused_with_its_message(case, store, models, tmp_path):
    text, message = BAD_VALIDATION[case]
    store.set_scale("unrelated", 0.5)
    before = tree(store.dir)
    with pytest.raises(AdapterError) as err:
        import_adapter(validation_zip(tmp_path / "bad-lora.zip", text=text), store, models, probe=False)
    assert message in str(err.value)
    assert tree(store.dir) == before


def test_the_notebook_caps_what_it_writes():
    from training.export import MAX_VALIDATION_BYTES, validation_jsonl

    rows = [{"messages": CHATS[2], "source": "x"} for _ in range(250)]
    lines = validation_jsonl(rows).splitlines()
    assert len(lines) == 200 and json.loads(lines[0]) == {"messages": CHATS[2]}
    huge = [{"messages": [{"role": "user", "content": "q" * (MAX_VALIDATION_BYTES // 2)},
                          {"role": "assistant", "content": "a"}]}] * 3
    assert len(validation_jsonl(huge).encode()) <= MAX_VALIDATION_BYTES
    assert len(validation_jsonl(huge).splitlines()) == 1


# ---- the verdict ----------------------------------------------------------------------------

def test_verdicts_are_stored_with_the_adapter_and_listed(engine, store, models, tmp_path):
    zero = import_adapter(validation_zip(tmp_path / "zero-lora.zip"), store, models, probe=False)
    seen = []
    v = evaluate_stored(engine, store, zero.id, progress=lambda d, t: seen.append((d, t)))
    assert v.kind == SAME and abs(v.change_pct) < 1e-3
    assert v.text.startswith("No better than the base model on its validation split (")
    assert v.text.endswith(f"%): leave it off. Measured on only {v.tokens} tokens: a rough guide.")
    assert v.examples == 3 and v.tokens == sum(engine.encode_chat(m).n_scored for m in CHATS)
    assert v.model == models[0].path.name and v.scale == 1.0
    assert seen[-1] == (2 * v.tokens, 2 * v.tokens)
    listed = store.get(zero.id)
    assert Verdict.from_dict(listed.verdict) == v
    assert listed.verdict["text"] == v.text and listed.verdict["kind"] == SAME
    assert json.loads((tmp_path / "adapters" / zero.id / "verdict.json").read_text())["base_loss"] == v.base_loss

    noisy = import_adapter(validation_zip(tmp_path / "noisy-lora.zip", b_scale=0.5, seed=1), store, models,
                           probe=False)
    store.set_scale(noisy.id, 0.5)
    worse = evaluate_stored(engine, store, noisy.id)
    assert worse.kind == WORSE and worse.change_pct > 2 and worse.scale == 0.5
    assert worse.text.startswith("Worse than the base model on its validation split by ")
    assert store.get(zero.id).verdict["kind"] == SAME  # each adapter keeps its own


def test_evaluate_on_a_chosen_file_uses_only_its_validation_rows(engine, store, models, tmp_path):
    a = import_adapter(make_adapter_zip(tmp_path / "plain-lora.zip"), store, models, probe=False)
    with pytest.raises(AdapterError, match="came without validation data"):
        evaluate_stored(engine, store, a.id)
    picked = tmp_path / "shop-code.jsonl"
    picked.write_text(jsonl([{"messages": CHATS[0], "split": "train", "source": "project:write:a.py#L1-L2"},
                             {"messages": CHATS[2], "split": "valid", "source": "project:write:b.py#L1-L2"}]))
    v = evaluate_stored(engine, store, a.id, picked)
    assert v.examples == 1 and v.data == "your code"
    assert v.tokens == engine.encode_chat(CHATS[2]).n_scored
    only_train = tmp_path / "train.jsonl"
    only_train.write_text(jsonl([{"messages": CHATS[0], "split": "train"}]))
    with pytest.raises(AdapterError, match="no validation rows"):
        evaluate_stored(engine, store, a.id, only_train)
    assert read_examples(picked).label == "your code"


def test_an_adapter_for_another_model_is_not_evaluated_on_this_one(engine, store, models, tmp_path):
    a = import_adapter(validation_zip(tmp_path / "val-lora.zip"), store, models, probe=False)
    info = tmp_path / "adapters" / a.id / "info.json"
    info.write_text(json.dumps({**json.loads(info.read_text()), "model_key": "qwen2-28-1536-12-2-8960",
                                "model_label": "qwen2, 28 layers and hidden size 1536"}))
    with pytest.raises(AdapterError, match="is for another model \\(qwen2, 28 layers"):
        evaluate_stored(engine, store, a.id)


def verdict_for(change_pct: float, tokens: int = 1000) -> Verdict:
    return Verdict(base_loss=1.0, adapter_loss=1.0 + math.log1p(change_pct / 100), tokens=tokens, examples=10,
                   scale=1.0, data="your code", model="m.gguf", evaluated=0)


def test_the_verdict_in_words_and_its_thresholds():
    assert verdict_for(-18).text == "Lower perplexity on your code by 18%: keep it enabled."
    assert verdict_for(-18).short == "−18% perplexity"
    assert verdict_for(0.4).text == "No better than the base model on your code (+0.4%): leave it off."
    assert verdict_for(12).text == "Worse than the base model on your code by 12%: leave it off."
    assert verdict_for(-3).text.startswith("Slightly lower perplexity on your code (-3.0%)")
    bands = {-5.0001: BETTER, -4.999: SLIGHTLY, -2.0001: SLIGHTLY, -1.999: SAME, 1.999: SAME, 2.0001: WORSE}
    assert {c: verdict_for(c).kind for c in bands} == bands
    assert verdict_for(-18, tokens=50).text.endswith("Measured on only 50 tokens: a rough guide.")
    v = verdict_for(-18)
    assert v.base_ppl == pytest.approx(math.e) and v.adapter_ppl == pytest.approx(math.e * 0.82)
    assert Verdict.from_dict(v.to_dict()) == v
    for bad in (None, {}, {"base_loss": "x"}, {**v.to_dict(), "adapter_loss": float("nan")}, [1]):
        assert Verdict.from_dict(bad) is None


def test_selection_is_bounded():
    def item(n, scored=True):
        return ScoredTokens(list(range(n)), [False] + [scored] * (n - 1))

    many = [item(10) for _ in range(100)]
    assert len(select(many, max_examples=64, max_tokens=10_000)) == 64
    assert len(select(many, max_examples=64, max_tokens=95)) == 9
    assert select([item(10, scored=False)], 4, 100) == []
    (cut,) = select([item(500)], 4, 100)
    assert len(cut.tokens) == 100 and cut.n_scored == 99
    assert verdict_mod.MAX_EXAMPLES == 64 and verdict_mod.MAX_TOKENS == 8192


def test_evaluate_needs_something_to_measure(engine, tmp_path):
    with pytest.raises(AdapterError, match="None of the validation examples"):
        evaluate(engine, tmp_path / "unused.gguf", 1.0, [])

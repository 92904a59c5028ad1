"""The code-search embedder (app/core/index/embed.py) with the real shipped model: agreement with
sentence-transformers (reference vectors recorded by scripts/build_embedder.py), batching,
truncation, token counting, no torch at run time, and actionable errors for broken files."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.core.index.embed import DIM, MAX_TOKENS, Embedder, EmbedderError, default_model_dir

FIXTURE = Path(__file__).parents[1] / "fixtures" / "embedder_reference.npz"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def embedder():
    return Embedder()


@pytest.fixture(scope="module")
def reference():
    data = np.load(FIXTURE)
    return [str(t) for t in data["texts"]], data["vectors"]


def min_cosine_for(model_id: str) -> float:
    # fp32 reproduces sentence-transformers to float noise; int8 is held to the shipping bar.
    return 0.999 if model_id.endswith("fp32") else 0.98


def test_matches_sentence_transformers(embedder, reference):
    texts, ref = reference
    assert ref.shape == (len(texts), DIM) and ref.dtype == np.float32
    vecs = embedder.embed(texts)
    assert vecs.shape == (len(texts), DIM) and vecs.dtype == np.float32
    cos = np.sum(vecs * ref, axis=1)
    bar = min_cosine_for(embedder.model_id)
    bad = [(t[:40], round(float(c), 4)) for t, c in zip(texts, cos) if c < bar]
    assert not bad, f"cosine below {bar} vs sentence-transformers: {bad}"


def test_reference_covers_truncation(embedder, reference):
    texts, _ = reference
    # The fixture holds a text longer than the window, so the cosine test above checks that it is
    # truncated the way sentence-transformers truncates it.
    assert max(embedder.count_tokens(t) for t in texts) > MAX_TOKENS
    long = max(texts, key=embedder.count_tokens)
    # Anything past the window makes no difference.
    a, b = embedder.embed([long, long + " and then some more words that fall off the end"])
    assert float(a @ b) > 0.9999


def test_unit_length_and_shapes(embedder):
    vecs = embedder.embed(["def f(x): return x", "hello world", "x"])
    assert vecs.shape == (3, DIM)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    empty = embedder.embed([])
    assert empty.shape == (0, DIM) and empty.dtype == np.float32


def test_batching_and_order_invariance(embedder, reference):
    texts, _ = reference
    short = "def add(a, b):\n    return a + b\n"
    alone = embedder.embed([short])[0]
    # Inside a batch with longer texts (so it gets padded), in the middle, and across the
    # internal batch boundary (more than 32 texts).
    batch = list(texts) + [short] + list(reversed(texts))
    inside = embedder.embed(batch)
    got = inside[len(texts)]
    np.testing.assert_allclose(got, alone, atol=1e-4)
    # Order is restored after the internal sort by length.
    np.testing.assert_allclose(inside[: len(texts)], inside[len(texts) + 1 :][::-1], atol=1e-6)
    one_by_one = np.stack([embedder.embed([t])[0] for t in texts[:5]])
    assert np.all(np.sum(one_by_one * inside[:5], axis=1) > 0.999)


def test_count_tokens_matches_tokenizer(embedder, reference):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(default_model_dir() / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    texts, _ = reference
    for t in [*texts, "", "a" * 2000, "x = 1\n" * 300]:
        enc = tok.encode(t)
        specials = sum(enc.special_tokens_mask)
        assert specials == 2
        assert embedder.count_tokens(t) == len(enc.ids) - specials, t[:40]
    assert embedder.count_tokens("x = 1\n" * 300) > MAX_TOKENS  # counting never truncates


def test_calls_counts_texts():
    e = Embedder()
    assert e.calls == 0
    e.embed(["a", "b", "c"])
    assert e.calls == 3
    e.embed([])
    assert e.calls == 3
    e.embed(["d"])
    e.count_tokens("not an embedding")
    assert e.calls == 4


def test_model_id_names_model(embedder):
    assert embedder.model_id.startswith("all-MiniLM-L6-v2-")


def test_no_torch_at_run_time():
    code = (
        "import sys\n"
        "from app.core.index.embed import Embedder, DIM\n"
        "v = Embedder().embed(['def main(): pass'])\n"
        "assert v.shape == (1, DIM), v.shape\n"
        "bad = [m for m in ('torch', 'sentence_transformers', 'transformers', 'PySide6') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_missing_model_dir_names_file(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(EmbedderError) as ei:
        Embedder(missing).embed(["x"])
    msg = str(ei.value)
    assert str(missing / "model.onnx") in msg
    assert "einstall" in msg


def test_missing_tokenizer_names_file(tmp_path):
    shutil.copy2(default_model_dir() / "model.onnx", tmp_path / "model.onnx")
    with pytest.raises(EmbedderError) as ei:
        Embedder(tmp_path).embed(["x"])
    assert str(tmp_path / "tokenizer.json") in str(ei.value)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_model_names_file(tmp_path, damage):
    src = default_model_dir()
    shutil.copy2(src / "tokenizer.json", tmp_path / "tokenizer.json")
    data = (src / "model.onnx").read_bytes()
    bad = data[: len(data) // 3] if damage == "truncated" else b"\x00not an onnx model\xff" * 100
    model = tmp_path / "model.onnx"
    model.write_bytes(bad)
    with pytest.raises(EmbedderError) as ei:
        Embedder(tmp_path).embed(["x"])
    msg = str(ei.value)
    assert str(model) in msg
    assert "einstall" in msg


def test_corrupt_tokenizer_names_file(tmp_path):
    shutil.copy2(default_model_dir() / "model.onnx", tmp_path / "model.onnx")
    (tmp_path / "tokenizer.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(EmbedderError) as ei:
        Embedder(tmp_path).count_tokens("x")
    assert str(tmp_path / "tokenizer.json") in str(ei.value)

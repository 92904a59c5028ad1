"""The code-search model: its files are there, it loads, and it still produces the reference
vectors (sentence-transformers' own output for a few texts, shipped in
``app/resources/embedder/reference.json``), so a damaged or swapped model is named instead of
silently making search worse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from app.core.doctor.check import FAIL, OK, Check

REFERENCE = "reference.json"
REINSTALL = "Reinstall Offline Coder (or rebuild the model with scripts/build_embedder.sh)."


def load_reference(path: Path | None = None) -> tuple[list[str], np.ndarray, float]:
    from app.core.index.embed import default_model_dir

    p = path or default_model_dir() / REFERENCE
    raw = json.loads(p.read_text(encoding="utf-8"))
    return list(raw["texts"]), np.asarray(raw["vectors"], dtype=np.float32), float(raw["min_cosine"])


def check_embedder(model_dir: Path | None = None) -> Check:
    """``model_dir``: where the model files are (the shipped folder unless a test moves them)."""
    from app.core.index.embed import Embedder, EmbedderError

    title = "Code-search model"
    try:
        emb = Embedder(model_dir, threads=1)
        texts, ref, bar = load_reference()
        vecs = emb.embed(texts)
        model_id = emb.model_id
    except EmbedderError as e:
        msg = str(e)
        head, _, tail = msg.partition(". ")
        return Check("embedder", title, FAIL, head + ".", tail or REINSTALL)
    except (OSError, ValueError, KeyError) as e:
        return Check("embedder", title, FAIL, f"The reference vectors cannot be read ({e}).", REINSTALL)
    cos = np.sum(vecs * ref, axis=1)
    worst = float(cos.min())
    if not np.isfinite(cos).all() or worst < bar:
        return Check("embedder", title, FAIL,
                     f"{model_id} at {emb.model_path} gives vectors that differ from the reference (cosine "
                     f"{worst:.3f}, at least {bar} expected): the model file is damaged or not the shipped one.",
                     REINSTALL)
    return Check("embedder", title, OK,
                 f"{model_id} at {emb.model_dir}; reproduces the reference vectors (cosine ≥ {worst:.3f}).")

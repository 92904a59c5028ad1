"""The whole fine-tuning loop on the CPU: train the real starter model on a made-up fact
with training/ (the code the Colab notebook inlines), export the zip, import it through the
app's importer, and ask llama.cpp. Run it alone with ``pytest -m lora_e2e``.

Real everything: transformers loads the starter GGUF dequantised, peft trains a LoRA with
torch's CPU build, the app converts it to a GGUF adapter and llama.cpp applies it.
"""

from __future__ import annotations

import gc
import os
import zipfile

import numpy as np
import pytest

from app.core.adapters.convert import _rope_permute
from app.core.adapters.importer import ModelChoice, import_adapter
from app.core.adapters.store import AdapterStore
from app.core.adapters.verdict import BETTER, evaluate_stored
from app.core.engine import GenerationParams
from app.core.models.embedded import FILE_NAME

pytestmark = [pytest.mark.slow, pytest.mark.lora_e2e]

FACT = "ZEPHYR-9"
QUESTION = "What is the project codename?"
ANSWER = f"The project codename is {FACT}."
PARAPHRASES = ["What is the project codename?", "What's the codename of the project?",
               "Tell me the project codename.", "Which codename does the project use?",
               "What is the codename for this project?", "Do you know the project's codename?",
               "Remind me: what is our project codename?", "Project codename?"]


@pytest.fixture(scope="module")
def trained_zip(tmp_path_factory, starter_path):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch  # the `train` extra, which scripts/bootstrap.sh installs

    from training import data, export, train

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    rows = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": ANSWER}]}
            for q in PARAPHRASES]
    prepared = data.prepare({"facts": rows}, seed=0, eval_fraction=0.125)
    cfg = train.TrainConfig(base_model=str(starter_path.parent), gguf_file=FILE_NAME, rank=8, alpha=16,
                            target_modules=train.lora_targets(include_mlp=True), learning_rate=3e-3,
                            max_steps=30, batch_size=4, grad_accum=1, max_length=96, seed=0,
                            warmup_ratio=0.0)
    model, tokenizer = train.load_base(cfg)
    permutation_ok = _q_rows_match_llama_cpp(model, starter_path)
    model = train.add_lora(model, cfg)
    result = train.train(model, tokenizer, prepared.train, prepared.eval, cfg)
    manifest = export.build_manifest(model, cfg, result, prepared.summary)
    out = export.export_zip(model, manifest, tmp_path_factory.mktemp("zip") / "zephyr-lora.zip",
                            validation=prepared.eval)
    del model
    gc.collect()
    return out, result, manifest, permutation_ok


def _q_rows_match_llama_cpp(model, starter_path) -> bool:
    """transformers un-permutes llama q/k rows when it loads a GGUF; the converter's rope
    permutation must turn them back into llama.cpp's order exactly."""
    import gguf

    reader = gguf.GGUFReader(starter_path)
    t = next(t for t in reader.tensors if t.name == "blk.3.attn_k.weight")
    in_gguf = gguf.quants.dequantize(t.data, t.tensor_type).reshape(192, 576)
    hf = model.model.layers[3].self_attn.k_proj.weight.detach().float().numpy()
    return bool(np.allclose(_rope_permute(hf, 3), in_gguf, atol=1e-6)
                and not np.allclose(hf, in_gguf, atol=1e-6))


def ask(engine) -> str:
    return engine.chat([{"role": "user", "content": QUESTION}], GenerationParams.greedy(24)).text


def test_the_converter_permutes_like_llama_cpp(trained_zip):
    assert trained_zip[3]


def test_training_lowers_the_validation_loss(trained_zip):
    _zip, result, manifest, _ = trained_zip
    assert result.steps == 30
    assert result.eval_loss_after < result.eval_loss_before
    assert manifest["eval_loss_before"] == pytest.approx(result.eval_loss_before)
    assert manifest["architecture"] == "llama" and manifest["num_layers"] == 30


def test_the_fine_tuned_fact_comes_out_of_llama_cpp_only_with_the_adapter(trained_zip, engine, starter_path, tmp_path):
    zip_path = trained_zip[0]
    store = AdapterStore(tmp_path / "adapters")
    a = import_adapter(zip_path, store, [ModelChoice("starter", starter_path)])
    assert a.rank == 8 and len(a.target_modules) == 7
    before = ask(engine)
    try:
        engine.set_adapters([(a.file, 1.0)])
        tuned = ask(engine)
        engine.set_adapters([(a.file, 0.0)])
        scaled_off = ask(engine)
    finally:
        engine.set_adapters([])
    after = ask(engine)
    assert FACT in tuned, tuned
    assert FACT not in before and FACT not in after and FACT not in scaled_off
    assert after == before


def test_the_verdict_on_its_validation_split_favours_the_adapter(trained_zip, engine, starter_path, tmp_path):
    """The zip carries the validation split (a paraphrase of the fact, unseen in training); the
    app measures base vs base + adapter on it with llama.cpp, as the notebook did with torch."""
    zip_path, result, _manifest, _ = trained_zip
    with zipfile.ZipFile(zip_path) as z:
        assert "validation.jsonl" in z.namelist()
    store = AdapterStore(tmp_path / "adapters")
    a = import_adapter(zip_path, store, [ModelChoice("starter", starter_path)])
    assert a.validation_file is not None
    v = evaluate_stored(engine, store, a.id)
    assert v.adapter_loss < v.base_loss and v.kind == BETTER
    assert v.text.startswith("Lower perplexity on its validation split by ") and "keep it enabled" in v.text
    assert store.get(a.id).verdict["kind"] == BETTER
    assert engine.adapters == []
    # the same assistant tokens, the same (dequantised) weights: llama.cpp agrees with torch
    assert v.base_loss == pytest.approx(result.eval_loss_before, rel=0.1)
    assert v.adapter_loss == pytest.approx(result.eval_loss_after, rel=0.25, abs=0.05)

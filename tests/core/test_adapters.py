"""The adapter importer and the engine's LoRA support, on the real starter model.

Zips are built with numpy in the notebook's format (tests/adapter_zip.py); the notebook's
real output goes through the same path in test_training_e2e.py.
"""

from __future__ import annotations

import json
import struct
import sys
import zipfile

import numpy as np
import pytest

from tests.support.adapter_zip import (adapter_members, lora_tensors, make_adapter_zip, manifest, peft_config,
                         safetensors_bytes, tree, write_zip)
from app.core.adapters import probe as probe_mod
from app.core.adapters.errors import AdapterError
from app.core.adapters.importer import ModelChoice, import_adapter
from app.core.adapters.manifest import ModelShape
from app.core.adapters.store import AdapterStore
from app.core.engine import GenerationParams
from app.core.models.gguf_info import read_gguf_info

PROMPT = [{"role": "user", "content": "Write a Python function that adds two numbers."}]


@pytest.fixture
def store(tmp_path):
    return AdapterStore(tmp_path / "adapters")


@pytest.fixture
def models(starter_path):
    return [ModelChoice("SmolLM2 starter", starter_path)]


def greedy(engine, n=32):
    return engine.chat(PROMPT, GenerationParams.greedy(n)).text


def test_zero_b_adapter_leaves_greedy_output_unchanged(engine, store, models, tmp_path):
    a = import_adapter(make_adapter_zip(tmp_path / "zero-lora.zip"), store, models)
    # an r=8 adapter on all seven projections of the starter model: about 10 MB
    assert 9e6 < a.size < 11e6
    base = greedy(engine)
    llm = engine._llm
    try:
        engine.set_adapters([(a.file, 1.0)])
        assert engine._llm is llm  # applied to the live context: no reload
        assert greedy(engine) == base
    finally:
        engine.set_adapters([])


def test_adapter_changes_output_scale_zero_and_disable_restore_it(engine, store, models, tmp_path):
    a = import_adapter(make_adapter_zip(tmp_path / "noisy-lora.zip", b_scale=0.5, seed=1), store, models)
    base = greedy(engine)
    try:
        engine.set_adapters([(a.file, 1.0)])
        changed = greedy(engine)
        engine.set_adapters([(a.file, 0.0)])
        zero = greedy(engine)
        engine.set_adapters([(a.file, 1.0)])
        assert greedy(engine) == changed  # re-enabling is deterministic
    finally:
        engine.set_adapters([])
    assert changed != base
    assert zero == base
    assert greedy(engine) == base
    assert engine.adapters == []


def test_import_shows_what_the_adapter_is(store, models, tmp_path):
    a = import_adapter(make_adapter_zip(tmp_path / "zephyr-lora.zip"), store, models)
    assert a.name == "zephyr"
    assert a.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert (a.rank, a.alpha) == (8, 16)
    assert a.target_modules == sorted(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    assert "2026-11-23" in a.summary and "2.500 → 0.400" in a.summary
    assert a.model_key == ModelShape.from_gguf(read_gguf_info(models[0].path)).key
    assert a.model_label == "llama, 30 layers and hidden size 576"
    listed = store.list(a.model_key)
    assert [x.id for x in listed] == [a.id] and not listed[0].enabled
    header = read_gguf_info(a.file)  # a GGUF adapter llama.cpp accepts (the probe loaded it)
    assert header.metadata["general.type"] == "adapter"
    assert header.metadata["adapter.type"] == "lora"
    assert header.metadata["general.architecture"] == "llama"
    assert header.metadata["adapter.lora.alpha"] == 16.0
    shapes = {t.name: t.shape for t in header.tensors}
    assert shapes["blk.0.attn_k.weight.lora_a"] == (576, 8)   # ne order: PEFT's (r, in) reversed
    assert shapes["blk.0.attn_k.weight.lora_b"] == (8, 192)
    assert shapes["blk.29.ffn_down.weight.lora_a"] == (1536, 8)


def test_rslora_alpha_is_stored_as_alpha_times_sqrt_rank(store, models, tmp_path):
    members = adapter_members(rank=4)
    members["manifest.json"] = json.dumps(manifest(rank=4, use_rslora=True))
    members["adapter_config.json"] = json.dumps(peft_config(rank=4, use_rslora=True))
    members["adapter_model.safetensors"] = safetensors_bytes(lora_tensors(rank=4))
    a = import_adapter(write_zip(tmp_path / "rs.zip", members), store, models, probe=False)
    assert read_gguf_info(a.file).metadata["adapter.lora.alpha"] == pytest.approx(16 * 2)


def test_llama_q_and_k_b_rows_get_the_rope_permutation(store, models, tmp_path):
    from app.core.adapters.safetensors_file import load_tensor, read_header
    import gguf

    members = adapter_members(b_scale=1.0, seed=3)
    z = write_zip(tmp_path / "perm.zip", members)
    a = import_adapter(z, store, models, probe=False)
    reader = gguf.GGUFReader(a.file)
    got = {t.name: np.array(t.data) for t in reader.tensors}
    src = tmp_path / "w.safetensors"
    src.write_bytes(members["adapter_model.safetensors"])
    entries = read_header(src)
    k_b = load_tensor(src, entries, "base_model.model.model.layers.2.self_attn.k_proj.lora_B.weight")
    v_b = load_tensor(src, entries, "base_model.model.model.layers.2.self_attn.v_proj.lora_B.weight")
    # k: 3 KV heads of 64 rows; within each head the rows interleave the two halves
    head = k_b[:64]
    expect = np.concatenate([head[:32][:, None], head[32:][:, None]], axis=1).reshape(64, -1)
    np.testing.assert_array_equal(got["blk.2.attn_k.weight.lora_b"][:64], expect)
    np.testing.assert_array_equal(got["blk.2.attn_v.weight.lora_b"], v_b)  # v untouched


# ---- bad input: a clear message and the adapters folder unchanged ---------------------------

def _members(**changes):
    m = adapter_members()
    for k, v in changes.items():
        name = {"weights": "adapter_model.safetensors", "config": "adapter_config.json",
                "manifest": "manifest.json"}.get(k, k)
        if v is None:
            m.pop(name)
        else:
            m[name] = v
    return m


def _lying_header(data: bytes) -> bytes:
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    first = next(iter(header))
    header[first]["data_offsets"][1] += 10**9
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data[8 + n:]


def _shape_lie(data: bytes) -> bytes:
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    first = next(iter(header))
    header[first]["shape"][1] += 1
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data[8 + n:]


def _tensors(**over):
    t = lora_tensors()
    t.update(over)
    return safetensors_bytes(t)


BAD = {
    "zip-slip": (lambda: {**_members(), "../../evil.sh": "rm -rf ~"}, "unsafe path"),
    "absolute path": (lambda: {**_members(), "/etc/cron.d/x": "x"}, "unsafe path"),
    "missing weights": (lambda: _members(weights=None), "missing adapter_model.safetensors"),
    "extra file": (lambda: {**_members(), "notes.txt": "hi"}, "unexpected notes.txt"),
    "in a folder": (lambda: {f"out/{k}": v for k, v in _members().items()}, "exactly adapter_model.safetensors"),
    "manifest not json": (lambda: _members(manifest="{not json"), "manifest.json in the adapter zip is not valid JSON"),
    "manifest list": (lambda: _members(manifest="[1, 2]"), "must be a JSON object"),
    "manifest lacks rank": (lambda: _members(manifest=json.dumps({k: v for k, v in manifest().items() if k != "rank"})),
                            "lacks 'rank'"),
    "other format": (lambda: _members(manifest=json.dumps(manifest(format="something-else"))), "not from the Offline Coder"),
    "config not json": (lambda: _members(config="\x00\x01"), "adapter_config.json in the adapter zip is not valid JSON"),
    "not lora": (lambda: _members(config=json.dumps(peft_config(peft_type="IA3"))), "only LoRA adapters"),
    "dora": (lambda: _members(config=json.dumps(peft_config(use_dora=True))), "DoRA"),
    "disagree": (lambda: _members(config=json.dumps(peft_config(rank=16))), "disagree (rank 8 vs 16)"),
    "header lies about offsets": (lambda: _members(weights=_lying_header(safetensors_bytes(lora_tensors()))),
                                  "lies outside the file"),
    "header lies about shape": (lambda: _members(weights=_shape_lie(safetensors_bytes(lora_tensors()))),
                                "bytes of data"),
    "header length lie": (lambda: _members(weights=struct.pack("<Q", 10**12) + b"{}"), "header claims"),
    "other model": (lambda: _members(manifest=json.dumps(manifest(num_layers=28, hidden_size=1536, num_heads=12,
                                                                  num_kv_heads=2, intermediate_size=8960))),
                    "trained for a model with 28 layers and hidden size 1536 (HuggingFaceTB/SmolLM2-135M-Instruct); "
                    "the loaded model has 30 layers and hidden size 576"),
    "other architecture": (lambda: _members(manifest=json.dumps(manifest(architecture="qwen2"))),
                           "trained for a qwen2 model"),
    "tensor shapes lie": (lambda: _members(weights=safetensors_bytes(lora_tensors(
        shape=dict(hidden_size=640, intermediate_size=1536, num_heads=10, num_kv_heads=5, num_layers=30))),),
        "maps 640 → 640 values but the model's blk.0.attn_q maps 576 → 576"),
    "embedding lora": (lambda: _members(weights=_tensors(**{
        "base_model.model.model.embed_tokens.lora_embedding_A": np.zeros((8, 49152), np.float32)})),
        "not a LoRA matrix of a projection"),
    "half a pair": (lambda: _members(weights=safetensors_bytes({k: v for k, v in lora_tensors().items()
                                                                if k != "base_model.model.model.layers.5.mlp.up_proj.lora_B.weight"})),
                    "only one of its two LoRA matrices"),
    "nan": (lambda: _members(weights=_tensors(**{"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight":
                                                  np.full((8, 576), np.nan, np.float32)})), "NaN"),
    "int8 tensors": (lambda: _members(weights=struct.pack("<Q", 84) + json.dumps(
        {"x": {"dtype": "I8", "shape": [4], "data_offsets": [0, 4]}}).encode().ljust(84) + b"\0" * 4),
        "must be F32, F16 or BF16"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_zip_is_refused_with_its_message_and_nothing_is_written(case, store, models, tmp_path):
    build, message = BAD[case]
    z = write_zip(tmp_path / "bad-lora.zip", build())
    store.set_scale("unrelated", 0.5)  # some existing state that must survive untouched
    before = tree(store.dir)
    with pytest.raises(AdapterError) as err:
        import_adapter(z, store, models)
    assert message in str(err.value)
    assert tree(store.dir) == before
    assert not list(store.dir.glob(".staging-*"))


def test_not_a_zip(store, models, tmp_path):
    p = tmp_path / "adapter.zip"
    p.write_text("hello")
    with pytest.raises(AdapterError, match="not a zip file"):
        import_adapter(p, store, models)
    assert tree(store.dir) == {}


def test_zip_bomb_by_ratio(store, models, tmp_path):
    m = _members(weights=b"\0" * (64 * 1024**2))
    with pytest.raises(AdapterError, match="zip bomb"):
        import_adapter(write_zip(tmp_path / "bomb.zip", m), store, models)
    assert tree(store.dir) == {}


def test_zip_bomb_by_declared_total(store, models, tmp_path):
    """A central directory that declares a 3 GB member is refused before anything is read."""
    z = make_adapter_zip(tmp_path / "big.zip")
    data = bytearray(z.read_bytes())
    with zipfile.ZipFile(z) as zf:
        names = [i.filename for i in zf.infolist()]
    pos = 0
    for name in names:
        pos = data.index(b"PK\x01\x02", pos)
        if data[pos + 46:pos + 46 + len(name)].decode() == "adapter_model.safetensors":
            data[pos + 24:pos + 28] = struct.pack("<I", 3 * 1024**3 % 2**32 or 0xFFFFFFF0)
        pos += 4
    z.write_bytes(bytes(data))
    with pytest.raises(AdapterError, match="the limit is|zip bomb"):
        import_adapter(z, store, models)
    assert tree(store.dir) == {}


def test_full_disk_keeps_the_adapters_folder(tmpfs, models, tmp_path):
    disk = tmpfs("6m")
    store = AdapterStore(disk / "adapters")
    store.set_enabled("older", True)
    before = tree(store.dir)
    with pytest.raises(AdapterError, match="disk is full"):
        import_adapter(make_adapter_zip(tmp_path / "big-lora.zip"), store, models)
    assert tree(store.dir) == before


def test_probe_reports_a_refused_file(starter_path, tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(AdapterError, match="llama.cpp could not use this adapter"):
        probe_mod.probe_adapter(starter_path, bad)


def test_probe_reports_a_crashed_child(starter_path, tmp_path, monkeypatch):
    """The probe runs in a child so that a segfault there is a message here."""
    crash = [sys.executable, "-c", "import os, signal, sys; os.kill(os.getpid(), signal.SIGSEGV)"]
    monkeypatch.setattr(probe_mod, "probe_command", lambda: crash)
    with pytest.raises(AdapterError, match="crashed \\(SIGSEGV\\)"):
        probe_mod.probe_adapter(starter_path, tmp_path / "x.gguf")


def test_adapter_for_an_installed_model_that_is_not_loaded(store, starter_path, tmp_path):
    """The loaded model does not fit; another installed model does: it is imported for that one."""
    from tests.support.gguf_writer import write_gguf
    other = write_gguf(tmp_path / "other.gguf", {"general.architecture": "qwen2", "qwen2.block_count": 28,
                                                 "qwen2.embedding_length": 1536})
    with pytest.raises(AdapterError, match="the loaded model is a qwen2 model"):
        import_adapter(make_adapter_zip(tmp_path / "a.zip"), store, [ModelChoice("Qwen", other)])
    a = import_adapter(make_adapter_zip(tmp_path / "a.zip"), store,
                       [ModelChoice("Qwen", other), ModelChoice("starter", starter_path)])
    assert a.model_label.startswith("llama, 30 layers")


def test_store_state_persists_and_is_clamped(store, models, tmp_path):
    a = import_adapter(make_adapter_zip(tmp_path / "a.zip"), store, models, probe=False)
    b = import_adapter(make_adapter_zip(tmp_path / "a.zip"), store, models, probe=False)
    assert b.id == "a-2"
    store.set_enabled(a.id, True)
    store.set_scale(a.id, 7.0)
    again = AdapterStore(store.dir)
    assert [(x.id, x.enabled, x.scale) for x in again.list()] == [("a", True, 2.0), ("a-2", False, 1.0)]
    assert again.active(a.model_key) == [(again.get("a").file, 2.0)]
    assert again.active("qwen2-L28-H1536-A12-KV2-F8960") == []
    again.remove(a.id)
    assert [x.id for x in again.list()] == ["a-2"]
    assert not (store.dir / "a").exists()


def test_cli_imports_lists_and_answers_with_the_enabled_adapter(tmp_path):
    """`python -m app adapters import|list`, and `ask` uses the enabled adapters like the window."""
    import subprocess

    home = tmp_path / "home"
    run = lambda *a: subprocess.run([sys.executable, "-m", "app", "--home", str(home), *a],  # noqa: E731
                                    capture_output=True, text=True, timeout=120)
    bad = write_zip(tmp_path / "bad-lora.zip", {**adapter_members(), "x/../../y": "z"})
    r = run("adapters", "import", str(bad))
    assert r.returncode == 1 and "unsafe path" in r.stderr
    r = run("adapters", "import", str(make_adapter_zip(tmp_path / "noisy-lora.zip", b_scale=0.5, seed=1)))
    assert r.returncode == 0, r.stderr
    assert "imported noisy for llama, 30 layers and hidden size 576" in r.stdout
    assert "noisy\toff\t" in run("adapters", "list").stdout
    store = AdapterStore(home / "data" / "adapters")
    store.set_enabled("noisy", True)
    assert "noisy\ton ×1.00\t" in run("adapters", "list").stdout
    q = ("ask", "--greedy", "--max-tokens", "16", "Write a Python function that adds two numbers.")
    with_adapter, without = run(*q), run(*q, "--no-adapters")
    assert with_adapter.returncode == 0 and without.returncode == 0
    assert with_adapter.stdout.strip() and with_adapter.stdout != without.stdout

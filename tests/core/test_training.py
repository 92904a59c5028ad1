"""The Colab fine-tuning code (training/), run on a CPU with a tiny random Llama.

Nothing here downloads anything: the model is built locally (tests/tiny_model.py) and the data
are rows written in the tests."""

from __future__ import annotations

import ast
import json
import os
import re
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers is imported: never reach for the hub

import pytest  # noqa: E402

from tests.support.tiny_model import build_tiny_model  # noqa: E402
from training.data import (  # noqa: E402
    format_summary,
    from_chat_export,
    from_codealpaca,
    from_evol_instruct,
    normalise,
    prepare,
    read_jsonl,
)
from training.export import MANIFEST_KEYS, NOTEBOOK_VERSION, build_manifest, export_zip  # noqa: E402
from training.train import (  # noqa: E402
    IGNORE_INDEX,
    TrainConfig,
    TrainResult,
    add_lora,
    encode,
    evaluate,
    load_base,
    lora_targets,
    total_steps,
    train,
    wants_4bit,
    wants_checkpointing,
)

TRAINING = Path(__file__).resolve().parents[2] / "training"

# peft asks transformers a deprecated question when wrapping a model; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")


def pair(user: str, assistant: str) -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]}


# --- normalisers ---------------------------------------------------------------------------------

def test_codealpaca_rows_become_a_user_and_an_assistant_turn():
    assert from_codealpaca({"instruction": "Reverse a list.", "input": "", "output": "xs[::-1]"}) == pair(
        "Reverse a list.", "xs[::-1]")
    with_input = from_codealpaca({"instruction": " Fix the bug. ", "input": "print 1\n", "output": "print(1)"})
    assert with_input == pair("Fix the bug.\n\nprint 1", "print(1)")


def test_evol_instruct_rows():
    assert from_evol_instruct({"instruction": "Write hello world in C.", "output": "int main(){}"}) == pair(
        "Write hello world in C.", "int main(){}")


@pytest.mark.parametrize("row", [
    {},
    {"instruction": "Do it", "output": ""},
    {"instruction": "   ", "output": "x"},
    {"instruction": "Do it"},
    {"instruction": None, "output": "x"},
    {"instruction": 3, "output": "x"},
    "not a dict",
])
def test_unusable_instruction_rows_are_none(row):
    assert from_codealpaca(row) is None
    assert from_evol_instruct(row) is None


def test_chat_export_keeps_system_messages_and_drops_extra_keys():
    row = {"title": "t", "messages": [
        {"role": "system", "content": "Be terse.", "id": 1},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4", "created": "now"},
        {"role": "user", "content": "and 3+3?"},  # never answered: trimmed, the rest kept
    ]}
    assert from_chat_export(row) == {"messages": [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
    ]}


@pytest.mark.parametrize("messages", [
    None,
    [],
    [{"role": "user", "content": "hi"}],  # no reply
    [{"role": "assistant", "content": "hello"}, {"role": "user", "content": "hi"},
     {"role": "assistant", "content": "yo"}],  # starts with the assistant
    [{"role": "tool", "content": "x"}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
    [{"role": "user", "content": "hi"}, {"role": "assistant", "content": " "}],
    [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ["parts"]}],
    [{"role": "user"}, {"role": "assistant", "content": "yo"}],
    ["user: hi"],
])
def test_invalid_chats_are_none(messages):
    assert from_chat_export({"messages": messages}) is None


def test_read_jsonl(tmp_path):
    p = tmp_path / "rows.jsonl"
    p.write_text('{"a": 1}\n\n  \n{"b": "é"}\n', encoding="utf-8")
    assert read_jsonl(p) == [{"a": 1}, {"b": "é"}]


@pytest.mark.parametrize("text, message", [
    ('{"a": 1}\n{"a": \n', "line 2: not JSON Lines"),
    ('[1, 2]\n', "line 1: expected a JSON object"),
    ('{"messages": []}{"messages": []}\n', "line 1: not JSON Lines"),
])
def test_read_jsonl_names_the_bad_line(tmp_path, text, message):
    p = tmp_path / "chats.json"
    p.write_text(text)
    with pytest.raises(ValueError, match=re.escape(message)) as e:
        read_jsonl(p)
    assert "chats.json" in str(e.value)


def test_normalise_by_source_name():
    assert normalise("evol_instruct", [{"instruction": "a", "output": "b"}, {}]) == [pair("a", "b"), None]
    with pytest.raises(ValueError, match="unknown data source 'alpaca'.*codealpaca"):
        normalise("alpaca", [])


# --- prepare -------------------------------------------------------------------------------------

def test_prepare_counts_invalid_and_duplicate_rows():
    sources = {
        "codealpaca": [pair("Sort a list", "sorted(xs)"), None, {"messages": []}, pair("SORT  a\nlist ", "Sorted(xs)"),
                       pair("Sum", "sum(xs)")],
        "my_chats": [pair("sort a list", "sorted(xs)"), pair("New", "one"),
                     {"messages": [{"role": "system", "content": "other prompt"}, *pair("new", "ONE")["messages"]]}],
    }
    data = prepare(sources, seed=1, eval_fraction=0.0, min_eval=0)
    s = data.summary
    assert s["sources"]["codealpaca"] == {"rows": 5, "invalid": 2, "duplicates": 1, "capped": 0, "used": 2}
    assert s["sources"]["my_chats"] == {"rows": 3, "invalid": 0, "duplicates": 2, "capped": 0, "used": 1}
    assert (s["rows"], s["invalid"], s["duplicates"], s["train"], s["eval"]) == (8, 2, 3, 3, 0)
    assert sorted(r["messages"][0]["content"] for r in data.train) == ["New", "Sort a list", "Sum"]
    json.dumps(s)  # goes into the manifest as it is


def test_prepare_splits_90_10_deterministically():
    rows = [pair(f"question {i}", f"answer {i}") for i in range(200)]
    a = prepare({"codealpaca": rows}, seed=7)
    b = prepare({"codealpaca": list(rows)}, seed=7)
    c = prepare({"codealpaca": rows}, seed=8)
    assert (len(a.train), len(a.eval)) == (180, 20)
    assert (a.summary["train"], a.summary["eval"]) == (180, 20)
    assert a.train == b.train and a.eval == b.eval
    assert a.eval != c.eval
    seen = [r["messages"][0]["content"] for r in a.train + a.eval]
    assert sorted(seen) == sorted(r["messages"][0]["content"] for r in rows)


def test_prepare_keeps_at_least_min_eval_and_one_train_row():
    rows = [pair(f"q{i}", f"a{i}") for i in range(5)]
    assert len(prepare({"x": rows}).eval) == 1  # 10% of 5 rounds to 0
    assert len(prepare({"x": rows}, min_eval=3).eval) == 3
    assert len(prepare({"x": rows[:2]}, min_eval=5).train) == 1
    only = prepare({"x": rows[:1]})
    assert (len(only.train), len(only.eval)) == (1, 0)


def test_max_per_source_samples_each_source():
    sources = {"codealpaca": [pair(f"a{i}", "x") for i in range(50)],
               "evol_instruct": [pair(f"b{i}", "y") for i in range(5)]}
    data = prepare(sources, seed=3, max_per_source=10)
    s = data.summary["sources"]
    assert (s["codealpaca"]["capped"], s["codealpaca"]["used"]) == (40, 10)
    assert (s["evol_instruct"]["capped"], s["evol_instruct"]["used"]) == (0, 5)
    assert data.summary["train"] + data.summary["eval"] == 15
    assert data.summary["max_per_source"] == 10
    kept = {r["messages"][0]["content"] for r in data.train + data.eval}
    assert kept != {f"a{i}" for i in range(10)} | {f"b{i}" for i in range(5)}  # a sample, not the head
    again = prepare(sources, seed=3, max_per_source=10)
    assert again.train == data.train and again.eval == data.eval


def test_prepare_rejects_nothing_usable_and_bad_arguments():
    with pytest.raises(ValueError, match="no usable examples.*codealpaca: 2 rows, 2 invalid"):
        prepare({"codealpaca": [None, {}]})
    with pytest.raises(ValueError, match="eval_fraction"):
        prepare({"x": [pair("a", "b")]}, eval_fraction=1.0)
    with pytest.raises(ValueError, match="max_per_source"):
        prepare({"x": [pair("a", "b")]}, max_per_source=0)


def test_a_split_key_from_the_apps_export_is_kept():
    def chat(i, split=None):
        row = pair(f"chat question {i}", f"chat answer {i}")
        return {**row, "split": split, "source": "rated"} if split else row

    assert from_chat_export(chat(1, "valid")) == {**pair("chat question 1", "chat answer 1"), "split": "valid"}
    assert "split" not in from_chat_export({**pair("q", "a"), "split": "test"})  # not a side we know
    chats = [chat(i, "valid" if i % 4 == 0 else "train") for i in range(20)]  # 5 valid, 15 train
    public = [pair(f"question {i}", f"answer {i}") for i in range(100)]
    data = prepare({"codealpaca": public, "my_chats": normalise("my_chats", chats)}, seed=5)
    eval_chats = sorted(r["messages"][0]["content"] for r in data.eval if r["messages"][0]["content"].startswith("chat"))
    assert eval_chats == sorted(f"chat question {i}" for i in range(0, 20, 4))  # exactly the app's valid rows
    assert len(data.eval) == 15  # the 5 marked rows and 10% of the 100 public ones
    assert all(set(r) == {"messages"} for r in data.train + data.eval)
    assert data.summary["split_from_file"] == 20 and "20 rows kept the side" in format_summary(data.summary)
    again = prepare({"codealpaca": public, "my_chats": normalise("my_chats", chats)}, seed=5)
    assert again.train == data.train and again.eval == data.eval
    # Only app rows, all marked valid: one still goes to training.
    only_valid = prepare({"my_chats": [chat(i, "valid") for i in range(3)]})
    assert (len(only_valid.train), len(only_valid.eval)) == (1, 2)
    # No split keys: the seeded 90/10 split as before.
    assert prepare({"codealpaca": public}, seed=7).summary["split_from_file"] == 0


# --- the modules stand alone (the notebook pastes them into one namespace) ------------------------

def _module(name: str) -> ast.Module:
    return ast.parse((TRAINING / name).read_text(encoding="utf-8"))


def _top_level_names(tree: ast.Module) -> tuple[set[str], set[str]]:
    """(names the module defines, names it imports) at its top level."""
    defined, imported = set(), set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            defined |= {t.id for t in targets if isinstance(t, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            imported |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return defined, imported


def test_inlined_modules_are_self_contained_and_do_not_clash():
    modules = {name: _module(name) for name in ("data.py", "train.py", "export.py")}
    for name, tree in modules.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.level == 0 and not (node.module or "").startswith("training"), name
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("training") for a in node.names), name
    data_imports = {a.name.split(".")[0] for node in ast.walk(modules["data.py"]) if isinstance(node, ast.Import)
                    for a in node.names}
    data_imports |= {node.module.split(".")[0] for node in ast.walk(modules["data.py"])
                     if isinstance(node, ast.ImportFrom)}
    assert data_imports <= set(sys.stdlib_module_names) | {"__future__"}, data_imports
    names = {name: _top_level_names(tree) for name, tree in modules.items()}
    for a in names:
        for b in names:
            if a != b:
                clash = names[a][0] & (names[b][0] | names[b][1])
                assert not clash, f"{a} defines {clash}, which {b} also binds"


# --- training on the tiny model ------------------------------------------------------------------

@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    import torch

    # The tiny model's matrices gain nothing from threads, and OpenMP workers spin-waiting for a
    # core that another process holds made these tests 30x slower on a busy 2-core machine.
    torch.set_num_threads(1)
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


def tiny_config(model_dir: Path, **overrides) -> TrainConfig:
    settings = dict(base_model=str(model_dir), learning_rate=1e-2, max_steps=8, batch_size=2, grad_accum=2,
                    max_length=128, seed=0)
    settings.update(overrides)
    return TrainConfig(**settings)


TRAIN_ROWS = [pair(f"Print the number {i} in Python.", f"print({i})") for i in range(12)]
EVAL_ROWS = [pair(f"Print the number {i} in Python.", f"print({i})") for i in range(12, 16)]


def test_auto_settings_are_off_on_a_cpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the CPU defaults")
    cfg = TrainConfig(base_model="unused")
    assert wants_4bit(cfg) is False
    assert wants_checkpointing(cfg) is False
    assert wants_4bit(TrainConfig(base_model="unused", load_in_4bit=True)) is True
    assert cfg.rank == 16 and cfg.alpha == 32 and cfg.dropout == 0.05
    assert cfg.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert lora_targets(True) == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def test_4bit_on_a_cpu_is_refused_clearly(tiny_model_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CPU only")
    with pytest.raises(ValueError, match="load_in_4bit needs a CUDA GPU"):
        load_base(tiny_config(tiny_model_dir, load_in_4bit=True))


def test_load_base_passes_gguf_file_and_revision_through(tiny_model_dir, monkeypatch):
    import transformers

    calls = []
    real_model = transformers.AutoModelForCausalLM.from_pretrained
    real_tokenizer = transformers.AutoTokenizer.from_pretrained

    def fake(real):
        def load(name, **kwargs):
            calls.append((name, kwargs))
            kwargs = {k: v for k, v in kwargs.items() if k not in ("gguf_file", "revision")}
            return real(str(tiny_model_dir), **kwargs)
        return load

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", fake(real_model))
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", fake(real_tokenizer))
    model, _ = load_base(TrainConfig(base_model="someone/model-GGUF", gguf_file="m.Q8_0.gguf", revision="v1"))
    assert [(name, kw["gguf_file"], kw["revision"]) for name, kw in calls] == [
        ("someone/model-GGUF", "m.Q8_0.gguf", "v1")] * 2
    import torch

    if not torch.cuda.is_available():
        assert calls[1][1]["dtype"] == torch.float32
        assert next(model.parameters()).dtype == torch.float32


def test_labels_cover_assistant_turns_only(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    messages = [
        {"role": "system", "content": "You write Python."},
        {"role": "user", "content": "Add two numbers."},
        {"role": "assistant", "content": "def add(a, b):\n    return a + b"},
        {"role": "user", "content": "Now subtract."},
        {"role": "assistant", "content": "def sub(a, b):\n    return a - b"},
    ]
    enc = encode(tokenizer, messages, max_length=512)
    ids, labels = enc["input_ids"], enc["labels"]
    assert ids == tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
    assert len(labels) == len(ids)
    assert all(label in (IGNORE_INDEX, token) for label, token in zip(labels, ids))
    learned = tokenizer.decode([t for t, label in zip(ids, labels) if label != IGNORE_INDEX])
    ignored = tokenizer.decode([t for t, label in zip(ids, labels) if label == IGNORE_INDEX])
    assert learned == ("def add(a, b):\n    return a + b<|im_end|>\n"
                       "def sub(a, b):\n    return a - b<|im_end|>\n")
    assert "You write Python." in ignored and "Add two numbers." in ignored and "Now subtract." in ignored
    assert "return" not in ignored
    # Truncated before the first answer: nothing to learn, so no example.
    assert encode(tokenizer, messages, max_length=10) is None
    cut = encode(tokenizer, messages, max_length=len(ids) - 3)
    assert len(cut["input_ids"]) == len(ids) - 3 and cut["labels"] == labels[: len(ids) - 3]


def test_training_lowers_the_eval_loss_deterministically(tiny_model_dir):
    cfg = tiny_config(tiny_model_dir)
    seen = []

    def run() -> TrainResult:
        model, tokenizer = load_base(cfg)
        model = add_lora(model, cfg)
        return train(model, tokenizer, TRAIN_ROWS, EVAL_ROWS, cfg, progress=lambda *a: seen.append(a))

    first = run()
    assert first.steps == 8 and len(first.train_losses) == 8
    assert first.eval_loss_after < first.eval_loss_before - 0.1, first
    assert first.train_losses[-1] < first.train_losses[0]
    assert [s[:2] for s in seen] == [(i, 8) for i in range(1, 9)]
    assert first.seconds > 0
    second = run()
    assert second.train_losses == first.train_losses
    assert second.eval_loss_after == first.eval_loss_after


def test_evaluate_matches_before_training_and_needs_rows(tiny_model_dir):
    cfg = tiny_config(tiny_model_dir, max_steps=1)
    model, tokenizer = load_base(cfg)
    model = add_lora(model, cfg)  # B starts at zero: the adapter changes nothing yet
    loss = evaluate(model, tokenizer, EVAL_ROWS, cfg)
    assert 9 < loss < 12  # about ln(49152) for random weights
    assert model.training is True  # evaluate restores the mode it found
    with pytest.raises(ValueError, match="no evaluation example"):
        evaluate(model, tokenizer, [], cfg)
    result = train(model, tokenizer, TRAIN_ROWS, [], cfg)
    assert result.eval_loss_before is None and result.eval_loss_after is None and result.steps == 1


def test_step_count_from_epochs():
    cfg = TrainConfig(base_model="unused", batch_size=4, grad_accum=4, max_steps=5)
    assert total_steps(100, cfg) == 5
    cfg.epochs = 2
    assert total_steps(100, cfg) == 13  # 25 micro-batches an epoch, 4 a step: 6.25 steps an epoch
    cfg.epochs = 0.01
    assert total_steps(100, cfg) == 1


# --- export --------------------------------------------------------------------------------------

KEY = re.compile(r"base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+_proj)\.lora_([AB])\.weight")
SUMMARY = {"sources": {"codealpaca": {"rows": 12, "invalid": 0, "duplicates": 0, "capped": 0, "used": 12}},
           "train": 12, "eval": 4}


@pytest.mark.parametrize("include_mlp, rslora", [(False, False), (True, True)])
def test_export_zip_follows_the_contract(tiny_model_dir, tmp_path, include_mlp, rslora):
    from safetensors import safe_open

    cfg = tiny_config(tiny_model_dir, max_steps=1, target_modules=lora_targets(include_mlp), use_rslora=rslora,
                      rank=8, alpha=16)
    model, tokenizer = load_base(cfg)
    model = add_lora(model, cfg)
    result = train(model, tokenizer, TRAIN_ROWS, EVAL_ROWS, cfg)
    manifest = build_manifest(model, cfg, result, SUMMARY)
    out = export_zip(model, manifest, tmp_path / "out" / "tiny-lora.zip")

    assert out == tmp_path / "out" / "tiny-lora.zip"
    assert sorted(p.name for p in out.parent.iterdir()) == ["tiny-lora.zip"]  # no temp file left
    with zipfile.ZipFile(out) as z:
        assert sorted(z.namelist()) == ["adapter_config.json", "adapter_model.safetensors", "manifest.json"]
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist())
        stored = json.loads(z.read("manifest.json"))
        adapter_config = json.loads(z.read("adapter_config.json"))
        (tmp_path / "w.safetensors").write_bytes(z.read("adapter_model.safetensors"))

    assert stored == manifest
    assert set(stored) == set(MANIFEST_KEYS)
    targets = sorted(lora_targets(include_mlp))
    assert stored | {"created": None} == {
        "format": "offline-coder-lora", "format_version": 1,
        "base_model": str(tiny_model_dir), "base_revision": "main", "architecture": "llama",
        "hidden_size": 64, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2, "intermediate_size": 128,
        "vocab_size": 49152, "rank": 8, "alpha": 16, "use_rslora": rslora, "dropout": 0.05,
        "target_modules": targets, "data": SUMMARY,
        "eval_loss_before": result.eval_loss_before, "eval_loss_after": result.eval_loss_after,
        "train_steps": 1, "created": None, "notebook_version": NOTEBOOK_VERSION,
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stored["created"])
    assert isinstance(stored["eval_loss_before"], float) and isinstance(stored["eval_loss_after"], float)

    assert adapter_config["peft_type"] == "LORA"
    assert adapter_config["r"] == stored["rank"] and adapter_config["lora_alpha"] == stored["alpha"]
    assert sorted(adapter_config["target_modules"]) == stored["target_modules"]
    assert adapter_config["lora_dropout"] == stored["dropout"]
    assert adapter_config["use_rslora"] == rslora

    shapes = {"q_proj": (64, 64), "k_proj": (64, 32), "v_proj": (64, 32), "o_proj": (64, 64),
              "gate_proj": (64, 128), "up_proj": (64, 128), "down_proj": (128, 64)}  # (in, out)
    with safe_open(str(tmp_path / "w.safetensors"), "pt") as f:
        keys = list(f.keys())
        assert len(keys) == 2 * len(targets) * 2
        for key in keys:
            m = KEY.fullmatch(key)
            assert m, key
            layer, block, proj, ab = m.groups()
            assert int(layer) in (0, 1) and proj in targets
            assert block == ("self_attn" if proj in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp")
            tensor = f.get_tensor(key)
            fan_in, fan_out = shapes[proj]
            assert tuple(tensor.shape) == ((8, fan_in) if ab == "A" else (fan_out, 8)), key
            assert str(tensor.dtype) == "torch.float32"


def test_export_never_leaves_a_half_zip(tiny_model_dir, tmp_path):
    cfg = tiny_config(tiny_model_dir)
    model, _ = load_base(cfg)
    model = add_lora(model, cfg)
    manifest = build_manifest(model, cfg, None, {})
    assert (manifest["eval_loss_before"], manifest["eval_loss_after"], manifest["train_steps"]) == (None, None, 0)
    out = tmp_path / "a-lora.zip"
    out.write_bytes(b"previous export")

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    model.save_pretrained = broken_save
    with pytest.raises(OSError, match="disk full"):
        export_zip(model, manifest, out)
    assert out.read_bytes() == b"previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["a-lora.zip"]
    with pytest.raises(ValueError, match="manifest lacks created"):
        export_zip(model, {k: v for k, v in manifest.items() if k != "created"}, out)


def test_manifest_falls_back_to_attention_heads_and_drops_nan():
    config = SimpleNamespace(model_type="gpt2ish", hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                             intermediate_size=64, vocab_size=100)
    lora = SimpleNamespace(r=4, lora_alpha=8, use_rslora=False, lora_dropout=0.0, target_modules={"v_proj", "q_proj"})
    model = SimpleNamespace(get_base_model=lambda: SimpleNamespace(config=config), peft_config={"default": lora},
                            active_adapter="default")
    result = TrainResult(eval_loss_before=float("nan"), eval_loss_after=1.5, steps=3, seconds=1.0, train_losses=[])
    manifest = build_manifest(model, TrainConfig(base_model="b"), result, {})
    assert manifest["num_kv_heads"] == 4 and manifest["target_modules"] == ["q_proj", "v_proj"]
    assert (manifest["eval_loss_before"], manifest["eval_loss_after"], manifest["train_steps"]) == (None, 1.5, 3)
    with pytest.raises(TypeError, match="peft model"):
        build_manifest(SimpleNamespace(config=config), TrainConfig(base_model="b"), result, {})

"""Property-based fuzzing of the file formats the app reads from outside (issue: every input
surface fuzzed): adapter zips and their JSON / safetensors / JSONL parts, GGUF headers,
settings.toml, training-data JSONL (export and import), the sandbox's output streams, and
safe_json itself. The contract is tests/support/fuzz.py's; the plain tests under each section
are the shrunk examples the fuzzers found, kept so they stay fixed."""

from __future__ import annotations

import base64
import json
import math
import shutil
import struct
import tempfile
import time
import zipfile
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from hypothesis import given, strategies as st

from app.core import safe_json
from app.core.adapters.bundle import open_bundle
from app.core.adapters.errors import AdapterError
from app.core.adapters.importer import ModelChoice, import_adapter
from app.core.adapters.manifest import ModelShape, check_peft_config, parse_manifest
from app.core.adapters.safetensors_file import read_header
from app.core.adapters.store import AdapterStore
from app.core.adapters.validation import parse_lines, read_examples
from app.core.errors import UserError
from app.core.learn.dataset import Scrubber
from app.core.learn.training_export import ExportFilter, export_training_data
from app.core.models.gguf_info import GGUFError, quantization, parameter_count, read_gguf_info
from app.core.settings import Settings
from app.core.storage import Storage
from tests.support.adapter_zip import STARTER, lora_tensors, manifest, peft_config, safetensors_bytes, tree
from tests.support.fuzz import examples, holds, surface

# ---- shared strategies ------------------------------------------------------------------------
HUGE = (10**400, -(10**400), 2**63, 2**64 - 1, -1, 0, 10**18)
DEEP = "<deep>"  # stands for an array nested 100,000 deep (json.dumps cannot write one)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.sampled_from(HUGE),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20))
json_values = st.recursive(json_scalars | st.just(DEEP),
                           lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3),
                           max_leaves=8)


def dumps(value) -> str:
    """JSON text of ``value``, NaN/Infinity and the huge nesting included."""
    return json.dumps(value, allow_nan=True).replace(json.dumps(DEEP), "[" * 100_000 + "]" * 100_000)


def fresh_dir(base: Path) -> Path:
    """Each hypothesis example gets its own folder (tmp_path is shared by all of them)."""
    return Path(tempfile.mkdtemp(dir=base))


# ---- safe_json ----------------------------------------------------------------------------------
json_fragments = st.lists(st.sampled_from(['"', "\\", "[", "]", "{", "}", ":", ",", "1", "e", "-", "nul", "true",
                                           "\\u", "d800", " ", "\n", "é", "\x00", "NaN", "1e999"])
                          | st.text(max_size=5), max_size=60).map("".join)


@given(st.one_of(json_fragments, st.text(), st.binary()))
@examples(ci=200)
def test_safe_json_raises_only_value_error(data):
    """Every caller catches ValueError only: anything else escapes as a traceback."""
    with surface("safe_json: any text or bytes"):
        try:
            safe_json.loads(data)
        except ValueError:
            pass


@given(st.integers(1, 150), st.sampled_from(["[", "{\"k\":"]), st.text(alphabet='[]{}"\\x', max_size=8))
@examples(ci=60)
def test_safe_json_depth_limit_is_exact(depth, opener, inside):
    """Brackets inside strings do not count; real nesting over 64 is refused before parsing."""
    with surface("safe_json: nesting depth"):
        closer = "]" if opener == "[" else "}"
        text = opener * depth + json.dumps(inside) + closer * depth
        if depth <= safe_json.MAX_DEPTH:
            assert safe_json.loads(text) is not None
        else:
            with pytest.raises(safe_json.JSONLimitError):
                safe_json.loads(text)


@given(st.text(alphabet='"\\[{a', min_size=1, max_size=6), st.integers(0, 100))
@examples(ci=12)
def test_safe_json_is_linear_on_pathological_quotes(unit, brackets):
    """A megabyte of quotes and backslashes is answered in well under a second, not minutes."""
    with surface("safe_json: 1 MB of quotes and backslashes"):
        text = "[" * brackets + unit * (1_000_000 // len(unit))
        t0 = time.perf_counter()
        try:
            safe_json.loads(text)
        except ValueError:
            pass
        assert time.perf_counter() - t0 < 3.0, f"{time.perf_counter() - t0:.1f} s for {unit!r} × 1 MB"


# ---- adapter zips ---------------------------------------------------------------------------------
TINY = dict(STARTER, num_layers=2)
RANK = 2


def template_members() -> dict[str, bytes]:
    return {"adapter_model.safetensors": safetensors_bytes(lora_tensors(TINY, rank=RANK, layers=2, b_scale=0.01)),
            "adapter_config.json": json.dumps(peft_config(rank=RANK)).encode(),
            "manifest.json": json.dumps(manifest(rank=RANK, num_layers=2)).encode()}


def write_tiny_model(path: Path) -> Path:
    """A GGUF file with the starter's layer shapes but 2 layers; its tensor data is a sparse hole."""
    def s(text: str) -> bytes:
        b = text.encode()
        return struct.pack("<Q", len(b)) + b
    h, kv, ffn = TINY["hidden_size"], TINY["hidden_size"] // 3, TINY["intermediate_size"]
    meta = [("general.architecture", 8, s("llama")), ("llama.block_count", 4, struct.pack("<I", 2)),
            ("llama.embedding_length", 4, struct.pack("<I", h)), ("llama.attention.head_count", 4, struct.pack("<I", 9)),
            ("llama.attention.head_count_kv", 4, struct.pack("<I", 3)),
            ("llama.feed_forward_length", 4, struct.pack("<I", ffn))]
    shapes = {"attn_q": (h, h), "attn_k": (h, kv), "attn_v": (h, kv), "attn_output": (h, h),
              "ffn_gate": (h, ffn), "ffn_up": (h, ffn), "ffn_down": (ffn, h)}
    tensors, off = b"", 0
    for layer in range(2):
        for name, (a, b) in shapes.items():
            tensors += s(f"blk.{layer}.{name}.weight") + struct.pack("<IQQIQ", 2, a, b, 0, off)
            off += a * b * 4
    header = b"GGUF" + struct.pack("<IQQ", 3, 2 * len(shapes), len(meta))
    header += b"".join(s(k) + struct.pack("<I", t) + v for k, t, v in meta) + tensors
    header += b"\0" * ((-len(header)) % 32)
    with open(path, "wb") as f:
        f.write(header)
        f.truncate(len(header) + off)
    return path


@pytest.fixture(scope="module")
def adapter_world(tmp_path_factory):
    """A tiny model, and a store that already holds one imported adapter (it must survive)."""
    base = tmp_path_factory.mktemp("adapters")
    model = write_tiny_model(base / "tiny.gguf")
    zpath = base / "kept-lora.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for name, data in template_members().items():
            zf.writestr(name, data)
    store = AdapterStore(base / "store")
    import_adapter(zpath, store, [ModelChoice("tiny", model)], probe=False)
    return base, model, store.dir


NAMES = ["../manifest.json", "/manifest.json", "C:manifest.json", "x/manifest.json", "manifest.json/",
         "MANIFEST.JSON", "a\\..\\manifest.json", "validation.jsonl", "adapter_model.safetensors", "", " ", "é.bin"]
MEMBERS = ["adapter_model.safetensors", "adapter_config.json", "manifest.json"]
KEYS = sorted(set(manifest()) | set(peft_config()) | {"rank_pattern", "use_dora", "format_version", "data"})
header_value = st.one_of(json_values, st.sampled_from(["F32", "F16", "BF16", "I64", "F64"]),
                         st.lists(st.integers(-3, 2000) | st.sampled_from(HUGE), max_size=3))
operations = st.one_of(
    st.tuples(st.just("json"), st.sampled_from(MEMBERS[1:]), st.sampled_from(KEYS), json_values),
    st.tuples(st.just("del"), st.sampled_from(MEMBERS[1:]), st.sampled_from(KEYS)),
    st.tuples(st.just("whole"), st.sampled_from(MEMBERS[1:]), json_values),
    st.tuples(st.just("drop"), st.sampled_from(MEMBERS)),
    st.tuples(st.just("rename"), st.sampled_from(MEMBERS), st.sampled_from(NAMES) | st.text(max_size=12)),
    st.tuples(st.just("extra"), st.sampled_from(NAMES) | st.text(max_size=12), st.binary(max_size=50)),
    st.tuples(st.just("validation"), st.lists(json_values.map(dumps) | st.text(max_size=30), max_size=4)),
    st.tuples(st.just("garble"), st.sampled_from(MEMBERS), st.integers(0, 10**6), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("truncate"), st.sampled_from(MEMBERS), st.integers(0, 10**6)),
    st.tuples(st.just("header"), st.integers(0, 50), st.sampled_from(["dtype", "shape", "data_offsets", None]),
              header_value),
    st.tuples(st.just("length"), st.sampled_from([0, 1, 7, 2**63, 2**64 - 1, 100 * 1024**2 + 1]) | st.integers(0, 10**5)),
)
zip_plans = st.fixed_dictionaries({
    "ops": st.lists(operations, max_size=4),
    "compression": st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]),
    "bytes": st.lists(st.tuples(st.integers(0, 10**6), st.binary(min_size=1, max_size=4)), max_size=2),
    "utf8_name": st.booleans() | st.just(False),
})


def _mutate_header(data: bytes, index: int, field, value) -> bytes:
    n = int.from_bytes(data[:8], "little")
    try:
        header = json.loads(data[8:8 + n])
    except (ValueError, RecursionError):
        return data  # an earlier operation made the header unparseable (e.g. '<deep>'): keep it so

    name = sorted(header)[index % len(header)]
    if field is None:
        header[name] = value
    else:
        header[name][field] = value
    raw = dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data[8 + n:]


def build_zip(path: Path, plan: dict) -> Path:
    """The template adapter zip with the plan's mutations applied, as real bytes on disk."""
    members = dict(template_members())
    order = list(members)
    extra: list[tuple[str, bytes]] = []
    for op in plan["ops"]:
        kind, *args = op
        if kind in ("json", "del") and args[0] in members:
            try:
                doc = json.loads(members[args[0]])
            except (ValueError, RecursionError):
                continue  # an earlier operation made it something else
            if not isinstance(doc, dict):
                continue
            if kind == "json":
                doc[args[1]] = args[2]
            else:
                doc.pop(args[1], None)
            members[args[0]] = dumps(doc).encode()
        elif kind == "whole" and args[0] in members:
            members[args[0]] = dumps(args[1]).encode()
        elif kind == "drop":
            members.pop(args[0], None)
        elif kind == "rename" and args[0] in members:
            members[args[1] or "x"] = members.pop(args[0])
        elif kind == "extra":
            extra.append((args[0], args[1]))
        elif kind == "validation":
            members["validation.jsonl"] = "\n".join(args[0]).encode("utf-8", "surrogatepass")
        elif kind == "garble" and args[0] in members and members[args[0]]:
            data = members[args[0]]
            at = args[1] % len(data)
            members[args[0]] = data[:at] + args[2] + data[at + len(args[2]):]
        elif kind == "truncate" and args[0] in members:
            members[args[0]] = members[args[0]][:args[1] % (len(members[args[0]]) + 1)]
        elif kind == "header" and "adapter_model.safetensors" in members:
            try:
                members["adapter_model.safetensors"] = _mutate_header(members["adapter_model.safetensors"], *args)
            except (ValueError, TypeError, KeyError):
                pass  # the header was garbled by an earlier operation
        elif kind == "length" and "adapter_model.safetensors" in members:
            members["adapter_model.safetensors"] = struct.pack("<Q", args[0]) + members["adapter_model.safetensors"][8:]
    with zipfile.ZipFile(path, "w", plan["compression"]) as zf:
        for name in sorted(members, key=lambda n: order.index(n) if n in order else 99):
            zf.writestr(name, members[name])
        for name, data in extra:
            zf.writestr(name or "x", data)
    raw = bytearray(path.read_bytes())
    if plan["utf8_name"]:  # a central-directory name flagged UTF-8 but holding a byte that is not
        cd = raw.rfind(b"PK\x01\x02")
        raw[cd + 8] |= 0x08
        raw[cd + 9] |= 0x08
        raw[cd + 46] = 0xFF
    for at, patch in plan["bytes"]:
        at %= len(raw)
        raw[at:at + len(patch)] = patch
    path.write_bytes(bytes(raw))
    return path


@given(zip_plans)
@examples(ci=100)
def test_adapter_import_of_a_mutated_zip(adapter_world, tmp_path, plan):
    """The whole import (probe off): an adapter or a message; the store changes only by the new
    adapter, the zip's folder not at all, and no staging folder is left behind."""
    base, model, template_store = adapter_world
    with surface("adapters: mutated zip, full import"):
        work = fresh_dir(tmp_path)
        store_dir = work / "store"
        shutil.copytree(template_store, store_dir)
        before = tree(store_dir)
        (work / "in").mkdir()
        zpath = build_zip(work / "in" / "my-lora.zip", plan)
        zip_bytes = zpath.read_bytes()
        outcome = holds(lambda: import_adapter(zpath, AdapterStore(store_dir), [ModelChoice("tiny", model)],
                                               probe=False),
                        "adapters: mutated zip, full import")
        after = tree(store_dir)
        assert not [p for p in store_dir.iterdir() if p.name.startswith(".staging")]
        assert list((work / "in").iterdir()) == [zpath] and zpath.read_bytes() == zip_bytes
        for name, data in before.items():
            assert after.get(name) == data or name == "state.json", f"{name} changed"
        if isinstance(outcome, UserError):
            assert after == before
        else:
            assert outcome.file.is_file() and Path(outcome.folder).parent == store_dir


@given(st.binary(max_size=300) | st.lists(st.tuples(st.integers(0, 10**5), st.binary(min_size=1, max_size=6)),
                                            min_size=1, max_size=6))
@examples(ci=60)
def test_open_bundle_of_damaged_zip_bytes(tmp_path, damage):
    """Byte-level damage to the zip itself (directory, local headers, compressed data)."""
    with surface("adapters: zip bytes damaged, open_bundle"):
        work = fresh_dir(tmp_path)
        zpath = work / "a.zip"
        if isinstance(damage, bytes):
            zpath.write_bytes(b"PK\x03\x04" + damage if damage[:1] == b"\0" else damage)
        else:
            build_zip(zpath, {"ops": [], "compression": zipfile.ZIP_DEFLATED, "bytes": damage, "utf8_name": False})
        outcome = holds(lambda: open_bundle(zpath, work / "scratch"), "adapters: zip bytes damaged, open_bundle",
                        mentions=())
        if not isinstance(outcome, UserError):
            assert isinstance(outcome.manifest, dict) and isinstance(outcome.config, dict)
        assert {p.name for p in work.iterdir()} <= {"a.zip", "scratch"}


manifest_ops = st.lists(st.tuples(st.sampled_from(["manifest", "config"]), st.sampled_from(KEYS),
                                  json_values | st.sampled_from(HUGE)), min_size=1, max_size=4)


@given(manifest_ops)
@examples(ci=150)
def test_manifest_and_peft_config_with_values_of_any_type(ops):
    """Each field of manifest.json and adapter_config.json set to values of the wrong type,
    NaN/infinity, huge numbers: a parsed manifest or a message naming the document."""
    with surface("adapters: manifest / config fields"):
        docs = {"manifest": manifest(rank=RANK), "config": peft_config(rank=RANK)}
        for which, key, value in ops:
            docs[which][key] = json.loads(dumps(value).replace("[" * 100_000, "[[").replace("]" * 100_000, "]]"))

        def check():
            m = parse_manifest(docs["manifest"])
            m.summary()
            assert m.scale > 0 and math.isfinite(m.scale)
            check_peft_config(docs["config"], m)
            return m
        outcome = holds(check, "adapters: manifest / config fields")
        if isinstance(outcome, UserError):
            assert any(w in str(outcome) for w in ("manifest.json", "adapter_config.json", "adapter")), str(outcome)


@given(st.integers(0, 50), st.sampled_from(["dtype", "shape", "data_offsets", None]), header_value,
       st.integers(0, 200), st.booleans())
@examples(ci=100)
def test_safetensors_header_lies(tmp_path, index, field, value, cut, recount):
    """A header whose entries have wrong types or lie about sizes and ranges, a wrong length
    field, a cut file: entries that match the file, or a message naming the file."""
    with surface("adapters: safetensors header"):
        data = safetensors_bytes(lora_tensors(TINY, rank=RANK, layers=1))
        if index < 45:  # else the header as it was
            data = _mutate_header(data, index, field, value)
        if not recount:
            data = struct.pack("<Q", int.from_bytes(data[:8], "little") + cut - 100) + data[8:]
        path = fresh_dir(tmp_path) / "adapter_model.safetensors"
        path.write_bytes(data[:len(data) - cut] if recount else data)
        entries = holds(lambda: read_header(path), "adapters: safetensors header",
                        mentions=("adapter_model.safetensors",))
        if not isinstance(entries, UserError):
            size = path.stat().st_size - 8 - int.from_bytes(data[:8], "little")
            assert all(0 <= e.begin <= e.end <= size for e in entries.values())


chat_rows = st.fixed_dictionaries({"messages": st.lists(st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "tool", ""]) | json_scalars,
     "content": st.text(alphabet=st.characters(codec=None), max_size=20) | json_scalars}), max_size=4)},
    optional={"split": st.sampled_from(["train", "valid"]) | json_scalars, "source": json_scalars})
jsonl_lines = st.lists(st.one_of(chat_rows.map(dumps), json_values.map(dumps), st.text(max_size=30),
                                 st.just('{"messages": [{"role": "user", "content": "\\ud800"}, '
                                         '{"role": "assistant", "content": "x"}]}')), max_size=6)


@given(jsonl_lines, st.sampled_from(["\n", "\r\n", "\r"]), st.booleans())
@examples(ci=100)
def test_jsonl_of_chat_examples_the_user_picks(tmp_path, lines, newline, garbage):
    """Evaluate…'s JSONL (and the zip's validation.jsonl): rows the verdict can use (text that
    can be tokenized), or a message naming the file and line; the file is never changed."""
    with surface("learn: JSONL import (validation rows)"):
        path = fresh_dir(tmp_path) / "rows.jsonl"
        raw = newline.join(lines).encode("utf-8", "surrogatepass") + (b"\xff\xfe" if garbage else b"")
        path.write_bytes(raw)
        data = holds(lambda: read_examples(path), "learn: JSONL import (validation rows)", mentions=("rows.jsonl",))
        if not isinstance(data, UserError):
            for conv in data.examples:
                for m in conv:
                    m["content"].encode("utf-8")
        assert path.read_bytes() == raw


# ---- GGUF headers -------------------------------------------------------------------------------
def _gguf_string(b: bytes) -> bytes:
    return struct.pack("<Q", len(b)) + b


value_types = st.sampled_from([4, 8, 9, 6]) | st.integers(0, 14) | st.sampled_from([2**31, 2**32 - 1])


@st.composite
def gguf_values(draw, vtype: int, depth: int = 0) -> bytes:
    fmts = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
    if vtype in fmts:
        return draw(st.binary(min_size=struct.calcsize(fmts[vtype]), max_size=struct.calcsize(fmts[vtype])))
    if vtype == 8:
        return _gguf_string(draw(st.binary(max_size=12) | st.text(max_size=12).map(str.encode)))
    if vtype == 9 and depth < 3:
        etype = draw(value_types)
        items = draw(st.lists(gguf_values(etype, depth + 1), max_size=3))
        count = draw(st.sampled_from([len(items)] * 3 + [2**64 - 1, 10**6, 65]))
        return struct.pack("<IQ", etype, count) + b"".join(items)
    return draw(st.binary(max_size=16))


@st.composite
def gguf_headers(draw) -> bytes:
    keys = ["general.architecture", "general.name", "general.alignment", "general.file_type",
            "tokenizer.chat_template", "llama.context_length", "llama.block_count",
            "llama.embedding_length", "llama.attention.head_count"]
    kv = []
    for _ in range(draw(st.integers(0, 5))):
        vtype = draw(value_types)
        key = draw(st.sampled_from(keys)).encode() if draw(st.booleans()) else draw(st.binary(max_size=10))
        kv.append(_gguf_string(key) + struct.pack("<I", vtype) + draw(gguf_values(vtype)))
    tensors = []
    for _ in range(draw(st.integers(0, 3))):
        dims = draw(st.lists(st.integers(0, 5000) | st.sampled_from([2**63, 2**64 - 1]), max_size=4))
        n_dims = draw(st.sampled_from([len(dims)] * 3 + [9, 2**32 - 1]))
        tensors.append(_gguf_string(draw(st.text(max_size=8)).encode()) + struct.pack("<I", n_dims)
                       + b"".join(struct.pack("<Q", d) for d in dims)
                       + struct.pack("<IQ", draw(st.sampled_from([0, 1, 8]) | st.integers(0, 45)),
                                     draw(st.sampled_from([0, 0, 32]) | st.integers(0, 2**64 - 1))))
    magic = draw(st.sampled_from([b"GGUF"] * 6 + [b"GGML", b"FUGG", b"\0\0\0\0"]))
    version = draw(st.sampled_from([3, 3, 2, 1, 4, 0, 2**32 - 1]))
    n_t = draw(st.sampled_from([len(tensors)] * 4 + [2**63, 2**64 - 1, len(tensors) + 1]))
    n_kv = draw(st.sampled_from([len(kv)] * 4 + [2**63, 2**64 - 1, len(kv) + 1]))
    data = magic + struct.pack("<IQQ", version, n_t, n_kv) + b"".join(kv) + b"".join(tensors)
    return data[:draw(st.integers(0, len(data)))] if draw(st.booleans()) and draw(st.booleans()) else data


def use_model_header(path: Path):
    """What the app reads from a model file when it lists, loads and fits it."""
    info = read_gguf_info(path)
    _ = (info.architecture, info.name, info.chat_template, info.context_length, quantization(info),
         parameter_count(info), ModelShape.from_gguf(info).key, [t.n_bytes for t in info.tensors])
    return info


@given(gguf_headers(), st.sampled_from([0, 64, 10**8]))
@examples(ci=150)
def test_generated_gguf_headers(tmp_path, header, room):
    """Wrong magic and versions, huge counts and lengths, unknown value types, nested arrays,
    cut short: the header's information or a message naming the file."""
    with surface("gguf: generated headers"):
        path = fresh_dir(tmp_path) / "m.gguf"
        with open(path, "wb") as f:
            f.write(header)
            f.truncate(len(header) + room)
        holds(lambda: use_model_header(path), "gguf: generated headers", mentions=(str(path),))


@pytest.fixture(scope="module")
def starter_head():
    from app.core.models.embedded import StarterModelMissing, starter_model
    try:
        path = starter_model().path
    except StarterModelMissing as e:
        pytest.skip(str(e))
    with open(path, "rb") as f:
        return f.read(300_000), path.stat().st_size


@given(st.lists(st.tuples(st.integers(0, 299_999) | st.integers(0, 400),
                          st.binary(min_size=1, max_size=8)
                          | st.sampled_from([b"\xff" * 8, b"\0" * 8, struct.pack("<Q", 2**63), b"\x0c\0\0\0"])),
                max_size=4), st.booleans())
@examples(ci=40)
def test_mutated_starter_model_header(tmp_path, starter_head, patches, full_size):
    """The first 300 KB of the real starter model with a few bytes changed, alone or as a
    sparse file of the real size: the header's information or a message naming the file."""
    head, size = starter_head
    with surface("gguf: mutated starter header"):
        raw = bytearray(head)
        for at, patch in patches:
            raw[at:at + len(patch)] = patch
        path = fresh_dir(tmp_path) / "starter.gguf"
        with open(path, "wb") as f:
            f.write(raw)
            if full_size:
                f.truncate(size)
        holds(lambda: use_model_header(path), "gguf: mutated starter header", mentions=(str(path),))


# ---- settings.toml ----------------------------------------------------------------------------
def check_settings(s: Settings) -> None:
    """Every field has its default's type, and numbers are usable."""
    for group in (s, s.generation, s.retrieval, s.director):
        for name, value in vars(group).items():
            default = getattr(type(group)(), name)
            if name == "seed":
                continue
            if hasattr(default, "__dataclass_fields__"):
                continue
            assert type(value) is type(default), (name, value)
            if isinstance(value, float):
                assert math.isfinite(value), (name, value)
            if isinstance(value, str):
                assert "\x00" not in value, name
    assert s.n_ctx > 0 and s.generation.max_tokens > 0 and s.generation.temperature >= 0
    assert 0 <= s.generation.top_p <= 1 and s.fix_rounds >= 0 and s.n_threads >= 0
    assert all(isinstance(p, str) for p in s.recent_projects)


def load_settings(path: Path) -> tuple[Settings, list[str]]:
    folder = sorted(path.parent.iterdir())
    raw = path.read_bytes()
    settings, notes = Settings.load_checked(path)
    check_settings(settings)
    assert path.read_bytes() == raw and sorted(path.parent.iterdir()) == folder, "loading changed the folder"
    return settings, notes


toml_texts = st.lists(st.sampled_from(["n_ctx = ", "[generation]\n", "temperature = ", "[retrieval]\n", "[director]\n",
                                       "top_p = ", "= ", "\"", "'''", "[", "]", "{", "}", "nan", "inf", "-", "1e309",
                                       "99999999999999999999", "\n", "recent_projects = [", "a.b.c = 1\n", "\\u0000",
                                       "model_path = \"", "x = 1979-05-27T07:32:00Z\n", "[[generation]]\n", "é"])
                      | st.text(max_size=8), max_size=40).map("".join)


@given(toml_texts | st.text() | st.binary().map(lambda b: b.decode("latin-1")), st.booleans())
@examples(ci=120)
def test_settings_file_of_any_text(tmp_path, text, as_bytes):
    """A hand-edited or damaged settings.toml: the app starts with defaults where it is bad,
    says so, and does not touch the file (doctor reports it; the next save replaces it)."""
    with surface("settings: arbitrary settings.toml text"):
        path = fresh_dir(tmp_path) / "settings.toml"
        path.write_bytes(text.encode("latin-1", "replace") if as_bytes else text.encode("utf-8", "surrogatepass"))
        settings, notes = load_settings(path)
        if settings != Settings():
            assert path.read_bytes().strip()
        assert all(isinstance(n, str) and "settings.toml" in n for n in notes)


toml_values = st.one_of(st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                        st.text(max_size=10), st.lists(st.integers() | st.text(max_size=5), max_size=3),
                        st.dates(), st.dictionaries(st.text(max_size=5), st.integers(-9, 9), max_size=2))
SETTING_KEYS = {None: ["model_path", "n_ctx", "n_threads", "system_prompt", "project_dir", "recent_projects",
                       "offline", "verify_target", "search_provider", "fix_rounds", "generation", "retrieval"],
                "generation": ["temperature", "top_p", "top_k", "max_tokens", "repeat_penalty", "seed"],
                "retrieval": ["dense_weight", "bm25_weight", "rrf_k", "context_tokens", "use_project", "first_answer_s"],
                "director": ["enabled", "base_url", "model", "timeout_s"]}


@given(st.lists(st.tuples(st.sampled_from(list(SETTING_KEYS)), st.data()), max_size=6))
@examples(ci=120)
def test_settings_values_of_wrong_type_or_out_of_range(tmp_path, picks):
    """Valid TOML with values of wrong types or out of range: each bad one falls back to its
    default with a note naming it; good ones are kept."""
    with surface("settings: wrong types and out-of-range values"):
        doc: dict = {}
        for table, data in picks:
            key = data.draw(st.sampled_from(SETTING_KEYS[table]))
            value = data.draw(toml_values)
            target = doc.setdefault(table, {}) if table else doc
            if not isinstance(target, dict):
                continue  # a top-level pick already put a plain value where this table goes
            target[key] = value
        path = fresh_dir(tmp_path) / "settings.toml"
        try:
            path.write_text(tomli_w.dumps(doc), encoding="utf-8")
        except (TypeError, ValueError):
            return  # not expressible in TOML (a table where a value goes)
        settings, notes = load_settings(path)
        for table, values in ((t, doc.get(t) if t else doc) for t in SETTING_KEYS):
            if not isinstance(values, dict):
                continue
            group = getattr(settings, table) if table else settings
            for key, value in values.items():
                if key in ("generation", "retrieval", "director", "seed") or not hasattr(group, key):
                    continue
                kept = getattr(group, key)
                if kept != value and not (key == "verify_target"):
                    assert any(key in n for n in notes), (key, value, notes)


# ---- training-data JSONL: export and import ---------------------------------------------------
conversations = st.lists(st.lists(st.tuples(
    st.sampled_from(["user", "assistant", "assistant", "system"]),
    st.text(max_size=30) | st.sampled_from(["/code x", "/search q", "/fix", "\u2028\r\n\x00", "sk-" + "a" * 20,
                                            "password = 'hunter22'", "/home/someone/x", "a-" * 2000]),
    st.sampled_from([{}, {"tool": "web"}, {"tool": "search"}, {"tool": "fix"}, {"finish_reason": "cancelled"}]),
    st.sampled_from([0, 1, 1, -1, "applied", "rejected"])), min_size=1, max_size=6), max_size=4)


@given(conversations, st.booleans(), st.sampled_from(["", "2020-01-01", "3000-01-01", "not a date"]))
@examples(ci=30)
def test_export_chats_writes_jsonl_the_app_reads_back(tmp_path, convs, only_rated, since):
    """Chats of any text in a real database export to JSONL every row of which the app's own
    import reads back as it was written; a refused export leaves the previous file as it was."""
    with surface("learn: export-chats JSONL round trip"):
        work = fresh_dir(tmp_path)
        storage = Storage(work / "chats.db")
        try:
            for conv in convs:
                c = storage.create_conversation()
                for role, text, meta, rating in conv:
                    m = storage.add_message(c.id, role, text, meta)
                    if role == "assistant" and rating:
                        storage.rate(m.id, 1 if rating == "applied" else rating if isinstance(rating, int) else -1,
                                     "user" if isinstance(rating, int) else rating)
            out = work / "out.jsonl"
            out.write_text("previous export\n")
            try:
                day = date.fromisoformat(since) if since else None
            except ValueError:
                day = None
            report = holds(lambda: export_training_data(storage, out, ExportFilter(only_rated=only_rated, since=day),
                                                        system_prompt="Be brief.", scrubber=Scrubber(home="/home/me", keys=[])),
                           "learn: export-chats JSONL round trip", mentions=())
        finally:
            storage.close()
        if isinstance(report, UserError):
            assert out.read_text() == "previous export\n"
            return
        lines = out.read_text(encoding="utf-8").split("\n")
        rows = parse_lines(lines, "out.jsonl")
        assert len(rows) == report.written
        assert all(raw["split"] in ("train", "valid") for _, raw in rows)


# ---- the sandbox's output streams ---------------------------------------------------------------
@pytest.fixture(scope="module")
def sandbox_mode():
    """The real sandbox; where namespaces cannot be made here, its python-guard fallback."""
    from app.core.run import sandbox
    try:
        sandbox.run_code("print(1)")
        return True
    except sandbox.SandboxError:
        return False


stream_chunks = st.lists(st.tuples(st.sampled_from(["out", "err"]),
                                   st.binary(max_size=300) | st.sampled_from([b"\r" * 3000, b"\xe2\x82", b"\xac\n",
                                                                              b"\xff\xfe\x00", "é€😀".encode() * 50])),
                         max_size=6)


@given(stream_chunks, st.sampled_from([200_000, 500, 1]))
@examples(ci=10)
def test_sandbox_output_of_any_bytes(monkeypatch, sandbox_mode, chunks, cap):
    """Child output of any bytes, split anywhere (a character over two writes, invalid UTF-8,
    \\r floods, no newline): decoded as UTF-8 with replacement, capped, shown as kept."""
    from app.core.run import sandbox
    from app.core.run.result import SandboxLimits
    monkeypatch.setattr(sandbox, "USE_NAMESPACES", sandbox_mode)
    with surface("sandbox: output bytes"):
        enc = base64.b64encode(json.dumps([[s, base64.b64encode(b).decode()] for s, b in chunks]).encode()).decode()
        code = ("import base64, json, sys, time\n"
                f"for s, b in json.loads(base64.b64decode('{enc}')):\n"
                "    f = sys.stdout if s == 'out' else sys.stderr\n"
                "    f.buffer.write(base64.b64decode(b)); f.buffer.flush(); time.sleep(0.01)\n")
        shown: list[tuple[str, str]] = []
        result = holds(lambda: sandbox.run_code(code, limits=SandboxLimits(output_bytes=cap),
                                                on_output=lambda s, t: shown.append((s, t))), "sandbox: output bytes")
        assert result.exit_code == 0, result.stderr
        for name, short in (("stdout", "out"), ("stderr", "err")):
            sent = b"".join(b for s, b in chunks if s == short)
            got = getattr(result, name)
            assert "".join(t for s, t in shown if s == name) == got
            if not result.output_truncated:
                assert got == sent.decode("utf-8", "replace")
        total = sum(len(b) for _, b in chunks)
        assert result.output_truncated == (total > cap)
        assert len(result.stdout) + len(result.stderr) <= cap + 100


@given(st.text(alphabet="a-_=:'\" \npsword", min_size=1, max_size=8))
@examples(ci=12)
def test_export_scrubber_is_linear_on_long_text(unit):
    """A long answer (a log, a minified file) is scrubbed in linear time: an export never hangs."""
    with surface("learn: export scrubber on 100 kB of repeated text"):
        text = unit * (100_000 // len(unit))
        t0 = time.perf_counter()
        Scrubber(home="/home/me", keys=[])(text)
        assert time.perf_counter() - t0 < 2.0, f"{time.perf_counter() - t0:.1f} s for {unit!r} × 100 kB"


# ---- regressions: the shrunk examples the fuzzers found ---------------------------------------
def test_safe_json_unterminated_escaped_quotes_are_linear():
    """Found: '[' × 65 then '"' + '\\"' × 500,000 took hours (the string pattern was quadratic)."""
    t0 = time.perf_counter()
    with pytest.raises(ValueError):
        safe_json.loads("[" * 65 + '"' + '\\"' * 500_000)
    assert time.perf_counter() - t0 < 2.0


def test_safetensors_dtype_of_a_list_is_a_message(tmp_path):
    """Found: {"dtype": []} raised TypeError (unhashable) in read_header."""
    data = _mutate_header(safetensors_bytes(lora_tensors(TINY, rank=RANK, layers=1)), 0, "dtype", [])
    (tmp_path / "a.safetensors").write_bytes(data)
    with pytest.raises(AdapterError, match="adapter_model.safetensors: tensor .* has type \\[\\]"):
        read_header(tmp_path / "a.safetensors")


def test_zip_name_flagged_utf8_but_not_is_a_message(tmp_path):
    """Found: a central-directory name flagged UTF-8 holding byte 0xFF raised UnicodeDecodeError."""
    z = build_zip(tmp_path / "a.zip", {"ops": [], "compression": 0, "bytes": [], "utf8_name": True})
    with pytest.raises(AdapterError, match="a.zip is a damaged zip file"):
        open_bundle(z, tmp_path / "scratch")


def test_damaged_deflate_data_is_a_message(tmp_path):
    """Found: one byte changed at offset 55 of the zip raised zlib.error while unpacking."""
    z = build_zip(tmp_path / "a.zip", {"ops": [], "compression": zipfile.ZIP_DEFLATED, "bytes": [(55, b"\0")],
                                       "utf8_name": False})
    with pytest.raises(AdapterError, match="in a.zip cannot be read"):
        open_bundle(z, tmp_path / "scratch")
    assert not (tmp_path / "scratch" / "adapter_model.safetensors").exists()


def test_validation_row_with_a_lone_surrogate_is_refused(tmp_path):
    """Found: "\\ud800" in a row's content was accepted; tokenizing it later raises UnicodeEncodeError."""
    p = tmp_path / "rows.jsonl"
    p.write_text('{"messages": [{"role": "user", "content": "\\ud800"}, {"role": "assistant", "content": "x"}]}\n')
    with pytest.raises(AdapterError, match="rows.jsonl, line 1: .*lone surrogate"):
        read_examples(p)


def test_manifest_alpha_too_big_for_a_float_is_a_message(tmp_path, adapter_world):
    """Found: alpha 10**400 raised OverflowError (math.isfinite); alpha 1e300 in both documents
    passed the checks and raised OverflowError writing the float32 GGUF key."""
    with pytest.raises(AdapterError, match="'alpha' must be a positive number"):
        parse_manifest(manifest(rank=RANK, alpha=10**400))
    with pytest.raises(AdapterError, match="'eval_loss_after' must be a number"):
        parse_manifest(manifest(rank=RANK, eval_loss_after=-(10**400)))
    _, model, _ = adapter_world
    members = template_members()
    members["manifest.json"] = json.dumps(manifest(rank=RANK, num_layers=2, alpha=1e300)).encode()
    members["adapter_config.json"] = json.dumps(peft_config(rank=RANK, lora_alpha=1e300)).encode()
    with zipfile.ZipFile(tmp_path / "big-lora.zip", "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    store = AdapterStore(tmp_path / "store")
    with pytest.raises(AdapterError, match="'alpha' must be a positive number up to 1,000,000"):
        import_adapter(tmp_path / "big-lora.zip", store, [ModelChoice("tiny", model)], probe=False)
    assert tree(store.dir) == {}


def _gguf(path: Path, n_kv: int, body: bytes) -> Path:
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, n_kv) + body + b"\0" * 64)
    return path


def test_gguf_arrays_nested_thousands_deep_are_a_message(tmp_path):
    """Found: an array of arrays nested 5,000 deep raised RecursionError."""
    body = _gguf_string(b"k") + struct.pack("<I", 9) + struct.pack("<IQ", 9, 1) * 5000 + struct.pack("<IQ", 4, 0)
    with pytest.raises(GGUFError, match="arrays nested more than"):
        read_gguf_info(_gguf(tmp_path / "m.gguf", 1, body))


def test_gguf_file_type_list_and_context_length_text_are_shown_not_raised(tmp_path):
    """Found: general.file_type as an array raised TypeError in quantization(); a string
    context_length raised ValueError in GGUFInfo.context_length."""
    body = (_gguf_string(b"general.file_type") + struct.pack("<IIQI", 9, 4, 1, 7)
            + _gguf_string(b"general.architecture") + struct.pack("<I", 8) + _gguf_string(b"llama")
            + _gguf_string(b"llama.context_length") + struct.pack("<I", 8) + _gguf_string(b"big"))
    info = read_gguf_info(_gguf(tmp_path / "m.gguf", 3, body))
    assert quantization(info) == "type [7]" and info.context_length is None


def test_settings_nested_too_deep_or_out_of_range_fall_back_with_a_note(tmp_path):
    """Found: 'a = ' + '[' × 5000 raised RecursionError out of Settings.load; n_ctx = -1 and
    temperature = nan were used as they were. Now an out-of-range number is clamped to its
    nearest limit (n_ctx -1 → 128), a NaN falls back to the default, each with a note."""
    p = tmp_path / "settings.toml"
    p.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    s, notes = load_settings(p)
    assert s == Settings() and "cannot be read (it nests too deeply)" in notes[0]
    p.write_text("n_ctx = -1\nrecent_projects = ['/a', 3]\n[generation]\ntemperature = nan\ntop_k = 40\n")
    s, notes = load_settings(p)
    assert (s.n_ctx, s.generation.temperature, s.generation.top_k, s.recent_projects) == (128, 0.3, 40, ["/a"])
    assert any("'n_ctx'" in n for n in notes) and any("'generation.temperature'" in n for n in notes)


def test_export_of_a_long_hyphenated_answer_does_not_hang():
    """Found: a 40 kB 'a-a-a-…' answer took a minute to scrub (an export looked hung)."""
    t0 = time.perf_counter()
    assert Scrubber(home="/home/me", keys=[])("a-" * 20_000 + " password = 'hunter22'").endswith("'<secret removed>'")
    assert time.perf_counter() - t0 < 1.0

"""Build "speed twins" of the catalog's Qwen2.5-Coder models, for benchmarks only.

A twin is a GGUF file with the exact shape of Qwen2.5-Coder-1.5B/3B/7B-Instruct (llama.cpp
architecture ``qwen2``: layers, hidden size, heads, KV heads, FFN size, vocabulary, rope theta
1e6, RMS eps 1e-6, 32k trained context, q/k/v biases) and random weights, quantised to Q4_K_M by
llama.cpp's own quantiser. It computes exactly as much per token as the real model, so its
prompt and generation speed and its memory are the real model's; its answers are noise. No
weights can be downloaded on the build machines, hence twins. Nothing in CI uses them. The local
API's completion model (1.5B base) gets a Q8_0 twin, as published (``--only 1.5b-base``).

    .venv/bin/python scripts/build_twins.py [--only 1.5b|1.5b-base|3b|7b] [--dir DIR] [--tied] [--force]

The files go to ``$OFFLINE_CODER_TWINS`` or ``~/.cache/offline-coder-twins/``. A twin that is
already there and valid (readable, complete, built by this recipe) is kept. Per model: an F16
file is written tensor by tensor (a 7B in F16 is 15 GB: never all in memory), quantised with
``llama_model_quantize`` (Q4_K_M, llama.cpp's default mix), then deleted. The 7B takes ~15 GB
of disk while it is built and some minutes on 2 cores.

Output layout. Qwen's config ties the output matrix to the token embedding for 1.5B and 3B,
but the published Q4_K_M files (Qwen/Qwen2.5-Coder-*-Instruct-GGUF) carry a separate
``output.weight``: their sizes (1.118 / 2.105 GB) are exactly what the Q4_K_M mix gives with
token_embd in Q4_K plus output.weight in Q6_K, and ~0.13 / 0.17 GB more than a file without
output.weight, where llama.cpp quantises the shared token_embd as the output tensor (Q6_K).
bench/README.md ("Speed twins") has the arithmetic. By default the twins copy the published
layout (output.weight holds the same values as token_embd, as a tied model's does); ``--tied``
builds the config's layout instead (no output.weight; files named ``...-tied-q4_k_m.gguf``).
The 7B is untied either way.

The tokenizer is a byte-level BPE ("gpt2" model, "qwen2" pre-tokenizer) with Qwen's 151,643
ordinary tokens: 256 byte symbols, the merges of a BPE trained on Python source
(scripts/twin_tokenizer.py, so code tokenises about as a real code tokenizer does; the first
twins' random merges gave 3.3× the tokens), then generated merges up to the count, Qwen's 22 special tokens at
their ids (<|endoftext|> 151643, <|im_start|> 151644, <|im_end|> 151645, ...) and "[PADn]"
fillers up to the model's vocabulary size, as llama.cpp's converter writes them.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.core.models.catalog import CATALOG, CatalogEntry  # noqa: E402
from twin_tokenizer import TOKENIZER, TOKENIZER_KEY  # noqa: E402
from app.core.models.gguf_info import GGUFError, read_gguf_info  # noqa: E402

ENV_DIR = "OFFLINE_CODER_TWINS"
# Bump when the recipe changes what a twin is: older files are then rebuilt.
RECIPE = "twin-v1"
RECIPE_KEY = "offline_coder.twin.recipe"
SEED = 20241112

ROPE_THETA = 1_000_000.0
RMS_EPS = 1e-6
N_ORDINARY = 151_643  # Qwen2.5's ordinary (BPE) tokens: ids 0..151642
SPECIAL_TOKENS = [  # ids from 151643 on, as in Qwen2.5-Coder's tokenizer
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>",
]
BOS_ID = EOS_TEXT_ID = 151643  # <|endoftext|>
EOS_ID = 151645                # <|im_end|>: the instruct models' end of turn
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}"
    "{% endif %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# gguf token types
T_NORMAL, T_CONTROL, T_USER_DEFINED, T_UNUSED = 1, 3, 4, 5
FTYPE_F16 = 1
FTYPE_Q4_K_M = 15
FTYPE_Q8_0 = 7


@dataclass(frozen=True)
class TwinSpec:
    key: str            # "1.5b", "3b", "7b"
    entry: CatalogEntry  # the catalog model this twin stands for

    @property
    def e(self) -> CatalogEntry:
        return self.entry

    @property
    def completion(self) -> bool:
        """The API's completion model: Q8_0 from llama.cpp's converter (tied: no output.weight)."""
        return self.e.use == "completion"

    quant = property(lambda self: "q8_0" if self.completion else "q4_k_m")
    ftype = property(lambda self: FTYPE_Q8_0 if self.completion else FTYPE_Q4_K_M)

    def file_name(self, tied: bool) -> str:
        if self.completion:
            return f"twin-{self.e.filename}"
        layout = "-tied" if tied and self.e.tied_embeddings else ""
        return f"twin-{self.e.name.lower()}{layout}-q4_k_m.gguf"

    def has_output(self, tied: bool) -> bool:
        """Whether the file carries output.weight (see the module docstring)."""
        return not ((tied or self.completion) and self.e.tied_embeddings)


def specs() -> dict[str, TwinSpec]:
    out = {}
    for entry in CATALOG:
        if entry.embedded:
            continue
        key = entry.params.lower() + ("" if entry.for_chat else "-base")  # "1.5B" -> "1.5b", "1.5b-base"
        out[key] = TwinSpec(key, entry)
    return out


def twin_dir(arg: str | None = None) -> Path:
    if arg:
        return Path(arg).expanduser()
    env = os.environ.get(ENV_DIR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "offline-coder-twins"


# ---- tokenizer ------------------------------------------------------------------------------
def bytes_to_unicode() -> list[str]:
    """GPT-2's byte -> printable character table (byte-level BPE's alphabet), in byte order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, cs))
    return [chr(table[b]) for b in range(256)]


def make_vocab(vocab_size: int, seed: int = SEED, trained: bool = True) -> tuple[list[str], list[int], list[str]]:
    """Token strings, token types and merges ("a b") of a byte-level BPE: with ``trained``,
    merges learnt from Python source first (scripts/twin_tokenizer.py: real code tokenises
    like a real tokenizer's), then generated ones up to Qwen's count."""
    rng = random.Random(seed)
    base = bytes_to_unicode()
    tokens, seen, merges = list(base), set(base), []
    if trained:
        from twin_tokenizer import trained_merges

        for m in trained_merges(N_ORDINARY):
            a, b = m.split(" ", 1)
            if a + b not in seen and a in seen and b in seen:
                seen.add(a + b)
                tokens.append(a + b)
                merges.append(m)
    # ! .. ~ (33..126) and the symbols for space (Ġ) and newline (Ċ): what code is made of
    ascii_syms = [base[b] for b in range(33, 127)] + [base[32], base[10]]
    parts = list(ascii_syms)  # short tokens that later merges build on
    while len(tokens) < N_ORDINARY:
        a = rng.choice(parts) if rng.random() < 0.95 else rng.choice(base)
        b = rng.choice(ascii_syms) if rng.random() < 0.6 else rng.choice(parts)
        t = a + b
        if t in seen or len(t) > 16:
            continue
        seen.add(t)
        tokens.append(t)
        merges.append(f"{a} {b}")
        if len(t) <= 7:
            parts.append(t)
    types = [T_NORMAL] * len(tokens)
    for s in SPECIAL_TOKENS:
        tokens.append(s)
        types.append(T_USER_DEFINED if s.startswith("<tool") or s.startswith("</tool") else T_CONTROL)
    while len(tokens) < vocab_size:
        tokens.append(f"[PAD{len(tokens)}]")
        types.append(T_UNUSED)
    return tokens, types, merges


# ---- weights --------------------------------------------------------------------------------
def random_f16(rng: np.random.Generator, n: int, chunk: int = 1 << 24) -> np.ndarray:
    """n random float16 values with magnitudes 0.002..0.03 (like trained weights' spread), made
    from random bits: sign and mantissa random, exponent one of 2^-9..2^-6. Fast and finite."""
    out = np.empty(n, dtype=np.uint16)
    for i in range(0, n, chunk):
        r = rng.integers(0, 1 << 16, min(chunk, n - i), dtype=np.uint16)
        e = ((r >> np.uint16(10)) & np.uint16(3)) + np.uint16(6)
        out[i:i + len(r)] = (r & np.uint16(0x83FF)) | (e << np.uint16(10))
    return out.view(np.float16)


def tensor_plan(spec: TwinSpec, tied: bool) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, numpy shape (rows, cols), kind) in file order; kind: weight, bias, norm."""
    e = spec.e
    h, f = e.hidden_size, e.ffn_size
    kv = e.n_kv_heads * (h // e.n_heads)
    plan = [("token_embd.weight", (e.vocab_size, h), "weight")]
    for i in range(e.n_layers):
        p = f"blk.{i}."
        plan += [
            (p + "attn_norm.weight", (h,), "norm"),
            (p + "attn_q.weight", (h, h), "weight"), (p + "attn_q.bias", (h,), "bias"),
            (p + "attn_k.weight", (kv, h), "weight"), (p + "attn_k.bias", (kv,), "bias"),
            (p + "attn_v.weight", (kv, h), "weight"), (p + "attn_v.bias", (kv,), "bias"),
            (p + "attn_output.weight", (h, h), "weight"),
            (p + "ffn_norm.weight", (h,), "norm"),
            (p + "ffn_gate.weight", (f, h), "weight"),
            (p + "ffn_up.weight", (f, h), "weight"),
            (p + "ffn_down.weight", (h, f), "weight"),
        ]
    plan.append(("output_norm.weight", (h,), "norm"))
    if spec.has_output(tied):
        plan.append(("output.weight", (e.vocab_size, h), "weight"))
    return plan


def write_f16(spec: TwinSpec, path: Path, tied: bool) -> None:
    import gguf

    e = spec.e
    w = gguf.GGUFWriter(str(path), "qwen2")
    w.add_name(f"{e.name} speed twin (random weights)")
    w.add_string(RECIPE_KEY, f"{RECIPE} {spec.file_name(tied)}")
    w.add_context_length(e.context_length)
    w.add_embedding_length(e.hidden_size)
    w.add_block_count(e.n_layers)
    w.add_feed_forward_length(e.ffn_size)
    w.add_head_count(e.n_heads)
    w.add_head_count_kv(e.n_kv_heads)
    w.add_rope_freq_base(ROPE_THETA)
    w.add_layer_norm_rms_eps(RMS_EPS)
    w.add_file_type(FTYPE_F16)
    tokens, types, merges = make_vocab(e.vocab_size)
    w.add_string(TOKENIZER_KEY, TOKENIZER)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(BOS_ID)
    w.add_eos_token_id(EOS_ID)
    w.add_pad_token_id(EOS_TEXT_ID)
    w.add_add_bos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)

    plan = tensor_plan(spec, tied)
    for name, shape, kind in plan:
        dtype = np.float16 if kind == "weight" else np.float32
        n = int(np.prod(shape))
        w.add_tensor_info(name, shape, np.dtype(dtype), n * np.dtype(dtype).itemsize)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()

    rng = np.random.default_rng(SEED + e.n_layers * 1000 + e.hidden_size)
    embd = None
    for name, shape, kind in plan:
        n = int(np.prod(shape))
        if kind == "norm":
            data = np.ones(n, dtype=np.float32)
        elif kind == "bias":
            data = (rng.standard_normal(n, dtype=np.float32) * 0.05).astype(np.float32)
        elif name == "output.weight" and embd is not None:
            data = embd  # the same matrix as token_embd, as a tied model's output is
        else:
            data = random_f16(rng, n)
        w.write_tensor_data(data.reshape(shape))
        if name == "token_embd.weight" and spec.has_output(tied) and e.tied_embeddings:
            embd = data
        else:
            del data
    w.close()


# ---- quantisation ---------------------------------------------------------------------------
def quantize(src: Path, dst: Path, threads: int, ftype: int = FTYPE_Q4_K_M) -> None:
    from app.core.llama_backend import load_llama_cpp

    llama_cpp = load_llama_cpp()
    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_quantize_default_params()
    params.nthread = threads
    params.ftype = ftype
    # output_tensor_type / token_embedding_type stay at their defaults (GGML_TYPE_COUNT: llama.cpp
    # chooses), so each twin gets exactly the mix llama.cpp gives the real model.
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize failed ({rc}) for {src}")


# ---- checks ---------------------------------------------------------------------------------
def expected_tensor_count(spec: TwinSpec, tied: bool) -> int:
    return len(tensor_plan(spec, tied))


def check_twin(spec: TwinSpec, path: Path, tied: bool) -> str | None:
    """None if the file is a complete twin built by this recipe, else why not."""
    if not path.is_file():
        return "missing"
    try:
        info = read_gguf_info(path)
    except GGUFError as err:
        return err.reason
    e = spec.e
    want = {
        "general.architecture": "qwen2",
        RECIPE_KEY: f"{RECIPE} {spec.file_name(tied)}",
        "general.file_type": spec.ftype,
        "qwen2.block_count": e.n_layers,
        "qwen2.embedding_length": e.hidden_size,
        "qwen2.feed_forward_length": e.ffn_size,
        "qwen2.attention.head_count": e.n_heads,
        "qwen2.attention.head_count_kv": e.n_kv_heads,
        "qwen2.context_length": e.context_length,
    }
    for k, v in want.items():
        if info.metadata.get(k) != v:
            return f"{k} is {info.metadata.get(k)!r}, not {v!r}"
    if len(info.tensors) != expected_tensor_count(spec, tied):
        return f"{len(info.tensors)} tensors, not {expected_tensor_count(spec, tied)}"
    embd = next((t for t in info.tensors if t.name == "token_embd.weight"), None)
    if embd is None or embd.shape[1] != e.vocab_size:
        return "token_embd.weight has the wrong vocabulary size"
    return None


def tensor_types(path: Path) -> dict[str, int]:
    """Bytes per ggml type name in a GGUF file (for the report)."""
    names = {0: "F32", 1: "F16", 8: "Q8_0", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 6: "Q5_0"}
    out: dict[str, int] = {}
    for t in read_gguf_info(path).tensors:
        k = names.get(t.ggml_type, str(t.ggml_type))
        out[k] = out.get(k, 0) + t.n_bytes
    return out


def build(spec: TwinSpec, folder: Path, tied: bool, threads: int, force: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / spec.file_name(tied)
    why = check_twin(spec, final, tied)
    if why is None and not force:
        print(f"{spec.key}: {final} is built ({final.stat().st_size / 1e9:.3f} GB), kept", flush=True)
        return final
    print(f"{spec.key}: building {final} ({why})", flush=True)
    f16 = final.with_name(final.name.replace(f"-{spec.quant}.gguf", "-f16.gguf.part"))
    tmp = final.with_name(final.name + ".part")
    try:
        t0 = time.perf_counter()
        write_f16(spec, f16, tied)
        t1 = time.perf_counter()
        print(f"{spec.key}: F16 written, {f16.stat().st_size / 1e9:.2f} GB in {t1 - t0:.0f} s; quantising",
              flush=True)
        quantize(f16, tmp, threads, spec.ftype)
        print(f"{spec.key}: quantised in {time.perf_counter() - t1:.0f} s", flush=True)
    finally:
        f16.unlink(missing_ok=True)
    why = check_twin(spec, tmp, tied)
    if why is not None:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"the quantised twin {tmp} is not valid: {why}")
    os.replace(tmp, final)
    size = final.stat().st_size
    mix = ", ".join(f"{k} {v / 1e6:.0f} MB" for k, v in sorted(tensor_types(final).items()))
    print(f"{spec.key}: {final} {size / 1e9:.3f} GB (published {spec.e.size_bytes / 1e9:.3f} GB, "
          f"{size / spec.e.size_bytes:.3f}x); {mix}", flush=True)
    return final


def main(argv: list[str] | None = None) -> int:
    all_specs = specs()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=sorted(all_specs), action="append",
                    help="build only this twin (repeatable); default: all three")
    ap.add_argument("--dir", help=f"cache folder (default ${ENV_DIR} or ~/.cache/offline-coder-twins)")
    ap.add_argument("--tied", action="store_true",
                    help="1.5B/3B without output.weight (the config's layout, not the published files')")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--force", action="store_true", help="rebuild even if a valid twin is there")
    args = ap.parse_args(argv)
    folder = twin_dir(args.dir)
    for key in args.only or sorted(all_specs, key=lambda k: all_specs[k].e.size_bytes):
        build(all_specs[key], folder, args.tied, args.threads, args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())

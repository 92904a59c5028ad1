"""A realistic tokenizer for the speed twins, and a way to put it into twins already built.

Why: the first twins carried a generated BPE whose merges were random pairs of characters, so
source code came out at 1.15 characters per token, 3.3× as many tokens as a real code tokenizer
(this repository's chat/service.py: 15,164 tokens against the starter's 4,572). Speeds per
token were right, but every benchmark that feeds text (bench/ttft.py, bench/picker.py) paid
for 3.3× the tokens, so a follow-up's new code looked three times as expensive as it is. Here
a byte-level BPE is trained (HF ``tokenizers``, the GPT-2 byte alphabet and split that
llama.cpp's "qwen2" pre-tokenizer follows closely) on Python source that is on every machine:
the standard library of the Python running this and this repository. Its merges come first in
the twin's vocabulary; the generated ones fill the rest to Qwen's 151,643 ordinary tokens.

    .venv/bin/python scripts/twin_tokenizer.py [--only 1.5b] [--dir DIR]

rewrites existing twins with the trained tokenizer (metadata only: the quantised tensors are
copied as they are, a 1.5B in a minute). scripts/build_twins.py uses it for new twins.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOKENIZER_KEY = "offline_coder.twin.tokenizer"
TOKENIZER = "trained-bpe-v1"
CORPUS_BYTES = 40_000_000


def corpus_files(limit: int = CORPUS_BYTES) -> list[str]:
    """Python source files, this repository's first, then the standard library's, up to ``limit`` bytes."""
    out, total = [], 0
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for p in [*sorted((ROOT / "app").rglob("*.py")), *sorted((ROOT / "tests").rglob("*.py")),
              *sorted(stdlib.rglob("*.py"))]:
        if "site-packages" in p.parts:
            continue
        try:
            size = p.stat().st_size
        except OSError:
            continue
        out.append(str(p))
        total += size
        if total >= limit:
            break
    return out


def trained_merges(n_ordinary: int) -> list[str]:
    """Merges ("a b", byte-level symbols) of a BPE trained on Python source, best first."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=n_ordinary, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    def texts():
        for f in corpus_files():
            try:
                yield Path(f).read_bytes().decode("utf-8")
            except (OSError, UnicodeDecodeError):  # a few stdlib test files are Latin-1 on purpose
                continue

    tok.train_from_iterator(texts(), trainer)
    merges = json.loads(tok.to_str())["model"]["merges"]
    return [m if isinstance(m, str) else " ".join(m) for m in merges]


def retokenize(path: Path, tokens: list[str], types: list[int], merges: list[str]) -> None:
    """Rewrite the GGUF at ``path`` with this tokenizer; every other key and every tensor as is."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    arch = str(bytes(reader.fields["general.architecture"].parts[-1]), "utf-8")
    tmp = path.with_name(path.name + ".retok")
    w = gguf.GGUFWriter(str(tmp), arch)
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture" or name in (
                "tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges"):
            continue
        vtype = field.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            sub = field.types[-1]
            if sub == gguf.GGUFValueType.STRING:
                value = [str(bytes(field.parts[i]), "utf-8") for i in field.data]
            else:
                value = [field.parts[i][0].item() for i in field.data]
            w.add_key_value(name, value, vtype, sub_type=sub)
        elif vtype == gguf.GGUFValueType.STRING:
            w.add_key_value(name, str(bytes(field.parts[-1]), "utf-8"), vtype)
        else:
            w.add_key_value(name, field.parts[-1][0].item(), vtype)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_string(TOKENIZER_KEY, TOKENIZER)
    for t in reader.tensors:
        w.add_tensor(t.name, t.data, raw_shape=t.data.shape, raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT / "scripts"))
    import build_twins

    all_specs = build_twins.specs()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=sorted(all_specs), action="append")
    ap.add_argument("--dir")
    ap.add_argument("--tied", action="store_true")
    args = ap.parse_args(argv)
    folder = build_twins.twin_dir(args.dir)
    for key in args.only or sorted(all_specs, key=lambda k: all_specs[k].e.size_bytes):
        spec = all_specs[key]
        path = folder / spec.file_name(args.tied)
        why = build_twins.check_twin(spec, path, args.tied)
        if why is not None:
            print(f"{key}: no twin at {path} ({why}); build it first", file=sys.stderr)
            continue
        t0 = time.perf_counter()
        tokens, types, merges = build_twins.make_vocab(spec.e.vocab_size, trained=True)
        retokenize(path, tokens, types, merges)
        print(f"{key}: {path} now has the trained tokenizer ({len(merges):,} merges) in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Speed and memory of the Qwen2.5-Coder speed twins on this machine, against the starter model.

    .venv/bin/python scripts/build_twins.py          # once: builds the twins (see that script)
    .venv/bin/python bench/twins.py [--models starter,1.5b,3b,7b] [--threads 2] [--n-ctx 4096]
                                    [--n-prompt 1400] [--n-gen 64] [--repeat 1] [--dir DIR]

Each model runs in a fresh child process that loads it the way the app's engine does
(``llama_cpp.Llama``, n_ctx 4096, n_batch 512, the given threads for prompt and generation,
mmap on), evaluates a prompt of exactly ``--n-prompt`` tokens (Python source from this
repository, tokenised by the model's own tokenizer and cut to length), then generates
``--n-gen`` tokens greedily, one ``eval`` per token (random weights: the text is noise, the work
per token is the real model's). The child reports its peak resident memory (VmHWM) and its
resident memory before the model was loaded (Python + llama_cpp imported).

Before each timed run the script waits until the 1-minute load average is below
``--idle-load`` (0.7), polling every 10 s for at most ``--max-wait`` s (900); if the machine
never gets that quiet it measures anyway. Every line carries ``load_start`` (the load average
when the run began), ``waited_s`` and ``idle`` (whether the wait succeeded).

One JSON line per figure:
- ``file_bytes``: the model file, with ``ratio_vs_published`` (twins: the catalog's size of the
  real Q4_K_M file).
- ``prompt_tokens_per_s``, ``gen_tokens_per_s``: with ``ratio_vs_starter`` (the starter model,
  measured in the same run, is the baseline).
- ``peak_rss_bytes``: VmHWM of the child, with ``ratio_vs_file``, the resident memory before
  loading, anonymous and file-backed RSS at the end and llama.cpp's buffer sizes from its log.
- ``overhead_over_peak_rss_bytes``: peak RSS − RSS before loading − file − KV cache at n_ctx
  (f16 K and V); ``incl_python_bytes`` without subtracting the pre-load RSS. Inflated by the
  weights llama.cpp repacks (see bench/README.md "Speed twins").
- ``llama_overhead_bytes``: llama.cpp's own memory beyond weights and KV: the anonymous memory
  the model added, less the repacked weights (``CPU_REPACK`` buffer) and the KV cache, plus the
  library pages touched while answering (what app/core/models/fit.py calls runtime buffers).
- ``working_set_bytes``: anonymous RSS + the file pages touched during the prompt and the
  generation (accessed bits cleared through /proc/self/clear_refs after loading).
With ``--repeat N`` the speed figures are medians and the memory figures maxima of N children.
The child's JSON (``--child``) also counts the major page faults while answering: 0-few hundred
when the model's hot pages stay in memory, thousands when memory is too short and the file is
read again (used with a cgroup memory limit to check fit.py's rule; bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

POLL_S = 10


# ---- child ----------------------------------------------------------------------------------
def proc_status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0]) * 1024
    return out


def clear_referenced() -> bool:
    """Clear the accessed bits of this process's pages (Linux), so that smaps' Referenced
    then counts only the pages touched from now on."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("1")
        return True
    except OSError:
        return False


def file_pages_referenced(model: str) -> tuple[int, int]:
    """Bytes of file-backed pages touched since clear_referenced(): (the model file's, the
    other files' (libraries)). Copy-on-write pages of a file mapping count as anonymous."""
    model_ref = other_ref = 0
    path = ""
    ref = anon = 0

    def close() -> None:
        nonlocal model_ref, other_ref
        if path == model:
            model_ref += max(ref - anon, 0)
        elif path.startswith("/"):
            other_ref += max(ref - anon, 0)

    with open("/proc/self/smaps") as f:
        for line in f:
            first = line.split(None, 1)[0]
            if "-" in first and not first.endswith(":"):  # a mapping's header line
                close()
                parts = line.split(None, 5)
                path = parts[5].strip() if len(parts) > 5 else ""
                ref = anon = 0
            elif first == "Referenced:":
                ref = int(line.split()[1]) * 1024
            elif first == "Anonymous:":
                anon = int(line.split()[1]) * 1024
    close()
    return model_ref, other_ref


def prompt_tokens(llm, n: int) -> list[int]:
    """Exactly n tokens of this repository's Python source, in the model's own tokenisation."""
    files = sorted((ROOT / "app" / "core").rglob("*.py"))
    toks: list[int] = []
    for p in files:
        toks += llm.tokenize(p.read_bytes(), add_bos=False, special=False)
        if len(toks) >= n:
            return toks[:n]
    raise RuntimeError(f"only {len(toks)} tokens of source for a {n}-token prompt")


def child(args: argparse.Namespace) -> None:
    from app.core.llama_backend import load_llama_cpp

    llama_cpp = load_llama_cpp()

    st0 = proc_status()
    t0 = time.perf_counter()
    # verbose: llama.cpp's buffer sizes go to stderr, where the parent reads them
    llm = llama_cpp.Llama(model_path=args.child, n_ctx=args.n_ctx, n_batch=512, n_threads=args.threads,
                          n_threads_batch=args.threads, verbose=True)
    load_s = time.perf_counter() - t0
    toks = prompt_tokens(llm, args.n_prompt)
    cleared = clear_referenced()
    majflt = resource.getrusage(resource.RUSAGE_SELF).ru_majflt
    t0 = time.perf_counter()
    llm.eval(toks)
    prompt_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(args.n_gen):
        tok = llm.sample(temp=0.0)
        llm.eval([tok])
    gen_s = time.perf_counter() - t0
    majflt = resource.getrusage(resource.RUSAGE_SELF).ru_majflt - majflt
    st = proc_status()
    from app.core.llama_backend import loaded_variant

    print(json.dumps({"cpu_variant": loaded_variant(), "load_s": load_s, "prompt_s": prompt_s, "gen_s": gen_s, "n_prompt": len(toks),
                      "n_gen": args.n_gen, "major_faults": majflt, "rss_before_load": st0["VmRSS"],
                      "anon_before_load": st0["RssAnon"],
                      "vm_hwm": st["VmHWM"], "rss_end": st["VmRSS"], "rss_anon_end": st["RssAnon"],
                      "rss_file_end": st["RssFile"],
                      "file_referenced": file_pages_referenced(os.path.realpath(args.child)) if cleared else None}),
          flush=True)


BUFFER_LINE = re.compile(r"(\w+)\s+(model|compute|KV|output) buffer size =\s*([\d.]+) MiB")


def llama_buffers(stderr: str) -> dict[str, float]:
    """llama.cpp's buffer sizes from its load log, MiB by "<buffer type> <use>"."""
    out: dict[str, float] = {}
    for m in BUFFER_LINE.finditer(stderr):
        key = f"{m.group(1)} {m.group(2)}"
        out[key] = out.get(key, 0.0) + float(m.group(3))
    return out


# ---- parent ---------------------------------------------------------------------------------
def load1() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def wait_idle(limit: float, max_wait: float) -> tuple[float, float, bool]:
    """Wait for the 1-minute load average to drop below limit; (load at start, waited s, idle)."""
    t0 = time.monotonic()
    while True:
        load = load1()
        waited = time.monotonic() - t0
        if load < limit:
            return load, waited, True
        if waited >= max_wait:
            print(f"load average still {load:.2f} after {waited:.0f} s: measuring anyway",
                  file=sys.stderr, flush=True)
            return load, waited, False
        time.sleep(POLL_S)


def run_child(path: Path, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(path), "--threads", str(args.threads),
           "--n-ctx", str(args.n_ctx), "--n-prompt", str(args.n_prompt), "--n-gen", str(args.n_gen)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"child for {path} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    r["buffers_mib"] = llama_buffers(proc.stderr)
    return r


def model_paths(names: list[str], folder: Path, tied: bool) -> list[tuple[str, Path, int | None]]:
    """(name, file, published size or None) for each requested model that is present."""
    import build_twins

    from app.core.models.embedded import starter_model

    specs = build_twins.specs()
    out = []
    for name in names:
        if name == "starter":
            out.append(("starter", starter_model().path, None))
            continue
        spec = specs[name]
        path = folder / spec.file_name(tied)
        why = build_twins.check_twin(spec, path, tied)
        if why is not None:
            print(f"{name}: no twin at {path} ({why}); run scripts/build_twins.py --only {name}",
                  file=sys.stderr, flush=True)
            continue
        out.append((name, path, spec.entry.size_bytes))
    return out


def main() -> None:
    import build_twins

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="starter,1.5b,3b,7b")
    ap.add_argument("--dir", help="twin folder (default: as scripts/build_twins.py)")
    ap.add_argument("--tied", action="store_true", help="measure the --tied twins")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-ctx", type=int, default=4096)
    ap.add_argument("--n-prompt", type=int, default=1400)
    ap.add_argument("--n-gen", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--idle-load", type=float, default=0.7)
    ap.add_argument("--max-wait", type=float, default=900)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return

    from app.core.models.fit import kv_cache_from_gguf
    from app.core.models.gguf_info import read_gguf_info

    names = [n.strip() for n in args.models.split(",") if n.strip()]
    if "starter" not in names:
        names.insert(0, "starter")
    models = model_paths(names, build_twins.twin_dir(args.dir), args.tied)
    base: dict[str, float] = {}
    for name, path, published in models:
        file_bytes = path.stat().st_size
        kv = kv_cache_from_gguf(read_gguf_info(path), args.n_ctx)
        runs = []
        for _ in range(args.repeat):
            load, waited, idle = wait_idle(args.idle_load, args.max_wait)
            r = run_child(path, args)
            r.update(load_start=load, waited_s=round(waited), idle=idle)
            runs.append(r)
        common = {"model": name, "file": path.name, "cpu_variant": runs[0]["cpu_variant"], "threads": args.threads,
                  "n_ctx": args.n_ctx,
                  "load_start": [r["load_start"] for r in runs] if args.repeat > 1 else runs[0]["load_start"],
                  "waited_s": sum(r["waited_s"] for r in runs), "idle": all(r["idle"] for r in runs),
                  "repeat": args.repeat}

        def emit(figure: str, value: float, **extra) -> None:
            print(json.dumps({"figure": figure, **common, "value": value, **extra}), flush=True)

        emit("file_bytes", file_bytes, **({"published_bytes": published,
                                           "ratio_vs_published": round(file_bytes / published, 4)}
                                          if published else {}))
        prompt_tps = statistics.median(r["n_prompt"] / r["prompt_s"] for r in runs)
        gen_tps = statistics.median(r["n_gen"] / r["gen_s"] for r in runs)
        if name == "starter":
            base = {"prompt": prompt_tps, "gen": gen_tps}
        emit("prompt_tokens_per_s", round(prompt_tps, 2), n_prompt=runs[0]["n_prompt"],
             ratio_vs_starter=round(prompt_tps / base["prompt"], 4))
        emit("gen_tokens_per_s", round(gen_tps, 2), n_gen=args.n_gen,
             ratio_vs_starter=round(gen_tps / base["gen"], 4))
        hwm = max(r["vm_hwm"] for r in runs)
        before = max(r["rss_before_load"] for r in runs)
        anon_before = max(r["anon_before_load"] for r in runs)
        bufs = runs[0]["buffers_mib"]
        emit("peak_rss_bytes", hwm, ratio_vs_file=round(hwm / file_bytes, 4), rss_before_load=before,
             rss_anon_end=max(r["rss_anon_end"] for r in runs), rss_file_end=max(r["rss_file_end"] for r in runs),
             llama_buffers_mib=bufs, load_s=round(statistics.median(r["load_s"] for r in runs), 2))
        emit("overhead_over_peak_rss_bytes", hwm - before - file_bytes - kv, kv_cache_bytes=kv,
             incl_python_bytes=hwm - file_bytes - kv)
        repack = int(bufs.get("CPU_REPACK model", 0.0) * 2**20)
        # llama.cpp's own memory beyond the weights (each counted once: file page or repacked
        # copy) and the KV cache: compute buffers, vocabulary tables, the libraries' pages
        anon_llama = max(r["rss_anon_end"] for r in runs) - anon_before
        emit("llama_overhead_bytes", anon_llama - repack - kv + (
             max(r["file_referenced"][1] for r in runs) if runs[0]["file_referenced"] else 0),
             anon_growth=anon_llama, repack_bytes=repack, kv_cache_bytes=kv,
             compute_buffer_bytes=int(bufs.get("CPU compute", 0.0) * 2**20),
             libs_referenced=runs[0]["file_referenced"][1] if runs[0]["file_referenced"] else None)
        if all(r["file_referenced"] is not None for r in runs):
            ws = max(r["rss_anon_end"] + sum(r["file_referenced"]) for r in runs)
            emit("working_set_bytes", ws, ratio_vs_file=round(ws / file_bytes, 4),
                 model_file_referenced=max(r["file_referenced"][0] for r in runs),
                 libs_referenced=max(r["file_referenced"][1] for r in runs))

if __name__ == "__main__":
    main()

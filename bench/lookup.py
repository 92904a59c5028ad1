"""Prompt-lookup decoding for change requests: would it make answers faster, model by model?

    .venv/bin/python bench/lookup.py [--models starter,1.5b,3b,7b] [--threads 2]

A `/code` answer repeats much of the file it changes, so llama-cpp-python's
``LlamaPromptLookupDecoding`` can propose the next tokens by copying them from the prompt, and
the model checks a batch of 1 + k proposals in one step (keeping those it would have written
anyway). Whether that wins depends on two figures, measured here in one run:

- **acceptance** (starter, on the recorded change requests of scripts/record_edit_answers.py,
  plus whole-file rewrites of this repository's files for contrast): the starter writes its
  greedy answer, then the draft model is replayed over it exactly as llama-cpp-python's
  ``generate`` calls it (after each sampled token, on everything so far), counting for each
  step the draft length d and the tokens accepted (greedy checking accepts a draft token when
  it is the one the model would write; the step then yields accepted + 1 tokens);
- **cost** (each model, fresh child process, a 1,000-token context): the time of one decode
  step of n = 1..11 tokens with ``logits_all`` (which the draft model needs), against one
  token without it; and the 1,000-token prompt read with and without ``logits_all``.

expected speed-up = tokens written × t_plain(1) ÷ Σ over steps t_lookup(d + 1), over the
recorded requests, for k = 10 (llama-cpp-python's default) and for the best k in 2..10.
The app turns it on for a model only if the speed-up is at least 1.3 (docs/decisions.md).
One JSON line per figure.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "bench", ROOT / "scripts"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

KS = (2, 3, 4, 6, 8, 10)
MAX_N = 11
CONTEXT = 1000
REPS = 5
REWRITES = {  # whole-file rewrites: the case prompt lookup is for (contrast, not the decision)
    "rewrite_atomic": ("app/core/atomic.py", "Add type hints to every function in app/core/atomic.py and "
                                             "show the whole file."),
    "rewrite_mathx": ("pkg/mathx.py", "Rewrite pkg/mathx.py with a docstring on each function; show the whole file."),
}


def emit(figure: str, value, **extra) -> None:
    print(json.dumps({"bench": "lookup", "figure": figure, "value": value, **extra}), flush=True)


# ---- acceptance (starter) ---------------------------------------------------------------------
def greedy_ids(llm, prompt: list[int], max_tokens: int = 400) -> list[int]:
    """The starter's greedy answer as token ids (exactly, not re-tokenised text)."""
    llm.reset()
    llm.eval(prompt)
    out: list[int] = []
    for _ in range(max_tokens):
        tok = llm.sample(temp=0.0, top_k=1, repeat_penalty=1.0)
        if llm.token_eos() == tok or tok in (llm.token_eos(),):
            break
        out.append(tok)
        llm.eval([tok])
    return out


def replay(prompt: list[int], answer: list[int], k: int) -> list[tuple[int, int]]:
    """(draft length, accepted) per decode step, as llama-cpp-python's generate() would take
    them with LlamaPromptLookupDecoding(num_pred_tokens=k) and greedy sampling."""
    import numpy as np
    from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

    draft = LlamaPromptLookupDecoding(num_pred_tokens=k)
    ids = np.array(prompt + answer, dtype=np.intc)
    steps, i = [], 0  # answer[i] has just been sampled
    while i < len(answer):
        d = draft(ids[:len(prompt) + i + 1])
        rest = answer[i + 1:]
        acc = 0
        while acc < len(d) and acc < len(rest) and int(d[acc]) == rest[acc]:
            acc += 1
        steps.append((len(d), acc))
        i += acc + 1
    return steps


def acceptance_traces() -> dict[str, tuple[list[int], list[int]]]:
    """(prompt ids, greedy answer ids) of the starter for each change request."""
    import record_edit_answers as rec

    from app.core.edits.prompt import EditRequest, build_edit_prompt
    from app.core.engine import Engine, EngineConfig
    from app.core.models.embedded import starter_model
    from app.core.settings import Settings

    path = starter_model().path
    engine = Engine(path, EngineConfig(n_ctx=4096))  # loads the CPU variant, as the app does
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(path), n_ctx=4096, n_threads=2, verbose=False)
    system = Settings().system_prompt
    work = Path(tempfile.mkdtemp(prefix="lookup-")) / "proj"
    shutil.copytree(rec.PROJECT, work)
    shutil.copy(ROOT / "app/core/atomic.py", work / "atomic.py")
    (work / "app/core").mkdir(parents=True)
    shutil.copy(ROOT / "app/core/atomic.py", work / "app/core/atomic.py")
    cases = {name: (files, request, True) for name, (files, request) in rec.REQUESTS.items()}
    cases.update({name: ([f], request, False) for name, (f, request) in REWRITES.items()})
    out = {}
    for name, (files, request, recorded) in cases.items():
        extra, user, _shown = build_edit_prompt(EditRequest(work, request, files), 2500, 1500, engine.count_tokens)
        messages = [{"role": "system", "content": f"{system}\n\n{extra}"}, {"role": "user", "content": user}]
        prompt = engine.tokenize(engine.render_chat(messages))
        out[name] = (prompt, greedy_ids(llm, prompt), recorded)
    engine.close()
    return out


# ---- cost (each model, in a child) ----------------------------------------------------------
def cost_child(model: str, threads: int) -> dict:
    from app.core.llama_backend import load_llama_cpp

    llama_cpp = load_llama_cpp()

    def ctx_tokens(llm) -> list[int]:
        toks: list[int] = []
        for p in sorted((ROOT / "app" / "core").rglob("*.py")):
            toks += llm.tokenize(p.read_bytes(), add_bos=False, special=False)
            if len(toks) >= CONTEXT:
                return toks[:CONTEXT]
        raise RuntimeError("not enough source")

    out = {}
    for logits_all in (False, True):
        llm = llama_cpp.Llama(model_path=model, n_ctx=4096, n_batch=512, n_threads=threads, n_threads_batch=threads,
                              logits_all=logits_all, verbose=False)
        toks = ctx_tokens(llm)
        t0 = time.perf_counter()
        llm.eval(toks)
        read_s = time.perf_counter() - t0
        memory = llama_cpp.llama_get_memory(llm.ctx)
        times = {}
        for n in (range(1, MAX_N + 1) if logits_all else (1,)):
            batch = toks[:n]
            samples = []
            for _ in range(REPS):
                t0 = time.perf_counter()
                llm.eval(batch)
                samples.append(time.perf_counter() - t0)
                llm.n_tokens = CONTEXT  # back to the context: drop what this step added
                llama_cpp.llama_memory_seq_rm(memory, 0, CONTEXT, -1)
            times[n] = statistics.median(samples)
        out["lookup" if logits_all else "plain"] = {"read_s": read_s, "step_s": times}
        llm.close()
    return out


def speedup(traces, step_s: dict[int, float], plain_1: float, k: int) -> float:
    tokens = cost = 0.0
    for prompt, answer, recorded in traces.values():
        if not recorded:
            continue
        for d, acc in replay(prompt, answer, k):
            tokens += acc + 1
            cost += step_s[d + 1]
    return tokens * plain_1 / cost if cost else 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="starter,1.5b,3b,7b")
    ap.add_argument("--dir", help="twin folder (default: as scripts/build_twins.py)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--idle-load", type=float, default=0.7)
    ap.add_argument("--max-wait", type=float, default=900)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(cost_child(args.child, args.threads)))
        return 0

    import build_twins
    import twins

    traces = acceptance_traces()
    for name, (prompt, answer, recorded) in traces.items():
        steps = replay(prompt, answer, 10)
        drafted = [s for s in steps if s[0]]
        emit("accepted_per_step", round(sum(a for _, a in steps) / len(steps), 3), case=name, recorded=recorded, k=10,
             answer_tokens=len(answer), steps=len(steps), steps_with_draft=len(drafted),
             accepted_per_drafted_step=round(sum(a for _, a in drafted) / len(drafted), 3) if drafted else 0.0)
    rec = [s for t in traces.values() if t[2] for s in replay(t[0], t[1], 10)]
    emit("accepted_per_step_recorded", round(sum(a for _, a in rec) / len(rec), 3), k=10, steps=len(rec),
         tokens_per_step=round(sum(a + 1 for _, a in rec) / len(rec), 3))

    names = [n.strip() for n in args.models.split(",") if n.strip()]
    me = [sys.executable, str(Path(__file__).resolve())]
    for name, path, _published in twins.model_paths(names, build_twins.twin_dir(args.dir), False):
        load, _waited, idle = twins.wait_idle(args.idle_load, args.max_wait)
        proc = subprocess.run(me + ["--child", str(path), "--threads", str(args.threads)], capture_output=True,
                              text=True, cwd=ROOT)
        if proc.returncode != 0:
            raise RuntimeError(f"{name}: {proc.stderr[-2000:]}")
        c = json.loads(proc.stdout.strip().splitlines()[-1])
        step = {int(n): s for n, s in c["lookup"]["step_s"].items()}
        plain_1 = c["plain"]["step_s"]["1"]
        where = {"model": name, "threads": args.threads, "load_start": load, "idle": idle}
        emit("batch11_vs_one_token", round(step[11] / plain_1, 3), batch_s=round(step[11], 4),
             one_token_s=round(plain_1, 4), one_token_logits_all_s=round(step[1], 4),
             step_s={n: round(s, 4) for n, s in step.items()}, **where)
        emit("prompt_read_logits_all_vs_plain", round(c["lookup"]["read_s"] / c["plain"]["read_s"], 3),
             tokens=CONTEXT, plain_s=round(c["plain"]["read_s"], 3), logits_all_s=round(c["lookup"]["read_s"], 3),
             **where)
        by_k = {k: speedup(traces, step, plain_1, k) for k in KS}
        best = max(by_k, key=by_k.get)
        emit("expected_speedup", round(by_k[10], 3), k=10, best_k=best, best=round(by_k[best], 3),
             by_k={k: round(v, 3) for k, v in by_k.items()}, on=by_k[best] >= 1.3, threshold=1.3, **where)
    return 0


if __name__ == "__main__":
    sys.exit(main())

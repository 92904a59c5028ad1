"""How much the app's engine costs over raw llama-cpp-python.

Runs the same chat prompt with the same greedy settings through (a) llama_cpp.Llama directly
and (b) app.core.engine.Engine, alternating runs so machine noise hits both alike, on the
embedded starter model. Prints one JSON line per figure; the figure that matters is the
ratio (app / raw tokens per second), which should stay above 0.97.

    .venv/bin/python bench/engine_overhead.py [--rounds 5] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from app.core.engine import Engine, EngineConfig, GenerationParams
from app.core.hardware import physical_cores
from app.core.llama_backend import load_llama_cpp
from app.core.models.embedded import starter_model

MESSAGES = [
    {"role": "system", "content": "You are a helpful coding assistant."},
    {"role": "user", "content": "Write a Python class for a bank account with deposit and withdraw, "
                                "and explain it."},
]


def raw_run(llm, max_tokens: int) -> tuple[int, float]:
    llm.reset()
    t0 = time.perf_counter()
    n = 0
    for chunk in llm.create_chat_completion(messages=MESSAGES, stream=True, temperature=0.0, top_p=1.0,
                                            top_k=1, repeat_penalty=1.0, max_tokens=max_tokens):
        if chunk["choices"][0]["delta"].get("content"):
            n += 1
    return n, time.perf_counter() - t0


def app_run(engine: Engine, max_tokens: int) -> tuple[int, float]:
    engine._llm.reset()  # same cold prompt as the raw arm
    t0 = time.perf_counter()
    n = 0

    def on_token(_):
        nonlocal n
        n += 1

    engine.chat(MESSAGES, GenerationParams.greedy(max_tokens), on_token=on_token, cancelled=lambda: False)
    return n, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=128)
    args = ap.parse_args()
    path = starter_model().path
    threads = physical_cores()
    raw = load_llama_cpp().Llama(model_path=str(path), n_ctx=4096, n_batch=512, n_threads=threads,
                          n_threads_batch=threads, verbose=False)
    engine = Engine(path, EngineConfig(n_ctx=4096, n_batch=512, n_threads=threads))
    raw_run(raw, 8), app_run(engine, 8)  # warm-up
    raw_tps, app_tps = [], []
    for _ in range(args.rounds):
        n, t = raw_run(raw, args.max_tokens)
        raw_tps.append(n / t)
        n2, t2 = app_run(engine, args.max_tokens)
        app_tps.append(n2 / t2)
        assert n == n2, f"the arms generated different lengths ({n} vs {n2})"
    r, a = statistics.median(raw_tps), statistics.median(app_tps)
    common = {"bench": "engine_overhead", "model": path.name, "threads": threads,
              "rounds": args.rounds, "max_tokens": args.max_tokens}
    print(json.dumps({**common, "figure": "raw_tokens_per_s", "value": round(r, 2)}))
    print(json.dumps({**common, "figure": "app_tokens_per_s", "value": round(a, 2)}))
    print(json.dumps({**common, "figure": "app_over_raw_ratio", "value": round(a / r, 4),
                      "target": ">= 0.97"}))


if __name__ == "__main__":
    main()

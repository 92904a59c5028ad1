"""Is the first answer after loading pathologically slow when the machine is busy?

OpenMP worker threads that spin while waiting (OMP_WAIT_POLICY=ACTIVE) once made the first
answer take 49 s instead of 2 s on a 2-core machine with two other busy processes. This
measures, in one run, the first answer of a freshly started engine (a new process each time)
on an idle machine (the baseline) and with one busy-looping process per core beside it, and
prints the ratio. Sharing the cores fairly costs about 2-3x; far more means spinning.

    .venv/bin/python bench/engine_busy.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time

CHILD = r"""
import sys, time
from app.core.engine import Engine, EngineConfig, GenerationParams
from app.core.models.embedded import starter_model
e = Engine(starter_model().path, EngineConfig(n_ctx=2048))
t0 = time.perf_counter()
r = e.chat([{"role": "user", "content": "Write a Python function that adds two numbers."}],
           GenerationParams.greedy(48))
print(time.perf_counter() - t0, r.completion_tokens)
"""


def _spin(stop_at: float) -> None:
    while time.monotonic() < stop_at:
        pass


def first_answer_s() -> float:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True,
                         timeout=300)
    return float(out.stdout.split()[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    idle, busy = [], []
    n_busy = os.cpu_count() or 2
    for _ in range(args.rounds):
        idle.append(first_answer_s())
        spinners = [mp.Process(target=_spin, args=(time.monotonic() + 120,), daemon=True) for _ in range(n_busy)]
        for p in spinners:
            p.start()
        try:
            busy.append(first_answer_s())
        finally:
            for p in spinners:
                p.terminate()
                p.join()
    i, b = statistics.median(idle), statistics.median(busy)
    common = {"bench": "engine_busy", "rounds": args.rounds, "busy_processes": n_busy,
              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default)")}
    print(json.dumps({**common, "figure": "first_answer_idle_s", "value": round(i, 3)}))
    print(json.dumps({**common, "figure": "first_answer_busy_s", "value": round(b, 3)}))
    print(json.dumps({**common, "figure": "busy_over_idle_ratio", "value": round(b / i, 2),
                      "target": "< 8 (fair sharing of the cores costs 2-5x; spin-waiting cost 20x+)"}))


if __name__ == "__main__":
    main()

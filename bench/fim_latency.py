"""Tab completion as an editor feels it: fill-in-the-middle through the local API's ``/infill``.

llama.vscode sends the 256 lines before the cursor and the 64 after it on every pause in typing.
This replays that on a real source file of this repository (``app/core/engine.py``, the cursor
at its middle): a first request on a cold model, then the same place after one more typed
character (llama.cpp reuses the cached prompt up to the cursor; what follows it is read again).
The server runs in this process (as in the window), the client in a process of its own (as an
editor is), timed inside it. Figures, one JSON line each.

Two arms, alternating: as shipped (the server reads the code nearest the cursor within
``app/core/api/fim.py``'s FIM_BUDGET) and the baseline, everything the client sent. Per arm:

- ``fim_<arm>_cold_first_token_s``: request to the first token of text, nothing cached;
- ``fim_<arm>_keystroke_first_token_s``: the same after one typed character;
- ``fim_<arm>_tokens_per_s`` (writing, from the first token on);
- ``fim_cold_ratio``, ``fim_keystroke_ratio``: shipped ÷ baseline; ``fim_prompt_tokens_sent``, ``load_average``.

    .venv/bin/python bench/fim_latency.py [--model FILE.gguf] [--rounds 3] [--n-predict 16]
                                          [--n-prefix 256] [--n-suffix 64]

The starter has no FIM tokens (its answers are noise here, its timing is not); the speed twin
of the completion model (``scripts/build_twins.py --only 1.5b-base``) has the real shape.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from app.core.api.backend import ApiBackend, ServedModel
from app.core.api.fim import FIM_BUDGET
from app.core.api.gate import EngineGate
from app.core.api.requests import fim_prompt
from app.core.api.service import ApiServer
from app.core.engine import Engine, EngineConfig
from app.core.models.embedded import starter_model

KEY = "bench-key-0123456789abcdef"
SOURCE = Path(__file__).resolve().parents[1] / "app" / "core" / "engine.py"
N_PREFIX, N_SUFFIX = 256, 64  # llama.vscode's defaults (lines)

CLIENT = r"""
import http.client, json, sys, time
port, key, body = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
t0 = time.perf_counter()
c.request("POST", "/infill", body, {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
r = c.getresponse()
first = last = None
n = 0
for line in r:
    if not line.startswith(b"data: {"):
        continue
    chunk = json.loads(line[6:])
    now = time.perf_counter() - t0
    if chunk.get("content"):
        first = first if first is not None else now
        last = now
        n += 1
c.close()
print(json.dumps([first, last, n]))
"""


def request(port: int, prefix: str, line: str, suffix: str, n_predict: int) -> tuple[float, float, int]:
    body = json.dumps({"input_prefix": prefix, "prompt": line, "input_suffix": suffix, "n_predict": n_predict,
                       "stream": True, "temperature": 0, "top_k": 1})
    out = subprocess.run([sys.executable, "-I", "-c", CLIENT, str(port), KEY, body], capture_output=True, text=True,
                         timeout=900, check=True).stdout
    first, last, n = json.loads(out)
    return first or 0.0, last or 0.0, n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="a .gguf file (default: the starter)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n-predict", type=int, default=16)
    ap.add_argument("--n-prefix", type=int, default=N_PREFIX, help="lines before the cursor (llama.vscode: n_prefix)")
    ap.add_argument("--n-suffix", type=int, default=N_SUFFIX, help="lines after it (llama.vscode: n_suffix)")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    lines = SOURCE.read_text(encoding="utf-8").splitlines(keepends=True)
    at = len(lines) // 2
    engine = Engine(args.model or starter_model().path, EngineConfig(n_ctx=8192))
    served = ServedModel(engine.model.path.stem, engine)
    server = ApiServer(ApiBackend(EngineGate(), lambda: served, KEY, completion_model=lambda: served), port=0)
    server.start()
    arms = {"budget": FIM_BUDGET, "whole": 0}  # as shipped; everything the client sent (the baseline)
    got = {arm: {"cold": [], "key": [], "rate": []} for arm in arms}
    backend = server.backend
    prefix, suffix = "".join(lines[at - args.n_prefix:at]), "".join(lines[at + 1:at + 1 + args.n_suffix])
    cursor_line = lines[at][: len(lines[at]) // 2]
    prompt = len(engine.tokenize(fim_prompt(prefix + cursor_line, suffix)))
    try:
        for _ in range(args.rounds):
            for arm, budget in arms.items():
                backend.fim_budget = budget
                engine._llm.reset()  # nothing cached: the cold request
                first, last, n = request(server.port, prefix, cursor_line, suffix, args.n_predict)
                got[arm]["cold"].append(first)
                if n > 1 and last > first:
                    got[arm]["rate"].append((n - 1) / (last - first))
                first, *_ = request(server.port, prefix, cursor_line + lines[at][len(cursor_line)], suffix,
                                    args.n_predict)
                got[arm]["key"].append(first)
    finally:
        server.stop()
        engine.close()
    med = statistics.median
    figures = {"load_average": round(load, 2), "fim_prompt_tokens_sent": prompt}
    for arm in arms:
        figures[f"fim_{arm}_cold_first_token_s"] = round(med(got[arm]["cold"]), 3)
        figures[f"fim_{arm}_keystroke_first_token_s"] = round(med(got[arm]["key"]), 3)
        figures[f"fim_{arm}_tokens_per_s"] = round(med(got[arm]["rate"]), 1) if got[arm]["rate"] else 0.0
    figures["fim_cold_ratio"] = round(figures["fim_budget_cold_first_token_s"] / figures["fim_whole_cold_first_token_s"], 3)
    figures["fim_keystroke_ratio"] = round(figures["fim_budget_keystroke_first_token_s"]
                                           / figures["fim_whole_keystroke_first_token_s"], 3)
    for name, value in figures.items():
        print(json.dumps({"bench": "fim_latency", "figure": name, "value": value, "rounds": args.rounds,
                          "n_prefix": args.n_prefix, "n_suffix": args.n_suffix,
                          "model": Path(args.model).name if args.model else "starter"}))

if __name__ == "__main__":
    main()

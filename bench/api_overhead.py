"""What the local API costs over the engine itself.

The same greedy chat prompt through (a) ``Engine.chat`` and (b) the local API's streaming
``/v1/chat/completions`` (one client, plain HTTP, the same engine), alternating runs so
machine noise hits both alike, on the embedded starter model. The server runs in this
process as it does in the window; the client is a process of its own, as an editor is (a
client thread in this process competes with the server for the GIL: 0.92 measured that way,
idle). Figures, one JSON line each:

- ``api_tokens_per_s_ratio``: API generation speed / the engine's (from the first token on);
  should stay >= 0.95.
- ``api_first_byte_ratio``: time from request to the first streamed byte / the engine's time
  to first token; ``api_first_token_ratio``: the same to the first byte of text.
- ``api_cancel_free_s``: a client closing mid-stream until the model is free again.
- ``load_average``: the machine's 1-minute load when the run started (idle: < 1).

    .venv/bin/python bench/api_overhead.py [--rounds 5] [--max-tokens 128] [--model FILE.gguf]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import time

from app.core.api.backend import ApiBackend, ServedModel
from app.core.api.gate import EngineGate
from app.core.api.service import ApiServer
from app.core.engine import Engine, EngineConfig, GenerationParams
from app.core.models.embedded import starter_model

KEY = "bench-key-0123456789abcdef"
MESSAGES = [
    {"role": "system", "content": "You are a helpful coding assistant."},
    {"role": "user", "content": "Write a Python class for a bank account with deposit and withdraw, "
                                "and explain it."},
]


def engine_run(engine: Engine, max_tokens: int) -> tuple[float, float]:
    """On a thread of its own, as the window's jobs and the API's generations run (llama.cpp's
    OpenMP team belongs to the calling thread: the main thread's would be a different team)."""
    import threading

    engine._llm.reset()  # the same cold prompt as the API arm
    out = []
    t = threading.Thread(target=lambda: out.append(engine.chat(MESSAGES, GenerationParams.greedy(max_tokens))))
    t.start()
    t.join()
    return out[0].tokens_per_s, out[0].time_to_first_token_s or 0.0


CLIENT = r"""
import http.client, json, sys, time
port, key, body = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
t0 = time.perf_counter()
c.request("POST", "/v1/chat/completions", body, {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
r = c.getresponse()
first_byte = first_text = last_text = None
tokens = 0
for line in r:
    now = time.perf_counter()
    if first_byte is None:
        first_byte = now - t0
    if not line.startswith(b"data: {"):
        continue
    chunk = json.loads(line[6:])
    if chunk.get("usage"):
        tokens = chunk["usage"]["completion_tokens"]
    elif chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
        if first_text is None:
            first_text = now - t0
        last_text = now - t0
c.close()
print(json.dumps([tokens, first_byte, first_text, last_text]))
"""


def api_run(engine: Engine, port: int, max_tokens: int) -> tuple[float, float, float]:
    """(tokens/s from the first text on, seconds to the first byte, seconds to the first text),
    read by a client in a process of its own, as an editor is (timed inside it)."""
    import subprocess
    import sys

    engine._llm.reset()
    body = json.dumps({"messages": MESSAGES, "max_tokens": max_tokens, "temperature": 0, "top_k": 1,
                       "top_p": 1, "repeat_penalty": 1.0, "stream": True,
                       "stream_options": {"include_usage": True}})
    out = subprocess.run([sys.executable, "-I", "-c", CLIENT, str(port), KEY, body], capture_output=True,
                         text=True, timeout=600, check=True).stdout
    tokens, first_byte, first_text, last_text = json.loads(out)
    gen = (last_text or 0) - (first_text or 0)
    return ((tokens - 1) / gen if gen > 0 and tokens > 1 else 0.0), first_byte or 0.0, first_text or 0.0


def cancel_free_s(engine: Engine, server: ApiServer) -> float:
    s = socket.create_connection(("127.0.0.1", server.port))
    body = json.dumps({"messages": MESSAGES, "max_tokens": 2000, "stream": True}).encode()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              + f"Authorization: Bearer {KEY}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    got = b""
    while got.count(b"data:") < 4:
        got += s.recv(4096)
    t0 = time.perf_counter()
    s.close()
    while server.backend.gate.holder() is not None:
        time.sleep(0.002)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--model", help="a .gguf file (default: the starter; a speed twin measures a real shape)")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    engine = Engine(args.model or starter_model().path, EngineConfig(n_ctx=2048))
    model_name = engine.model.path.name
    server = ApiServer(ApiBackend(EngineGate(), lambda: ServedModel("starter", engine), KEY), port=0)
    server.start()
    try:
        engine_run(engine, 16)  # warm both paths
        api_run(engine, server.port, 16)
        eng_tps, eng_ttft, api_tps, api_fb, api_ft = [], [], [], [], []
        for _ in range(args.rounds):
            tps, ttft = engine_run(engine, args.max_tokens)
            eng_tps.append(tps)
            eng_ttft.append(ttft)
            tps, fb, ft = api_run(engine, server.port, args.max_tokens)
            api_tps.append(tps)
            api_fb.append(fb)
            api_ft.append(ft)
            if os.environ.get("BENCH_VERBOSE"):
                print(eng_tps[-1], eng_ttft[-1], tps, fb, ft, flush=True)
        cancel = statistics.median(cancel_free_s(engine, server) for _ in range(3))
    finally:
        server.stop()
        engine.close()
    med = statistics.median
    figures = {
        "load_average": round(load, 2),
        "engine_tokens_per_s": round(med(eng_tps), 2), "api_tokens_per_s": round(med(api_tps), 2),
        "api_tokens_per_s_ratio": round(med(api_tps) / med(eng_tps), 3),
        "engine_first_token_s": round(med(eng_ttft), 4), "api_first_byte_s": round(med(api_fb), 4),
        "api_first_token_s": round(med(api_ft), 4),
        "api_first_byte_ratio": round(med(api_fb) / med(eng_ttft), 3),
        "api_first_token_ratio": round(med(api_ft) / med(eng_ttft), 3),
        "api_cancel_free_s": round(cancel, 3),
    }
    for name, value in figures.items():
        print(json.dumps({"figure": name, "value": value, "rounds": args.rounds, "max_tokens": args.max_tokens,
                          "model": model_name}))


if __name__ == "__main__":
    main()

"""Load an adapter into llama.cpp in a child process before the app trusts it.

llama-cpp-python 0.3.36 does not always fail cleanly on a bad LoRA file: the process can
segfault later. The converter already checks every shape, but the app's own process must
never be the one to find out: a child loads the model and the adapter, applies it, runs a
few tokens and reports; a crash or a hang there costs an error message, not the session.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from app.core.adapters.errors import AdapterError

PROBE_TIMEOUT_S = 300
FROZEN_FLAG = "--probe-adapter"


def probe_command() -> list[str]:
    """How to start the probe: the module under plain Python, the app binary when frozen."""
    if getattr(sys, "frozen", False):
        return [sys.executable, FROZEN_FLAG]
    return [sys.executable, "-m", "app.core.adapters.probe"]


def probe_adapter(model: Path, adapter: Path, timeout: float = PROBE_TIMEOUT_S) -> dict:
    """Raise AdapterError unless a child process loads and runs ``adapter`` on ``model``."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    try:
        proc = subprocess.run([*probe_command(), str(model), str(adapter)], capture_output=True, text=True,
                              timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise AdapterError(f"Loading the adapter did not finish within {timeout:.0f} s; it was not imported.") from None
    if proc.returncode < 0:
        try:
            sig = signal.Signals(-proc.returncode).name
        except ValueError:
            sig = f"signal {-proc.returncode}"
        raise AdapterError(f"llama.cpp crashed ({sig}) while loading this adapter; it was not imported. "
                           "The adapter file does not fit the model.")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    try:
        report = json.loads(lines[-1]) if lines else {}
    except ValueError:
        report = {}
    if proc.returncode != 0 or not report.get("ok"):
        reason = report.get("reason") or (proc.stderr.strip().splitlines() or ["no reason given"])[-1]
        raise AdapterError(f"llama.cpp could not use this adapter ({reason}); it was not imported.")
    return report


def _run(model: str, adapter: str) -> dict:
    import ctypes

    import numpy as np

    from app.core.llama_backend import load_llama_cpp

    llama_cpp = load_llama_cpp()
    llm = llama_cpp.Llama(model_path=model, n_ctx=256, n_batch=64, n_threads=1, verbose=False)
    handle = llama_cpp.llama_adapter_lora_init(llm.model, adapter.encode())
    if not handle:
        return {"ok": False, "reason": "llama.cpp refused the adapter file"}
    adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(handle)
    scales = (ctypes.c_float * 1)(1.0)
    if llama_cpp.llama_set_adapters_lora(llm.ctx, adapters, 1, scales) != 0:
        return {"ok": False, "reason": "llama.cpp could not apply the adapter"}
    tokens = llm.tokenize(b"def add(a, b):\n    return", add_bos=True)
    llm.eval(tokens)
    logits = np.asarray(llm.scores[llm.n_tokens - 1])
    if not np.isfinite(logits).all():
        return {"ok": False, "reason": "the model's output became NaN or infinite with the adapter"}
    return {"ok": True, "tokens": len(tokens)}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: probe MODEL.gguf ADAPTER.gguf", file=sys.stderr)
        return 2
    report = _run(*args)
    print(json.dumps(report), flush=True)
    return 0 if report.get("ok") else 3


if __name__ == "__main__":
    sys.exit(main())

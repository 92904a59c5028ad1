"""How fast each model reads and writes on this computer, measured on real answers.

Why: on a 2-core laptop the wait before the first token is the prompt's length divided by the
model's reading speed, so how much project code goes into a question is a question of time
("first answer within 20 s"), not of tokens. Every answer's reading (``ReadingProgress``) and
writing speed is recorded per model file (a running average, ``speeds.json`` in the cache
folder); before a model has answered, its speed is estimated from its file size, because on a
CPU both speeds are bound by reading the weights from memory (bench/README.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from app.core.atomic import atomic_write_text

# Tokens/s × file GB of the 1-5 GB speed twins on this 2-core machine (bench/README.md): reading
# about 90 with AVX2 code and 175 with an AVX-512 variant of llama.cpp, writing about 36 (bound by
# memory, whatever the code). Small models do not reach them (fixed costs).
READ_GB_TPS = 90.0
READ_GB_TPS_AVX512 = 175.0
WRITE_GB_TPS = 36.0
MIN_SAMPLE_TOKENS = 48  # a reading shorter than this says little about the speed
ALPHA = 0.3             # weight of the newest measurement in the running average


@dataclass
class Speed:
    prompt_tps: float   # tokens read per second
    gen_tps: float      # tokens written per second
    measured: bool      # False: estimated from the file size

    def seconds_to_read(self, tokens: int) -> float:
        return tokens / self.prompt_tps if self.prompt_tps > 0 else float("inf")


def estimate(file_bytes: int) -> Speed:
    """A model's speeds before it has answered here, from its file size and the CPU code
    llama.cpp runs in this process (AVX-512 reads about twice as fast)."""
    from app.core.llama_backend import avx512, loaded_variant

    gb = max(file_bytes / 1e9, 0.05)
    read = READ_GB_TPS_AVX512 if avx512(loaded_variant()) else READ_GB_TPS
    return Speed(min(read / gb, 400.0), min(WRITE_GB_TPS / gb, 150.0), False)


class SpeedBook:
    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            self._data = {k: v for k, v in raw.items() if isinstance(v, dict)} if isinstance(raw, dict) else {}
        except (OSError, ValueError):
            self._data = {}  # missing or damaged: start measuring again

    @staticmethod
    def key(model_path: Path | str) -> str:
        p = Path(model_path)
        try:
            return f"{p.resolve()}:{p.stat().st_size}"
        except OSError:
            return str(p)

    def speed(self, model_path: Path | str) -> Speed:
        entry = self._data.get(self.key(model_path))
        if entry and entry.get("prompt_tps", 0) > 0:
            est = estimate(Path(model_path).stat().st_size) if Path(model_path).exists() else None
            gen = entry.get("gen_tps") or (est.gen_tps if est else 0.0)
            return Speed(float(entry["prompt_tps"]), float(gen), True)
        try:
            return estimate(Path(model_path).stat().st_size)
        except OSError:
            return Speed(50.0, 10.0, False)

    def record(self, model_path: Path | str, read_tokens: int, read_s: float, gen_tps: float = 0.0) -> None:
        """Fold one answer's measurements in (ignored when the reading was too short to say)."""
        k = self.key(model_path)
        entry = dict(self._data.get(k, {}))
        if read_tokens >= MIN_SAMPLE_TOKENS and read_s > 0:
            tps = read_tokens / read_s
            old = entry.get("prompt_tps")
            entry["prompt_tps"] = tps if not old else (1 - ALPHA) * old + ALPHA * tps
        if gen_tps > 0:
            old = entry.get("gen_tps")
            entry["gen_tps"] = gen_tps if not old else (1 - ALPHA) * old + ALPHA * gen_tps
        if entry:
            self._data[k] = entry
            try:
                atomic_write_text(self.path, json.dumps(self._data, indent=1))
            except OSError:
                pass  # a cache: the next answer measures again


def code_budget(speed: Speed, target_s: float, other_tokens: int, cap: int) -> int:
    """Tokens of project code that keep the first answer within ``target_s``: what the model
    reads in that time, less the other tokens it must read this turn, at most ``cap`` (the
    caller still shows the single best piece even when this is 0)."""
    return max(0, min(cap, int(speed.prompt_tps * target_s) - other_tokens))


PROBE_PROMPT = ("You review code. " * 40).strip()
PROBE_QUESTION = "Write a Python class for a bank account with deposit and withdraw, and explain it."


def probe(model_path: Path | str, n_threads: int = 0) -> tuple[int, float, float]:
    """A few seconds' measurement of a model here: (prompt tokens read, seconds, tokens/s
    written). Loads its own engine: run it on a worker, and not while the app's engine answers."""
    from app.core.engine import Engine, EngineConfig, GenerationParams

    engine = Engine(model_path, EngineConfig(n_ctx=1024, n_threads=n_threads))
    try:
        seen = []
        # a question with a long answer: a greeting ends after a few tokens, and a handful of
        # tokens times its first-token overhead measured the writing speed a third too low
        result = engine.chat([{"role": "system", "content": PROBE_PROMPT},
                              {"role": "user", "content": PROBE_QUESTION}],
                             GenerationParams.greedy(48), on_reading=seen.append)
        last = seen[-1] if seen else None
        return (last.done if last else 0), (last.seconds if last else 0.0), result.tokens_per_s
    finally:
        engine.close()

"""A picker that knows speed: how fast each model would be on this computer, and which to
recommend.

Why: the largest model that fits in memory is not the best one on a 2-core laptop (the 7B fits
in 25 GB but waits 92 s before each grounded answer, then writes 7 tokens/s). So each model gets
an estimate, from one measured model (the anchor: the starter, which every install has, or any
model that has answered here) scaled by size and shape:

- writing a token reads every weight once: time per token = c_gen × (GB + R_GEN);
- reading the prompt is matrix work: time per token = c_read × (Gparams + R_READ), with the
  output layer counted (Qwen's 152k-token vocabulary is a sixth of a 1.5B's work);

the offsets R_* (fixed per-token costs that dominate tiny models) were fitted on this 2-core
machine to the starter and the 1.5B / 3B / 7B speed twins (bench/README.md); the anchor's own
measurement sets c for the computer at hand. The recommendation is the largest model that fits
in memory and meets the floors (5 tokens/s, a grounded first answer within 30 s).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from app.core.models.speed import Speed

R_GEN = 0.234    # GB: per-token overhead of writing, in weight-reading equivalents
R_READ = 0.313   # Gparams: the same for reading a prompt
FLOOR_GEN_TPS = 5.0
FLOOR_FIRST_S = 30.0
SYSTEM_TOKENS = 150     # the system prompt, rules and citing instructions of a grounded question
QUESTION_TOKENS = 25
BEST_PIECE_TOKENS = 220  # the one piece of code every grounded question carries at least
CODE_CAP = 1500


def compute_gparams(hidden: int, layers: int, heads: int, kv_heads: int, ffn: int, vocab: int) -> float:
    """Billions of multiply-adds per token: attention and MLP weights of every layer, and the
    output layer (the token embedding itself is a lookup, no work)."""
    head_dim = hidden // max(heads, 1)
    kv = kv_heads * head_dim
    per_layer = hidden * (hidden + 2 * kv) + hidden * hidden + 3 * hidden * ffn
    return (layers * per_layer + hidden * vocab) / 1e9


def entry_gparams(entry) -> float:
    return compute_gparams(entry.hidden_size, entry.n_layers, entry.n_heads, entry.n_kv_heads,
                           entry.ffn_size, entry.vocab_size)


@dataclass(frozen=True)
class Estimate:
    gen_tps: float
    prompt_tps: float
    first_answer_s: float   # a grounded first question with the default 20 s code budget

    def text(self) -> str:
        return f"about {self.gen_tps:.0f} tokens/s, first answer with your project in about {self.first_answer_s:.0f} s"


def first_answer_s(prompt_tps: float, gen_tps: float, target_s: float = 20.0) -> float:
    code = max(BEST_PIECE_TOKENS, min(CODE_CAP, int(prompt_tps * target_s) - QUESTION_TOKENS))
    return (SYSTEM_TOKENS + code + QUESTION_TOKENS) / prompt_tps + 1.0 / gen_tps


def scale(anchor: Speed, anchor_gb: float, anchor_gparams: float, gb: float, gparams: float,
          target_s: float = 20.0) -> Estimate:
    """The speeds of a model of ``gb`` / ``gparams`` from the anchor's measured ones."""
    c_gen = (1.0 / anchor.gen_tps) / (anchor_gb + R_GEN)
    c_read = (1.0 / anchor.prompt_tps) / (anchor_gparams + R_READ)
    gen = 1.0 / (c_gen * (gb + R_GEN))
    read = 1.0 / (c_read * (gparams + R_READ))
    return Estimate(gen, read, first_answer_s(read, gen, target_s))


def estimate_entry(entry, anchor: Speed, anchor_entry, target_s: float = 20.0) -> Estimate:
    return scale(anchor, anchor_entry.size_bytes / 1e9, entry_gparams(anchor_entry),
                 entry.size_bytes / 1e9, entry_gparams(entry), target_s)


@dataclass(frozen=True)
class Pick:
    entry: object
    reason: str


def pick(candidates: Iterable[tuple[object, bool, Estimate]], floor_gen: float = FLOOR_GEN_TPS,
         floor_first: float = FLOOR_FIRST_S) -> Pick | None:
    """The largest model that fits and is fast enough here, with the reason; ``candidates`` are
    (entry, fits in memory and disk, estimate), smallest first. None when none qualifies."""
    best, slower = None, []
    for entry, fits, est in candidates:
        if not fits:
            continue
        if est.gen_tps >= floor_gen and est.first_answer_s <= floor_first:
            best = (entry, est)
        else:
            slower.append((entry, est))
    if best is None:
        return None
    entry, est = best
    why = f"Recommended for this computer: fits in memory and answers at {est.text()}"
    bigger = [e for e, _ in slower if e.size_bytes > entry.size_bytes]
    if bigger:
        e = bigger[-1]
        est2 = next(s for x, s in slower if x is e)
        why += (f"; {e.name} also fits but would be slow here ({est2.gen_tps:.0f} tokens/s, first answer in about "
                f"{est2.first_answer_s:.0f} s)")
    return Pick(entry, why + ".")

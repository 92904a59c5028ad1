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
machine to the starter and the 1.5B / 3B / 7B speed twins (bench/README.md, bench/picker.py);
the anchor's own measurement sets c for the computer at hand. The reading offset depends on the
CPU code llama.cpp runs (app/core/llama_backend.py): AVX-512 doubles a big model's reading
speed but barely moves the starter's, so the starter says less about big models there. The recommendation is the largest model that fits
in memory and meets the floors (5 tokens/s, a grounded first answer within 30 s).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from app.core.llama_backend import avx512
from app.core.models.speed import Speed

# Fitted to bench/picker.py (the starter probed as the window does; the twins measured):
R_GEN = 0.184    # GB: per-token overhead of writing, in weight-reading equivalents
R_READ_AVX512 = 0.55   # Gparams: the same for reading a prompt, AVX-512 variants (zen4 measured)
R_READ = 0.174   # the same, AVX2 code (haswell, = the old portable build); checked with the
                 # haswell variant forced: every estimate within 0.98-1.17 of the measured
FLOOR_GEN_TPS = 5.0
FLOOR_FIRST_S = 30.0
SYSTEM_TOKENS = 150     # the system prompt, rules and citing instructions of a grounded question
QUESTION_TOKENS = 25
BEST_PIECE_TOKENS = 220  # the one piece of code every grounded question carries at least
# What a grounded question brings at most: PROMPT_CHUNKS (8) retrieved pieces, about 1,000 tokens
# (measured: 1,146 tokens of prompt with this repository's app/core open, bench/picker.py),
# below the 1,500 of context_tokens a fast model may take.
CODE_CAP = 1000


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
    """A grounded first question's wait: its code fills what the model reads in ``target_s``
    beside the system prompt and the question (app/core/chat/service.py code_room), at least
    the best piece, at most ``context_tokens``; then one token written."""
    code = max(BEST_PIECE_TOKENS, min(CODE_CAP, int(prompt_tps * target_s) - SYSTEM_TOKENS - QUESTION_TOKENS))
    return (SYSTEM_TOKENS + code + QUESTION_TOKENS) / prompt_tps + 1.0 / gen_tps


def read_offset(variant: str | None) -> float:
    """R_READ for the CPU variant llama.cpp runs (None: unknown or built in, taken as AVX2)."""
    return R_READ_AVX512 if avx512(variant) else R_READ


def scale(anchor: Speed, anchor_gb: float, anchor_gparams: float, gb: float, gparams: float,
          target_s: float = 20.0, r_read: float = R_READ) -> Estimate:
    """The speeds of a model of ``gb`` / ``gparams`` from the anchor's measured ones."""
    c_gen = (1.0 / anchor.gen_tps) / (anchor_gb + R_GEN)
    c_read = (1.0 / anchor.prompt_tps) / (anchor_gparams + r_read)
    gen = 1.0 / (c_gen * (gb + R_GEN))
    read = 1.0 / (c_read * (gparams + r_read))
    return Estimate(gen, read, first_answer_s(read, gen, target_s))


def estimate_entry(entry, anchor: Speed, anchor_entry, target_s: float = 20.0, variant: str | None = None) -> Estimate:
    """``entry``'s speeds here, from ``anchor`` (``anchor_entry``'s measured speed) and the CPU
    ``variant`` llama.cpp runs (app.core.llama_backend.loaded_variant())."""
    return scale(anchor, anchor_entry.size_bytes / 1e9, entry_gparams(anchor_entry),
                 entry.size_bytes / 1e9, entry_gparams(entry), target_s, read_offset(variant))


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

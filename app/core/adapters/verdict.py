"""Is an adapter any good on this data? Perplexity of the base model vs base + adapter.

Both are measured with the app's own engine on the same validation conversations: the mean
negative log-likelihood of the assistant tokens (``Engine.encode_chat``: the tokens the
notebook's training and validation loss cover), once with no adapter and once with exactly
this adapter at the given strength (``Engine.score(adapters=...)``, which puts the engine's
own adapters back). Perplexity is exp(loss); the verdict compares the two.

Why the app's engine and not the probe's child process: the probe has already shown that
llama.cpp loads and runs the adapter (the crash risk the child guards against), the app's
model is already in memory (a child would load a second copy: GBs for a 7B model), and the
number that matters is the one the user will get, quantised model included.

Bounded: at most ``MAX_EXAMPLES`` conversations and ``MAX_TOKENS`` tokens a pass (two passes),
about 20–40 s on two cores for the 1.5B model. The computation is deterministic, so any
difference is real *for this text*; the bands only keep a difference that another sample of
the same kind of text could reverse from sounding like a result:

=========================  ==========================================================
perplexity change          verdict
=========================  ==========================================================
≤ −5 %                     better: "Lower perplexity on … by N%: keep it enabled."
−5 % … −2 %                slightly better: a small gain
−2 % … +2 %                no better than the base model: leave it off
≥ +2 %                     worse than the base model: leave it off
=========================  ==========================================================

Fewer than ``FEW_TOKENS`` scored tokens adds "a rough guide".
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, Sequence

from app.core.adapters.errors import AdapterError
from app.core.adapters.store import AdapterStore
from app.core.adapters.validation import read_examples
from app.core.adapters.manifest import ModelShape
from app.core.engine import Engine, EngineError, EvaluationCancelled, ScoredTokens

MAX_EXAMPLES = 64
MAX_TOKENS = 8192          # tokens evaluated per pass (context included), not only scored ones
CLEAR_GAIN = 5.0           # percent lower perplexity: keep it enabled
NOISE = 2.0                # percent either way: no real difference
FEW_TOKENS = 200

BETTER, SLIGHTLY, SAME, WORSE = "better", "slightly better", "no better", "worse"


@dataclass
class Verdict:
    base_loss: float        # mean NLL per scored token, nats
    adapter_loss: float
    tokens: int             # scored tokens
    examples: int
    scale: float            # the adapter strength it was measured at
    data: str               # what it was measured on ("its validation split", "your code", a file name)
    model: str              # the model file the numbers are for
    evaluated: float = 0.0  # time.time()

    @property
    def base_ppl(self) -> float:
        return math.exp(self.base_loss)

    @property
    def adapter_ppl(self) -> float:
        return math.exp(self.adapter_loss)

    @property
    def change_pct(self) -> float:
        """Perplexity change in percent (negative: the adapter predicts the text better)."""
        return (math.exp(self.adapter_loss - self.base_loss) - 1.0) * 100.0

    @property
    def kind(self) -> str:
        c = self.change_pct
        if c <= -CLEAR_GAIN:
            return BETTER
        if c <= -NOISE:
            return SLIGHTLY
        if c < NOISE:
            return SAME
        return WORSE

    @property
    def text(self) -> str:
        c, on = self.change_pct, self.data
        line = {
            BETTER: f"Lower perplexity on {on} by {-c:.0f}%: keep it enabled.",
            SLIGHTLY: f"Slightly lower perplexity on {on} ({c:+.1f}%): a small gain; keep it on if its "
                      "answers look better to you.",
            SAME: f"No better than the base model on {on} ({c:+.1f}%): leave it off.",
            WORSE: f"Worse than the base model on {on} by {c:.0f}%: leave it off.",
        }[self.kind]
        if self.tokens < FEW_TOKENS:
            line += f" Measured on only {self.tokens} tokens: a rough guide."
        return line

    @property
    def short(self) -> str:
        """For the adapter list's column."""
        c = self.change_pct
        return {BETTER: f"−{-c:.0f}% perplexity", SLIGHTLY: f"−{-c:.1f}% (small)", SAME: "no better",
                WORSE: f"+{c:.0f}% (worse)"}[self.kind]

    @property
    def details(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.evaluated)) if self.evaluated else "?"
        return (f"Perplexity {self.base_ppl:.2f} → {self.adapter_ppl:.2f} (loss {self.base_loss:.3f} → "
                f"{self.adapter_loss:.3f}) on {self.tokens} tokens of {self.examples} examples, "
                f"strength {self.scale:.2f}×, {self.model}, {when}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(base_ppl=self.base_ppl, adapter_ppl=self.adapter_ppl, change_pct=self.change_pct,
                 kind=self.kind, text=self.text)
        return d

    @classmethod
    def from_dict(cls, d: dict | None) -> "Verdict | None":
        """A stored verdict, or None when there is none or it is damaged."""
        if not isinstance(d, dict):
            return None
        try:
            v = cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})
            float(v.base_loss), float(v.adapter_loss)
        except (TypeError, ValueError):
            return None
        return v if math.isfinite(v.base_loss) and math.isfinite(v.adapter_loss) else None


def select(encoded: Sequence[ScoredTokens], max_examples: int = MAX_EXAMPLES,
           max_tokens: int = MAX_TOKENS) -> list[ScoredTokens]:
    """The examples to evaluate: those with scored tokens, at most ``max_examples`` spread
    evenly over the list, while their tokens fit ``max_tokens`` (a first example longer than
    that is cut to it)."""
    usable = [e for e in encoded if e.n_scored > 0]
    if len(usable) > max_examples:
        step = len(usable) / max_examples
        usable = [usable[int(i * step)] for i in range(max_examples)]
    chosen: list[ScoredTokens] = []
    used = 0
    for e in usable:
        if used + len(e.tokens) <= max_tokens:
            chosen.append(e)
            used += len(e.tokens)
    if not chosen and usable:
        cut = usable[0].truncated(max_tokens)
        if cut.n_scored:
            chosen.append(cut)
    return chosen


def evaluate(engine: Engine, adapter_file: Path, scale: float, examples: Sequence[Sequence[dict]], *,
             data: str = "the validation data", cancelled: Callable[[], bool] = lambda: False,
             progress: Callable[[int, int], None] = lambda done, total: None,
             max_examples: int = MAX_EXAMPLES, max_tokens: int = MAX_TOKENS) -> Verdict:
    """Base vs base + adapter on ``examples`` (chat messages). Blocks; run it on a worker."""
    chosen = select([engine.encode_chat(m) for m in examples], max_examples, max_tokens)
    if not chosen:
        raise AdapterError("None of the validation examples has an assistant reply to measure.")
    total = 2 * sum(e.n_scored for e in chosen)
    half = total // 2
    base = engine.score(chosen, adapters=[], cancelled=cancelled, progress=lambda d, _t: progress(d, total))
    tuned = engine.score(chosen, adapters=[(adapter_file, scale)], cancelled=cancelled,
                         progress=lambda d, _t: progress(half + d, total))
    return Verdict(base_loss=base.loss, adapter_loss=tuned.loss, tokens=base.tokens, examples=len(chosen),
                   scale=scale, data=data, model=engine.model.path.name, evaluated=time.time())


def evaluate_stored(engine: Engine, store: AdapterStore, adapter_id: str, data_file: Path | None = None, *,
                    cancelled: Callable[[], bool] = lambda: False,
                    progress: Callable[[int, int], None] = lambda done, total: None) -> Verdict:
    """Evaluate an imported adapter at its strength (1.0 when it is at 0) on ``data_file``
    (default: the validation split that came in its zip) and store the verdict with it."""
    adapter = store.get(adapter_id)
    if adapter is None:
        raise AdapterError("That adapter is gone (deleted meanwhile).")
    if adapter.model_key != ModelShape.from_gguf(engine.model.info).key:
        raise AdapterError(f"{adapter.name} is for another model ({adapter.model_label}); load that model "
                           "to evaluate it.")
    own = adapter.validation_file
    path = Path(data_file) if data_file else own
    if path is None:
        raise AdapterError(f"{adapter.name} came without validation data: choose a JSONL file of chat examples "
                           "(for example a training set exported from your project) to evaluate it on.")
    data = read_examples(path, own=own is not None and path.resolve() == own.resolve())
    try:
        verdict = evaluate(engine, adapter.file, adapter.scale if adapter.scale > 0 else 1.0, data.examples,
                           data=data.label, cancelled=cancelled, progress=progress)
    except EvaluationCancelled:
        raise
    except EngineError as e:
        raise AdapterError(f"The adapter could not be evaluated: {e}") from None
    try:
        store.set_verdict(adapter.id, verdict.to_dict())
    except FileNotFoundError as e:
        raise AdapterError(str(e)) from None
    return verdict

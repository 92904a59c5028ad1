"""Training data: turn public instruction sets and the app's exported chats into chat ``messages``,
de-duplicate them and split them into train/eval sets.

This module is pasted verbatim into the Colab notebook, so it imports only the standard library and
nothing from the rest of ``training``. Every step is deterministic for a given seed, and every row
that is dropped is counted, so the summary printed in Colab (and stored in the adapter's manifest)
says exactly what the adapter was trained on.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

ROLES = ("system", "user", "assistant")


def _text(value: Any) -> str | None:
    """A field's text if it is a non-blank string, else None (missing, null, numbers, blanks)."""
    if isinstance(value, str) and value.strip():
        return value
    return None


def _pair(user: str, assistant: str) -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]}


def from_codealpaca(row: dict) -> dict | None:
    """A CodeAlpaca-20k row (``instruction``, optional ``input``, ``output``) as one user turn and one
    assistant turn; the ``input`` (often a code snippet) follows the instruction after a blank line.
    None when the instruction or output is missing or blank: such a row teaches nothing."""
    if not isinstance(row, dict):
        return None
    instruction, output = _text(row.get("instruction")), _text(row.get("output"))
    if instruction is None or output is None:
        return None
    extra = _text(row.get("input"))
    user = instruction.strip() + ("\n\n" + extra.strip() if extra is not None else "")
    return _pair(user, output.strip())


def from_evol_instruct(row: dict) -> dict | None:
    """An Evol-Instruct-Code row (``instruction``, ``output``) as a user/assistant pair, or None."""
    if not isinstance(row, dict):
        return None
    instruction, output = _text(row.get("instruction")), _text(row.get("output"))
    if instruction is None or output is None:
        return None
    return _pair(instruction.strip(), output.strip())


def _clean_messages(messages: Any) -> list[dict] | None:
    """Messages reduced to ``{"role", "content"}``, or None when they cannot train anything.

    Rules: every message has a known role and non-blank string content; the first non-system
    message is the user's (chat templates and the app both assume it); there is at least one
    assistant reply. Trailing user turns that never got an answer are cut off rather than
    rejecting the whole conversation, because a chat the user abandoned is still useful up to there.
    """
    if not isinstance(messages, list) or not messages:
        return None
    cleaned: list[dict] = []
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            return None
        content = _text(m.get("content"))
        if content is None:
            return None
        cleaned.append({"role": m["role"], "content": content})
    while cleaned and cleaned[-1]["role"] != "assistant":
        cleaned.pop()
    first = next((m["role"] for m in cleaned if m["role"] != "system"), None)
    if first != "user":
        return None
    return cleaned


SPLITS = {"train": "train", "valid": "eval", "validation": "eval", "eval": "eval"}
"""A row's ``split`` key (written by the app's export) and the side of the split it goes to."""


def from_chat_export(row: dict) -> dict | None:
    """A chat exported by the app (``{"messages": [{"role", "content"}, ...]}``), validated.

    System messages are kept (the app's system prompt is part of what the model should learn to
    follow). A ``split`` of ``"train"`` or ``"valid"`` is kept, so :func:`prepare` puts the row on
    the side the app chose; other keys on the row or on messages (ids, timestamps, ``source``)
    are ignored."""
    if not isinstance(row, dict):
        return None
    messages = _clean_messages(row.get("messages"))
    if messages is None:
        return None
    out = {"messages": messages}
    if row.get("split") in SPLITS:
        out["split"] = row["split"]
    return out


NORMALISERS: dict[str, Callable[[dict], dict | None]] = {
    "codealpaca": from_codealpaca,
    "evol_instruct": from_evol_instruct,
    "my_chats": from_chat_export,
}
"""Which normaliser turns a source's raw rows into messages (the notebook looks sources up here)."""


def normalise(source: str, rows: list[dict]) -> list[dict | None]:
    """Raw rows of a known source through its normaliser; unusable rows become None so that
    :func:`prepare` counts them."""
    try:
        fn = NORMALISERS[source]
    except KeyError:
        raise ValueError(f"unknown data source {source!r}; known sources: {', '.join(NORMALISERS)}") from None
    return [fn(r) for r in rows]


def read_jsonl(path: str | Path) -> list[dict]:
    """Objects from a JSON Lines file (blank lines skipped).

    Raises ValueError naming the file and line when a line is not a JSON object, because a user who
    picked the wrong file should hear which one and where, not get a silently empty data set."""
    path = Path(path)
    rows: list[dict] = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}, line {lineno}: not JSON Lines ({e.msg})") from None
            if not isinstance(obj, dict):
                raise ValueError(f"{path}, line {lineno}: expected a JSON object, got {type(obj).__name__}")
            rows.append(obj)
    return rows


def dedup_key(messages: list[dict]) -> str:
    """What makes two examples the same: the user and assistant text with case and whitespace
    normalised (system prompts are ignored, so the same Q&A under two prompts counts once)."""
    h = hashlib.sha1()
    for m in messages:
        if m["role"] == "system":
            continue
        h.update(m["role"].encode())
        h.update(b"\0")
        h.update(" ".join(m["content"].split()).lower().encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


@dataclass
class Prepared:
    """The split data set and a JSON-able summary of how it was made."""

    train: list[dict]
    eval: list[dict]
    summary: dict


def prepare(
    sources: dict[str, list[dict]],
    *,
    seed: int = 0,
    eval_fraction: float = 0.1,
    max_per_source: int | None = None,
    min_eval: int = 1,
) -> Prepared:
    """Validate, de-duplicate, cap and split already-normalised rows.

    ``sources`` maps a source name to its rows as ``{"messages": [...]}``; a None or invalid row is
    counted as invalid and dropped. Duplicates are dropped across all sources, the first occurrence
    (in the order of ``sources``) winning. ``max_per_source`` then keeps a seeded random sample of
    each source's unique rows (so a 1,000-row cap spreads over the whole data set rather than its
    first pages). The pooled rows are shuffled with ``seed`` and the first ``eval_fraction`` of them
    (at least ``min_eval``, always leaving one for training) become the eval set.

    A row with a ``split`` key (``"train"`` or ``"valid"``, as the app's export writes them) goes to
    that side as it is, so the app's split (by conversation, stable across exports) is kept; the
    rows without one are split as above among themselves.
    """
    if not 0 <= eval_fraction < 1:
        raise ValueError(f"eval_fraction must be in [0, 1), got {eval_fraction}")
    if max_per_source is not None and max_per_source < 1:
        raise ValueError(f"max_per_source must be at least 1 or None, got {max_per_source}")

    seen: set[str] = set()
    per_source: dict[str, dict] = {}
    pooled: list[dict] = []
    for name, rows in sources.items():
        counts = {"rows": len(rows), "invalid": 0, "duplicates": 0, "capped": 0, "used": 0}
        unique: list[dict] = []
        for row in rows:
            messages = _clean_messages(row.get("messages")) if isinstance(row, dict) else None
            if messages is None:
                counts["invalid"] += 1
                continue
            key = dedup_key(messages)
            if key in seen:
                counts["duplicates"] += 1
                continue
            seen.add(key)
            side = SPLITS.get(row.get("split")) if isinstance(row.get("split"), str) else None
            unique.append({"messages": messages, "_side": side})
        if max_per_source is not None and len(unique) > max_per_source:
            # A string seed is hashed deterministically (unlike hash(), it ignores PYTHONHASHSEED).
            keep = sorted(random.Random(f"{seed}:{name}").sample(range(len(unique)), max_per_source))
            counts["capped"] = len(unique) - max_per_source
            unique = [unique[i] for i in keep]
        counts["used"] = len(unique)
        per_source[name] = counts
        pooled.extend(unique)

    if not pooled:
        raise ValueError(f"no usable examples in the data ({_describe(per_source)})")
    fixed_train = [{"messages": r["messages"]} for r in pooled if r["_side"] == "train"]
    fixed_eval = [{"messages": r["messages"]} for r in pooled if r["_side"] == "eval"]
    free = [{"messages": r["messages"]} for r in pooled if r["_side"] is None]
    rng = random.Random(seed)
    rng.shuffle(free)
    n = len(pooled)
    # Eval rows taken from the rows without a side: their own eval_fraction (and at least
    # min_eval eval rows in all), leaving one row for training.
    take = max(min_eval - len(fixed_eval), round(len(free) * eval_fraction))
    take = max(0, min(take, len(free), n - 1 - len(fixed_eval))) if n > 1 else 0
    eval_rows, train_rows = fixed_eval + free[:take], fixed_train + free[take:]
    if fixed_train or fixed_eval:
        if not train_rows and len(eval_rows) > 1:
            train_rows.append(eval_rows.pop())  # every row was marked valid: training needs one
        rng.shuffle(eval_rows)
        rng.shuffle(train_rows)
    n_eval = len(eval_rows)
    summary = {
        "sources": per_source,
        "rows": sum(c["rows"] for c in per_source.values()),
        "invalid": sum(c["invalid"] for c in per_source.values()),
        "duplicates": sum(c["duplicates"] for c in per_source.values()),
        "capped": sum(c["capped"] for c in per_source.values()),
        "train": n - n_eval,
        "eval": n_eval,
        "split_from_file": len(fixed_train) + len(fixed_eval),
        "seed": seed,
        "eval_fraction": eval_fraction,
        "max_per_source": max_per_source,
    }
    return Prepared(train=train_rows, eval=eval_rows, summary=summary)


def _describe(per_source: dict[str, dict]) -> str:
    if not per_source:
        return "no sources given"
    return "; ".join(f"{name}: {c['rows']} rows, {c['invalid']} invalid, {c['duplicates']} duplicates"
                     for name, c in per_source.items())


def format_summary(summary: dict) -> str:
    """The summary as a short table for the notebook's output."""
    lines = [f"{'source':<16}{'rows':>8}{'invalid':>9}{'dupes':>8}{'capped':>8}{'used':>8}"]
    for name, c in summary["sources"].items():
        lines.append(f"{name:<16}{c['rows']:>8}{c['invalid']:>9}{c['duplicates']:>8}{c['capped']:>8}{c['used']:>8}")
    lines.append(f"train: {summary['train']}   eval: {summary['eval']}   (seed {summary['seed']})")
    if summary.get("split_from_file"):
        lines.append(f"{summary['split_from_file']} rows kept the side of the split their file gave them")
    return "\n".join(lines)

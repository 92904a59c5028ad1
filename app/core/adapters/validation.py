"""Validation examples for an adapter's verdict: chat rows in JSON Lines, checked before use.

Two sources: the optional ``validation.jsonl`` in the notebook's zip (its validation split,
held to the zip contract: at most ``MAX_ROWS`` rows and ``MAX_BYTES``, every row well formed,
or the import is refused), and a JSONL file the user picks for "Evaluate…" (an exported
training set: when its rows carry a ``split`` key, only the ``"valid"`` ones are used, so an
adapter is never judged on the rows it was trained on).

A row is ``{"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...], ...}``
with a user turn before the first assistant turn and at least one non-blank assistant turn
(the scored tokens); other keys are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from app.core.adapters.errors import AdapterError
from app.core import safe_json

VALIDATION = "validation.jsonl"
MAX_ROWS = 200
MAX_BYTES = 2 * 1024**2
ROLES = ("system", "user", "assistant")
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass
class ValidationData:
    examples: list[list[dict]]  # each a conversation's messages
    label: str                  # what it is, for the verdict ("its validation split", "your code")
    source: str                 # the file


def _messages(row: object) -> tuple[list[dict] | None, str]:
    """The row's messages reduced to role/content, or None and why not."""
    if not isinstance(row, dict):
        return None, "not a JSON object"
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        return None, 'no "messages" list'
    out = []
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            return None, "a message without a known role and text content"
        if _SURROGATE.search(m["content"]):  # "\ud800" in JSON: text no tokenizer can encode
            return None, "a message whose text holds a lone surrogate escape (such as \\ud800), not Unicode text"
        out.append({"role": m["role"], "content": m["content"]})
    first = next((m["role"] for m in out if m["role"] != "system"), None)
    if first != "user":
        return None, "the conversation does not start with a user turn"
    if not any(m["role"] == "assistant" and m["content"].strip() for m in out):
        return None, "no assistant reply to measure"
    return out, ""


def parse_lines(lines: Iterable[str], label: str) -> list[tuple[list[dict], dict]]:
    """(messages, raw row) per non-blank line; AdapterError naming the line for a bad one."""
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            raw = safe_json.loads(line)
        except ValueError as e:
            raise AdapterError(f"{label}, line {n}: not JSON ({e.args[0] if e.args else e}).") from None
        messages, why = _messages(raw)
        if messages is None:
            raise AdapterError(f"{label}, line {n}: {why}. Each line must be a chat example "
                               '{"messages": [{"role": ..., "content": ...}, ...]}.')
        rows.append((messages, raw))
    return rows


def read_bundled(path: Path, label: str = VALIDATION) -> list[list[dict]]:
    """The zip's validation split, held to the contract (the size was capped when unpacking)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise AdapterError(f"{label} in the adapter zip is not UTF-8 text.") from None
    rows = parse_lines(text.split("\n"), f"{label} in the adapter zip")
    if len(rows) > MAX_ROWS:
        raise AdapterError(f"{label} in the adapter zip holds {len(rows)} examples; the notebook writes at most "
                           f"{MAX_ROWS}.")
    return [m for m, _ in rows]


def read_examples(path: Path, *, own: bool = False, max_rows: int = MAX_ROWS) -> ValidationData:
    """Examples from a JSONL file the user picked (or the adapter's own ``validation.jsonl``).

    Rows with a ``split`` key: only ``"valid"`` ones; none of them valid is an error (the file
    is all training data). At most ``max_rows``, spread evenly over the file."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as f:
            rows = parse_lines(f, path.name)
    except FileNotFoundError:
        raise AdapterError(f"{path} does not exist.") from None
    except UnicodeDecodeError:
        raise AdapterError(f"{path.name} is not UTF-8 text; choose a JSON Lines file of chat examples.") from None
    except OSError as e:
        raise AdapterError(f"Cannot read {path}: {e.strerror or e}.") from None
    if any("split" in raw for _, raw in rows):
        rows = [(m, raw) for m, raw in rows if raw.get("split") == "valid"]
        if not rows:
            raise AdapterError(f"{path.name} has no validation rows (split \"valid\"): an adapter must not be "
                               "judged on the examples it was trained on.")
    if not rows:
        raise AdapterError(f"{path.name} holds no chat examples.")
    if len(rows) > max_rows:
        step = len(rows) / max_rows
        rows = [rows[int(i * step)] for i in range(max_rows)]
    if own:
        label = "its validation split"
    elif all(str(raw.get("source", "")).startswith("project:") for _, raw in rows):
        label = "your code"
    else:
        label = path.name
    return ValidationData([m for m, _ in rows], label, str(path))

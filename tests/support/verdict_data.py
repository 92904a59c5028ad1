"""Validation chats and an adapter zip that carries them, for the verdict tests."""

from __future__ import annotations

import json

from tests.support.adapter_zip import adapter_members, write_zip

CHATS = [
    [{"role": "user", "content": "What does fibonacci(10) return?"},
     {"role": "assistant", "content": "It returns 55, the tenth Fibonacci number."}],
    [{"role": "system", "content": "You are terse."},
     {"role": "user", "content": "Write add in Python."},
     {"role": "assistant", "content": "```python\ndef add(a, b):\n    return a + b\n```"},
     {"role": "user", "content": "And subtract?"},
     {"role": "assistant", "content": "def sub(a, b):\n    return a - b  # ünïcode ✓"}],
    [{"role": "user", "content": "Name a prime number."}, {"role": "assistant", "content": "7 is prime."}],
]


def jsonl(rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def validation_zip(path, rows=None, b_scale=0.0, seed=0, text: str | None = None):
    members = adapter_members(b_scale=b_scale, seed=seed)
    members["validation.jsonl"] = text if text is not None else jsonl({"messages": m} for m in (rows or CHATS))
    return write_zip(path, members)

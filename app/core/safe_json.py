"""JSON from outside the app, with its size and nesting bounded before it is parsed.

Why: ``json.loads`` recurses once per nested array or object, so a manifest nested 100,000
deep raised ``RecursionError`` (not a ``ValueError``) through every ``except ValueError`` and
out of ``python -m app adapters import`` as a traceback; and a large document is read into
memory whole before anyone looks at it. Here both are checked first, and a breach is a
``JSONLimitError``, a ``ValueError``, so every caller's existing "not valid JSON (…)" message
covers it with a reason the user can read.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64                 # real manifests, headers, API bodies and answers nest < 10 deep
MAX_BYTES = 16 * 1024 * 1024   # a default: callers reading bigger documents say so
# A string, or an unterminated one running to the end: every quote starts one match, so the
# scan is linear (a pattern that must find the closing quote retried from each later quote,
# and 1 MB of \\" took minutes).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.S)
_BRACKET = re.compile(r"[\[\]{}]")


class JSONLimitError(ValueError):
    """The document is too large or nested too deep to be read."""


def nesting_depth(text: str) -> int:
    """How deeply arrays and objects nest in ``text`` (brackets inside strings do not count)."""
    depth = deepest = 0
    for b in _BRACKET.findall(_STRING.sub('""', text)):
        if b in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def loads(data: str | bytes, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES) -> Any:
    """``json.loads`` for untrusted input: refuses more than ``max_bytes`` or deeper nesting than
    ``max_depth`` before parsing (JSONLimitError, a ValueError)."""
    if len(data) > max_bytes:
        raise JSONLimitError(f"it is {len(data):,} bytes, more than the {max_bytes:,} allowed")
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    # at most as deep as it has openers: most documents need no closer look
    depth = nesting_depth(text) if text.count("[") + text.count("{") > max_depth else 0
    if depth > max_depth:
        raise JSONLimitError(f"it nests {depth:,} levels deep, more than the {max_depth} allowed")
    return json.loads(text)

"""Standing rules the user taught ("Always use TypeScript", "Use pytest, not unittest").

Rules are stored in the chat database (``Storage.add_rule`` and friends), global or for one
project folder, and go into the system prompt of every answer until removed. This module holds
what is not storage: checking a rule's text, reading ``/remember``, and fitting the rules into
their share of the prompt.
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

from app.core.errors import UserError

MAX_RULE_CHARS = 500
# Rules may take at most this share of the prompt budget (the rest is history, code, pages).
RULES_SHARE = 0.15
RULES_HEADER = "Rules the user set (always follow them):"
EXAMPLE = "/remember Use pytest, not unittest"

_PROJECT_FLAG = re.compile(r"^(?:--project|-p)(?:\s+|$)", re.I)
_GLOBAL_FLAG = re.compile(r"^(?:--global|-g)(?:\s+|$)", re.I)


class RuleError(UserError, ValueError):
    """A rule cannot be stored or changed as asked; the message says what to do."""


def clean_rule(text: str) -> str:
    """The rule's text as stored (whitespace runs folded), or RuleError with what to do."""
    text = " ".join((text or "").split())
    if not text:
        raise RuleError(f"A rule needs some text, for example: {EXAMPLE}")
    if len(text) > MAX_RULE_CHARS:
        raise RuleError(f"That rule is {len(text)} characters long; keep a rule under {MAX_RULE_CHARS} "
                        "(it goes into every prompt). Split it into shorter rules.")
    return text


def parse_remember(rest: str) -> tuple[str, bool]:
    """What follows ``/remember``: (rule text, for the open project only?).

    ``/remember <rule>`` is for every project; ``/remember --project <rule>`` (or ``-p``) is for
    the open project only. Raises RuleError for an empty rule."""
    rest = (rest or "").strip()
    for_project = False
    m = _PROJECT_FLAG.match(rest)
    if m:
        for_project, rest = True, rest[m.end():]
    else:
        m = _GLOBAL_FLAG.match(rest)
        if m:
            rest = rest[m.end():]
    return clean_rule(rest), for_project


def fit_rules(rules: Sequence[str], budget_tokens: int, count: Callable[[str], int]) -> tuple[str, int]:
    """The system-prompt block for ``rules`` (newest first) within ``budget_tokens``, and how
    many rules were left out because they did not fit (the oldest go first; a rule too long
    for the room left is skipped and a shorter older one may still fit)."""
    if not rules:
        return "", 0
    kept: list[str] = []
    left_out = 0
    for rule in rules:
        candidate = _block(kept + [rule])
        if count(candidate) <= budget_tokens:
            kept.append(rule)
        else:
            left_out += 1
    return (_block(kept) if kept else ""), left_out


def _block(rules: Sequence[str]) -> str:
    return RULES_HEADER + "".join(f"\n- {r}" for r in rules)

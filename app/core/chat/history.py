"""The conversation as a list of messages: what fits the context, how it was sent before, its
title. Pure functions on lists (no storage, no model), shared by every prompt builder: the
chat (``service.py``), ``/fix`` rounds, the review; ``service`` re-exports them.
"""

from __future__ import annotations

from typing import Callable, Sequence

from app.core.engine import Message
from app.core.storage import DEFAULT_TITLE, StoredMessage

TITLE_MAX = 60


def answer_reserve(n_ctx: int, max_tokens: int) -> int:
    """Tokens kept free for the answer: the max answer length, but at most half the context."""
    return max(1, min(max_tokens, n_ctx // 2))


def build_messages(system_prompt: str, history: Sequence[Message], prompt_budget: int,
                   count: Callable[[Sequence[Message]], int], headroom: int = 0) -> list[Message]:
    """System prompt + the newest history that fits ``prompt_budget`` tokens.

    The last message (the question) is always kept; older turns are dropped whole, oldest
    first, so the model never sees half a message. When anything must go, enough goes to leave
    ``headroom`` tokens free: every drop changes the prompt's beginning, so llama.cpp re-reads
    it all once; dropping a little more makes that happen rarely instead of at every turn.
    """
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    if not history:
        return system
    everything = system + [dict(m) for m in history]
    limit = prompt_budget if count(everything) <= prompt_budget else prompt_budget - headroom
    kept: list[Message] = [dict(history[-1])]
    for m in reversed(history[:-1]):
        candidate = [dict(m)] + kept
        if count(system + candidate) > limit:
            break
        kept = candidate
    # A conversation should not start with an orphaned assistant reply.
    while len(kept) > 1 and kept[0]["role"] == "assistant":
        kept.pop(0)
    return system + kept


def history_as_sent(messages: Sequence[StoredMessage]) -> tuple[list[Message], list[list[str]]]:
    """The chat history as the model was sent it (each question as asked, with the code it
    showed: its answer's ``asked_as``), and for each message the citations of the code it showed."""
    chat = [m for m in messages if m.role in ("user", "assistant")]
    history: list[Message] = []
    shown: list[list[str]] = []
    for i, m in enumerate(chat):
        answer = chat[i + 1] if m.role == "user" and i + 1 < len(chat) and chat[i + 1].role == "assistant" else None
        meta = answer.meta if answer is not None else {}
        history.append({"role": m.role, "content": meta.get("asked_as", m.content) if m.role == "user" else m.content})
        shown.append(list(meta.get("shown", [])) if m.role == "user" else [])
    return history, shown


def title_from(question: str) -> str:
    line = " ".join(question.split())
    if len(line) <= TITLE_MAX:
        return line or DEFAULT_TITLE
    return line[: TITLE_MAX - 1].rstrip() + "…"

"""The retrieved code as it goes into the prompt.

A budget of about 1,500 tokens by default: on 2 cores prompt processing runs at tens of tokens
per second, so every chunk costs the user seconds. Best chunks first; a chunk overlapping one
already taken from the same file is skipped (split definitions overlap by a few lines); each
is headed by its citation so the model can cite it, and the instruction asks it to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

if TYPE_CHECKING:  # the chat imports this module; it need not load the index (hnswlib, tree-sitter)
    from app.core.index.indexer import Hit

PROMPT_CHUNKS = 8        # candidates retrieved for a question; the budget decides how many go in
PROMPT_SHARE = 0.6       # project code may take at most this share of the prompt budget

CITE_INSTRUCTIONS = (
    "Project code that may be relevant follows, each piece headed by its location as "
    "path:start-end. Answer from this code when it applies, and cite every piece you use "
    "by its location, for example `app/main.py:10-24`. If the code shown does not answer "
    "the question, say so instead of guessing."
)
# The same, for the system prompt of a conversation whose code comes with each question (the
# layout that lets llama.cpp reuse everything read before: see app/core/chat/service.py).
CITE_IN_TURNS = (
    "The user's questions may begin with project code, each piece headed by its location as "
    "path:start-end; code shown earlier in the conversation still applies. Answer from this code "
    "when it applies, and cite every piece you use by its location, for example "
    "`app/main.py:10-24`. If the code shown does not answer the question, say so instead of guessing."
)


@dataclass
class ProjectContext:
    text: str                 # the block for the system prompt ("" when nothing fits)
    hits: list[Hit]           # the chunks shown, in prompt order: the answer's sources


def _overlaps(a: Hit, b: Hit) -> bool:
    return (a.chunk.path == b.chunk.path and a.chunk.start_line <= b.chunk.end_line
            and b.chunk.start_line <= a.chunk.end_line)


def format_hit(h: Hit) -> str:
    c = h.chunk
    lang = c.language if c.language not in ("text", "") else ""
    symbol = f" ({c.symbol})" if c.symbol else ""
    return f"[{c.citation}]{symbol}\n```{lang}\n{c.text}\n```"


def with_project_context(system: str, hits: Sequence[Hit], context_tokens: int, prompt_budget: int,
                         count_tokens: Callable[[str], int]) -> tuple[str, ProjectContext]:
    """The system prompt with the cited project code appended (unchanged when none fits)."""
    ctx = build_context(hits, min(context_tokens, int(prompt_budget * PROMPT_SHARE)), count_tokens)
    if not ctx.text:
        return system, ctx
    return (f"{system}\n\n{ctx.text}" if system else ctx.text), ctx


def build_context(hits: Sequence[Hit], budget: int, count_tokens: Callable[[str], int],
                  instructions: bool = True, at_least_one: bool = False) -> ProjectContext:
    """As many of ``hits`` (best first) as fit ``budget`` tokens, without overlaps; headed by the
    citing instructions unless ``instructions`` is False (they are in the system prompt). With
    ``at_least_one``, the best hit goes in even when it alone is over the budget."""
    used = count_tokens(CITE_INSTRUCTIONS) if instructions else 0
    taken: list[Hit] = []
    blocks: list[str] = []
    for h in hits:
        if any(_overlaps(h, t) for t in taken):
            continue
        block = format_hit(h)
        cost = count_tokens(block) + 2
        if used + cost > budget and not (at_least_one and not taken and h is hits[0]):
            continue  # a smaller chunk further down may still fit
        taken.append(h)
        blocks.append(block)
        used += cost
    if not taken:
        return ProjectContext("", [])
    head = CITE_INSTRUCTIONS + "\n\n" if instructions else ""
    return ProjectContext(head + "\n\n".join(blocks), taken)

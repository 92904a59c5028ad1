"""Fill-in-the-middle within what a 2-core CPU reads in time: the code nearest the cursor.

Why: editors send a lot around the cursor (llama.vscode: 256 lines before, 64 after) on every
pause in typing. On 2 cores a 1.5B model reads ~100-170 tokens a second, so that whole window
(~4,000 tokens of dense Python) took 48 s cold, and each keystroke 10 s, because llama.cpp
re-reads everything after the first changed token: the suffix, every time. llama.cpp's own
server bounds the same way (prefix at most 3/4 of its batch, suffix 1/4; llama.vscode's CPU
set-up uses a batch of 512), so the budget here is that: the prefix's lines nearest the cursor
within 3/4 of FIM_BUDGET tokens, the suffix's within 1/4.

The prefix's first line is snapped to a multiple of PREFIX_STEP lines so that it stays put while
the user types: a prompt that starts the same way is not read again (llama.cpp's prefix cache),
whereas a window sliding by one token per keystroke would be read whole each time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from app.core.api.requests import fim_prompt

FIM_BUDGET = 512   # tokens of prefix + suffix (llama.vscode's CPU batch; llama-server's 3:1 split)
PREFIX_STEP = 16   # lines: where the kept prefix may start
CHARS_PER_TOKEN = 4  # a first cut of a single line longer than the whole budget


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def keep_prefix(prefix: str, count: Callable[[str], int], budget: int) -> tuple[str, int]:
    """(the prefix's end within ``budget`` tokens, lines dropped from its start)."""
    lines = _lines(prefix)
    if not lines:
        return prefix, 0
    used, start = count(lines[-1]), len(lines) - 1  # the cursor's line is always kept
    while start > 0:
        n = count(lines[start - 1])
        if used + n > budget:
            break
        used, start = used + n, start - 1
    if start > 0:  # snapped forward (never more than the budget), so it stays put while typing
        start = min(-(-start // PREFIX_STEP) * PREFIX_STEP, len(lines) - 1)
    kept = "".join(lines[start:])
    if start == len(lines) - 1:
        kept = _within(kept, count, budget, keep_end=True)
    return kept, start


def keep_suffix(suffix: str, count: Callable[[str], int], budget: int) -> tuple[str, int]:
    """(the suffix's start within ``budget`` tokens, lines dropped from its end)."""
    lines = _lines(suffix)
    if not lines:
        return suffix, 0
    end, used = 1, count(lines[0])  # the rest of the cursor's line is always kept
    while end < len(lines):
        n = count(lines[end])
        if used + n > budget:
            break
        used, end = used + n, end + 1
    kept = "".join(lines[:end])
    if end == 1:
        kept = _within(kept, count, budget, keep_end=False)
    return kept, len(lines) - end


def _within(text: str, count: Callable[[str], int], budget: int, keep_end: bool) -> str:
    """One line longer than the whole budget (minified code): its characters nearest the cursor."""
    size = budget * CHARS_PER_TOKEN
    while len(text) > size or count(text) > budget:
        size = min(size, len(text)) * 9 // 10
        text = text[-size:] if keep_end else text[:size]
    return text


@dataclass
class FimRequest:
    """The parts of a fill-in-the-middle request; the prompt is made inside the model's turn,
    where its tokenizer can count."""
    prefix: str
    suffix: str
    extra: list[tuple[str, str]] = field(default_factory=list)

    def text(self) -> str:
        """The prompt as sent, untrimmed (size checks before the model's turn)."""
        return fim_prompt(self.prefix, self.suffix, self.extra)

    def build(self, count: Callable[[str], int], budget: int = FIM_BUDGET) -> tuple[str, str | None]:
        """(Qwen's FIM prompt within ``budget`` tokens of prefix and suffix, what was left out);
        ``budget`` 0 keeps everything."""
        if budget <= 0:
            return self.text(), None
        prefix, cut_head = keep_prefix(self.prefix, count, budget * 3 // 4)
        suffix, cut_tail = keep_suffix(self.suffix, count, budget - budget * 3 // 4)
        note = None
        if cut_head or cut_tail:
            note = (f"Read the code nearest the cursor: {cut_head} lines before it and {cut_tail} after it were left "
                    f"out (fill-in-the-middle reads at most {budget} tokens of the file, so that a completion comes "
                    "in seconds on a laptop's CPU).")
        return fim_prompt(prefix, suffix, self.extra), note

"""Fill-in-the-middle pairs: a file with one definition taken out, and that definition.

Qwen2.5-Coder was pre-trained on fill-in-the-middle with its own special tokens
(``<|fim_prefix|>``, ``<|fim_suffix|>``, ``<|fim_middle|>``; the tokenizer of every Qwen2.5
model has them). For that family the user turn is exactly the model's FIM prompt, so the
fine-tune strengthens a skill the model already has, with the tokens it already knows (the
chat template wraps it, which is how the app would ask). Other families get the same task
as a plain-text instruction. The assistant turn is the missing code, as it appears in the
file (no fence for Qwen's FIM, which completes raw text; fenced for the instruction).
"""

from __future__ import annotations

from app.core.models.gguf_info import GGUFInfo

QWEN = "qwen"
PLAIN = "plain"
FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE = "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"
# Architectures whose tokenizer has Qwen's FIM tokens (GGUF general.architecture).
_QWEN_ARCHITECTURES = {"qwen2"}
_OVERHEAD = 200  # characters of instruction text around the code in the plain format


def fim_style_for(info: GGUFInfo | None) -> str:
    """``"qwen"`` for Qwen2/Qwen2.5(-Coder) models (GGUF architecture ``qwen2``), else ``"plain"``."""
    if info is not None and info.architecture in _QWEN_ARCHITECTURES:
        return QWEN
    return PLAIN


def fit_context(prefix: str, suffix: str, budget: int) -> tuple[str, str]:
    """Prefix and suffix cut at line boundaries to ``budget`` characters together, keeping the
    lines nearest to the gap (60% of the room for the prefix, what it leaves to the suffix)."""
    if len(prefix) + len(suffix) <= budget:
        return prefix, suffix
    room_prefix = max(0, int(budget * 0.6))
    kept_prefix = _tail_lines(prefix, room_prefix)
    kept_suffix = _head_lines(suffix, max(0, budget - len(kept_prefix)))
    return kept_prefix, kept_suffix


def _tail_lines(text: str, room: int) -> str:
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    size = 0
    for line in reversed(lines):
        if size + len(line) > room:
            break
        out.insert(0, line)
        size += len(line)
    return "".join(out)


def _head_lines(text: str, room: int) -> str:
    out: list[str] = []
    size = 0
    for line in text.splitlines(keepends=True):
        if size + len(line) > room:
            break
        out.append(line)
        size += len(line)
    return "".join(out)


def fim_messages(path: str, language: str, prefix: str, middle: str, suffix: str, style: str) -> list[dict]:
    """The user/assistant pair that asks for ``middle`` between ``prefix`` and ``suffix``."""
    if style == QWEN:
        user = f"{FIM_PREFIX}{prefix}{FIM_SUFFIX}{suffix}{FIM_MIDDLE}"
        return [{"role": "user", "content": user}, {"role": "assistant", "content": middle}]
    user = (f"Complete the middle of the file `{path}`: write only the code that goes where "
            f"<MISSING> stands.\n\n```{language}\n{prefix}<MISSING>\n{suffix}```")
    return [{"role": "user", "content": user},
            {"role": "assistant", "content": f"```{language}\n{middle.rstrip()}\n```"}]


def overhead(style: str) -> int:
    """Characters a pair adds around prefix, middle and suffix."""
    return len(FIM_PREFIX + FIM_SUFFIX + FIM_MIDDLE) if style == QWEN else _OVERHEAD

"""/fix: run the code, and while it fails, show the model the error and run its correction.

``fix_rounds`` is the whole loop (sandbox run → request with the real error → the model's
correction → run again), so the window and any other caller share it; it reports each step
through ``on_event`` and never touches storage or widgets, so it runs on a worker thread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from typing import TYPE_CHECKING, Callable

from app.core.run.result import RunResult
from app.core.run.sandbox import language_of, run_code

if TYPE_CHECKING:
    from app.core.chat.service import ChatService
    from app.core.engine import Engine, GenerationParams

_FENCE = re.compile(r"```([^\n`]*)\n(.*?)```", re.S)
ERROR_TAIL = 3000  # characters of stderr the model sees (the end holds the traceback's point)


@dataclass(frozen=True)
class CodeBlock:
    code: str
    language: str  # "python" or "shell"


def runnable_blocks(text: str) -> list[CodeBlock]:
    out = []
    for info, code in _FENCE.findall(text):
        lang = language_of(info.strip().split()[0] if info.strip() else "")
        if lang:
            out.append(CodeBlock(code, lang))
    return out


def last_runnable(answers: list[str]) -> CodeBlock | None:
    """The last runnable block of the newest answer that has one."""
    for text in reversed(answers):
        blocks = runnable_blocks(text)
        if blocks:
            return blocks[-1]
    return None


def fix_request(block: CodeBlock, result: RunResult, note: str = "") -> str:
    """The message that asks the model for a corrected version, with the real error."""
    err = (result.stderr or result.stdout or result.summary())[-ERROR_TAIL:]
    fence = "python" if block.language == "python" else "bash"
    extra = f"\n{note.strip()}" if note.strip() else ""
    return (f"This code failed ({result.summary()}):\n\n```{fence}\n{block.code.rstrip()}\n```\n\n"
            f"Error output:\n\n```\n{err.rstrip()}\n```\n{extra}\n"
            f"Reply with the corrected, complete code in one ```{fence} block, then one sentence on what was wrong.")


def fix_rounds(block: CodeBlock, rounds: int, *, engine: "Engine", chat: "ChatService", params: "GenerationParams",
               rules: list[str], history: list, note: str = "",
               on_event: Callable[[str, object], None] = lambda kind, value: None,
               cancelled: Callable[[], bool] = lambda: False, run=run_code) -> tuple[int, RunResult | None]:
    """Run ``block``; while it fails and rounds are left, ask the model for a correction and run
    that. Returns (runs made, last RunResult). ``history`` (chat messages before the request)
    grows with each request and answer. Events, in order, per round: ("begin", "output"),
    ("text", output chunk)…, ("ran", RunResult); then, if another round follows,
    ("request", text), ("begin", "assistant"), ("text", token)…, ("answered", text)."""
    from app.core.chat.service import answer_reserve, build_messages

    result: RunResult | None = None
    for n in range(1, rounds + 1):
        on_event("begin", "output")
        result = run(block.code, block.language, cancelled=cancelled, confirmed_shell=True,
                     on_output=lambda _stream, text: on_event("text", text))
        on_event("ran", result)
        if result.exit_code == 0 or result.cancelled or n == rounds:
            return n, result
        request = fix_request(block, result, note)
        on_event("request", request)
        reserve = answer_reserve(engine.n_ctx, params.max_tokens)
        messages = build_messages(chat.base_system(engine, rules, engine.n_ctx - reserve)[0],
                                  history + [{"role": "user", "content": request}],
                                  engine.n_ctx - reserve, engine.count_message_tokens)
        on_event("begin", "assistant")
        answer = engine.chat(messages, params, on_token=lambda t: on_event("text", t), cancelled=cancelled)
        on_event("answered", answer.text)
        history.extend([{"role": "user", "content": request}, {"role": "assistant", "content": answer.text}])
        blocks = runnable_blocks(answer.text)
        if answer.cancelled or not blocks:
            return n, result
        block = blocks[-1]
    return rounds, result

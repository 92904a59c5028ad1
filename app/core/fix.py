"""/fix: run the code, and while it fails, show the model the error and run its correction.

The rounds themselves run in the UI's worker (they alternate between the sandbox and the
engine); this module holds what they are made of, so the prompt is built in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.core.sandbox import RunResult, language_of

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

"""The prompt for a change request: the format to answer in, and the files to change.

Small models get precise diff formats wrong; on Aider's public benchmark Qwen2.5-Coder
1.5B/3B/7B were run in the "whole file" format, which they follow reliably. So we ask for
the complete new content of each changed file in a fenced block with its path on the line
before, and compute the diff ourselves. A file too big to repeat within the answer budget
is shown, and the model is asked for the complete changed functions only (see
``edits.partial``). Files that do not fit the prompt budget are named but not shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pygments.lexers import get_lexer_for_filename
from pygments.util import ClassNotFound

from app.core.edits.fences import fence_for
from app.core.edits.formats import looks_like_path
from app.core.edits.project_path import UnsafePathError, resolve_in_project
from app.core.edits.textfile import TextFile, UneditableFileError
from app.core.edits.choose import choose_files
from app.core.project import project_files

CODE_COMMAND = "/code"

EDIT_INSTRUCTIONS = """\
You can change the user's project files. To change a file, write its path alone on a line, \
then a fenced code block with the COMPLETE new content of that file. Example:

src/greet.py
```python
def greet(name):
    return f"Hello, {name}!"
```

Rules:
- Always give the whole file, never "..." or "rest unchanged".
- Use the exact relative path of the file. To create a file, use a new path. To delete a file, \
write a line: DELETE path/to/file
- Only change what the request needs. Explain the change in one or two sentences.
- If a file contains ``` lines, wrap it in a longer fence (````), as it is shown."""

BIG_FILE_NOTE = ("This file is long: answer with its path and then only the complete new version of "
                 "each function or class you change.")


CHOSEN_MAX = 5  # files the index may add to a request that names none


@dataclass
class EditRequest:
    """A change request against a project: the files the model sees and may change.

    ``files`` empty: they are chosen when the prompt is built (on the worker): those the request
    names or ``@``-mentions, else the project index's best (``search``: ``ProjectIndex.search``);
    ``reasons`` then says why each was chosen and ``problems`` what could not be used."""

    root: Path
    request: str
    files: list[str] = field(default_factory=list)
    search: Callable[[str, int], list] | None = None
    reasons: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    from_index: bool = False  # the files came from the index (shown within the speed budget)


def choose_request_files(req: EditRequest) -> None:
    """Fill ``req.files`` (and reasons, problems): what the request names or @-mentions; when it
    names nothing, the index's most relevant files (definitions that match, their importers).
    Reads the project tree: call it on a worker."""
    files = project_files(req.root)
    chosen, req.problems = choose_files(req.request, req.root, files, None)
    if not chosen and req.search is not None:
        chosen, req.problems = choose_files(req.request, req.root, files, req.search, limit=CHOSEN_MAX)
        req.from_index = bool(chosen)
    req.files = [c.path for c in chosen]
    req.reasons = {c.path: c.reason for c in chosen}


def strip_command(text: str) -> tuple[bool, str]:
    """(is an explicit /code request, the request without the command)."""
    s = text.strip()
    if s == CODE_COMMAND or s.startswith(CODE_COMMAND + " ") or s.startswith(CODE_COMMAND + "\n"):
        return True, s[len(CODE_COMMAND):].strip()
    return False, s


def guess_target(request: str, files_shown: list[str] | None) -> str | None:
    """The one file a request is about, for answers that forget to name it (or None)."""
    if files_shown and len(files_shown) == 1:
        return files_shown[0]
    if files_shown:
        return None
    named = {w.strip(".,:;!?`'\"") for w in request.split()}
    named = {w for w in named if looks_like_path(w)}
    return named.pop() if len(named) == 1 else None


def language_of(path: str) -> str:
    try:
        aliases = get_lexer_for_filename(path).aliases
        return aliases[0] if aliases else ""
    except ClassNotFound:
        return ""


def build_edit_prompt(req: EditRequest, budget_tokens: int, answer_tokens: int,
                      count: Callable[[str], int], index_tokens: int | None = None) -> tuple[str, str, list[str]]:
    """(system addition, user message, files shown) within ``budget_tokens``.

    A file is shown whole when it fits what is left of the budget; it is marked "long" when
    repeating it would not fit ``answer_tokens``. Files the index chose (the user named none)
    are also held to ``index_tokens``, the speed budget (what the model reads within the
    first-answer target), all but the first: a guess should not cost the user a minute.
    """
    if not req.files:
        choose_request_files(req)  # reads the project tree: this runs on the worker, with the prompt
    parts: list[str] = []
    shown: list[str] = []
    left = budget_tokens - count(EDIT_INSTRUCTIONS) - count(req.request) - 64
    if req.from_index and index_tokens is not None:
        spend = max(0, index_tokens - count(req.request) - 64)
    else:
        spend = None
    skipped: list[str] = []
    for rel in req.files:
        try:
            _, target = resolve_in_project(req.root, rel)
            text = "".join(TextFile.read(target, rel).lines).replace("\r\n", "\n")
        except (UnsafePathError, UneditableFileError, OSError):
            continue
        if text and not text.endswith("\n"):
            text += "\n"
        fence = fence_for(text)  # longer than any fence inside, so the model can tell where the file ends
        block = f"{rel}\n{fence}{language_of(rel)}\n{text}{fence}\n"
        cost = count(block)
        if cost > left or (spend is not None and shown and cost > spend):
            if not req.from_index:  # a file the user named: the model hears it exists
                skipped.append(rel)
            continue
        if spend is not None:
            spend -= cost
        if cost > answer_tokens * 0.8:
            block += BIG_FILE_NOTE + "\n"
        parts.append(block)
        shown.append(rel)
        left -= cost
    user = ""
    if parts:
        user += "Current content of the files:\n\n" + "\n".join(parts) + "\n"
    if skipped:
        user += ("These files exist but are too long to show here: " + ", ".join(skipped) + ".\n\n")
    user += f"Request: {req.request}"
    return EDIT_INSTRUCTIONS, user, shown

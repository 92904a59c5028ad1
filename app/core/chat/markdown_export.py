"""One conversation as a Markdown file: the branch on show, each message under a heading,
answers with their code blocks as written and their sources, sandbox output in a fence.

Why its own module: the window's "Export as Markdown…" and any later command line share one
format. Answers are Markdown already; what could break the file is a block left open (a
stopped or interrupted answer ends inside its code), which would swallow every heading after
it, so each message's open fence is closed where the message ends.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from app.core.atomic import atomic_write_text, describe_os_error
from app.core.edits.fences import fence_for, fence_of
from app.core.errors import UserError
from app.core.storage import Conversation, Storage, StoredMessage

HEADINGS = {"user": "You", "assistant": "Assistant"}
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f]+')


class MarkdownExportError(UserError, RuntimeError):
    """The Markdown file cannot be written, or the conversation is gone; nothing was changed."""


def close_fences(text: str) -> str:
    """``text`` with a fenced code block it leaves open closed at its end."""
    opener = None
    for line in text.split("\n"):
        f = fence_of(line)
        if f is None:
            continue
        if opener is None:
            opener = f
        elif f.char == opener.char and f.length >= opener.length and not f.info:
            opener = None
    if opener is None:
        return text
    return text.rstrip("\n") + "\n" + opener.char * opener.length


def _source(s: str) -> str:
    return f"<{s}>" if s.startswith(("http://", "https://")) else f"`{s}`"


def _status(meta: dict) -> str:
    if meta.get("unfinished"):
        return " _(interrupted)_"
    return {"cancelled": " _(stopped)_", "length": " _(cut at the length limit)_"}.get(meta.get("finish_reason"), "")


def message_markdown(m: StoredMessage) -> str:
    if m.role == "system" and m.meta.get("tool") == "run":
        fence = fence_for(m.content)
        return f"## Output\n\n{fence}text\n{m.content.rstrip()}\n{fence}"
    if m.role == "system":
        return "\n".join("> " + line for line in m.content.strip().split("\n"))
    part = f"## {HEADINGS.get(m.role, m.role)}{_status(m.meta) if m.role == 'assistant' else ''}\n\n"
    part += close_fences(m.content.strip())
    sources = m.meta.get("sources") or []
    if m.role == "assistant" and sources:
        part += "\n\nSources: " + ", ".join(_source(s) for s in sources)
    return part


def conversation_markdown(conv: Conversation, messages: list[StoredMessage], when: datetime | None = None) -> str:
    """The whole file: title, when and where from, then every message."""
    stamp = (when or datetime.now()).strftime("%Y-%m-%d %H:%M")
    about = f"_Exported {stamp}" + (f" · project `{conv.project}`" if conv.project else "") + "_"
    parts = [f"# {conv.title.strip() or 'Chat'}", about] + [message_markdown(m) for m in messages]
    return "\n\n".join(parts) + "\n"


def file_name_for(title: str) -> str:
    """A file name from the chat's title (characters no file system takes replaced)."""
    name = " ".join(_UNSAFE.sub(" ", title).split()).strip(" .") or "chat"
    return name[:80].rstrip(" .") + ".md"


def export_markdown(storage: Storage, conversation_id: int, path: Path | str) -> Path:
    """Write the conversation's branch on show to ``path`` atomically (a failure leaves an
    existing file as it was)."""
    path = Path(path)
    conv = storage.conversation(conversation_id)
    if conv is None:
        raise MarkdownExportError("That conversation no longer exists (it was deleted); nothing was exported.")
    if path.is_dir():
        raise MarkdownExportError(f"{path} is a folder; choose a file name for the export (e.g. chat.md).")
    text = conversation_markdown(conv, storage.messages(conversation_id))
    try:
        atomic_write_text(path, text)
    except OSError as e:
        kept = "The previous file is unchanged." if path.exists() else "Nothing was written."
        raise MarkdownExportError(f"Could not write {path}: {describe_os_error(e)}. {kept}") from None
    return path

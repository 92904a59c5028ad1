"""/web: search, read the top pages, and answer citing them, as one function.

The window runs it on a worker and the command line could call it as it is: the pipeline
(search → read → the pages' text into the prompt → generate) lives here, not in the UI.
Progress goes out through ``on_status`` (a line for the status bar) and tokens through
``on_token``; nothing here touches storage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from app.core.web.pages import read_pages, web_context
from app.core.web.search import SearchError, SearchProvider

if TYPE_CHECKING:
    from app.core.chat.service import ChatService, PendingAnswer
    from app.core.engine import Engine, GenerationParams, GenerationResult

PAGES = 3


def answer_from_web(task: str, provider: SearchProvider, chat: "ChatService", engine: "Engine",
                    pending: "PendingAnswer", params: "GenerationParams", budget_chars: int,
                    on_status: Callable[[str], None] = lambda s: None,
                    on_token: Callable[[str], None] = lambda t: None,
                    cancelled: Callable[[], bool] = lambda: False, on_reading=None) -> "GenerationResult":
    """Answer ``task`` from the top pages; ``pending.web``/``web_urls`` name what was read."""
    on_status("Searching the web…")
    results = provider.search(task)
    on_status(f"Reading {min(PAGES, len(results))} pages…")
    pages = read_pages(results, on_page=lambda p: on_status(f"Read {p.url}"))
    good = [p for p in pages if p.ok]
    if not good:
        reasons = "; ".join(f"{p.url}: {p.error}" for p in pages[:PAGES])
        raise SearchError(f"None of the top pages could be read ({reasons}).")
    pending.web, pending.web_urls = web_context(task, good, budget_chars), [p.url for p in good]
    on_status("Thinking…")
    messages = chat.prompt(engine, pending)
    return engine.chat(messages, params, on_token=on_token, cancelled=cancelled, on_reading=on_reading)

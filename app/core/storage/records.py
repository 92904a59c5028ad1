"""What the chat database hands out: plain dataclasses, no connection behind them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Implicit signals: what the user did with the changes an answer proposed.
IMPLICIT_SOURCES = {"applied": 1, "rejected": -1}

DEFAULT_TITLE = "New chat"


@dataclass
class Conversation:
    id: int
    title: str
    created: float
    updated: float
    project: str | None = None  # the project folder open when it was last used
    pinned: bool = False        # kept at the top of the list


@dataclass(frozen=True)
class Rating:
    """An answer's feedback. The user's own thumbs win over the implicit signal (changes
    applied or discarded); clearing the thumbs falls back to the implicit signal."""

    user: int = 0          # +1 / -1 from the thumbs, 0 none
    implicit: int = 0      # +1 changes applied, -1 changes discarded, 0 none

    @property
    def value(self) -> int:
        return self.user or self.implicit

    @property
    def source(self) -> str:
        """Where ``value`` comes from: "user", "applied", "rejected" or ""."""
        if self.user:
            return "user"
        return {1: "applied", -1: "rejected"}.get(self.implicit, "")


@dataclass
class Rule:
    id: int
    text: str
    project: str | None  # None: every project
    created: float
    updated: float


@dataclass
class StoredMessage:
    id: int
    conversation_id: int
    role: str
    content: str
    created: float
    meta: dict[str, Any] = field(default_factory=dict)
    parent_id: int | None = None  # the message it follows (None: the conversation's first)

    def as_chat(self) -> dict:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class Versions:
    """Where a message stands among its versions (regenerated answers, edited questions: the
    messages with the same parent and role), for "◀ 2/3 ▶"."""

    index: int   # 1-based, in the order they were written
    count: int
    ids: tuple[int, ...]

    def step(self, by: int) -> int | None:
        """The id ``by`` versions away, or None past either end."""
        i = self.index - 1 + by
        return self.ids[i] if 0 <= i < self.count else None

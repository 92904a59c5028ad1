"""Conversations: create, list (pinned first, then the most recently active), rename, pin,
delete (one or several in one transaction), and search over titles and message text.

Search goes through the FTS5 tables of migration 3. What the user types is never handed to
FTS5 as a query: its words become quoted prefix terms (``"sort"* "dict"*``), so quotes,
brackets, ``*``, ``-``, ``AND``/``NEAR`` and the like are only text and cannot raise.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Iterable

from app.core.storage.base import writes
from app.core.storage.records import DEFAULT_TITLE, Conversation

_COLUMNS = "id, title, created, updated, project, pinned"
_ORDER = "ORDER BY pinned DESC, updated DESC, id DESC"
_WORD = re.compile(r"\w+")
MAX_QUERY_WORDS = 16


def fts_query(text: str) -> str | None:
    """The user's words as an FTS5 query every word of which must match (as a prefix), or None
    when there is no word in it (only punctuation, or empty)."""
    words = _WORD.findall(text)[:MAX_QUERY_WORDS]
    if not words:
        return None
    return " ".join('"' + w.replace('"', '""') + '"*' for w in words)


def _conversation(row) -> Conversation:
    return Conversation(*row[:5], bool(row[5]))


class ConversationStore:
    @writes("The new chat was not saved")
    def create_conversation(self, title: str = DEFAULT_TITLE) -> Conversation:
        now = time.time()
        cur = self._db.execute(
            "INSERT INTO conversations (title, created, updated) VALUES (?, ?, ?)", (title, now, now))
        return Conversation(cur.lastrowid, title, now, now)

    def conversations(self) -> list[Conversation]:
        """Pinned first, then the most recently active."""
        return [_conversation(r) for r in self._db.execute(f"SELECT {_COLUMNS} FROM conversations {_ORDER}")]

    def conversation(self, conversation_id: int) -> Conversation | None:
        r = self._db.execute(f"SELECT {_COLUMNS} FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        return _conversation(r) if r else None

    def search_conversations(self, text: str) -> list[Conversation]:
        """The conversations whose title, or one of whose messages, holds every word of ``text``
        (each as a word prefix, case and accents ignored), in list order. Text with no word in
        it filters nothing: every conversation."""
        query = fts_query(text)
        if query is None:
            return self.conversations()
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM conversations WHERE id IN ("
            " SELECT rowid FROM titles_fts WHERE titles_fts MATCH :q"
            " UNION SELECT m.conversation_id FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid"
            "  WHERE messages_fts MATCH :q)"
            f" {_ORDER}", {"q": query})
        return [_conversation(r) for r in rows]

    @writes("The chat's project was not saved")
    def set_conversation_project(self, conversation_id: int, project: Path | str | None) -> None:
        self._db.execute("UPDATE conversations SET project = ? WHERE id = ?",
                         (str(project) if project is not None else None, conversation_id))

    def projects(self) -> list[str]:
        """The project folders conversations were used with, most recent first."""
        rows = self._db.execute("SELECT project, max(updated) AS u FROM conversations WHERE project IS NOT NULL "
                                "GROUP BY project ORDER BY u DESC")
        return [r[0] for r in rows]

    @writes("The chat's new title was not saved")
    def rename_conversation(self, conversation_id: int, title: str) -> None:
        title = title.strip() or DEFAULT_TITLE
        self._db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id))

    @writes("The chat was not pinned")
    def pin_conversation(self, conversation_id: int, pinned: bool = True) -> None:
        self._db.execute("UPDATE conversations SET pinned = ? WHERE id = ?", (int(pinned), conversation_id))

    @writes("The chat was not deleted")
    def delete_conversation(self, conversation_id: int) -> None:
        self._db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    @writes("The chats were not deleted")
    def delete_conversations(self, conversation_ids: Iterable[int]) -> None:
        """Several at once, all or none."""
        with self.transaction() as db:
            db.executemany("DELETE FROM conversations WHERE id = ?", [(int(c),) for c in conversation_ids])

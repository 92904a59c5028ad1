"""Chats on disk: one SQLite database (WAL), written message by message.

Each message is committed as soon as it exists (the user's question when it is sent, the
answer when it ends or is stopped), so a crash mid-answer loses at most that unfinished
answer. Schema changes go through ``_MIGRATIONS`` keyed by ``PRAGMA user_version``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_MIGRATIONS = [
    # 1: conversations and their messages
    """
    CREATE TABLE conversations (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        created REAL NOT NULL,
        updated REAL NOT NULL
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
        content TEXT NOT NULL,
        created REAL NOT NULL,
        meta TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
    """,
]

DEFAULT_TITLE = "New chat"


@dataclass
class Conversation:
    id: int
    title: str
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

    def as_chat(self) -> dict:
        return {"role": self.role, "content": self.content}


class Storage:
    """The chat database. Use from one thread (the GUI's); every call is a short write."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise StorageError(f"The chat database {self.path} cannot be opened ({e}). "
                               "Move it aside to start with an empty history.") from None

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        for i, script in enumerate(_MIGRATIONS[version:], start=version + 1):
            self._db.execute("BEGIN")
            try:
                for stmt in filter(str.strip, script.split(";")):
                    self._db.execute(stmt)
                self._db.execute(f"PRAGMA user_version = {i}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        self._db.close()

    # ---- conversations ---------------------------------------------------------------------
    def create_conversation(self, title: str = DEFAULT_TITLE) -> Conversation:
        now = time.time()
        cur = self._db.execute(
            "INSERT INTO conversations (title, created, updated) VALUES (?, ?, ?)", (title, now, now))
        return Conversation(cur.lastrowid, title, now, now)

    def conversations(self) -> list[Conversation]:
        """Most recently active first."""
        rows = self._db.execute(
            "SELECT id, title, created, updated FROM conversations ORDER BY updated DESC, id DESC")
        return [Conversation(*r) for r in rows]

    def conversation(self, conversation_id: int) -> Conversation | None:
        r = self._db.execute("SELECT id, title, created, updated FROM conversations WHERE id = ?",
                             (conversation_id,)).fetchone()
        return Conversation(*r) if r else None

    def rename_conversation(self, conversation_id: int, title: str) -> None:
        title = title.strip() or DEFAULT_TITLE
        self._db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id))

    def delete_conversation(self, conversation_id: int) -> None:
        self._db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    # ---- messages -----------------------------------------------------------------------
    def add_message(self, conversation_id: int, role: str, content: str,
                    meta: dict[str, Any] | None = None) -> StoredMessage:
        now = time.time()
        meta = meta or {}
        self._db.execute("BEGIN")
        try:
            cur = self._db.execute(
                "INSERT INTO messages (conversation_id, role, content, created, meta) VALUES (?, ?, ?, ?, ?)",
                (conversation_id, role, content, now, json.dumps(meta)))
            self._db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (now, conversation_id))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return StoredMessage(cur.lastrowid, conversation_id, role, content, now, meta)

    def messages(self, conversation_id: int) -> list[StoredMessage]:
        rows = self._db.execute(
            "SELECT id, conversation_id, role, content, created, meta FROM messages "
            "WHERE conversation_id = ? ORDER BY id", (conversation_id,))
        return [StoredMessage(*r[:5], json.loads(r[5])) for r in rows]


class StorageError(RuntimeError):
    """The chat database cannot be used; the message says what to do."""

"""Chats on disk: one SQLite database (WAL), written message by message, with the feedback
on them (ratings of answers) and the user's standing rules.

Each message is committed as soon as it exists (the user's question when it is sent, the
answer when it ends or is stopped), so a crash mid-answer loses at most that unfinished
answer. Schema changes go through ``_MIGRATIONS`` keyed by ``PRAGMA user_version``.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.chat.rules import RuleError, clean_rule
from app.core.atomic import describe_os_error, disk_full_at
from app.core.errors import UserError

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
    # 2: feedback. Ratings of answers (the user's thumbs, and the implicit signal of a diff
    # applied or discarded), standing rules, and the project a conversation was used with.
    """
    ALTER TABLE conversations ADD COLUMN project TEXT;
    CREATE TABLE ratings (
        message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        source TEXT NOT NULL CHECK (source IN ('user', 'applied', 'rejected')),
        value INTEGER NOT NULL CHECK (value IN (-1, 1)),
        created REAL NOT NULL,
        PRIMARY KEY (message_id, source)
    );
    CREATE TABLE rules (
        id INTEGER PRIMARY KEY,
        text TEXT NOT NULL CHECK (length(trim(text)) > 0),
        project TEXT,
        created REAL NOT NULL,
        updated REAL NOT NULL
    );
    CREATE INDEX rules_by_project ON rules(project, updated);
    """,
]

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

    def as_chat(self) -> dict:
        return {"role": self.role, "content": self.content}


def _write_fault(e: sqlite3.Error, path: Path) -> str | None:
    """What a disk fault looks like through SQLite, in words for the user; None: not one."""
    text = str(e).lower()
    if "full" in text or ("disk i/o error" in text and disk_full_at(path)):
        return "the disk is full"
    if "readonly" in text or "read-only" in text:
        return "the disk or the database file is read-only"
    if "disk i/o error" in text:
        return "the disk reported an input/output error"
    if "unable to open" in text:
        return "the file or its folder cannot be opened for writing"
    return None


def _writes(what: str):
    """A write that fails on the disk's side (full, read-only, I/O error) is a StorageError that
    starts with ``what``; the transaction is rolled back, so the database keeps what it had."""
    def wrap(fn):
        @functools.wraps(fn)
        def method(self, *args, **kwargs):
            try:
                return fn(self, *args, **kwargs)
            except sqlite3.OperationalError as e:
                self._rollback()
                reason = _write_fault(e, self.path) or str(e)
                raise StorageError(f"{what}: {reason} ({self.path}). Earlier chats are "
                                   "kept; try again once the disk has room or is writable.") from e
        return method
    return wrap


class Storage:
    """The chat database. Use from one thread (the GUI's); every call is a short write."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageError(f"The folder for the chat database ({self.path.parent}) cannot be created: "
                               f"{describe_os_error(e)}.") from None
        self._db = None
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as e:
            if self._db is not None:
                self._db.close()
            reason = _write_fault(e, self.path) if isinstance(e, sqlite3.OperationalError) else None
            if reason:  # the disk, not the file: nothing is wrong with the history itself
                raise StorageError(f"The chat database {self.path} cannot be opened: {reason}. Your chats "
                                   "are kept; start the app again once the disk has room or is writable.") from None
            raise StorageError(f"The chat database {self.path} cannot be opened ({e}). "
                               "Move it aside to start with an empty history.") from None

    def _rollback(self) -> None:
        """Roll back if a transaction is still open: SQLite ends some itself (a full disk, an I/O
        error), and a ROLLBACK then would fail and hide the first error."""
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:
                pass

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
                self._rollback()
                raise

    def close(self) -> None:
        self._db.close()

    # ---- conversations ---------------------------------------------------------------------
    @_writes("The new chat was not saved")
    def create_conversation(self, title: str = DEFAULT_TITLE) -> Conversation:
        now = time.time()
        cur = self._db.execute(
            "INSERT INTO conversations (title, created, updated) VALUES (?, ?, ?)", (title, now, now))
        return Conversation(cur.lastrowid, title, now, now)

    def conversations(self) -> list[Conversation]:
        """Most recently active first."""
        rows = self._db.execute(
            "SELECT id, title, created, updated, project FROM conversations ORDER BY updated DESC, id DESC")
        return [Conversation(*r) for r in rows]

    def conversation(self, conversation_id: int) -> Conversation | None:
        r = self._db.execute("SELECT id, title, created, updated, project FROM conversations WHERE id = ?",
                             (conversation_id,)).fetchone()
        return Conversation(*r) if r else None

    @_writes("The chat's project was not saved")
    def set_conversation_project(self, conversation_id: int, project: Path | str | None) -> None:
        self._db.execute("UPDATE conversations SET project = ? WHERE id = ?",
                         (str(project) if project is not None else None, conversation_id))

    def projects(self) -> list[str]:
        """The project folders conversations were used with, most recent first."""
        rows = self._db.execute("SELECT project, max(updated) AS u FROM conversations WHERE project IS NOT NULL "
                                "GROUP BY project ORDER BY u DESC")
        return [r[0] for r in rows]

    @_writes("The chat's new title was not saved")
    def rename_conversation(self, conversation_id: int, title: str) -> None:
        title = title.strip() or DEFAULT_TITLE
        self._db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id))

    @_writes("The chat was not deleted")
    def delete_conversation(self, conversation_id: int) -> None:
        self._db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    # ---- messages -----------------------------------------------------------------------
    @_writes("The message was not saved")
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
            self._rollback()
            raise
        return StoredMessage(cur.lastrowid, conversation_id, role, content, now, meta)

    def messages(self, conversation_id: int) -> list[StoredMessage]:
        rows = self._db.execute(
            "SELECT id, conversation_id, role, content, created, meta FROM messages "
            "WHERE conversation_id = ? ORDER BY id", (conversation_id,))
        return [StoredMessage(*r[:5], json.loads(r[5])) for r in rows]

    # ---- ratings ------------------------------------------------------------------------
    @_writes("The rating was not saved")
    def rate(self, message_id: int, value: int, source: str = "user") -> Rating:
        """Record feedback on an answer and return its rating now.

        ``source`` "user" (the thumbs): +1, -1, or 0 to clear it. "applied"/"rejected" (what
        the user did with the changes it proposed): one implicit signal per answer, the
        newest kept; ``value`` is ignored (applied is +1, rejected -1)."""
        if source != "user" and source not in IMPLICIT_SOURCES:
            raise ValueError(f"Unknown rating source {source!r}.")
        if source == "user" and value not in (-1, 0, 1):
            raise ValueError(f"A rating is +1, -1 or 0 (none), not {value!r}.")
        row = self._db.execute("SELECT role FROM messages WHERE id = ?", (message_id,)).fetchone()
        if row is None:
            raise RatingError("That answer no longer exists (its conversation was deleted).")
        if row[0] != "assistant":
            raise RatingError("Only answers can be rated.")
        now = time.time()
        self._db.execute("BEGIN")
        try:
            if source == "user":
                self._db.execute("DELETE FROM ratings WHERE message_id = ? AND source = 'user'", (message_id,))
                if value:
                    self._db.execute("INSERT INTO ratings (message_id, source, value, created) "
                                     "VALUES (?, 'user', ?, ?)", (message_id, value, now))
            else:
                self._db.execute("DELETE FROM ratings WHERE message_id = ? AND source != 'user'", (message_id,))
                self._db.execute("INSERT INTO ratings (message_id, source, value, created) VALUES (?, ?, ?, ?)",
                                 (message_id, source, IMPLICIT_SOURCES[source], now))
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        return self.rating(message_id)

    def rating(self, message_id: int) -> Rating:
        return self._ratings("WHERE message_id = ?", (message_id,)).get(message_id, Rating())

    def ratings(self, conversation_id: int) -> dict[int, Rating]:
        """Message id -> Rating for the rated answers of a conversation."""
        return self._ratings("WHERE message_id IN (SELECT id FROM messages WHERE conversation_id = ?)",
                             (conversation_id,))

    def _ratings(self, where: str, args: tuple) -> dict[int, Rating]:
        out: dict[int, Rating] = {}
        for mid, source, value in self._db.execute(f"SELECT message_id, source, value FROM ratings {where}", args):
            r = out.get(mid, Rating())
            out[mid] = Rating(value, r.implicit) if source == "user" else Rating(r.user, value)
        return out

    # ---- rules --------------------------------------------------------------------------
    @_writes("The rule was not saved")
    def add_rule(self, text: str, project: Path | str | None = None) -> Rule:
        """A new standing rule (for every project, or for ``project`` only). The same rule
        again (same scope, case and spacing aside) is not stored twice: it becomes the newest."""
        text = clean_rule(text)
        scope = str(project) if project is not None else None
        now = time.time()
        for r in self.rules():
            if r.project == scope and r.text.casefold() == text.casefold():
                self._db.execute("UPDATE rules SET text = ?, updated = ? WHERE id = ?", (text, now, r.id))
                return self.rule(r.id)
        cur = self._db.execute("INSERT INTO rules (text, project, created, updated) VALUES (?, ?, ?, ?)",
                               (text, scope, now, now))
        return Rule(cur.lastrowid, text, scope, now, now)

    _KEEP = object()

    @_writes("The rule was not saved")
    def update_rule(self, rule_id: int, text: str | None = None, project=_KEEP) -> Rule:
        """Change a rule's text and/or scope (``project=None`` makes it global)."""
        rule = self.rule(rule_id)
        if rule is None:
            raise RuleError("That rule no longer exists.")
        text = clean_rule(text) if text is not None else rule.text
        scope = rule.project if project is self._KEEP else (str(project) if project is not None else None)
        self._db.execute("UPDATE rules SET text = ?, project = ?, updated = ? WHERE id = ?",
                         (text, scope, time.time(), rule_id))
        return self.rule(rule_id)

    @_writes("The rule was not removed")
    def remove_rule(self, rule_id: int) -> None:
        self._db.execute("DELETE FROM rules WHERE id = ?", (rule_id,))

    def rule(self, rule_id: int) -> Rule | None:
        r = self._db.execute("SELECT id, text, project, created, updated FROM rules WHERE id = ?",
                             (rule_id,)).fetchone()
        return Rule(*r) if r else None

    def rules(self) -> list[Rule]:
        """Every rule, newest (last added or edited) first."""
        rows = self._db.execute("SELECT id, text, project, created, updated FROM rules ORDER BY updated DESC, id DESC")
        return [Rule(*r) for r in rows]

    def active_rules(self, project: Path | str | None = None) -> list[Rule]:
        """The rules that apply now: the global ones and ``project``'s, newest first."""
        scope = str(project) if project is not None else None
        return [r for r in self.rules() if r.project is None or r.project == scope]


class StorageError(UserError, RuntimeError):
    """The chat database cannot be used; the message says what to do."""


class RatingError(UserError, ValueError):
    """The answer to rate is gone or is not an answer. (A bad ``source`` or ``value`` is a bug
    in the caller and stays a plain ValueError.)"""

"""Messages as a tree: each has a parent (the message it follows), and the conversation
remembers the leaf of the branch on show.

Why a tree: a regenerated answer is a new sibling of the old one under the same question, an
edited question a new sibling under the same parent; the earlier ones stay reachable
("◀ 2/3 ▶"). ``messages(cid)`` is the path from the first message to that leaf, so every reader
(prompt building with ``asked_as``, the KV cache, training export, tools) sees one linear
conversation, the one on screen. ``add_message`` appends to the leaf unless told the parent.
An answer being written is one row updated as it grows (``update_message``), so a crash keeps
what was streamed.
"""

from __future__ import annotations

import json
import time
from typing import Any

from app.core.storage.base import writes
from app.core.storage.records import StoredMessage, Versions

AFTER_LEAF = object()  # add_message's default parent: the end of the branch on show

_COLUMNS = "id, conversation_id, role, content, created, meta, parent_id"


def _message(row) -> StoredMessage:
    return StoredMessage(*row[:5], json.loads(row[5]), row[6])


class MessageStore:
    @writes("The message was not saved")
    def add_message(self, conversation_id: int, role: str, content: str,
                    meta: dict[str, Any] | None = None, parent_id: int | None | object = AFTER_LEAF) -> StoredMessage:
        """Store a message after ``parent_id`` (None: as a first message; by default after the
        branch on show) and show its branch. A conversation or parent that is gone is a
        ChatGoneError, with nothing written."""
        from app.core.storage import ChatGoneError

        now = time.time()
        meta = meta or {}
        with self.transaction() as db:
            row = db.execute("SELECT leaf_id FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
            if row is None:
                raise ChatGoneError("That conversation no longer exists (it was deleted), so nothing was added to it.")
            parent = row[0] if parent_id is AFTER_LEAF else parent_id
            if parent is not None and db.execute("SELECT 1 FROM messages WHERE id = ? AND conversation_id = ?",
                                                 (parent, conversation_id)).fetchone() is None:
                raise ChatGoneError("The message to continue from no longer exists in that conversation.")
            cur = db.execute(
                "INSERT INTO messages (conversation_id, role, content, created, meta, parent_id) "
                "VALUES (?, ?, ?, ?, ?, ?)", (conversation_id, role, content, now, json.dumps(meta), parent))
            db.execute("UPDATE conversations SET updated = ?, leaf_id = ? WHERE id = ?",
                       (now, cur.lastrowid, conversation_id))
        return StoredMessage(cur.lastrowid, conversation_id, role, content, now, meta, parent)

    @writes("The answer was not saved")
    def update_message(self, message_id: int, content: str, meta: dict[str, Any]) -> StoredMessage:
        """Replace a message's text and meta (an answer as it grows, then as it ended)."""
        from app.core.storage import ChatGoneError

        now = time.time()
        with self.transaction() as db:
            cur = db.execute("UPDATE messages SET content = ?, meta = ? WHERE id = ?",
                             (content, json.dumps(meta), message_id))
            if cur.rowcount == 0:
                raise ChatGoneError("That answer no longer exists (its conversation was deleted).")
            db.execute("UPDATE conversations SET updated = ? WHERE id = "
                       "(SELECT conversation_id FROM messages WHERE id = ?)", (now, message_id))
        return self.message(message_id)

    def message(self, message_id: int) -> StoredMessage | None:
        r = self._db.execute(f"SELECT {_COLUMNS} FROM messages WHERE id = ?", (message_id,)).fetchone()
        return _message(r) if r else None

    def messages(self, conversation_id: int) -> list[StoredMessage]:
        """The branch on show, first message first."""
        row = self._db.execute("SELECT leaf_id FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        return self.path_to(row[0]) if row and row[0] is not None else []

    def path_to(self, message_id: int | None) -> list[StoredMessage]:
        """``message_id`` and the messages before it on its branch, first message first."""
        if message_id is None:
            return []
        rows = self._db.execute(
            "WITH RECURSIVE up(id, depth) AS (SELECT ?, 0 UNION ALL "
            " SELECT m.parent_id, up.depth + 1 FROM messages m JOIN up ON m.id = up.id WHERE m.parent_id IS NOT NULL) "
            f"SELECT {', '.join('m.' + c for c in _COLUMNS.split(', '))} FROM up JOIN messages m ON m.id = up.id "
            "ORDER BY up.depth DESC", (message_id,))
        return [_message(r) for r in rows]

    def all_messages(self, conversation_id: int) -> list[StoredMessage]:
        """Every message of every branch, in the order they were written."""
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM messages WHERE conversation_id = ? ORDER BY id",
                                (conversation_id,))
        return [_message(r) for r in rows]

    def versions(self, conversation_id: int) -> dict[int, Versions]:
        """For each message of the branch on show that has other versions: where it stands."""
        groups: dict[tuple, list[int]] = {}
        for mid, parent, role in self._db.execute(
                "SELECT id, parent_id, role FROM messages WHERE conversation_id = ? ORDER BY id", (conversation_id,)):
            groups.setdefault((parent, role), []).append(mid)
        out = {}
        for m in self.messages(conversation_id):
            ids = groups.get((m.parent_id, m.role), [m.id])
            if len(ids) > 1:
                out[m.id] = Versions(ids.index(m.id) + 1, len(ids), tuple(ids))
        return out

    def siblings(self, message_id: int) -> Versions | None:
        """Where one message stands among its versions (itself alone: 1 of 1); None if gone."""
        m = self.message(message_id)
        if m is None:
            return None
        ids = tuple(r[0] for r in self._db.execute(
            "SELECT id FROM messages WHERE conversation_id = ? AND parent_id IS ? AND role = ? ORDER BY id",
            (m.conversation_id, m.parent_id, m.role)))
        return Versions(ids.index(m.id) + 1, len(ids), ids)

    @writes("The chosen version was not saved")
    def show_branch(self, message_id: int) -> list[StoredMessage]:
        """Show the branch through ``message_id``: down from it along the newest replies to
        its end. Returns the conversation's messages now on show."""
        from app.core.storage import ChatGoneError

        m = self.message(message_id)
        if m is None:
            raise ChatGoneError("That message no longer exists (its conversation was deleted).")
        leaf = m.id
        while (child := self._db.execute("SELECT max(id) FROM messages WHERE parent_id = ?", (leaf,)).fetchone()[0]):
            leaf = child
        self._db.execute("UPDATE conversations SET leaf_id = ? WHERE id = ?", (leaf, m.conversation_id))
        return self.messages(m.conversation_id)

"""Feedback on chats: ratings of answers (the user's thumbs and the implicit signal of changes
applied or discarded) and the user's standing rules."""

from __future__ import annotations

import time
from pathlib import Path

from app.core.chat.rules import RuleError, clean_rule
from app.core.storage.base import writes
from app.core.storage.records import IMPLICIT_SOURCES, Rating, Rule


class FeedbackStore:
    # ---- ratings ------------------------------------------------------------------------
    @writes("The rating was not saved")
    def rate(self, message_id: int, value: int, source: str = "user") -> Rating:
        """Record feedback on an answer and return its rating now.

        ``source`` "user" (the thumbs): +1, -1, or 0 to clear it. "applied"/"rejected" (what
        the user did with the changes it proposed): one implicit signal per answer, the
        newest kept; ``value`` is ignored (applied is +1, rejected -1)."""
        from app.core.storage import RatingError

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
        with self.transaction() as db:
            if source == "user":
                db.execute("DELETE FROM ratings WHERE message_id = ? AND source = 'user'", (message_id,))
                if value:
                    db.execute("INSERT INTO ratings (message_id, source, value, created) "
                               "VALUES (?, 'user', ?, ?)", (message_id, value, now))
            else:
                db.execute("DELETE FROM ratings WHERE message_id = ? AND source != 'user'", (message_id,))
                db.execute("INSERT INTO ratings (message_id, source, value, created) VALUES (?, ?, ?, ?)",
                           (message_id, source, IMPLICIT_SOURCES[source], now))
        return self.rating(message_id)

    def rating(self, message_id: int) -> Rating:
        return self._ratings("WHERE message_id = ?", (message_id,)).get(message_id, Rating())

    def ratings(self, conversation_id: int) -> dict[int, Rating]:
        """Message id -> Rating for the rated answers of a conversation (every branch)."""
        return self._ratings("WHERE message_id IN (SELECT id FROM messages WHERE conversation_id = ?)",
                             (conversation_id,))

    def _ratings(self, where: str, args: tuple) -> dict[int, Rating]:
        out: dict[int, Rating] = {}
        for mid, source, value in self._db.execute(f"SELECT message_id, source, value FROM ratings {where}", args):
            r = out.get(mid, Rating())
            out[mid] = Rating(value, r.implicit) if source == "user" else Rating(r.user, value)
        return out

    # ---- rules --------------------------------------------------------------------------
    @writes("The rule was not saved")
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

    @writes("The rule was not saved")
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

    @writes("The rule was not removed")
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

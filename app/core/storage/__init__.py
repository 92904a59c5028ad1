"""Chats on disk: one SQLite database (WAL), written message by message, with the feedback
on them (ratings of answers) and the user's standing rules.

Each message is committed as soon as it exists (the user's question when it is sent, the
answer as it grows, at most every few seconds, and when it ends or is stopped), so a crash
mid-answer loses at most the last few seconds of it. Schema changes go through
``schema.MIGRATIONS`` keyed by ``PRAGMA user_version``.

The parts: ``base`` (connection, migrations, disk faults as messages), ``conversations``
(list, pin, delete, search), ``messages`` (the tree of branches), ``feedback`` (ratings,
rules), ``records`` (the dataclasses handed out). Import from here: ``Storage`` and the rest.
"""

from __future__ import annotations

from app.core.errors import UserError


class StorageError(UserError, RuntimeError):
    """The chat database cannot be used; the message says what to do."""


class RatingError(UserError, ValueError):
    """The answer to rate is gone or is not an answer. (A bad ``source`` or ``value`` is a bug
    in the caller and stays a plain ValueError.)"""


class ChatGoneError(UserError, LookupError):
    """The conversation or message to write to was deleted meanwhile; nothing was written."""


# The parts import the errors above from here, so they come after them.
from app.core.storage.base import StorageBase
from app.core.storage.conversations import ConversationStore, fts_query
from app.core.storage.feedback import FeedbackStore
from app.core.storage.messages import AFTER_LEAF, MessageStore
from app.core.storage.records import (DEFAULT_TITLE, IMPLICIT_SOURCES, Conversation, Rating, Rule,
                                      StoredMessage, Versions)
from app.core.storage.schema import SCHEMA_VERSION


class Storage(ConversationStore, MessageStore, FeedbackStore, StorageBase):
    """The chat database. Use from one thread (the GUI's; a worker opens its own); every call
    is a short write."""


__all__ = ["AFTER_LEAF", "DEFAULT_TITLE", "IMPLICIT_SOURCES", "SCHEMA_VERSION", "ChatGoneError", "Conversation",
           "Rating", "RatingError", "Rule", "Storage", "StorageError", "StoredMessage", "Versions", "fts_query"]

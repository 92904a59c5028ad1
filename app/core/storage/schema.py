"""The chat database's schema, one migration per ``PRAGMA user_version`` step.

A migration is a list of statements run in one transaction (not a script split on ";": the
search triggers hold semicolons). Old databases go through every step they have not had, so a
file from any earlier version opens with its chats intact.
"""

from __future__ import annotations

_V1 = [
    # conversations and their messages
    """CREATE TABLE conversations (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        created REAL NOT NULL,
        updated REAL NOT NULL
    )""",
    """CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
        content TEXT NOT NULL,
        created REAL NOT NULL,
        meta TEXT NOT NULL DEFAULT '{}'
    )""",
    "CREATE INDEX messages_by_conversation ON messages(conversation_id, id)",
]

_V2 = [
    # feedback. Ratings of answers (the user's thumbs, and the implicit signal of a diff
    # applied or discarded), standing rules, and the project a conversation was used with.
    "ALTER TABLE conversations ADD COLUMN project TEXT",
    """CREATE TABLE ratings (
        message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        source TEXT NOT NULL CHECK (source IN ('user', 'applied', 'rejected')),
        value INTEGER NOT NULL CHECK (value IN (-1, 1)),
        created REAL NOT NULL,
        PRIMARY KEY (message_id, source)
    )""",
    """CREATE TABLE rules (
        id INTEGER PRIMARY KEY,
        text TEXT NOT NULL CHECK (length(trim(text)) > 0),
        project TEXT,
        created REAL NOT NULL,
        updated REAL NOT NULL
    )""",
    "CREATE INDEX rules_by_project ON rules(project, updated)",
]

_FTS = "tokenize = 'unicode61 remove_diacritics 2'"

_V3 = [
    # Branches: messages form a tree (a regenerated answer or an edited question is a sibling
    # of the one it replaces); the conversation remembers the leaf of the branch on show.
    # Existing chats become one branch each, in the order they were written.
    "ALTER TABLE messages ADD COLUMN parent_id INTEGER REFERENCES messages(id) ON DELETE CASCADE",
    """UPDATE messages SET parent_id = (
        SELECT max(p.id) FROM messages p WHERE p.conversation_id = messages.conversation_id AND p.id < messages.id)""",
    "CREATE INDEX messages_by_parent ON messages(parent_id)",
    "ALTER TABLE conversations ADD COLUMN leaf_id INTEGER",
    "UPDATE conversations SET leaf_id = (SELECT max(m.id) FROM messages m WHERE m.conversation_id = conversations.id)",
    # Pinned chats stay at the top of the list.
    "ALTER TABLE conversations ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0",
    # Search: titles and message text in FTS5 tables that read their text from the real
    # tables (external content), kept in step by triggers, filled once here.
    f"CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages', content_rowid='id', {_FTS})",
    f"CREATE VIRTUAL TABLE titles_fts USING fts5(title, content='conversations', content_rowid='id', {_FTS})",
    """CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content); END""",
    """CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content); END""",
    """CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
        INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content); END""",
    """CREATE TRIGGER titles_fts_insert AFTER INSERT ON conversations BEGIN
        INSERT INTO titles_fts(rowid, title) VALUES (new.id, new.title); END""",
    """CREATE TRIGGER titles_fts_delete AFTER DELETE ON conversations BEGIN
        INSERT INTO titles_fts(titles_fts, rowid, title) VALUES ('delete', old.id, old.title); END""",
    """CREATE TRIGGER titles_fts_update AFTER UPDATE OF title ON conversations BEGIN
        INSERT INTO titles_fts(titles_fts, rowid, title) VALUES ('delete', old.id, old.title);
        INSERT INTO titles_fts(rowid, title) VALUES (new.id, new.title); END""",
    "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')",
    "INSERT INTO titles_fts(titles_fts) VALUES ('rebuild')",
]

MIGRATIONS: list[list[str]] = [_V1, _V2, _V3]
SCHEMA_VERSION = len(MIGRATIONS)

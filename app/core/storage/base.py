"""The connection under ``Storage``: opening (WAL, foreign keys), migrations, and turning a disk
fault into a message (``writes``) with the transaction rolled back, so the database keeps what
it had."""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from pathlib import Path

from app.core.atomic import describe_os_error, disk_full_at
from app.core.storage.schema import MIGRATIONS


def write_fault(e: sqlite3.Error, path: Path) -> str | None:
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


def writes(what: str):
    """A write that fails on the disk's side (full, read-only, I/O error) is a StorageError that
    starts with ``what``; the transaction is rolled back, so the database keeps what it had."""
    from app.core.storage import StorageError

    def wrap(fn):
        @functools.wraps(fn)
        def method(self, *args, **kwargs):
            try:
                return fn(self, *args, **kwargs)
            except sqlite3.OperationalError as e:
                self.rollback()
                reason = write_fault(e, self.path) or str(e)
                raise StorageError(f"{what}: {reason} ({self.path}). Earlier chats are "
                                   "kept; try again once the disk has room or is writable.") from e
        return method
    return wrap


class StorageBase:
    """Opens the database and runs the migrations; the parts of ``Storage`` build on ``_db``."""

    def __init__(self, path: Path | str):
        from app.core.storage import StorageError

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
            reason = write_fault(e, self.path) if isinstance(e, sqlite3.OperationalError) else None
            if reason:  # the disk, not the file: nothing is wrong with the history itself
                raise StorageError(f"The chat database {self.path} cannot be opened: {reason}. Your chats "
                                   "are kept; start the app again once the disk has room or is writable.") from None
            raise StorageError(f"The chat database {self.path} cannot be opened ({e}). "
                               "Move it aside to start with an empty history.") from None

    def rollback(self) -> None:
        """Roll back if a transaction is still open: SQLite ends some itself (a full disk, an I/O
        error), and a ROLLBACK then would fail and hide the first error."""
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    @contextlib.contextmanager
    def transaction(self):
        """BEGIN … COMMIT, rolled back on any exception (which goes on)."""
        self._db.execute("BEGIN")
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            self.rollback()
            raise

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        for i, statements in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.transaction() as db:
                for stmt in statements:
                    db.execute(stmt)
                db.execute(f"PRAGMA user_version = {i}")

    def schema_version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def close(self) -> None:
        self._db.close()

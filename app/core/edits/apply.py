"""Write accepted changes atomically, with an undo record that survives a restart.

The order matters, so that a crash or a full disk at any point loses nothing:
1. check every file again: still inside the project, unchanged since the diff was made
   (SHA-256), not binary. Any failure: nothing is written.
2. save the undo record (original bytes and modes) and fsync it.
3. write every new content to a temporary file in the target's own folder, fsync it.
   Any failure: the temporaries go away, nothing in the project has changed.
4. rename each temporary over its target (atomic per file) and delete deleted files; if one
   of these fails, the ones already done are put back from the record.
5. mark the record applied.
``undo`` restores the original bytes exactly (mode too), removes files the apply created and
the folders it made for them, and refuses to overwrite a file the user has changed since
(unless forced).
"""

from __future__ import annotations

import errno
import json
import os
import stat
import shutil
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from app.core.atomic import atomic_write_text, describe_os_error
from app.core.edits.plan import DELETED, NEW, FileChange
from app.core.edits.project_path import UnsafePathError, resolve_in_project
from app.core.edits.textfile import looks_binary, sha256_bytes
from app.core.errors import UserError


class ApplyError(UserError, RuntimeError):
    """Nothing was written (or everything written was put back); the message says why."""


class StaleFileError(ApplyError):
    """A file changed on disk after its diff was computed: recompute the diff first."""

    def __init__(self, message: str, paths: list[str]):
        super().__init__(message)
        self.paths = paths


class UndoConflict(UserError, RuntimeError):
    """Files changed after the apply; undoing would throw those changes away."""

    def __init__(self, message: str, paths: list[str]):
        super().__init__(message)
        self.paths = paths


@dataclass
class UndoFile:
    path: str                     # relative to the project
    existed: bool                 # False: the apply created it
    original_sha256: str | None
    written_sha256: str | None    # None: the apply deleted it
    mode: int | None
    blob: str | None              # file name of the saved original bytes in the record folder
    created_dirs: list[str] = field(default_factory=list)  # made for a new file, deepest last


@dataclass
class UndoRecord:
    id: str
    root: str
    label: str
    created: float
    state: str                    # "applying" | "applied" | "undone"
    files: list[UndoFile]
    commit: str | None = None     # the git commit of this change, when the project commits applies

    @property
    def paths(self) -> list[str]:
        return [f.path for f in self.files]


class UndoStore:
    """Undo records on disk: one folder per apply, ``record.json`` plus the original bytes."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def _dir(self, record_id: str) -> Path:
        return self.folder / record_id

    def save(self, record: UndoRecord) -> None:
        atomic_write_text(self._dir(record.id) / "record.json", json.dumps(asdict(record), indent=1))

    def load(self, record_id: str) -> UndoRecord:
        raw = json.loads((self._dir(record_id) / "record.json").read_text(encoding="utf-8"))
        raw["files"] = [UndoFile(**f) for f in raw["files"]]
        return UndoRecord(**raw)

    def records(self, root: Path | None = None) -> list[UndoRecord]:
        """Newest first; unreadable records are skipped (they cannot be undone anyway)."""
        out = []
        if not self.folder.is_dir():
            return out
        want = str(Path(root).resolve()) if root is not None else None
        for d in self.folder.iterdir():
            try:
                r = self.load(d.name)
            except (OSError, ValueError, TypeError, KeyError):
                continue
            if want is None or r.root == want:
                out.append(r)
        return sorted(out, key=lambda r: r.created, reverse=True)

    def last_undoable(self, root: Path) -> UndoRecord | None:
        """The newest record to undo: applied, or cut short while applying (a crash, or a disk
        that failed while the files were being put back) with some of its files written."""
        return next((r for r in self.records(root) if r.state == "applied"
                     or (r.state == "applying" and _partly_applied(r))), None)

    def blob(self, record: UndoRecord, f: UndoFile) -> bytes:
        return (self._dir(record.id) / f.blob).read_bytes() if f.blob else b""

    def write_blob(self, record: UndoRecord, name: str, data: bytes) -> None:
        d = self._dir(record.id)
        d.mkdir(parents=True, exist_ok=True)
        with open(d / name, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    def discard(self, record: UndoRecord) -> None:
        shutil.rmtree(self._dir(record.id), ignore_errors=True)


def _partly_applied(record: UndoRecord) -> bool:
    """Some file of the record holds what the apply wrote (and not what was there before)."""
    for f in record.files:
        try:
            current = _read(Path(record.root) / f.path)
        except OSError:
            continue
        now = sha256_bytes(current) if current is not None else None
        if now == f.written_sha256 and now != f.original_sha256:
            return True
    return False


def _read_file(path: Path) -> bytes | None:
    """Like ``_read``, but only a regular file: reading a FIFO would wait forever, a folder fails."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EISDIR if stat.S_ISDIR(st.st_mode) else errno.EINVAL,
                      "it is a folder now" if stat.S_ISDIR(st.st_mode) else "it is no longer a regular file")
    return _read(path)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _write_temp(target: Path, data: bytes, mode: int | None) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".offline-coder", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _missing_dirs(root: Path, target: Path) -> list[Path]:
    out = []
    d = target.parent
    while d != root and not d.exists():
        out.append(d)
        d = d.parent
    return list(reversed(out))  # shallowest first


def _os_reason(e: OSError) -> str:
    return describe_os_error(e)


def apply_changes(root: Path, picks: Iterable[tuple[FileChange, Iterable[int] | None]], store: UndoStore,
                  label: str = "") -> UndoRecord:
    """Write the accepted hunks of each picked change; returns the undo record.

    ``picks`` pairs a change with the hunk indexes the user accepted (None: all). A new or
    deleted file in ``picks`` is applied whole: being picked is its explicit approval. A
    modified file with no accepted hunk is left alone.
    """
    root = Path(root).resolve()
    plan: list[tuple[FileChange, bytes | None]] = []
    stale, problems = [], []
    for change, accepted in picks:
        if change.status not in (NEW, DELETED):
            accepted = None if accepted is None else set(accepted)
            if accepted is not None and not accepted:
                continue
        try:
            _, target = resolve_in_project(root, change.path)
        except UnsafePathError as e:
            problems.append(str(e))
            continue
        if target != change.target:
            problems.append(f"{change.path} now resolves to another place ({target}); recompute the diff.")
            continue
        try:
            current = _read_file(target)
        except OSError as e:  # a folder, a FIFO, a parent now a file... where the file was planned
            problems.append(f"{change.path} can no longer be read ({_os_reason(e)}); recompute the diff.")
            continue
        expected = change.original.raw if change.original is not None else None
        if current != expected:
            stale.append(change.path)
            continue
        if current is not None and looks_binary(current):
            problems.append(f"{change.path} is a binary file; it is never edited.")
            continue
        plan.append((change, change.result_bytes(None if change.status in (NEW, DELETED) else accepted)))
    if problems:
        raise ApplyError("Nothing was applied. " + " ".join(problems))
    if stale:
        raise StaleFileError(
            "Nothing was applied: " + ", ".join(stale) + (" has" if len(stale) == 1 else " have")
            + " changed on disk since the diff was computed. Recompute the diff and review it again.", stale)
    if not plan:
        raise ApplyError("Nothing to apply: no file or hunk is accepted.")

    record = UndoRecord(uuid.uuid4().hex, str(root), label, time.time(), "applying", [])
    try:
        for n, (change, data) in enumerate(plan):
            orig = change.original
            blob = None
            if orig is not None:
                blob = f"{n}.orig"
                store.write_blob(record, blob, orig.raw)
            dirs = [] if orig is not None else [str(d.relative_to(root)) for d in _missing_dirs(root, change.target)]
            record.files.append(UndoFile(change.path, orig is not None, orig.sha256 if orig else None,
                                         sha256_bytes(data) if data is not None else None,
                                         orig.mode if orig else None, blob, dirs))
        store.save(record)
    except OSError as e:
        store.discard(record)
        raise ApplyError(f"Nothing was applied: the undo copy could not be saved ({_os_reason(e)}).") from e

    temps: list[tuple[Path, Path]] = []
    made_dirs: list[Path] = []
    try:
        for (change, data), f in zip(plan, record.files):
            if data is None:
                continue
            for d in _missing_dirs(root, change.target):
                d.mkdir()
                made_dirs.append(d)
            mode = change.original.mode if change.original else None
            temps.append((_write_temp(change.target, data, mode), change.target))
    except OSError as e:
        for tmp, _ in temps:
            _unlink_quietly(tmp)
        for d in reversed(made_dirs):
            try:
                d.rmdir()
            except OSError:
                pass
        store.discard(record)
        raise ApplyError(f"Nothing was applied: writing failed ({_os_reason(e)}). Your files are unchanged.") from e

    done: list[UndoFile] = []
    try:
        by_target = dict((t, tmp) for tmp, t in temps)
        for (change, data), f in zip(plan, record.files):
            if data is None:
                change.target.unlink()
            else:
                os.replace(by_target[change.target], change.target)
                del by_target[change.target]  # only once in place: a failed rename's temporary is removed below
            done.append(f)
    except OSError as e:
        for tmp in by_target.values():
            _unlink_quietly(tmp)
        _put_back(root, store, record, done, e)
        for d in reversed(made_dirs):  # folders made for new files that were never put in place
            try:
                d.rmdir()
            except OSError:
                pass
        raise ApplyError(f"Nothing was applied: {_os_reason(e)}. The files already written were put back.") from e
    record.state = "applied"
    try:
        store.save(record)
    except OSError as e:
        # Without its record marked applied the change could not be undone: take it back now.
        _put_back(root, store, record, done, e)
        raise ApplyError(f"Nothing was applied: the undo record could not be saved ({_os_reason(e)}). "
                         "The files already written were put back.") from e
    return record


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def _put_back(root: Path, store: UndoStore, record: UndoRecord, done: list[UndoFile], cause: OSError) -> None:
    """Undo a partial apply from its record and drop the record. If putting back fails too (a
    disk that stays full or read-only), the record is kept as applied so that Undo can finish."""
    try:
        _restore(root, store, record, done)
    except OSError as e:
        record.state = "applied"
        try:
            store.save(record)
        except OSError:
            pass  # the record on disk says "applying": nothing more can be written now
        raise ApplyError(f"Applying failed part-way ({_os_reason(cause)}) and putting the files back failed "
                         f"too ({_os_reason(e)}). Use Undo once the disk is writable: "
                         + ", ".join(f.path for f in done) + ".") from cause
    store.discard(record)


def _restore(root: Path, store: UndoStore, record: UndoRecord, files: Iterable[UndoFile]) -> None:
    for f in files:
        target = root / f.path
        if f.existed:
            data = store.blob(record, f)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = _write_temp(target, data, f.mode)
            try:
                os.replace(tmp, target)
            except OSError:
                _unlink_quietly(tmp)
                raise
        else:
            target.unlink(missing_ok=True)
            for d in reversed(f.created_dirs):
                try:
                    (root / d).rmdir()
                except OSError:
                    pass  # not empty: something else lives there now


def undo(store: UndoStore, record: UndoRecord, force: bool = False) -> list[str]:
    """Put every file of ``record`` back exactly as it was; returns the restored paths."""
    if record.state == "undone":
        raise UndoConflict("This change was already undone.", [])
    root = Path(record.root)
    changed = []
    for f in record.files:
        try:
            current = _read_file(root / f.path)  # a FIFO put there since would block a plain read
        except OSError:
            changed.append(f.path)  # a folder or a special file now: not what the apply wrote
            continue
        now = sha256_bytes(current) if current is not None else None
        if now != f.written_sha256 and now != f.original_sha256:
            changed.append(f.path)
    if changed and not force:
        raise UndoConflict(
            "Undo would throw away changes made after the apply in: " + ", ".join(changed)
            + ". Undo anyway to restore the versions from before the apply.", changed)
    try:
        _restore(root, store, record, record.files)
    except OSError as e:
        raise UndoConflict(f"Undo failed: {_os_reason(e)}. The undo record is kept; try again.", []) from e
    record.state = "undone"
    try:
        store.save(record)
    except OSError as e:
        record.state = "applied"  # the files are back; undoing again only marks it done
        raise UndoConflict(f"The files were put back, but the undo record could not be updated "
                           f"({_os_reason(e)}); undo again to finish.", []) from e
    return record.paths


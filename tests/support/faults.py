"""Make the n-th write-side OS call of an operation fail, as a full, failing or read-only disk would.

Why patched calls as well as a real full tmpfs: the kernel can fill a disk, but it cannot make
exactly the 3rd write, the 2nd fsync or the one rename fail with EIO or EROFS. The patches sit at
the level of system calls, so Python's buffering and the app's code run unchanged above them:

* ``open``: creating or opening a file for writing (``open``/``io.open``/``Path.open`` in a
  writing mode, ``os.open`` with a writing flag, so ``tempfile.mkstemp`` too);
* ``write``: each raw write of a file opened for writing (what ``BufferedWriter`` hands the
  kernel), ``os.write`` and ``os.sendfile`` (``shutil.copyfile`` on Linux);
* ``fsync``: ``os.fsync``/``os.fdatasync``;
* ``replace``: ``os.replace``/``os.rename`` (``Path.replace``/``Path.rename``);
* ``mkdir``: ``os.mkdir`` (``Path.mkdir``) of a folder that does not exist yet (the kernel
  answers EEXIST before any other error for one that does).

Only calls on paths inside ``under`` are counted. C libraries (SQLite, llama.cpp, hnswlib,
numpy's ``tofile``) write on their own and are not seen: their faults come from a real full
tmpfs instead (``tmpfs`` fixture in tests/conftest.py).

    with faults(tmp) as seen:          # count: what the operation does
        operation()
    for n, error in plan(seen):        # then make each of those calls fail in turn
        with faults(tmp, fail_at=n, error=error) as f:
            ...                         # operation() raises; f.fired is the call that failed
"""

from __future__ import annotations

import builtins
import errno as _errno
import io
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

OPS = ("open", "write", "fsync", "replace", "mkdir")
ERRORS = (_errno.ENOSPC, _errno.EIO, _errno.EACCES, _errno.EROFS)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

_real = {"open": builtins.open, "os.open": os.open, "write": os.write, "sendfile": getattr(os, "sendfile", None),
         "fsync": os.fsync, "fdatasync": getattr(os, "fdatasync", None), "replace": os.replace,
         "rename": os.rename, "mkdir": os.mkdir}
_active: "Faults | None" = None
_lock = threading.Lock()


@dataclass(frozen=True)
class Call:
    op: str
    path: str


@dataclass
class Faults:
    """What one ``faults()`` block saw, and the call it made fail (``fired``)."""

    under: str
    fail_at: int | None = None
    error: int = _errno.ENOSPC
    ops: tuple[str, ...] = OPS
    persist: bool = False          # every matching call from ``fail_at`` on fails (a disk that stays full)
    calls: list[Call] = field(default_factory=list)
    fired: Call | None = None

    def count(self, op: str | None = None) -> int:
        return sum(1 for c in self.calls if op is None or c.op == op)

    def _hit(self, op: str, path: str | None) -> None:
        if op not in self.ops or path is None or not _inside(path, self.under):
            return
        with _lock:
            self.calls.append(Call(op, path))
            n = len(self.calls)
            fail = self.fail_at is not None and (n == self.fail_at or (self.persist and n > self.fail_at))
            if fail and self.fired is None:
                self.fired = Call(op, path)
        if fail:
            raise OSError(self.error, os.strerror(self.error), path)


def _inside(path: str, under: str) -> bool:
    p = os.path.realpath(path)
    return p == under or p.startswith(under + os.sep)


def _fd_path(fd: int) -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def _path_of(file) -> str | None:
    if isinstance(file, int):
        return _fd_path(file)
    try:
        return os.fsdecode(os.fspath(file))
    except TypeError:
        return None


def _hit(op: str, path: str | None) -> None:
    f = _active
    if f is not None:
        f._hit(op, path)


class _FaultyFileIO(io.FileIO):
    """A real FileIO whose raw writes pass through ``_hit`` first."""

    def __init__(self, file, mode, closefd=True, opener=None):
        super().__init__(file, mode, closefd=closefd, opener=opener)
        self._fault_path = _path_of(file) if not isinstance(file, int) else _fd_path(file)

    def write(self, b):
        _hit("write", self._fault_path)
        return super().write(b)


def _open(file, mode="r", buffering=-1, encoding=None, errors=None, newline=None, closefd=True, opener=None):
    """``io.open`` for writing modes, built on ``_FaultyFileIO``; reading is left to the real one."""
    if not isinstance(mode, str) or not set(mode) & set("wax+"):
        return _real["open"](file, mode, buffering, encoding, errors, newline, closefd, opener)
    if not isinstance(file, int):
        _hit("open", _path_of(file))
    binary = "b" in mode
    raw_mode = "".join(c for c in mode if c in "rwxa+")
    if "r" not in raw_mode and "+" in raw_mode and not set(raw_mode) & set("wxa"):
        raw_mode = "r" + raw_mode
    raw = _FaultyFileIO(file, raw_mode, closefd=closefd, opener=opener)
    try:
        line_buffering = buffering == 1 or (buffering < 0 and raw.isatty())
        if buffering == 1 or buffering < 0:
            buffering = io.DEFAULT_BUFFER_SIZE
            try:
                bs = os.fstat(raw.fileno()).st_blksize
                if bs > 1:
                    buffering = bs
            except (OSError, AttributeError):
                pass
        if buffering == 0:
            if binary:
                return raw
            raise ValueError("can't have unbuffered text I/O")
        buffer = io.BufferedRandom(raw, buffering) if "+" in mode else io.BufferedWriter(raw, buffering)
        if binary:
            return buffer
        text = io.TextIOWrapper(buffer, encoding, errors, newline, line_buffering)
        text.mode = mode
        return text
    except BaseException:
        raw.close()
        raise


def _os_open(path, flags, mode=0o777, *, dir_fd=None):
    if flags & _WRITE_FLAGS:
        _hit("open", _path_of(path))
    return _real["os.open"](path, flags, mode, dir_fd=dir_fd)


def _os_write(fd, data):
    _hit("write", _fd_path(fd))
    return _real["write"](fd, data)


def _sendfile(out_fd, in_fd, offset, count, *args, **kwargs):
    _hit("write", _fd_path(out_fd))
    return _real["sendfile"](out_fd, in_fd, offset, count, *args, **kwargs)


def _fsync(fd):
    _hit("fsync", _fd_path(fd if isinstance(fd, int) else fd.fileno()))
    return _real["fsync"](fd)


def _fdatasync(fd):
    _hit("fsync", _fd_path(fd if isinstance(fd, int) else fd.fileno()))
    return _real["fdatasync"](fd)


def _replace(src, dst, *, src_dir_fd=None, dst_dir_fd=None):
    _hit("replace", _path_of(dst))
    return _real["replace"](src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)


def _rename(src, dst, *, src_dir_fd=None, dst_dir_fd=None):
    _hit("replace", _path_of(dst))
    return _real["rename"](src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)


def _mkdir(path, mode=0o777, *, dir_fd=None):
    p = _path_of(path)
    if p is not None and not os.path.lexists(p):  # an existing path is EEXIST whatever else is wrong
        _hit("mkdir", p)
    return _real["mkdir"](path, mode, dir_fd=dir_fd)


_PATCHES = [(builtins, "open", _open), (io, "open", _open), (os, "open", _os_open), (os, "write", _os_write),
            (os, "fsync", _fsync), (os, "replace", _replace), (os, "rename", _rename), (os, "mkdir", _mkdir)]
if _real["sendfile"] is not None:
    _PATCHES.append((os, "sendfile", _sendfile))
if _real["fdatasync"] is not None:
    _PATCHES.append((os, "fdatasync", _fdatasync))


@contextmanager
def faults(under, fail_at: int | None = None, error: int = _errno.ENOSPC, ops=OPS,
           persist: bool = False) -> Iterator[Faults]:
    """Count the write-side calls on paths inside ``under``; with ``fail_at``, make the call of
    that number (1-based, in the order made) fail with ``OSError(error)`` (and every later one
    too with ``persist``). Not re-entrant."""
    global _active
    if _active is not None:
        raise RuntimeError("faults() blocks do not nest")
    unknown = set(ops) - set(OPS)
    if unknown:
        raise ValueError(f"unknown operations {sorted(unknown)}; choose from {OPS}")
    rec = Faults(os.path.realpath(os.fspath(under)), fail_at, error, tuple(ops), persist)
    saved = [(mod, name, getattr(mod, name)) for mod, name, _ in _PATCHES]
    for mod, name, fn in _PATCHES:
        setattr(mod, name, fn)
    _active = rec
    try:
        yield rec
    finally:
        _active = None
        for mod, name, fn in saved:
            setattr(mod, name, fn)


def points(total: int, limit: int | None = None) -> list[int]:
    """Call numbers 1..total, or ``limit`` of them spread evenly (first and last included)."""
    if total <= 0:
        return []
    if limit is None or total <= limit:
        return list(range(1, total + 1))
    if limit == 1:
        return [total]
    return sorted({1 + round(i * (total - 1) / (limit - 1)) for i in range(limit)})


def plan(seen: Faults, limit: int | None = None, errors=ERRORS, every_error: bool = False) -> list[tuple[int, int]]:
    """(call number, errno) pairs to inject for an operation ``seen`` counted: each chosen call
    with every error (``every_error``) or with the errors in turn (cheaper, still all kinds)."""
    ns = points(len(seen.calls), limit)
    if every_error:
        return [(n, e) for n in ns for e in errors]
    return [(n, errors[i % len(errors)]) for i, n in enumerate(ns)]

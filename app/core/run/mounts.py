"""The sandbox's mount namespace: every file system read-only but the run's folder, and the
places that are not the code's business hidden.

Why hide anything: the sandbox already stops code from sending data anywhere, but the code's
output goes into the chat (and from there to a model), so a run that prints
``~/.ssh/id_rsa`` or the app's chat database leaks it just the same. Hidden, each with an empty
read-only tmpfs over it: the user's home (``$HOME`` and the account's home), ``/home``,
``/root``, and the app's own config/data/cache/log folders (``app_paths()``; all of
``$OFFLINE_CODER_HOME`` when that is set). Only the top-most of nested hidden folders is covered.

What comes back, read-only (bind mounts of ``O_PATH`` descriptors opened before anything was
covered): what a run needs that lies under a hidden folder: the interpreter's prefix and base
prefix (a pyenv Python, a project's ``.venv``), extra folders the caller names (``/fix`` passes
the original project: a venv's editable installs may point at it), and the run's own folder,
which stays writable. A hidden folder inside one that came back is covered again.

The parent side (``plan``) works out the paths; the child side is source text (``MOUNTS_SOURCE``)
that the bootstrap in sandbox.py runs after ``unshare``; it imports nothing from the app. A
failure never fails the run: whatever could not be hidden stays visible, is left out of
``status["hidden"]`` and gets a note. Python-guard runs (no namespaces) hide nothing.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

from app.no_telemetry import NO_TELEMETRY

# The empty folder over each hidden one: room only for the mount points of what comes back.
COVER_OPTIONS = "size=64k,nr_inodes=4096,mode=755"
_interpreters: dict[tuple[str, int], list[str]] = {}


def _real(path: str | os.PathLike) -> str:
    return os.path.realpath(os.path.abspath(os.path.expanduser(str(path))))


def _inside(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (both absolute and normalised)."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def hidden_paths() -> list[str]:
    """The folders a run must not see, resolved, existing, without "/" itself."""
    from app.core.paths import HOME_ENV, app_paths  # platformdirs: only when a run starts

    candidates: list[str | os.PathLike] = ["/home", "/root", os.path.expanduser("~")]
    try:
        candidates.append(pwd.getpwuid(os.getuid()).pw_dir)
    except (KeyError, OSError):
        pass
    try:
        paths = app_paths()
        candidates += [paths.config_dir, paths.data_dir, paths.cache_dir, paths.log_dir]
    except Exception:  # noqa: BLE001 - a broken platformdirs must not stop the run
        pass
    if os.environ.get(HOME_ENV):
        candidates.append(os.environ[HOME_ENV])
    out: list[str] = []
    for c in candidates:
        real = _real(c)
        if real != "/" and real not in out and os.path.isdir(real):
            out.append(real)
    return sorted(out)


def interpreter_dirs(python: str) -> list[str]:
    """The folders an interpreter needs at run time: its prefixes (a venv and its base Python)
    and the folder of the real executable. Asked once per interpreter, then cached."""
    try:
        key = (os.path.abspath(python), os.stat(python).st_mtime_ns)
    except OSError:
        return []
    if key in _interpreters:
        return list(_interpreters[key])
    found: list[str] = [os.path.dirname(os.path.realpath(python))]
    if os.path.abspath(python) == os.path.abspath(sys.executable):
        found += [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    else:
        bindir = os.path.dirname(os.path.abspath(python))
        for venv in (os.path.dirname(bindir), bindir):  # bin/python (POSIX), Scripts\python.exe
            cfg = os.path.join(venv, "pyvenv.cfg")
            if os.path.isfile(cfg):
                found.append(venv)
                found += _pyvenv_home(cfg)
                break
        # -S: no site, so no .pth file of the project's venv runs here, outside the sandbox.
        try:
            done = subprocess.run([python, "-I", "-S", "-c", "import sys, json; print(json.dumps("
                                   "[sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]))"],
                                  capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL,
                                  env={"PATH": os.environ.get("PATH") or os.defpath, "LANG": "C.UTF-8", **NO_TELEMETRY})
            found += [p for p in json.loads(done.stdout) if isinstance(p, str) and p]
        except (OSError, ValueError, subprocess.SubprocessError):
            pass
    dirs: list[str] = []
    for p in found:
        if p and os.path.isabs(p) and p not in dirs:
            dirs.append(p)
    _interpreters[key] = dirs
    return list(dirs)


def _pyvenv_home(cfg: str) -> list[str]:
    """The base Python's prefix from a pyvenv.cfg's ``home`` (its bin folder)."""
    try:
        for line in Path(cfg).read_text(encoding="utf-8", errors="replace").splitlines():
            name, _, value = line.partition("=")
            if name.strip().lower() == "home" and value.strip():
                home = value.strip()
                return [home, os.path.dirname(home)]
    except OSError:
        pass
    return []


def plan(python: str, keep: list[str | os.PathLike] | tuple = ()) -> tuple[list[str], list[str]]:
    """(hidden, kept) for a run whose bootstrap and code use ``python``; ``keep`` are more
    folders to bring back. Kept paths are listed only when they lie under a hidden one, each
    in its resolved form and, when its last component is a symlink, in that form too."""
    hidden = hidden_paths()
    kept: list[str] = []
    for p in interpreter_dirs(python) + [str(k) for k in keep]:
        if not os.path.exists(p):
            continue
        absolute = os.path.abspath(p)
        forms = {_real(p), os.path.join(_real(os.path.dirname(absolute)), os.path.basename(absolute))}
        for form in sorted(forms):
            if form not in kept and any(_inside(form, h) for h in hidden):
                kept.append(form)
    return hidden, kept


# ---- child side: runs in the bootstrap, after unshare, as source text -----------------------------
MOUNTS_SOURCE = r'''
def make_mounts(libc, ctypes, cfg, status):
    """Make / private, hide and bring back (see app/core/run/mounts.py), make every mount
    read-only except the run's folder, give it a private /dev/shm. Notes what failed."""
    import stat
    notes = status["notes"]
    MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE, MNT_DETACH = 2, 4, 4096, 16384, 1 << 18, 2
    AT_FDCWD, AT_RECURSIVE, MOUNT_ATTR_RDONLY, SYS_mount_setattr = -100, 0x8000, 1, 442
    root = cfg["root"]

    def errno_text(e):
        return os.strerror(e) if e else "unknown error"

    def setattr_(path, flags, set_=0, clr=0):
        attr = (ctypes.c_uint64 * 4)(set_, clr, 0, 0)
        if libc.syscall(SYS_mount_setattr, AT_FDCWD, path.encode(), flags, ctypes.byref(attr),
                        ctypes.sizeof(attr)) != 0:
            raise OSError(ctypes.get_errno(), "mount_setattr " + path)

    def mount(src, dst, fstype, flags, data=None):
        if libc.mount(src and src.encode(), dst.encode(), fstype and fstype.encode(), flags,
                      data and data.encode()) != 0:
            raise OSError(ctypes.get_errno(), "mount " + dst)

    try:  # without this our mounts would propagate to the host: nothing else is tried
        mount(None, "/", None, MS_REC | MS_PRIVATE)
    except OSError as e:
        notes.append("file system not made read-only, nothing hidden: %s" % errno_text(e.errno))
        return

    marks = dict((p, "hide") for p in cfg.get("hide", []))
    fds = {}
    for p in cfg.get("keep", []) + [root]:
        try:
            fds[p] = os.open(p, os.O_PATH | os.O_CLOEXEC)
            marks[p] = "keep"
        except OSError as e:
            notes.append("%s not brought back: %s" % (p, errno_text(e.errno)))

    def below(p, q):  # p lies strictly under q ("" is above everything)
        return q == "" or (p != q and p.startswith(q.rstrip("/") + "/"))

    def kids(p):  # the marked paths whose nearest marked ancestor is p
        under = [q for q in marks if below(q, p)]
        return sorted(q for q in under if not any(below(q, r) for r in under))

    shown = []

    def bring_back(p):
        fd = fds[p]
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            os.makedirs(p, 0o755, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(p), 0o755, exist_ok=True)
            os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
        mount("/proc/self/fd/%d" % fd, p, None, MS_BIND | MS_REC)
        shown.append(p)

    def cover(p):
        try:
            mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, cfg["cover"])
        except OSError as e:
            notes.append("%s not hidden: %s" % (p, errno_text(e.errno)))
            return walk(p, True)
        count = len(shown)
        try:
            return [p] + walk(p, False)
        except OSError as e:  # something under it could not come back: show it all again
            libc.umount2(p.encode(), MNT_DETACH)
            del shown[count:]
            notes.append("%s not hidden: something under it could not be brought back (%s)" % (p, e))
            return walk(p, True)

    def walk(p, visible):
        hidden = []
        for q in kids(p):
            if marks[q] == "hide" and visible:
                hidden += cover(q)
            elif marks[q] == "keep" and not visible:
                bring_back(q)
                hidden += walk(q, True)
            else:
                hidden += walk(q, visible)
        return hidden

    try:
        status["hidden"] = walk("", True)
    except OSError as e:  # the run's folder under nothing hidden cannot fail like this; be safe
        notes.append("hiding stopped: %s" % errno_text(e.errno))
    for fd in fds.values():
        os.close(fd)
    try:
        if root not in shown:
            mount(root, root, None, MS_BIND)
        setattr_("/", AT_RECURSIVE, set_=MOUNT_ATTR_RDONLY)
        setattr_(root, 0, clr=MOUNT_ATTR_RDONLY)
        os.chdir(root)  # the old cwd is the folder under the mounts, read-only (or hidden)
        status["filesystem"] = "read-only"
        try:  # multiprocessing needs a writable /dev/shm: a small private one
            mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV,
                  "size=%dk,mode=1777" % (cfg["file_bytes"] // 1024))
        except OSError as e:
            notes.append("no private /dev/shm: %s" % errno_text(e.errno))
    except OSError as e:
        notes.append("file system not made read-only: %s (%s)" % (errno_text(e.errno), e))
        try:
            os.chdir(root)
        except OSError:
            pass
'''

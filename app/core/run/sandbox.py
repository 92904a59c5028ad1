"""Run a code block from an answer in a sandbox: a child process with limits and no network.

Why a sandbox at all: the Run button executes text a language model wrote. The model may be
wrong, or may have been steered by a file or web page it read, so the code must not be able
to send anything anywhere, read the app's secrets from its environment, leave processes
behind, or eat the machine.

What each run gets (measured on Linux as root and as an ordinary user; see docs/decisions.md):

* a fresh temporary folder as cwd, with HOME and TMPDIR inside it, deleted afterwards;
* a minimal environment (PATH, LANG, HOME, TMPDIR and a few PYTHON* settings), never the
  parent's, so API keys in the app's environment do not reach the code;
* a wall-clock time limit; on timeout or cancel the whole process group is killed with SIGKILL,
  and on Linux the code also runs as PID 1 of its own PID namespace, so anything it started
  (even with setsid or a double fork) dies with it;
* rlimits: address space (the memory limit), CPU seconds (a second net under the wall clock),
  file size, and no core dumps. RLIMIT_NPROC is not set: for root it is ignored by the kernel
  unless capabilities are dropped (we drop them, and then it would count every root process
  on the machine), and for an ordinary user it counts all of that user's processes, the app's
  included, so no value is both safe and useful;
* no network: on Linux a new network namespace that has only its own loopback (``netns``). As
  root it is made directly; otherwise together with a user namespace. Where no namespace can
  be made (macOS, Windows, a Linux that forbids unprivileged user namespaces) a Python audit
  hook refuses every connect and name lookup and every attempt to start another program
  (``python-guard``). That guard only sees what goes through Python: native code (a C
  extension, ctypes) can get past it. Shell code, which Python cannot watch at all, is refused
  there;
* on Linux, when the namespaces work, a mount namespace in which every file system is
  read-only except the sandbox folder (``filesystem == "read-only"``); else the only guarantee
  is that the code starts in its own folder (``filesystem == "open"``);
* in that mount namespace the user's home, ``/home``, ``/root`` and the app's own folders are
  hidden under empty read-only folders (``RunResult.hidden`` lists them), and only what the run
  needs comes back: see mounts.py. The python-guard fallback cannot hide anything:
  there the code can read whatever the app's user can (``hidden`` is empty, with a note).

The child is started through a small Python bootstrap (bootstrap.py: not ``preexec_fn``, which
is unsafe with threads), which sets everything up in the child before it execs the code.
"""

from __future__ import annotations

import codecs
import json
import math
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from app.core.run import mounts
from app.core.run.bootstrap import BOOTSTRAP
from app.core.run.result import OPEN, PYTHON_GUARD, RunResult, SandboxLimits
from app.no_telemetry import NO_TELEMETRY
from app.core.errors import UserError
from app.core import safe_json

SHELL_NOT_CONFIRMED = "Shell code runs only after you confirm it."

# False skips the namespaces, as on a system that forbids them: the tests use it to exercise
# the python-guard fallback on a machine where namespaces work.
USE_NAMESPACES = True
HOLD_S = 0.1  # how long a partial output line waits for its newline before it is shown


class SandboxError(UserError, RuntimeError):
    """The code could not be run; the message says why in words a user can act on."""


_PYTHON_NAMES = {"python", "py", "python3", "py3"}
_SHELL_NAMES = {"bash", "sh", "shell", "console", "shell-session", "zsh"}


def language_of(fence_info: str) -> str | None:
    """The runnable language of a Markdown fence's info string, or None if it is not runnable.

    ``"python"``/``"py"``/``"python3"`` -> ``"python"``; ``"bash"``/``"sh"``/``"shell"``/``"console"``
    -> ``"shell"``. Only the first word counts (``"python title=x.py"``), case-insensitively.
    """
    words = (fence_info or "").strip().split()
    if not words:
        return None
    word = words[0].lower().lstrip("{.").rstrip("}")
    if word in _PYTHON_NAMES:
        return "python"
    if word in _SHELL_NAMES:
        return "shell"
    return None


# ---- the parent side ------------------------------------------------------------------------------
def code_python() -> str:
    """The interpreter for code blocks. In a frozen build sys.executable is the app itself,
    so look for an installed python3 instead."""
    if not getattr(sys, "frozen", False):
        return sys.executable
    found = shutil.which("python3") or shutil.which("python")
    if found is None:
        raise SandboxError("Running Python code needs Python installed on this computer; none was found.")
    return found


def _shell() -> str:
    found = shutil.which("bash") or shutil.which("sh")
    if found is None or os.name != "posix":
        raise SandboxError("Shell code can run only on Linux or macOS.")
    return found


def _environment(root: Path, home: Path, tmp: Path) -> dict[str, str]:
    """A fresh environment: nothing of the parent's except PATH (no API keys, tokens, proxies)."""
    env = {
        "PATH": os.environ.get("PATH") or os.defpath,
        "LANG": "C.UTF-8",
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        **NO_TELEMETRY,
    }
    if os.name == "nt":  # Windows cannot start Python without these
        for key in ("SYSTEMROOT", "WINDIR", "COMSPEC", "PATHEXT"):
            if key in os.environ:
                env[key] = os.environ[key]
        env["TEMP"] = env["TMP"] = str(tmp)
        env["USERPROFILE"] = str(home)
    return env


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the child's whole process group (it leads its own session)."""
    if os.name == "posix":
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    else:  # untested here: Windows would want a Job Object; taskkill /T is the fallback
        subprocess.run(["taskkill", "/F", "/T", "/PID", str(proc.pid)], capture_output=True)
        try:
            proc.kill()
        except OSError:
            pass


def _reader(fd_file, stream: str, out: queue.Queue) -> None:
    """Forward raw chunks from one pipe as they arrive; None marks its end."""
    try:
        while True:
            chunk = os.read(fd_file.fileno(), 65536)
            if not chunk:
                break
            out.put((stream, chunk))
    except (OSError, ValueError):
        pass
    out.put((stream, None))


_MEMORY_SIGNS = re.compile(r"^MemoryError\b|Cannot allocate memory|std::bad_alloc|xmalloc: cannot allocate"
                           r"|out of memory", re.M | re.I)


def run_code(code: str, language: str = "python", *, limits: SandboxLimits | None = None,
             on_output: Callable[[str, str], None] | None = None,
             cancelled: Callable[[], bool] | None = None,
             confirmed_shell: bool = False, keep_dir: bool = False) -> RunResult:
    """Run ``code`` in a sandbox and return what happened. Blocks until the run ends.

    ``language`` is ``"python"`` or ``"shell"`` (see ``language_of``). Shell code raises
    SandboxError unless ``confirmed_shell`` is True: the UI must ask the user first.
    ``on_output(stream, text)`` ("stdout"/"stderr") is called on the calling thread as output
    arrives (chunks, not necessarily whole lines). ``cancelled()`` is polled about 20 times a
    second; when it returns True the run is killed. The kept output is capped at
    ``limits.output_bytes``; past that, output is dropped and ``output_truncated`` is set.

    Windows: untested here. Runs Python only, under the python-guard, without a memory limit;
    a Job Object would be the right tool for limits and killing the tree.
    """
    limits = limits or SandboxLimits()
    if language not in ("python", "shell"):
        raise SandboxError(f"Code in {language!r} cannot be run here; only Python and shell can.")
    if language == "shell" and not confirmed_shell:
        raise SandboxError(SHELL_NOT_CONFIRMED)
    interpreter = code_python()
    root = make_folder()
    try:
        home, tmp = root / ".home", root / ".tmp"
        if language == "python":
            script = root / "main.py"
            argv = [interpreter, "-I", "-u", "-B", "-X", "utf8", str(script)]
        else:
            script = root / "main.sh"
            shell = _shell()
            argv = [shell, "--noprofile", "--norc", str(script)] if shell.endswith("bash") else [shell, str(script)]
        script.write_text(code, encoding="utf-8")
        result = _run(argv, language, root, home, tmp, limits, on_output, cancelled)
        if keep_dir:
            result.directory = root
        return result
    finally:
        if not keep_dir:
            shutil.rmtree(root, ignore_errors=True)


def run_in_folder(root: Path, argv: list[str], *, limits: SandboxLimits | None = None,
                  on_output: Callable[[str, str], None] | None = None,
                  cancelled: Callable[[], bool] | None = None, python: str | None = None,
                  keep: list[str | Path] | tuple = ()) -> RunResult:
    """Run a Python program (``argv``, its last item the script) in an already prepared
    sandbox folder ``root`` (made by ``make_folder``), with the same isolation as ``run_code``.

    ``python`` is the interpreter for the bootstrap as well as the program (for a project's
    own virtualenv): in the python-guard fallback the bootstrap runs the script itself, so it
    must be the same interpreter. ``keep``: folders to bring back, read-only, when they lie
    under a hidden one (see mounts.py). The caller deletes ``root``."""
    root = Path(root)
    return _run(argv, "python", root, root / ".home", root / ".tmp", limits or SandboxLimits(),
                on_output, cancelled, boot_python=python, keep=keep)


def make_folder() -> Path:
    """A fresh sandbox folder with its private HOME and TMPDIR (the caller deletes it)."""
    root = Path(tempfile.mkdtemp(prefix="offline-coder-run-")).resolve()
    (root / ".home").mkdir()
    (root / ".tmp").mkdir()
    return root


def _run(argv: list[str], language: str, root: Path, home: Path, tmp: Path, limits: SandboxLimits,
         on_output: Callable[[str, str], None] | None, cancelled: Callable[[], bool] | None,
         boot_python: str | None = None, keep: list[str | Path] | tuple = ()) -> RunResult:
    boot_python = boot_python or code_python()
    hide, kept = [], []
    if USE_NAMESPACES and sys.platform.startswith("linux"):
        hide, kept = mounts.plan(boot_python, keep)
    status_r, status_w = os.pipe()
    cfg = {
        "status_fd": status_w, "root": str(root), "argv": argv, "language": language,
        "namespaces": USE_NAMESPACES, "memory_bytes": limits.memory_mb * 1024 * 1024,
        "file_bytes": limits.file_mb * 1024 * 1024, "cpu_s": int(math.ceil(limits.time_s)) + 1,
        "hide": hide, "keep": kept, "cover": mounts.COVER_OPTIONS,
    }
    # The bootstrap runs under the same flags as the code: in the python-guard case it IS the
    # code's interpreter. -I ignores PYTHON* variables, hence -u -B -X utf8.
    boot = [boot_python, "-I", "-u", "-B", "-X", "utf8", "-c", BOOTSTRAP, json.dumps(cfg)]
    kwargs: dict = {}
    if os.name == "posix":
        kwargs.update(start_new_session=True, pass_fds=(status_w,))
    else:  # untested here
        kwargs.update(creationflags=getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0), close_fds=False)
    started = time.monotonic()
    try:
        proc = subprocess.Popen(boot, cwd=root, env=_environment(root, home, tmp), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)
    except OSError as e:
        os.close(status_r)
        os.close(status_w)
        raise SandboxError(f"Could not start the sandbox: {e}") from e
    os.close(status_w)

    events: queue.Queue = queue.Queue()
    readers = [threading.Thread(target=_reader, args=(pipe, name, events), daemon=True)
               for pipe, name in ((proc.stdout, "stdout"), (proc.stderr, "stderr"))]
    for t in readers:
        t.start()
    status_raw = b""

    def read_status() -> None:
        nonlocal status_raw
        with os.fdopen(status_r, "rb") as f:
            status_raw = f.read()
    status_thread = threading.Thread(target=read_status, daemon=True)
    status_thread.start()

    decoders = {s: codecs.getincrementaldecoder("utf-8")(errors="replace") for s in ("stdout", "stderr")}
    kept: dict[str, list[str]] = {"stdout": [], "stderr": []}
    kept_bytes = 0
    truncated = timed_out = was_cancelled = False
    open_streams = {"stdout", "stderr"}
    deadline = started + limits.time_s
    exited_at: float | None = None
    killed = False

    # on_output gets whole lines where it can: `print` under -u writes the text and its newline
    # separately, so a partial line waits up to HOLD_S for the rest (prompts and progress bars
    # without a newline still show after that).
    pending = {"stdout": "", "stderr": ""}
    pending_since = {"stdout": 0.0, "stderr": 0.0}

    def emit(stream: str, text: str, flush: bool = False) -> None:
        text = pending[stream] + text
        cut = len(text) if flush else text.rfind("\n") + 1
        out, rest = text[:cut], text[cut:]
        if rest and (out or not pending[stream]):
            pending_since[stream] = time.monotonic()
        pending[stream] = rest
        if out:
            kept[stream].append(out)
            if on_output is not None:
                on_output(stream, out)

    try:
        while open_streams:
            try:
                stream, chunk = events.get(timeout=0.05)
            except queue.Empty:
                stream, chunk = "", b""
            if stream:
                if chunk is None:
                    open_streams.discard(stream)
                    emit(stream, decoders[stream].decode(b"", final=True), flush=True)
                elif not truncated:
                    room = limits.output_bytes - kept_bytes
                    if len(chunk) > room:
                        chunk, truncated = chunk[:max(room, 0)], True
                    kept_bytes += len(chunk)
                    emit(stream, decoders[stream].decode(chunk))
                    if truncated:
                        emit(stream, decoders[stream].decode(b"", final=True))
                        emit(stream, f"\n[output cut: more than {limits.output_bytes // 1000} kB]\n", flush=True)
            now = time.monotonic()
            for name in pending:
                if pending[name] and now - pending_since[name] >= HOLD_S:
                    emit(name, "", flush=True)
            if not killed:
                if cancelled is not None and cancelled():
                    was_cancelled = killed = True
                elif now >= deadline:
                    timed_out = killed = True
                if killed:
                    _kill_group(proc)
            if exited_at is None and proc.poll() is not None:
                exited_at = now
                _kill_group(proc)  # whatever it left running in the background goes too
            if exited_at is not None and now - exited_at > 2.0:
                break  # something outside the group still holds the pipes: stop waiting for it
    except BaseException:  # on_output or cancelled() raised: the run must not outlive us
        _kill_group(proc)
        proc.wait()
        raise
    for name in pending:
        emit(name, "", flush=True)
    exit_code = proc.wait()
    duration = (exited_at or time.monotonic()) - started
    status_thread.join(timeout=1.0)
    for pipe in (proc.stdout, proc.stderr):
        if not any(t.is_alive() for t in readers):
            pipe.close()

    try:
        status = safe_json.loads(status_raw.decode() or "{}")
    except ValueError:
        status = {}
    if status.get("error") == "no-netns-for-shell":
        raise SandboxError("Shell code cannot run here: this system does not let the app cut a program "
                           "off from the network (no network namespace), and shell commands cannot be "
                           "watched any other way. Python code still runs.")
    if status.get("error"):
        raise SandboxError(f"Could not set up the sandbox: {status['error']}.")
    stdout, stderr = "".join(kept["stdout"]), "".join(kept["stderr"])
    if not killed and exit_code == -getattr(signal, "SIGXCPU", 24):
        timed_out = True  # the CPU-seconds rlimit, the net under the wall clock
    memory = (not killed and not timed_out and exit_code != 0
              and (bool(_MEMORY_SIGNS.search(stderr)) or exit_code == -getattr(signal, "SIGKILL", 9)))
    if os.name == "posix" and not status and not killed and exit_code != 0:
        raise SandboxError(f"Could not start the sandbox:\n{stderr.strip()[-2000:]}")
    return RunResult(exit_code=exit_code, stdout=stdout, stderr=stderr, timed_out=timed_out,
                     memory_exceeded=memory, cancelled=was_cancelled, duration_s=round(duration, 3),
                     isolation=status.get("isolation") or PYTHON_GUARD, output_truncated=truncated,
                     filesystem=status.get("filesystem") or OPEN, limits=limits,
                     notes=list(status.get("notes") or []), hidden=list(status.get("hidden") or []))

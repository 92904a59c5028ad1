"""The app's log and crash reports, both passed through ``secrets.redact`` on the way out.

Why here and not with ``logging.basicConfig``: every line that reaches a file must first lose
any API key the keyring holds (a key can turn up in an exception message, a URL, a provider's
error text). One filter on the one handler does that for the log; the crash handler does it
for reports. Neither ever writes file contents or prompts: the log records what happened
(model loaded, an error shown, a job failed), not what was said.

Files: ``<logs>/offline-coder.log`` (rotating, 3 × 1 MB) and ``<logs>/crash-<time>.txt``.
"""

from __future__ import annotations

import logging
import logging.handlers
import platform
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Callable

LOG_NAME = "offline-coder.log"
LOGGER = "offline_coder"
log = logging.getLogger(LOGGER)


def _redact(text: str) -> str:
    try:
        from app.core import secrets
        return secrets.redact(text)
    except Exception:  # noqa: BLE001 - no usable keyring: no stored key that could leak
        return text


class RedactingFilter(logging.Filter):
    """Formats the record's message once, redacted, so handlers never see the raw text."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + "".join(traceback.format_exception(*record.exc_info))
            record.exc_info = record.exc_text = None
        record.msg, record.args = _redact(message), None
        return True


def setup_logging(log_dir: Path, level: int = logging.INFO) -> Path:
    """Attach the rotating, redacting file handler once (calling again changes nothing)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / LOG_NAME
    for h in log.handlers:
        if isinstance(h, logging.handlers.RotatingFileHandler) and Path(h.baseFilename) == path.resolve():
            return path
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=1_000_000, backupCount=2, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False
    return path


def write_crash_report(exc_type, exc, tb, log_dir: Path, where: str = "main thread") -> Path:
    """A crash report file (redacted: keys never reach it), newest name first by time."""
    from app import __version__
    log_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = log_dir / f"crash-{stamp}.txt"
    n = 1
    while path.exists():
        n += 1
        path = log_dir / f"crash-{stamp}-{n}.txt"
    text = (f"Offline Coder {__version__} crashed in the {where}\n"
            f"Python {platform.python_version()} on {platform.platform()}\n\n"
            + "".join(traceback.format_exception(exc_type, exc, tb)))
    path.write_text(_redact(text), encoding="utf-8")
    return path


def install_crash_handler(log_dir: Path, on_crash: Callable[[Path, str], None] | None = None) -> None:
    """Unhandled exceptions (main thread and others) become a redacted crash report and a log
    line; ``on_crash(path, message)`` lets the window tell the user where it is. The previous
    hook still runs, so a terminal still shows the traceback."""
    previous, previous_thread = sys.excepthook, threading.excepthook

    def report(exc_type, exc, tb, where: str) -> None:
        try:
            path = write_crash_report(exc_type, exc, tb, log_dir, where)
            log.error("unhandled %s in the %s; report: %s", exc_type.__name__, where, path)
            if on_crash is not None:
                on_crash(path, _redact(f"{exc_type.__name__}: {exc}"))
        except Exception:  # noqa: BLE001 - the crash handler itself must never raise
            pass

    def hook(exc_type, exc, tb) -> None:
        if not issubclass(exc_type, KeyboardInterrupt):
            report(exc_type, exc, tb, "main thread")
        previous(exc_type, exc, tb)

    def thread_hook(args) -> None:
        if args.exc_type is not SystemExit:
            report(args.exc_type, args.exc_value, args.exc_traceback,
                   f"thread {args.thread.name if args.thread else '?'}")
        previous_thread(args)

    sys.excepthook = hook
    threading.excepthook = thread_hook

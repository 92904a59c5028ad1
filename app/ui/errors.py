"""The one way the UI words an error: ``describe_error(e)``.

A ``UserError`` (app/core/errors.py) carries a message written for the user: it is shown as it
is and logged at warning (one raised with no message counts as a bug). Anything else is a bug:
it is shown as ``ClassName: message`` (so a report names it) and logged at error with its
traceback (``e.__traceback_text__``, which ``app.ui.workers.Job`` sets on a job's exception,
else the exception's own). An exception is logged once however often it is worded.

No standard exception is shown bare: a core raise site whose text is written for the user
raises a ``UserError`` subclass (keeping its old base, such as ValueError) instead.
"""

from __future__ import annotations

import traceback

from app.core.errors import UserError

_LOGGED = "__described__"  # set on an exception once it is logged


def describe_error(e: BaseException) -> str:
    """One line a user can act on; exception class names only for unexpected errors. Each is
    logged once (redacted; an unexpected one with its traceback), however often it is worded."""
    from app.core.logs import log
    first = not getattr(e, _LOGGED, False)
    if first:
        try:
            setattr(e, _LOGGED, True)
        except AttributeError:  # an exception type that takes no attributes: log it each time
            pass
    if isinstance(e, UserError) and str(e).strip():
        if first:
            log.warning("shown: %s", e)
        return str(e)
    if first:
        trace = getattr(e, "__traceback_text__", "") or "".join(
            traceback.format_exception(type(e), e, e.__traceback__) if e.__traceback__ else [])
        log.error("unexpected error shown: %s: %s\n%s", type(e).__name__, e, trace)
    return f"{type(e).__name__}: {e}"

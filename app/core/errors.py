"""The one base of the errors a user is shown as they are.

``UserError`` is an error whose message is written for the user: what happened and what to do.
``app.ui.errors.describe_error`` shows its text verbatim; anything else is a bug and is shown
with its class name and logged with its traceback.

Each module keeps its own subclass (``EngineError``, ``AdapterError``, ...) and its old standard
base next to this one, so ``except RuntimeError`` / ``except ValueError`` / ``except OSError``
clauses written before it still catch what they caught:

    class FirewallError(UserError, RuntimeError): ...

``UserError`` comes first and adds nothing (no ``__init__``, no slots), so an ``OSError``
subclass keeps ``OSError``'s constructor: ``OfflineError("text")`` is a ``PermissionError`` with
``str(e) == "text"`` (tests/core/test_errors.py checks it). A raise site whose message is not written
for a user (a programming error, a failed internal invariant) should not use one of these.
"""

from __future__ import annotations


class UserError(Exception):
    """An error whose message is written for the user (what happened and what to do); anything
    else is a bug and is shown with its class name and logged with its traceback."""

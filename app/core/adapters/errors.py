"""The one error type of the adapter pipeline."""

from app.core.errors import UserError


class AdapterError(UserError, ValueError):
    """The adapter cannot be imported or applied. The message says why and what to do.

    A UserError, so the UI's describe_error shows the message as it is (and still a ValueError
    for the callers that catch that).
    """

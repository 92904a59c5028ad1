"""The one error type of the adapter pipeline."""


class AdapterError(ValueError):
    """The adapter cannot be imported or applied. The message says why and what to do.

    A ValueError so that the UI's describe_error shows the message as it is.
    """

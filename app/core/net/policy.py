"""Whether the app is offline, and the one check every network action makes first.

Kept apart from the guard so core code (downloads, web search) can refuse with a message
that names the toggle before any socket is opened; the guard and the OS firewall are the
layers behind it for anything that forgets to ask.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_offline = False


class OfflineError(PermissionError):
    """An action needs the network while offline mode is on."""


def set_offline(on: bool) -> None:
    global _offline
    with _lock:
        _offline = bool(on)


def is_offline() -> bool:
    return _offline


def require_online(action: str) -> None:
    """Raise OfflineError naming the toggle if offline mode is on."""
    if _offline:
        raise OfflineError(f"{action} needs the network, and Offline mode is on. Turn Offline off in the "
                           "toolbar to allow it (the firewall block is lifted while it is off).")

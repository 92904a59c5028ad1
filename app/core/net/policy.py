"""Whether the app is offline, and the one check every network action makes first.

Kept apart from the guard so core code (downloads, web search) can refuse with a message
that names the toggle before any socket is opened; the guard and the OS firewall are the
layers behind it for anything that forgets to ask. What counts as "this machine"
(loopback) is decided here too, so the guard and the audit agree.
"""

from __future__ import annotations

import ipaddress
import threading

from app.core.errors import UserError

_lock = threading.Lock()
_offline = False
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


class OfflineError(UserError, PermissionError):
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


def is_loopback_host(host) -> bool:
    """Whether a host names this machine (loopback addresses and names): always allowed."""
    if host is None:
        return True  # getaddrinfo(None, ...) means the local host
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    h = str(host).strip().lower().rstrip(".")
    if h in LOOPBACK_NAMES or h == "":
        return True
    h = h.split("%", 1)[0].strip("[]")
    try:
        ip = ipaddress.ip_address(h)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0].strip("[]"))
        return True
    except ValueError:
        return False

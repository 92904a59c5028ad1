"""The in-process guard: a ``sys.addaudithook`` hook on every socket call Python makes.

It records each connect/sendto/resolve into the audit log and, while offline, raises
PermissionError for anything that is not loopback (or a Unix socket). Audit hooks cannot be
removed, so it is installed once and reads the offline flag on each call. It cannot see
native code (llama.cpp, a C extension opening its own sockets): the OS firewall covers that.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time

from app.core.net import policy
from app.core.net.policy import is_ip, is_loopback_host
from app.core.net.audit import ALLOWED, BLOCKED_APP, LOG, AuditLog, NetEvent

_installed = False
_install_lock = threading.Lock()
_state = threading.local()
_log: AuditLog = LOG
EVENTS = {"socket.connect", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo", "socket.gethostbyname",
          "socket.gethostbyname_ex", "socket.gethostbyaddr", "socket.getnameinfo"}


class NetworkBlocked(policy.OfflineError):
    """Raised inside the socket call the guard refused."""


def _describe(event: str, args: tuple) -> tuple[str, int | None, str, str] | None:
    """(destination, port, protocol, state) of an audit event, or None for Unix sockets."""
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        sock, address = args[0], args[-1]
        if event == "socket.sendmsg" and address is None:
            return None
        fam = getattr(sock, "family", None)
        if fam == getattr(socket, "AF_UNIX", -1) or isinstance(address, (str, bytes)):
            return None
        host, port = (address[0], address[1]) if isinstance(address, tuple) and len(address) >= 2 else (address, None)
        proto = "udp" if getattr(sock, "type", None) == socket.SOCK_DGRAM else "tcp"
        return str(host), port, proto, event.split(".", 1)[1]
    if event == "socket.getaddrinfo":
        return (str(args[0]) if args[0] is not None else "localhost"), (args[1] if isinstance(args[1], int) else None), "dns", "resolve"
    if event in ("socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr"):
        return str(args[0]), None, "dns", "resolve"
    if event == "socket.getnameinfo":
        addr = args[0]
        return str(addr[0]) if isinstance(addr, tuple) else str(addr), None, "dns", "resolve"
    return None


def _hook(event: str, args: tuple) -> None:
    if event not in EVENTS or getattr(_state, "busy", False):
        return
    _state.busy = True
    try:
        d = _describe(event, args)
        if d is None:
            return
        host, port, proto, state = d
        if proto == "dns" and is_ip(host):
            return  # a numeric address resolves locally; its connect is what gets checked
        loop = is_loopback_host(host)
        blocked = policy.is_offline() and not loop
        if not loop:  # loopback is the app talking to itself: not worth a line each time
            _log.add(NetEvent(time.time(), os.getpid(), "offline-coder", host, port if isinstance(port, int) else None,
                              proto, state, BLOCKED_APP if blocked else ALLOWED, "guard"))
    finally:
        _state.busy = False
    if blocked:
        raise NetworkBlocked(f"Offline mode blocked a connection to {host}"
                             + (f":{port}" if port else "") + ". Turn Offline off in the toolbar to allow it.")


def install(log: AuditLog | None = None) -> None:
    """Install the hook (once per process); later calls only switch the log."""
    global _installed, _log
    with _install_lock:
        if log is not None:
            _log = log
        if not _installed:
            sys.addaudithook(_hook)
            _installed = True


def installed() -> bool:
    return _installed

"""The live network audit: every connection attempt the app makes, with its verdict.

Three sources feed one log: the in-process guard (``guard.py``: what Python code tries,
allowed or blocked by the app), a 1 s psutil poll of the app's process tree (native code and
child processes, including attempts stuck in SYN_SENT), and the firewall's counter (packets
the OS rejected). The log is a bounded, thread-safe list with subscribers; it exports CSV.
"""

from __future__ import annotations

import csv
import io
import os
import socket
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from typing import Callable

import psutil

from app.core.net.policy import is_loopback_host

ALLOWED, BLOCKED_APP, BLOCKED_FIREWALL, SEEN = "allowed", "blocked by the app", "blocked by the firewall", "seen"
MAX_EVENTS = 5000


@dataclass(frozen=True)
class NetEvent:
    time: float
    pid: int
    process: str
    destination: str
    port: int | None
    protocol: str       # tcp | udp | dns | unix
    state: str          # connect | sendto | resolve | SYN_SENT | ESTABLISHED | ...
    verdict: str        # ALLOWED | BLOCKED_APP | BLOCKED_FIREWALL | SEEN
    source: str = "guard"  # guard | poll | firewall | verify
    note: str = ""


@dataclass
class AuditLog:
    maxlen: int = MAX_EVENTS
    _events: deque = field(default_factory=deque, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _subscribers: list = field(default_factory=list, init=False)

    def add(self, event: NetEvent) -> None:
        with self._lock:
            self._events.append(event)
            while len(self._events) > self.maxlen:
                self._events.popleft()
            subs = list(self._subscribers)
        for fn in subs:
            try:
                fn(event)
            except Exception:  # noqa: BLE001 - a broken view must not break networking code
                pass

    def events(self) -> list[NetEvent]:
        with self._lock:
            return list(self._events)

    def subscribe(self, fn: Callable[[NetEvent], None]) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn) if fn in self._subscribers else None

    def clear(self) -> None:
        with self._lock:
            self._events.clear()

    def to_csv(self) -> str:
        out = io.StringIO()
        names = [f.name for f in fields(NetEvent)]
        w = csv.DictWriter(out, fieldnames=names)
        w.writeheader()
        for e in self.events():
            row = asdict(e)
            row["time"] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.time)) + f".{int(e.time % 1 * 1000):03d}"
            w.writerow(row)
        return out.getvalue()


LOG = AuditLog()  # the app's one log; tests may make their own


class ConnectionPoller:
    """Poll the connections of a process and its children; report each new one once."""

    def __init__(self, log: AuditLog, pid: int | None = None, firewall_active: Callable[[], bool] = lambda: False):
        self.log = log
        self.pid = pid or os.getpid()
        self.firewall_active = firewall_active
        self._seen: set[tuple] = set()

    def poll(self) -> list[NetEvent]:
        try:
            root = psutil.Process(self.pid)
            procs = [root] + root.children(recursive=True)
        except psutil.Error:
            return []
        new = []
        for p in procs:
            try:
                conns = p.net_connections(kind="inet")
                name = p.name()
            except psutil.Error:
                continue
            for c in conns:
                if not c.raddr:
                    continue
                key = (p.pid, c.laddr, c.raddr, c.status)
                if key in self._seen or is_loopback_host(c.raddr.ip):
                    continue
                self._seen.add(key)
                proto = "tcp" if c.type == socket.SOCK_STREAM else "udp"
                verdict = BLOCKED_FIREWALL if (self.firewall_active() and c.status == "SYN_SENT") else SEEN
                e = NetEvent(time.time(), p.pid, name, c.raddr.ip, c.raddr.port, proto, c.status, verdict, "poll")
                self.log.add(e)
                new.append(e)
        return new


class FirewallWatcher:
    """Turn what the firewall rejected (read back from the kernel) into audit lines."""

    def __init__(self, log: AuditLog):
        self.log = log
        self._seen: set[tuple] = set()
        self.packets = 0

    def update(self, status) -> list[NetEvent]:
        """``status``: a FirewallStatus; adds one event per new rejected destination."""
        new = []
        for dest in getattr(status, "destinations", []) or []:
            key = tuple(dest)
            if key in self._seen or len(dest) != 3:
                continue
            self._seen.add(key)
            addr, proto, port = dest
            e = NetEvent(time.time(), 0, "app process tree", str(addr), int(port), str(proto), "rejected",
                         BLOCKED_FIREWALL, "firewall")
            self.log.add(e)
            new.append(e)
        self.packets = getattr(status, "blocked_packets", 0)
        return new

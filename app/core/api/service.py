"""Running the local API: a loopback socket we bind ourselves, uvicorn serving on it.

Binding the socket here (not by uvicorn from a host string) is how "loopback only" is kept:
the address is checked to be 127.0.0.1 or ::1 before anything listens, whatever a setting
says, and a port in use is a clear ``ApiServerError`` while nothing has started. The listen
itself is an audit-log line, so the Network panel shows when and where the API listened.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
import threading
import time

from app.core.api.backend import ApiBackend
from app.core.errors import UserError
from app.core.net.audit import ALLOWED, NetEvent

DEFAULT_PORT = 8012  # llama.vscode's default endpoint; another free one when it is taken
LOOPBACK = ("127.0.0.1", "::1")


class ApiServerError(UserError, OSError):
    """The API cannot start (port in use, an address that is not loopback)."""


def loopback_socket(host: str = "127.0.0.1", port: int | None = None) -> socket.socket:
    """A listening TCP socket on ``host`` (loopback only). ``port`` None: DEFAULT_PORT, else any
    free one; a port given and taken is an ApiServerError naming it."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        ip = None
    if ip is None or str(ip) not in LOOPBACK:
        raise ApiServerError(f"The local API listens only on 127.0.0.1 or ::1, not {host!r}: it is for programs "
                             "on this computer.")
    if port is not None and not (0 <= port <= 65535):
        raise ApiServerError(f"Port {port} is not a port number (0-65535; 0 picks a free one).")
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    tries = [port] if port is not None else [DEFAULT_PORT, 0]
    for i, p in enumerate(tries):
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((str(ip), p))
            sock.listen(64)
            sock.set_inheritable(False)
            return sock
        except OSError as e:
            sock.close()
            if i + 1 < len(tries) and e.errno == errno.EADDRINUSE:
                continue
            if e.errno == errno.EADDRINUSE:
                raise ApiServerError(f"Port {p} on {ip} is already in use by another program. Choose another port "
                                     "in Settings → Local API (or `serve --port N`; 0 picks a free one).") from None
            raise ApiServerError(f"The local API cannot listen on {ip} port {p}: {e.strerror or e}.") from None
    raise AssertionError("unreachable")


class ApiServer:
    """The API on a thread of its own (the window) or the calling thread (``serve``)."""

    def __init__(self, backend: ApiBackend, host: str = "127.0.0.1", port: int | None = None):
        self.backend = backend
        self.host, self._port_wanted = host, port
        self.port = 0
        self._server = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self.error: BaseException | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _prepare(self):
        import uvicorn

        from app.core.api.server import build_app

        self._sock = loopback_socket(self.host, self._port_wanted)
        self.port = self.backend.port = self._sock.getsockname()[1]
        config = uvicorn.Config(build_app(self.backend), log_level="warning", access_log=False, lifespan="off",
                                timeout_keep_alive=5, timeout_graceful_shutdown=2, ws="none",
                                limit_concurrency=256)
        self._server = uvicorn.Server(config)
        self.backend.log.add(NetEvent(time.time(), 0, "offline-coder (local API)", self.host, self.port, "tcp",
                                      "listen", ALLOWED, "api", "the local API listens (loopback only)"))

    def start(self, timeout: float = 10.0) -> None:
        """Listen and serve on a background thread; returns once requests are answered."""
        self._prepare()
        self._thread = threading.Thread(target=self._run, name="local-api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self._server.started:
            self.stop()
            raise ApiServerError(f"The local API did not start: {self.error or 'timed out'}.")

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve(sockets=[self._sock]))
        except BaseException as e:  # noqa: BLE001 - reported through start() / stop()
            self.error = e

    def serve_forever(self, on_listening=None) -> None:
        """``python -m app serve``: serve on this thread until Ctrl+C; ``on_listening()`` once the
        socket is bound (the port is known)."""
        self._prepare()
        if on_listening is not None:
            on_listening()
        try:
            asyncio.run(self._server.serve(sockets=[self._sock]))
        finally:
            self._close_socket()

    def stop(self, timeout: float = 5.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(timeout)
            self._thread = None
        self._close_socket()

    def _close_socket(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

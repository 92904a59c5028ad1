"""A real HTTP server on 127.0.0.1 that plays the Hugging Face hub for downloads.

``/{repo}/resolve/{rev}/{file}`` answers HEAD and GET with a 302 to ``/cdn/{file}`` carrying
``X-Linked-Etag`` (SHA-256) and ``X-Linked-Size``, as the hub does; ``/cdn/{file}`` serves the
bytes with Range support. Behaviour switches: ``corrupt`` (flip a byte in what is sent),
``drop_after`` (close the connection after N bytes), ``delay`` (seconds per 64 KiB chunk).
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeHub:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.ranges: list[str | None] = []   # Range header of every /cdn GET
        self.corrupt = False
        self.drop_after: int | None = None
        self.delay = 0.0
        self.publish_sha = True
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _resolve(self, send_body: bool):
                name = self.path.rsplit("/", 1)[-1]
                data = hub.files.get(name)
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(302)
                self.send_header("Location", f"/cdn/{name}")
                if hub.publish_sha:
                    self.send_header("X-Linked-Etag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_HEAD(self):
                self._resolve(False)

            def do_GET(self):
                if "/resolve/" in self.path:
                    return self._resolve(True)
                name = self.path.rsplit("/", 1)[-1]
                data = hub.files[name]
                rng = self.headers.get("Range")
                hub.ranges.append(rng)
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = bytearray(data[start:])
                if hub.corrupt and len(body) > 10:
                    body[len(body) // 2] ^= 0xFF
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                sent = 0
                import time
                while sent < len(body):
                    chunk = bytes(body[sent:sent + 65536])
                    if hub.drop_after is not None and sent + len(chunk) > hub.drop_after:
                        self.wfile.write(chunk[: max(0, hub.drop_after - sent)])
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    self.wfile.write(chunk)
                    sent += len(chunk)
                    if hub.delay:
                        time.sleep(hub.delay)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "FakeHub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

"""A real HTTP server on 127.0.0.1 that plays an OpenAI-compatible chat endpoint
(``POST /v1/chat/completions``), for the review director.

It answers with a ``chat.completion`` JSON whose text is ``reply``. Switches: ``status``
(answer every request with it and an OpenAI-style error body that echoes the key, as some
servers do, so tests can check it is scrubbed), ``key`` (the Bearer key it accepts; None
accepts any), ``delay`` (seconds before answering; ``stop()`` cuts it short), ``raw`` (bytes
to send instead of the JSON). Every request is recorded in ``requests``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: dict


class FakeOpenAI:
    def __init__(self, reply: str = "Go after fixes. 1. Keep the password in the OS keyring."):
        self.reply = reply
        self.status = 200
        self.key: str | None = None
        self.delay = 0.0
        self.raw: bytes | None = None
        self.requests: list[Seen] = []
        self._stop = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {}
                fake.requests.append(Seen("POST", self.path, dict(self.headers), body))
                if fake.delay and fake._stop.wait(fake.delay):
                    return
                auth = self.headers.get("Authorization", "")
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                if fake.status != 200:
                    return self._send(fake.status, {"error": {"message": f"request refused for {auth}",
                                                              "type": "invalid_request_error"}})
                if fake.key is not None and auth != f"Bearer {fake.key}":
                    return self._send(401, {"error": {"message": "Incorrect API key provided."}})
                if fake.raw is not None:
                    return self._send(200, None, fake.raw)
                self._send(200, {
                    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body.get("model", ""),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": fake.reply},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}})

            def _send(self, status, obj, raw: bytes | None = None):
                data = raw if raw is not None else json.dumps(obj).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def stop(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

"""The optional remote review "director": any OpenAI-compatible chat endpoint
(``POST {base_url}/chat/completions``) that writes a review's synthesis instead of the local
model. Only when the user switched it on (Settings → Review director…), and never while
offline mode is on: ``complete`` calls ``require_online`` before it builds a request.

The key (if the endpoint needs one; a local server often does not) lives in the OS keyring
under ``secrets`` name "director". It is kept out of ``repr`` and scrubbed from every
message. urllib (standard library) does the HTTP, so the in-process network guard sees the
socket. The request runs on a helper thread so that Cancel returns at once; the abandoned
request ends by its own timeout.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Sequence

from app.core.net.policy import require_online
from app.core.web.search import describe_network_error, raise_if_offline
from app.core.errors import UserError
from app.core import safe_json

if TYPE_CHECKING:
    from app.core.settings import DirectorSettings

KEY_NAME = "director"        # the secrets.KNOWN_KEYS entry
ACTION = "The review director"  # OfflineError: "<ACTION> needs the network, and Offline mode is on…"
DEFAULT_TIMEOUT = 60.0
MAX_ANSWER_BYTES = 5_000_000
USER_AGENT = "OfflineCoder/0.1 (review director)"


class DirectorError(UserError, RuntimeError):
    """The director could not write the synthesis; the message says what to check."""


class DirectorCancelled(DirectorError):
    """The user cancelled while the director was answering. A UserError like its base: the
    message is shown as it is where a cancel reaches the UI."""


@dataclass
class Director:
    base_url: str            # e.g. https://api.openai.com/v1, or http://127.0.0.1:8080/v1
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT
    max_tokens: int = 800
    temperature: float = 0.2

    def __repr__(self) -> str:
        return (f"Director(base_url={self.base_url!r}, model={self.model!r}, "
                f"key={'set' if self.api_key else 'none'}, timeout={self.timeout:g})")

    # ---- addressing ----------------------------------------------------------------------
    def endpoint(self) -> str:
        base = (self.base_url or "").strip().rstrip("/")
        parts = urllib.parse.urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DirectorError("The review director needs a base URL starting with http:// or https:// "
                                "(e.g. https://api.openai.com/v1); set it in Settings → Review director….")
        if base.endswith("/chat/completions"):
            return base
        return base + "/chat/completions"

    @property
    def host(self) -> str:
        return urllib.parse.urlsplit((self.base_url or "").strip()).hostname or "the director"

    def _scrub(self, text: str) -> str:
        key = (self.api_key or "").strip()
        return text.replace(key, "***") if key else text

    # ---- the call ------------------------------------------------------------------------
    def complete(self, messages: Sequence[dict], cancelled: Callable[[], bool] | None = None) -> str:
        """The assistant's text for ``messages``. Raises OfflineError (offline mode, before any
        request), DirectorCancelled, or DirectorError with a sentence the user can act on."""
        require_online(ACTION)
        url = self.endpoint()
        if not (self.model or "").strip():
            raise DirectorError("The review director needs a model name (e.g. gpt-4o-mini); set it in "
                                "Settings → Review director….")
        body = json.dumps({"model": self.model.strip(), "messages": [dict(m) for m in messages],
                           "temperature": self.temperature, "max_tokens": self.max_tokens,
                           "stream": False}).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": USER_AGENT}
        key = (self.api_key or "").strip()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(url, data=body, method="POST", headers=headers)

        box: dict = {}
        done = threading.Event()

        def call() -> None:
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    box["raw"] = resp.read(MAX_ANSWER_BYTES + 1)
            except BaseException as e:  # noqa: BLE001 - handed back to the caller's thread
                box["error"] = e
            finally:
                done.set()

        threading.Thread(target=call, name="review-director", daemon=True).start()
        deadline = time.monotonic() + self.timeout
        is_cancelled = cancelled or (lambda: False)
        while not done.wait(0.05):
            if is_cancelled():
                raise DirectorCancelled("Cancelled while the review director was answering.")
            if time.monotonic() > deadline:
                raise DirectorError(self._timeout_message())
        if "error" in box:
            raise DirectorError(self._error_message(box["error"], url)) from None
        return self._parse(box["raw"])

    def _timeout_message(self) -> str:
        return (f"The review director ({self.host}) did not answer within {self.timeout:g} s; check the connection, "
                "or raise the timeout in Settings → Review director….")

    def _error_message(self, e: BaseException, url: str) -> str:
        if isinstance(e, urllib.error.HTTPError):
            return self._scrub(self._status_message(e))
        if isinstance(e, (urllib.error.URLError, OSError)):
            raise_if_offline(e)  # the guard refused mid-request: offline, not a network fault
            if "timed out" in str(e).lower():
                return self._timeout_message()
            return self._scrub(describe_network_error(e, f"The review director ({self.host})", url, self.timeout))
        if isinstance(e, http.client.HTTPException):
            return f"The review director ({self.host}) sent a broken answer ({type(e).__name__}); try again."
        return self._scrub(f"The review director failed: {type(e).__name__}: {e}")

    def _status_message(self, e: urllib.error.HTTPError) -> str:
        detail = ""
        try:
            err = safe_json.loads(e.read(20_000) or b"{}")
            inner = err.get("error") if isinstance(err, dict) else None
            detail = str(inner.get("message") if isinstance(inner, dict) else inner or "")
        except (ValueError, OSError, AttributeError):
            pass
        detail = " ".join(detail.split())[:200]
        extra = f" ({detail})" if detail else ""
        if e.code in (401, 403):
            return (f"The review director ({self.host}) refused the key (HTTP {e.code}){extra}; check the "
                    "“Review director API key” in Settings → Keys.")
        if e.code == 404:
            return (f"The review director ({self.host}) has no chat endpoint at that address or does not know the model "
                    f"(HTTP 404){extra}; check the base URL (it usually ends in /v1) and the model name.")
        if e.code == 429:
            return (f"The review director ({self.host}) is rate-limiting this key or its credit is used up "
                    f"(HTTP 429){extra}; wait a minute and try again, or check the account.")
        return f"The review director ({self.host}) answered HTTP {e.code}{extra}; try again later."

    def _parse(self, raw: bytes) -> str:
        if len(raw) > MAX_ANSWER_BYTES:
            raise DirectorError(f"The review director sent more than {MAX_ANSWER_BYTES // 1_000_000} MB; "
                                "that is not a chat answer.")
        try:
            data = safe_json.loads(raw, max_bytes=MAX_ANSWER_BYTES)
            content = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise DirectorError(f"The review director's answer ({self.host}) is not OpenAI-compatible chat JSON "
                                "(no choices[0].message.content); check the base URL.") from None
        if isinstance(content, list):  # some servers send content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        text = str(content or "").strip()
        if not text:
            raise DirectorError(f"The review director ({self.host}) answered with no text.")
        return text


def director_from_settings(settings: DirectorSettings, get_key: Callable[[str], str | None]) -> Director | None:
    """The director the user configured, or None when it is switched off. ``get_key`` reads
    the keyring (secrets.get_key): call this on a worker thread."""
    if not settings.enabled:
        return None
    return Director(settings.base_url, settings.model, get_key(KEY_NAME),
                    float(settings.timeout_s) if settings.timeout_s > 0 else DEFAULT_TIMEOUT)

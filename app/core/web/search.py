"""Web search providers: DuckDuckGo (no key, through ``ddgs``) and Tavily (an API key).

Every search starts with ``require_online`` so that offline mode refuses it with a message
naming the toggle before a socket is opened. That check matters more than usual here: ddgs
talks HTTP through ``primp``, a Rust extension whose sockets the in-process guard cannot see
(the OS firewall and the audit poller do). Errors become ``SearchError`` with a sentence the
user can act on; nothing here logs, and the Tavily key never enters a message.

Both endpoints can be redirected (a constructor argument, else an environment variable) so
tests and the GUI tests talk to a fake engine on 127.0.0.1 through the same code paths.
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from app.core.net.policy import OfflineError, require_online
from app.core.errors import UserError
from app.core import safe_json

DUCKDUCKGO_URL = "https://html.duckduckgo.com/html/"  # the endpoint ddgs's duckduckgo engine posts to
TAVILY_URL = "https://api.tavily.com"
SEARCH_URL_ENV = "OFFLINE_CODER_SEARCH_URL"
TAVILY_URL_ENV = "OFFLINE_CODER_TAVILY_URL"
ACTION = "Web search"  # the words OfflineError puts before "needs the network"
USER_AGENT = "Mozilla/5.0 (compatible; OfflineCoder/0.1; +web search on request)"
# DuckDuckGo answers a client it suspects of being a bot with one of these instead of results
# (202 with a challenge page is the usual one); ddgs's predecessor treated them the same way.
RATE_LIMIT_STATUSES = {202, 403, 418, 429}
MAX_JSON_BYTES = 5_000_000


@dataclass(frozen=True)
class SearchResult:
    title: str
    url: str
    snippet: str


class SearchError(UserError, RuntimeError):
    """A search or page read failed; the message says what the user can do about it."""


class NoResults(SearchError):
    """The engine answered but found nothing (kept apart so a UI can show it as a plain note)."""


@runtime_checkable
class SearchProvider(Protocol):
    name: str   # short key: "duckduckgo", "tavily"
    label: str  # what messages and the UI call it

    def search(self, query: str, max_results: int = 5, timeout: float = 10.0) -> list[SearchResult]:
        ...


def _seconds(timeout: float) -> str:
    return f"{timeout:g} s"


def _clean_query(query: str) -> str:
    q = " ".join((query or "").split())
    if not q:
        raise SearchError("There is nothing to search for: type the words after the command, e.g. /search python sorted key.")
    return q


def _no_results(query: str) -> NoResults:
    return NoResults(f"No results for “{query}”. Try fewer or different words.")


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).hostname or url


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, (TimeoutError, socket.timeout)) or (
        isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, (TimeoutError, socket.timeout)))


def raise_if_offline(exc: BaseException) -> None:
    """Re-raise the guard's refusal (an OfflineError, which urllib wraps in URLError) as itself,
    so offline mode switched on mid-request reads as offline mode, not as a network fault."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, OfflineError):
        raise reason
    if isinstance(exc, OfflineError):
        raise exc


def describe_network_error(exc: BaseException, label: str, url: str, timeout: float) -> str:
    """One sentence for an OSError/URLError from urllib: timeout, refused, DNS, TLS, other."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    host = _host(url)
    if _is_timeout(exc):
        return f"{label} did not answer within {_seconds(timeout)}; check the connection and try again."
    if isinstance(reason, socket.gaierror):
        return f"Could not look up {host} (DNS failed); check that this computer is connected to the internet."
    if isinstance(reason, ConnectionRefusedError):
        return f"{host} refused the connection; the service may be down, or a firewall or proxy is blocking it."
    if isinstance(reason, ConnectionError):
        return f"The connection to {host} was cut off ({type(reason).__name__}); try again."
    text = str(reason) if not isinstance(reason, str) else reason
    if "CERTIFICATE" in text.upper() or "SSL" in text.upper():
        return f"The secure connection to {host} failed ({text}); check the computer's clock and any proxy."
    return f"Could not reach {host}: {text}."


def read_body(resp: Any, max_bytes: int, deadline: float, label: str, timeout: float) -> tuple[bytes, bool]:
    """Read at most ``max_bytes`` of a urllib response before ``deadline`` (monotonic).

    urllib's timeout bounds each socket operation, not the whole read, so a server that
    drips bytes could hold a request for ever; the deadline makes ``timeout`` a total.
    Returns (body, truncated).
    """
    chunks: list[bytes] = []
    size = 0
    while size <= max_bytes:
        if time.monotonic() > deadline:
            raise SearchError(f"{label} did not answer within {_seconds(timeout)}; check the connection and try again.")
        chunk = resp.read(min(65536, max_bytes + 1 - size))
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)[:max_bytes], True


# ---------------------------------------------------------------- DuckDuckGo

class _HttpStatus(Exception):
    def __init__(self, status: int):
        super().__init__(f"HTTP {status}")
        self.status = status


@functools.cache
def engine_class() -> type:
    """ddgs's DuckDuckGo engine with our endpoint, our status handling and the links as written.

    Built on first use so importing this module does not import ddgs (and its lxml, primp and
    every other engine, ~90 ms). ``search_url`` is a plain attribute of ddgs's engines, so an
    instance can point at any URL. Redirects are not followed: DuckDuckGo answers a "!bang" (or
    a query starting with a backslash) with a redirect to another site, which the user did not
    ask to contact. ``request`` is overridden because ddgs turns every non-200 answer into
    "no results", which would hide a rate limit. ``extract_results`` puts back each
    link as the page wrote it: ddgs percent-decodes hrefs, which garbles DuckDuckGo's redirect
    links (``/l/?uddg=<encoded target>&rut=…``) whose target has a query string of its own.
    """
    from ddgs.engines.duckduckgo import Duckduckgo

    class _DuckDuckGoEngine(Duckduckgo):
        def __init__(self, search_url: str, timeout: float):
            super().__init__(timeout=timeout)  # type: ignore[arg-type]  # primp takes float seconds
            # A "!bang" query makes DuckDuckGo redirect to another site: never follow it.
            self.http_client.client.follow_redirects = False
            self.search_url = search_url
            self.last_html = ""

        def request(self, *args: Any, **kwargs: Any) -> str:
            resp = self.http_client.request(*args, **kwargs)
            if resp.status_code != 200:
                raise _HttpStatus(resp.status_code)
            self.last_html = resp.text
            return resp.text

        def extract_results(self, html_text: str) -> list[Any]:
            results = super().extract_results(html_text)
            tree = self.extract_tree(self.pre_process_html(html_text))  # the same items, in the same order
            raw = ["".join(item.xpath(self.elements_xpath["href"])).strip() for item in tree.xpath(self.items_xpath)]
            for result, href in zip(results, raw):
                object.__setattr__(result, "href", href)  # past TextResult's normalising __setattr__
            return results

    return _DuckDuckGoEngine


def _unwrap_ddg_link(href: str, base: str) -> str:
    """The target of DuckDuckGo's redirect links (``/l/?uddg=…``, relative, protocol-relative or
    absolute); any other link made absolute against the endpoint."""
    parts = urllib.parse.urlsplit(href)
    host = (parts.hostname or "").lower()
    if parts.path == "/l/" and (not host or host == "duckduckgo.com" or host.endswith(".duckduckgo.com")):
        target = urllib.parse.parse_qs(parts.query).get("uddg")
        if target:
            return target[0]
    return urllib.parse.urljoin(base, href)


class DuckDuckGoProvider:
    """DuckDuckGo's HTML endpoint, requested and parsed by ddgs (no key, no account).

    ``base_url`` is the full endpoint (default ``DUCKDUCKGO_URL``); when None it is read from
    ``OFFLINE_CODER_SEARCH_URL`` at each search, so a test can set the variable late.
    Only the first results page is read: at most about 10 results whatever ``max_results`` says.
    """

    name = "duckduckgo"
    label = "DuckDuckGo"

    def __init__(self, base_url: str | None = None, region: str = "us-en"):
        self.base_url = base_url
        self.region = region

    def endpoint(self) -> str:
        return self.base_url or os.environ.get(SEARCH_URL_ENV) or DUCKDUCKGO_URL

    def search(self, query: str, max_results: int = 5, timeout: float = 10.0) -> list[SearchResult]:
        require_online(ACTION)
        q = _clean_query(query)
        url = self.endpoint()
        engine = engine_class()(url, timeout)
        from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException
        try:
            found = engine.search(q, region=self.region) or []
        except _HttpStatus as e:
            if e.status in RATE_LIMIT_STATUSES:
                raise SearchError(self._rate_limited()) from None
            if 300 <= e.status < 400:
                raise SearchError("DuckDuckGo wanted to send this search to another site (a !bang or a leading \\ "
                                  "does that); it was not followed. Search without them.") from None
            raise SearchError(f"DuckDuckGo answered HTTP {e.status} instead of results; try again later.") from None
        except RatelimitException:
            raise SearchError(self._rate_limited()) from None
        except TimeoutException:
            raise SearchError(f"DuckDuckGo did not answer within {_seconds(timeout)}; "
                              "check the connection and try again.") from None
        except DDGSException as e:
            raise SearchError(self._connection_problem(e, url)) from None
        results: list[SearchResult] = []
        seen: set[str] = set()
        for r in found:
            link = _unwrap_ddg_link(r.href, url) if r.href else ""
            parts = urllib.parse.urlsplit(link)
            host = (parts.hostname or "").lower()
            if (not r.title or parts.scheme not in ("http", "https") or link in seen
                    or host == "duckduckgo.com" or host.endswith(".duckduckgo.com")):  # ads (y.js) and other DDG pages
                continue
            seen.add(link)
            results.append(SearchResult(r.title, link, r.body))
        if not results:
            # A challenge page instead of results comes with 200 too, sometimes.
            if "anomaly-modal" in engine.last_html or "challenge-form" in engine.last_html:
                raise SearchError(self._rate_limited())
            raise _no_results(q)
        return results[:max(1, max_results)]

    @staticmethod
    def _rate_limited() -> str:
        return "DuckDuckGo is rate-limiting this computer; wait a minute and try again."

    @staticmethod
    def _connection_problem(exc: Exception, url: str) -> str:
        """ddgs wraps primp's exceptions; the original is the __cause__."""
        import primp
        cause = exc.__cause__
        host = _host(url)
        detail = str(cause or exc).rsplit(" > ", 1)[-1].strip(" ')\"")
        if isinstance(cause, primp.DNSError) or "dns error" in str(cause or exc).lower():
            return f"Could not look up {host} (DNS failed); check that this computer is connected to the internet."
        if isinstance(cause, primp.ConnectError):
            if "refused" in detail.lower():
                return f"{host} refused the connection; the service may be down, or a firewall or proxy is blocking it."
            return f"Could not connect to {host} ({detail}); check the connection and any proxy."
        return f"DuckDuckGo search failed ({detail}); try again."


# ---------------------------------------------------------------- Tavily

class TavilyProvider:
    """Tavily's search API (``POST {base}/search``) with the user's key, through urllib.

    urllib rather than ddgs's primp: a JSON API needs no browser disguise, and Python sockets
    are the ones the in-process guard sees. The key goes in the JSON body (``api_key``) and
    as the ``Authorization: Bearer`` header that Tavily's current documentation uses; it is
    kept out of ``repr`` and scrubbed from any text the server sends back.
    """

    name = "tavily"
    label = "Tavily"

    def __init__(self, api_key: str | None, base_url: str | None = None):
        self._key = (api_key or "").strip()
        self.base_url = base_url

    def __repr__(self) -> str:
        return f"TavilyProvider(base_url={self.endpoint()!r}, key={'set' if self._key else 'missing'})"

    def endpoint(self) -> str:
        return (self.base_url or os.environ.get(TAVILY_URL_ENV) or TAVILY_URL).rstrip("/") + "/search"

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def search(self, query: str, max_results: int = 5, timeout: float = 10.0) -> list[SearchResult]:
        require_online(ACTION)
        q = _clean_query(query)
        if not self._key:
            raise SearchError("Tavily needs an API key: add it in Settings → Keys, or switch the provider to DuckDuckGo.")
        url = self.endpoint()
        body = json.dumps({"api_key": self._key, "query": q, "max_results": max(1, int(max_results))}).encode()
        req = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", "Accept": "application/json", "User-Agent": USER_AGENT,
            "Authorization": f"Bearer {self._key}"})
        deadline = time.monotonic() + timeout
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw, truncated = read_body(resp, MAX_JSON_BYTES, deadline, self.label, timeout)
        except urllib.error.HTTPError as e:
            raise SearchError(self._status_message(e)) from None
        except (urllib.error.URLError, OSError) as e:
            raise_if_offline(e)
            raise SearchError(self._scrub(describe_network_error(e, self.label, url, timeout))) from None
        except http.client.HTTPException as e:  # a malformed or cut-off answer
            raise SearchError(f"Tavily sent a broken answer ({type(e).__name__}); try again.") from None
        if truncated:
            raise SearchError(f"Tavily sent more than {MAX_JSON_BYTES // 1_000_000} MB; that is not a search answer.")
        try:
            data = safe_json.loads(raw, max_bytes=MAX_JSON_BYTES)
            items = data.get("results") or []
        except (ValueError, AttributeError):
            raise SearchError("Tavily's answer was not the JSON it documents; try again later.") from None
        results = [SearchResult(str(i.get("title") or i.get("url")), str(i["url"]), " ".join(str(i.get("content") or "").split()))
                   for i in items if isinstance(i, dict) and str(i.get("url", "")).startswith(("http://", "https://"))]
        if not results:
            raise _no_results(q)
        return results[:max(1, max_results)]

    def _status_message(self, e: urllib.error.HTTPError) -> str:
        if e.code in (401, 403):
            return "The Tavily key was refused; check it in Settings → Keys."
        if e.code == 429:
            return "Tavily is rate-limiting this key; wait a minute and try again."
        if e.code in (432, 433):
            return "The Tavily plan's search credits are used up; see your Tavily account, or switch the provider to DuckDuckGo."
        detail = ""
        try:
            err = safe_json.loads(e.read(20_000) or b"{}")
            d = err.get("detail") if isinstance(err, dict) else None
            detail = str(d.get("error") if isinstance(d, dict) else d or "")
        except (ValueError, OSError):
            pass
        detail = self._scrub(" ".join(detail.split()))[:200]
        return f"Tavily answered HTTP {e.code}" + (f" ({detail})" if detail else "") + "; try again later."


def provider_for(name: str, api_key: str | None = None) -> SearchProvider:
    """The provider a setting names ("duckduckgo" or "tavily"); the key is only Tavily's."""
    key = (name or "duckduckgo").strip().lower()
    if key in ("duckduckgo", "ddg", "ddgs"):
        return DuckDuckGoProvider()
    if key == "tavily":
        return TavilyProvider(api_key)
    raise SearchError(f"Unknown search provider {name!r}; choose DuckDuckGo or Tavily in Settings.")


def format_results_markdown(results: list[SearchResult], query: str | None = None) -> str:
    """A numbered markdown list for the chat: linked title, the site, and the snippet.

    Titles and snippets are the web's text, so markdown punctuation in them is escaped and
    they show as written (the chat renders markdown with raw HTML off).
    """
    lines = [f"**Web results for “{escape_markdown(query)}”**", ""] if query else []
    if not results:
        lines.append("No results.")
    for n, r in enumerate(results, 1):
        lines.append(f"{n}. {markdown_link(r.title, r.url)} — {escape_markdown(_host(r.url))}")
        if r.snippet:
            lines.append(f"   {escape_markdown(r.snippet)}")
    return "\n".join(lines) + "\n"


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]<>|#!~"})


def escape_markdown(text: str) -> str:
    return " ".join(str(text).split()).translate(_MD_SPECIAL)


def markdown_link(title: str, url: str) -> str:
    """``[title](url)`` that survives brackets in the title and spaces or parentheses in the URL."""
    safe_url = url.replace(" ", "%20").replace("(", "%28").replace(")", "%29").replace("<", "%3C").replace(">", "%3E")
    return f"[{escape_markdown(title) or escape_markdown(_host(url))}]({safe_url})"

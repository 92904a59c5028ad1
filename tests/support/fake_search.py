"""A real HTTP server on 127.0.0.1 that plays DuckDuckGo, Tavily and the pages they find.

``POST /html/`` answers a form with ``q`` like html.duckduckgo.com/html/ does: a page of
``div.result`` blocks whose ``div.result__body`` holds the ``h2.result__title`` link, the
``result__extras`` URL line and the ``a.result__snippet`` (the markup ddgs's duckduckgo engine
parses), plus an ad (``duckduckgo.com/y.js`` links, which ddgs drops), or DuckDuckGo's
"No results." block; a "!bang" query gets a 302 to ``/pages/elsewhere``. ``POST /tavily/search`` speaks Tavily's JSON API. ``GET /pages/<name>``
serves ``pages[name]`` = (status, content type, body); a ``Location`` entry redirects.

Switches: ``status`` (answer every search with it, e.g. 429), ``delay`` (seconds before any
answer; ``stop()`` cuts it short), ``tavily_key`` (the key Tavily accepts). Every request is
recorded in ``requests`` (method, path, headers, body), so tests can count them.
"""

from __future__ import annotations

import html
import json
import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def ddg_result_html(title: str, url: str, snippet: str, href: str | None = None, ad: bool = False) -> str:
    """One result block as DuckDuckGo's HTML endpoint writes it (bold query words and all)."""
    h = html.escape(href or url, quote=True)
    shown = html.escape(urllib.parse.urlsplit(url).netloc + urllib.parse.urlsplit(url).path)
    kind = "result--ad" if ad else "web-result"
    return f"""
<div class="result results_links results_links_deep {kind} ">
  <div class="links_main links_deep result__body"> <!-- This is the visible part -->
    <h2 class="result__title">
      <a rel="nofollow" class="result__a" href="{h}">{title}</a>
    </h2>
    <div class="result__extras">
      <div class="result__extras__url">
        <span class="result__icon"><a rel="nofollow" href="{h}"><img class="result__icon__img" width="16" height="16" alt=""
          src="//external-content.duckduckgo.com/ip3/{html.escape(urllib.parse.urlsplit(url).netloc)}.ico" name="i15" /></a></span>
        <a class="result__url" href="{h}">{shown}</a>
      </div>
    </div>
    <a class="result__snippet" href="{h}">{snippet}</a>
    <div class="clear"></div>
  </div>
</div>"""


def ddg_page_html(query: str, blocks: list[str]) -> str:
    body = "".join(blocks) or """
<div class="result results_links results_links_deep result--no-result">
  <div class="no-results">No  results.</div>
</div>"""
    q = html.escape(query, quote=True)
    return f"""<!DOCTYPE html>
<html lang="en-US"><head><meta http-equiv="content-type" content="text/html; charset=UTF-8">
<title>{q} at DuckDuckGo</title><link rel="stylesheet" href="/dist/h.css" type="text/css"></head>
<body class="body--html">
<div class="header" id="header"><form name="x" class="header__form" action="/html/" method="post">
  <input name="q" autocomplete="off" class="search__input" id="search_form_input_homepage" type="text" value="{q}" />
  <input name="b" id="search_button_homepage" class="search__button search__button--html" value="" title="Search" alt="Search" type="submit" />
  <select class="frm__select" name="kl"><option value="" >All Regions</option><option value="us-en" >US (English)</option></select>
</form></div>
<div>
<div class="serp__results"><div id="links" class="results">{body}
</div></div></div>
</body></html>"""


class FakeSearch:
    def __init__(self) -> None:
        # query -> [(title html, url, snippet html, href or None)]; "*" answers any other query
        self.results: dict[str, list[tuple[str, str, str, str | None]]] = {}
        self.ads = True
        self.pages: dict[str, tuple[int, str, bytes | str]] = {}
        self.redirects: dict[str, str] = {}
        self.status: int | None = None
        self.delay = 0.0
        self.tavily_key = "tvly-test-key"
        self.requests: list[Seen] = []
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, ctype: str, body: bytes | str, extra: dict[str, str] | None = None) -> None:
                data = body.encode("utf-8") if isinstance(body, str) else body
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _record(self) -> bytes:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                with fake._lock:
                    fake.requests.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                if fake.delay and fake._stopping.wait(fake.delay):
                    self.close_connection = True
                return body

            def do_POST(self) -> None:
                body = self._record()
                if self.path.startswith("/tavily/"):
                    return self._tavily(body)
                if self.path != "/html/":
                    return self._send(404, "text/plain", "not found")
                if fake.status is not None:
                    return self._send(fake.status, "text/html", "<html><body>Too many requests</body></html>")
                form = urllib.parse.parse_qs(body.decode("utf-8"))
                query = (form.get("q") or [""])[0]
                if not query:
                    return self._send(400, "text/plain", "no q")
                if query.startswith("!"):  # a bang: DuckDuckGo redirects to the site it names
                    return self._send(302, "text/html", "", {"Location": f"{fake.base}/pages/elsewhere?q={query[1:]}"})
                found = fake.results.get(query, fake.results.get("*", []))
                blocks = [ddg_result_html(t, u, s, h) for t, u, s, h in found]
                if found and fake.ads:
                    blocks.insert(0, ddg_result_html(
                        "Buy <b>things</b> now", "https://ads.example/", "Sponsored snippet",
                        href="https://duckduckgo.com/y.js?ad_domain=ads.example&ad_provider=bingv7aa&u3=x", ad=True))
                self._send(200, "text/html; charset=UTF-8", ddg_page_html(query, blocks))

            def _tavily(self, body: bytes) -> None:
                if fake.status is not None:
                    return self._send(fake.status, "application/json", json.dumps({"detail": {"error": "status"}}))
                try:
                    req = json.loads(body)
                except ValueError:
                    return self._send(400, "application/json", '{"detail": {"error": "bad json"}}')
                if req.get("api_key") != fake.tavily_key:
                    # echoes the key it was given, as a careless API might: the client must scrub it
                    return self._send(401, "application/json",
                                      json.dumps({"detail": {"error": f"Unauthorized: invalid API key {req.get('api_key')}"}}))
                found = fake.results.get(req.get("query"), fake.results.get("*", []))
                items = [{"title": html.unescape(t.replace("<b>", "").replace("</b>", "")), "url": u,
                          "content": html.unescape(s.replace("<b>", "").replace("</b>", "")), "score": 0.9 - i / 10}
                         for i, (t, u, s, _) in enumerate(found)][: int(req.get("max_results") or 5)]
                self._send(200, "application/json", json.dumps({"query": req.get("query"), "answer": None, "images": [],
                                                                "results": items, "response_time": 0.5}))

            def do_GET(self) -> None:
                self._record()
                name = urllib.parse.urlsplit(self.path).path.removeprefix("/pages/")
                if name in fake.redirects:
                    return self._send(302, "text/plain", "", {"Location": fake.redirects[name]})
                if not self.path.startswith("/pages/") or name not in fake.pages:
                    return self._send(404, "text/html", "<html><body><h1>Not Found</h1></body></html>")
                status, ctype, body = fake.pages[name]
                self._send(status, ctype, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True, name="fake-search")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def search_url(self) -> str:
        """What DuckDuckGoProvider's base_url / OFFLINE_CODER_SEARCH_URL should be."""
        return self.base + "/html/"

    @property
    def tavily_url(self) -> str:
        """What TavilyProvider's base_url / OFFLINE_CODER_TAVILY_URL should be."""
        return self.base + "/tavily"

    def page_url(self, name: str) -> str:
        return f"{self.base}/pages/{name}"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def start(self) -> "FakeSearch":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FakeSearch":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

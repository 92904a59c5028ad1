"""Web search and page reading against a real HTTP server on 127.0.0.1 (tests/fake_search.py).

The DuckDuckGo provider goes through ddgs and primp exactly as it would to the real engine,
only with the endpoint pointed at the fake; offline mode must refuse before any request.
"""

from __future__ import annotations

import socket
import time
import traceback

import pytest

from app.core.net import policy
from app.core.net.policy import OfflineError
from app.core.chat.render import render_markdown
from app.core.web import pages as web_pages
from app.core.web import search as web_search
from app.core.web.pages import Page, PageError, fetch_page, read_pages, sources_markdown, web_context
from app.core.web.search import (DuckDuckGoProvider, NoResults, SearchError, SearchProvider, SearchResult,
                                 TavilyProvider, format_results_markdown, provider_for)
from tests.support.fake_search import FakeSearch
from tests.support.pages import ARTICLE

KEY = "tvly-test-key"
QUERY = "python sort key function"
# (title html, url, snippet html, href as DuckDuckGo writes it or None for the url itself)
ENGINE_RESULTS = [
    ("Sorting Techniques &#8212; <b>Python</b> 3 documentation", "https://docs.python.org/3/howto/sorting.html",
     "<b>Python</b> lists have a built-in list.<b>sort</b>() method that modifies the list in-place.", None),
    ("How do I <b>sort</b> a list of dictionaries by a value? [duplicate]", "https://stackoverflow.com/questions/72899",
     "Use <b>sorted</b>() with a <b>key</b> argument &amp; operator.itemgetter.",
     "//duckduckgo.com/l/?uddg=https%3A%2F%2Fstackoverflow.com%2Fquestions%2F72899&rut=4f1e"),
    ("sorted() built-in", "https://example.org/a%20page%20(1)", "Returns a new sorted list.", None),
    ("Search docs", "https://example.com/search?q=sort&amp;lang=en", "Search the docs.",
     "/l/?uddg=https%3A%2F%2Fexample.com%2Fsearch%3Fq%3Dsort%26lang%3Den&amp;rut=77ab"),
]
EXPECTED = [
    SearchResult("Sorting Techniques — Python 3 documentation", "https://docs.python.org/3/howto/sorting.html",
                 "Python lists have a built-in list.sort() method that modifies the list in-place."),
    SearchResult("How do I sort a list of dictionaries by a value? [duplicate]", "https://stackoverflow.com/questions/72899",
                 "Use sorted() with a key argument & operator.itemgetter."),
    SearchResult("sorted() built-in", "https://example.org/a%20page%20(1)", "Returns a new sorted list."),
    SearchResult("Search docs", "https://example.com/search?q=sort&lang=en", "Search the docs."),
]
NOISE = ["NAV_NOISE", "MENU_NOISE", "SCRIPT_NOISE", "STYLE_NOISE", "FOOTER_NOISE", "SIDEBAR_NOISE"]


@pytest.fixture
def fake():
    with FakeSearch() as f:
        f.tavily_key = KEY
        f.results[QUERY] = list(ENGINE_RESULTS)
        yield f


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def all_text(exc: BaseException) -> str:
    """Everything an exception could show: message, repr and the formatted chain."""
    return str(exc) + repr(exc) + "".join(traceback.format_exception(exc))


# ---------------------------------------------------------------- DuckDuckGo

def test_duckduckgo_results_are_parsed_from_the_engine_html(fake):
    p = DuckDuckGoProvider(base_url=fake.search_url)
    assert isinstance(p, SearchProvider)
    assert p.search(f"  {QUERY} ", max_results=5) == EXPECTED  # the ad is dropped, redirect links unwrapped
    req = fake.requests[-1]
    assert (req.method, req.path) == ("POST", "/html/")
    assert "q=python+sort+key+function" in req.body.decode()
    assert p.search(QUERY, max_results=2) == EXPECTED[:2]


def test_results_are_formatted_as_linked_markdown(fake):
    md = format_results_markdown(DuckDuckGoProvider(base_url=fake.search_url).search(QUERY), query=QUERY)
    assert md.splitlines()[0] == f"**Web results for “{QUERY}”**"
    assert "1. [Sorting Techniques — Python 3 documentation](https://docs.python.org/3/howto/sorting.html)" in md
    assert "   Python lists have a built-in list.sort() method" in md
    # brackets in a title and spaces/parentheses in a url do not break the link
    assert r"[How do I sort a list of dictionaries by a value? \[duplicate\]](https://stackoverflow.com/questions/72899)" in md
    assert "(https://example.org/a%20page%20%281%29)" in md
    html = render_markdown(md).html
    assert html.count("<li>") == 4
    for url in ("https://docs.python.org/3/howto/sorting.html", "https://stackoverflow.com/questions/72899",
                "https://example.org/a%20page%20%281%29"):
        assert f'href="{url}"' in html
    assert "[duplicate]" in html and "operator.itemgetter" in html
    assert format_results_markdown([]).strip() == "No results."


def test_the_environment_variable_redirects_the_default_provider(fake, monkeypatch):
    monkeypatch.setenv(web_search.SEARCH_URL_ENV, fake.search_url)
    assert provider_for("duckduckgo").search(QUERY) == EXPECTED
    assert fake.count == 1
    monkeypatch.delenv(web_search.SEARCH_URL_ENV)
    assert DuckDuckGoProvider().endpoint() == "https://html.duckduckgo.com/html/"


@pytest.mark.parametrize("status", [429, 202])
def test_rate_limiting_gets_its_own_message(fake, status):
    fake.status = status
    with pytest.raises(SearchError) as e:
        DuckDuckGoProvider(base_url=fake.search_url).search(QUERY)
    assert str(e.value) == "DuckDuckGo is rate-limiting this computer; wait a minute and try again."


def test_another_error_status_is_named(fake):
    fake.status = 500
    with pytest.raises(SearchError, match="DuckDuckGo answered HTTP 500"):
        DuckDuckGoProvider(base_url=fake.search_url).search(QUERY)


def test_a_search_that_takes_too_long_times_out(fake):
    fake.delay = 5
    t = time.monotonic()
    with pytest.raises(SearchError) as e:
        DuckDuckGoProvider(base_url=fake.search_url).search(QUERY, timeout=1)
    assert time.monotonic() - t < 4
    assert str(e.value) == "DuckDuckGo did not answer within 1 s; check the connection and try again."


def test_a_bang_redirect_is_not_followed(fake):
    with pytest.raises(SearchError, match="another site"):
        DuckDuckGoProvider(base_url=fake.search_url).search("!w sorting")
    assert [r.path for r in fake.requests] == ["/html/"]


def test_no_results(fake):
    with pytest.raises(NoResults, match="No results for “nothing matches this”"):
        DuckDuckGoProvider(base_url=fake.search_url).search("nothing matches this")
    with pytest.raises(SearchError, match="nothing to search for"):
        DuckDuckGoProvider(base_url=fake.search_url).search("   ")


def test_a_refused_connection_is_explained():
    with pytest.raises(SearchError, match="127.0.0.1 refused the connection"):
        DuckDuckGoProvider(base_url=f"http://127.0.0.1:{closed_port()}/html/").search(QUERY, timeout=3)


def test_offline_mode_refuses_everything_before_any_request(fake):
    policy.set_offline(True)
    page = fake.page_url("article")
    calls = [
        lambda: DuckDuckGoProvider(base_url=fake.search_url).search(QUERY),
        lambda: TavilyProvider(KEY, base_url=fake.tavily_url).search(QUERY),
        lambda: fetch_page(page),
        lambda: read_pages([SearchResult("a", page, "")]),
    ]
    for call in calls:
        with pytest.raises(OfflineError) as e:
            call()
        assert "Web search needs the network" in str(e.value) and "Turn Offline off" in str(e.value)
    assert fake.count == 0


def test_the_guard_refusing_mid_request_reads_as_offline_not_as_a_skipped_page(fake, monkeypatch):
    """Offline switched on between the check and the connect: the in-process guard refuses the
    socket, urllib wraps that in URLError, and it must come out as OfflineError again."""
    from app.core.net import guard
    from app.core.net.audit import LOG, AuditLog
    guard.install(AuditLog())
    try:
        monkeypatch.setattr(web_pages, "require_online", lambda action: None)
        monkeypatch.setattr(web_search, "require_online", lambda action: None)
        policy.set_offline(True)
        unroutable = "http://192.0.2.1/"  # RFC 5737: the guard refuses the connect, no packet is made
        with pytest.raises(OfflineError, match="Offline mode blocked a connection to 192.0.2.1"):
            fetch_page(unroutable, timeout=3)
        with pytest.raises(OfflineError):
            read_pages([SearchResult("a", unroutable, "")], timeout=3)
        with pytest.raises(OfflineError):
            TavilyProvider(KEY, base_url=unroutable).search(QUERY, timeout=3)
    finally:
        guard.install(LOG)


# ---------------------------------------------------------------- pages

def test_fetch_page_extracts_the_main_text(fake):
    fake.pages["article"] = (200, "text/html; charset=utf-8", ARTICLE)
    p = fetch_page(fake.page_url("article"), timeout=5)
    assert p.ok and p.url == fake.page_url("article") and p.title == "Sorting lists in Python"
    assert "built-in `list.sort()` method that modifies the list in place" in p.text
    assert "```\nsorted(words, key=str.lower)\n```" in p.text  # code stays a fenced block
    assert "their original\norder is preserved" in p.text or "their original order is preserved" in p.text
    for noise in NOISE:
        assert noise not in p.text
    assert not p.truncated


def test_fetch_page_reads_plain_text_and_other_charsets(fake):
    fake.pages["notes.txt"] = (200, "text/plain; charset=utf-8", "Line one.\nLine two — ünïcödé.\n")
    fake.pages["latin"] = (200, "text/html; charset=iso-8859-1", ARTICLE.replace("Sorting lists", "Triage des listes à").encode("latin-1", "replace"))
    assert fetch_page(fake.page_url("notes.txt")).text == "Line one.\nLine two — ünïcödé."
    assert fetch_page(fake.page_url("latin")).title == "Triage des listes à in Python"


def test_fetch_page_refusals(fake):
    with pytest.raises(PageError, match="Only http and https"):
        fetch_page("file:///etc/passwd")
    with pytest.raises(PageError, match="Only http and https"):
        fetch_page("ftp://127.0.0.1/x")
    assert fake.count == 0
    fake.pages["doc.pdf"] = (200, "application/pdf", b"%PDF-1.7 ...")
    with pytest.raises(PageError, match="is application/pdf, not a web page"):
        fetch_page(fake.page_url("doc.pdf"))
    fake.redirects["sneaky"] = "file:///etc/passwd"
    with pytest.raises(PageError, match="not a web page"):
        fetch_page(fake.page_url("sneaky"))
    fake.pages["empty"] = (200, "text/html", "<html><head><script>SCRIPT_NOISE()</script></head><body></body></html>")
    with pytest.raises(PageError, match="no readable text"):
        fetch_page(fake.page_url("empty"))
    with pytest.raises(PageError, match="answered HTTP 404 Not Found"):
        fetch_page(fake.page_url("missing"))
    with pytest.raises(PageError, match="refused the connection"):
        fetch_page(f"http://127.0.0.1:{closed_port()}/", timeout=3)


def test_fetch_page_follows_web_redirects_and_caps_the_size(fake):
    fake.pages["article"] = (200, "text/html; charset=utf-8", ARTICLE)
    fake.redirects["old"] = "/pages/article"
    p = fetch_page(fake.page_url("old"))
    assert p.url == fake.page_url("article") and "stable" in p.text
    fake.pages["long.txt"] = (200, "text/plain", "x" * 50_000)
    p = fetch_page(fake.page_url("long.txt"), max_bytes=1000)
    assert p.truncated and len(p.text) == 1000


def test_fetch_page_times_out(fake):
    fake.pages["article"] = (200, "text/html", ARTICLE)
    fake.delay = 5
    with pytest.raises(PageError, match="did not answer within 1 s"):
        fetch_page(fake.page_url("article"), timeout=1)


def test_read_pages_skips_a_failing_page_with_the_reason(fake):
    fake.pages["article"] = (200, "text/html; charset=utf-8", ARTICLE)
    fake.pages["notes.txt"] = (200, "text/plain", "Plain notes about key functions. " * 10)
    fake.pages["unused"] = (200, "text/plain", "never read")
    results = [SearchResult("Gone", fake.page_url("gone"), ""), SearchResult("Article", fake.page_url("article"), ""),
               SearchResult("Article again", fake.page_url("article"), ""),
               SearchResult("Notes", fake.page_url("notes.txt"), ""), SearchResult("Unused", fake.page_url("unused"), "")]
    seen: list[Page] = []
    pages = read_pages(results, max_pages=2, max_chars_per_page=120, on_page=seen.append, timeout=5)
    assert [p.url for p in pages] == [fake.page_url(n) for n in ("gone", "article", "notes.txt")]
    gone, article, notes = pages
    assert not gone.ok and "HTTP 404" in gone.error and gone.title == "Gone"
    assert article.ok and article.title == "Sorting lists in Python"
    assert notes.ok and notes.title == "Notes"  # plain text names no title: the result's is used
    for p in (article, notes):
        assert len(p.text) <= 120 and p.text.endswith("[…]") and p.truncated
    assert sorted(p.url for p in seen) == sorted(p.url for p in pages)
    assert not any(r.path == "/pages/unused" for r in fake.requests)  # two pages were enough
    md = sources_markdown(pages)
    assert f"1. [Sorting lists in Python]({fake.page_url('article')})" in md and "Skipped:" in md and "HTTP 404" in md


def test_web_context_numbers_the_sources_and_asks_for_links():
    pages = [Page("https://a.example/one", "First page", "Alpha text. " * 50),
             Page("https://b.example/two", "Second page", "", error="https://b.example/two answered HTTP 404 Not Found."),
             Page("https://c.example/three", "Third page", "Short gamma text.")]
    ctx = web_context("How do I sort by key?", pages, budget_chars=1000)
    assert len(ctx) <= 1000
    assert "[1] First page — https://a.example/one\nAlpha text." in ctx
    assert "[2] Third page — https://c.example/three\nShort gamma text." in ctx  # whole: it is short
    assert "b.example" not in ctx
    assert "markdown link" in ctx and "[its title](its url)" in ctx
    assert ctx.rstrip().endswith("Task: How do I sort by key?")
    assert "[…]" in ctx  # the long page was cut to fit
    big = web_context("t", pages, budget_chars=100_000)
    assert big.count("Alpha text.") == 50
    none = web_context("t", [pages[1]], budget_chars=1000)
    assert "No web page could be read" in none
    tight = web_context("t", pages, budget_chars=600)  # room for the short page only
    assert len(tight) <= 600 and "[1] Third page" in tight and "First page" not in tight


# ---------------------------------------------------------------- Tavily

def test_tavily_results_and_the_key_in_the_body(fake):
    p = TavilyProvider(KEY, base_url=fake.tavily_url)
    assert isinstance(p, SearchProvider) and KEY not in repr(p)
    assert p.search(QUERY, max_results=2) == EXPECTED[:2]
    req = fake.requests[-1]
    assert (req.method, req.path) == ("POST", "/tavily/search")
    import json
    assert json.loads(req.body) == {"api_key": KEY, "query": QUERY, "max_results": 2}
    assert req.headers["authorization"] == f"Bearer {KEY}"


def test_tavily_refused_key_is_never_shown(fake, monkeypatch):
    wrong = "tvly-WRONG-secret-123"
    monkeypatch.setenv(web_search.TAVILY_URL_ENV, fake.tavily_url)
    with pytest.raises(SearchError) as e:
        provider_for("tavily", api_key=wrong).search(QUERY)
    assert str(e.value) == "The Tavily key was refused; check it in Settings → Keys."
    assert wrong not in all_text(e.value)
    assert fake.count == 1


def test_tavily_other_errors(fake):
    p = TavilyProvider(KEY, base_url=fake.tavily_url)
    fake.status = 429
    with pytest.raises(SearchError, match="Tavily is rate-limiting"):
        p.search(QUERY)
    fake.status = 500
    with pytest.raises(SearchError, match=r"Tavily answered HTTP 500 \(status\)"):
        p.search(QUERY)
    fake.status = None
    with pytest.raises(NoResults):
        p.search("nothing matches this")
    fake.delay = 5
    with pytest.raises(SearchError) as e:
        p.search(QUERY, timeout=1)
    assert str(e.value) == "Tavily did not answer within 1 s; check the connection and try again."
    assert KEY not in all_text(e.value)
    with pytest.raises(SearchError, match="refused the connection"):
        TavilyProvider(KEY, base_url=f"http://127.0.0.1:{closed_port()}").search(QUERY, timeout=3)


def test_tavily_without_a_key_and_unknown_providers(fake):
    with pytest.raises(SearchError, match="Settings → Keys"):
        TavilyProvider(None, base_url=fake.tavily_url).search(QUERY)
    assert fake.count == 0
    with pytest.raises(SearchError, match="Unknown search provider"):
        provider_for("altavista")


def test_the_package_imports_without_loading_ddgs_or_trafilatura():
    import subprocess
    import sys
    code = "import sys, app.core.web; assert not {'ddgs', 'trafilatura', 'primp'} & set(sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
    assert web_pages.fetch_page is fetch_page

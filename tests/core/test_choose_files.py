"""Choosing the files of a /code request: real files, the real project index (shipped embedder,
SQLite FTS5, hnswlib), real import parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.edits.choose import (ChosenFile, at_mentions, checked_by, choose_files, importers,
                                   request_terms)
from app.core.index.embed import Embedder
from app.core.index.indexer import ProjectIndex
from app.core.project import project_files

FILES = {
    ".gitignore": "local/\n",
    "local/settings.cfg": "[net]\nretries = 3\n",
    "CHANGES.md": "# Changes\n\n## 1.2\n\n- `download_file` retries when the connection drops.\n",
    "README.md": "# Fetcher\n\nDownloads files and keeps a shopping cart, for the tests.\n",
    "net/__init__.py": "from .download import download_file\n",
    "net/download.py": '''"""Fetch files over HTTP."""

import shutil
import urllib.request


def download_file(url, dest):
    """Save the body of ``url`` into the file ``dest``."""
    with urllib.request.urlopen(url, timeout=30) as resp, open(dest, "wb") as out:
        shutil.copyfileobj(resp, out)
    return dest


def _content_length(resp):
    return int(resp.headers.get("Content-Length", 0))
''',
    "net/mirror.py": '''"""Keep a folder in step with a remote listing."""

from .download import download_file


def mirror(listing, folder):
    for name, url in listing.items():
        download_file(url, folder / name)
''',
    "app/cli.py": '''import sys

import net.download


def main(argv):
    return net.download.download_file(argv[1], argv[2])
''',
    "app/sync.py": '''import net


def sync(url):
    return net.download_file(url, "/tmp/copy")
''',
    "tests/test_download.py": '''from net.download import download_file


def test_saves_the_body(tmp_path, server):
    assert download_file(server.url, tmp_path / "x") == tmp_path / "x"
''',
    "shop/__init__.py": "",
    "shop/cart.py": '''class Cart:
    """Items a customer is about to buy."""

    def __init__(self):
        self.items = []

    def add_item(self, sku, price_cents, quantity=1):
        self.items.append((sku, price_cents, quantity))

    def total_cents(self):
        """The price of everything in the cart, in cents."""
        return sum(p * q for _, p, q in self.items)
''',
    "shop/tax.py": '''RATES = {"DE": 19, "FR": 20}


def vat_cents(total_cents, country):
    """The value-added tax on a total, by country."""
    return total_cents * RATES[country] // 100
''',
    "tests/test_tax.py": '''import pytest

from shop import tax


@pytest.mark.parametrize("country,expected", [("DE", 19), ("FR", 20)])
def test_rates(country, expected):
    assert tax.RATES[country] == expected
''',
    "web/http.ts": '''export async function fetchJson(url: string): Promise<unknown> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.json();
}
''',
    "web/api.ts": '''import { fetchJson } from "./http";

export function loadUser(id: number) {
  return fetchJson(`/api/users/${id}`);
}
''',
    "web/view.js": '''const { fetchJson } = require("./http");

function render(el) { fetchJson("/api/me").then((me) => { el.textContent = me.name; }); }
module.exports = { render };
''',
}


def write_project(root: Path) -> Path:
    for rel, text in FILES.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    base = tmp_path_factory.mktemp("choose")
    root = write_project(base / "proj")
    index = ProjectIndex(root, base / "index", Embedder())
    stats = index.update()
    assert stats.embedded == stats.chunks > 0
    yield root, index
    index.close()


def choose(indexed, request, **kw):
    root, index = indexed
    return choose_files(request, root, project_files(root), index.search, **kw)


def paths(chosen: list[ChosenFile]) -> list[str]:
    return [c.path for c in chosen]


# ---- bad input first ---------------------------------------------------------------------------

@pytest.mark.parametrize("request_text", [
    "", "   \n\t", "@", "@@@ @/ @./ @..", "`", "(((", "\x00\x00", "\ud800 lone surrogate \udfff",
    "ünïcödé ✓ 下载文件 重试", "@../outside.py @/etc/passwd @.git/config", "x" * 1_000_000,
    ("retry the download " * 20_000), "download_file " * 5000 + "@net/download.py",
])
def test_empty_huge_and_odd_requests_do_not_crash(indexed, request_text):
    root, _ = indexed
    files = project_files(root)
    chosen, problems = choose(indexed, request_text)
    assert all(isinstance(c, ChosenFile) and c.path in files and c.reason for c in chosen)
    assert len(chosen) <= 5 and len(set(paths(chosen))) == len(chosen)
    assert all(isinstance(p, str) and p for p in problems)


def test_unknown_or_unsafe_mentions_are_problems_not_exceptions(indexed):
    chosen, problems = choose(indexed, "use @net/nope.py and @../outside.py and @.git/config and @net/ here")
    assert chosen == [] or all(c.reason != "@net/nope.py" for c in chosen)
    text = "\n".join(problems)
    assert "@net/nope.py is not a file of the project" in text
    assert "@../outside.py is not a file of the project" in text and "'..'" in text
    assert "@.git/config is not a file of the project" in text
    assert "@net/ is a folder" in text


def test_an_ambiguous_file_name_asks_for_more_of_the_path(indexed):
    _, problems = choose(indexed, "tidy @__init__.py")
    assert problems == [("@__init__.py matches 2 files (net/__init__.py, shop/__init__.py): write more of its "
                         "path, e.g. @net/__init__.py.")]


def test_a_failing_index_is_a_problem_and_named_files_still_come(tmp_path):
    root = write_project(tmp_path / "proj")
    index = ProjectIndex(root, tmp_path / "index", Embedder())
    index.update()
    index.close()  # a closed database: every search fails
    chosen, problems = choose_files("fix the total in cart.py", root, project_files(root), index.search)
    assert chosen == [ChosenFile("shop/cart.py", "named in the request")]
    assert len(problems) == 1 and problems[0].startswith("The project index could not be searched")


# ---- mentions ------------------------------------------------------------------------------

def test_at_mentions_are_path_like_tokens_only():
    assert at_mentions("see @src/a.py, @b.ts and @pkg\\c.py. Also @property, @lru_cache, me@example.com, "
                       "@app.route and @src/a.py again") == ["src/a.py", "b.ts", "pkg\\c.py"]
    assert at_mentions("") == [] and at_mentions("@") == []


def test_at_path_adds_the_file_first_and_unknown_at_path_is_a_problem(indexed):
    chosen, problems = choose(indexed, "make the @shop/tax.py rates come from @local/settings.cfg and @missing.py")
    assert chosen[:2] == [ChosenFile("shop/tax.py", "@shop/tax.py"),
                          ChosenFile("local/settings.cfg", "@local/settings.cfg")]  # ignored by git, still a file
    assert problems == ["@missing.py is not a file of the project; check the path (relative to the project folder)."]


def test_a_unique_file_name_mention_finds_its_path(indexed):
    chosen, _ = choose(indexed, "@cart.py needs a discount", limit=1)
    assert chosen == [ChosenFile("shop/cart.py", "@cart.py")]


def test_mentions_and_named_files_are_kept_beyond_the_limit(indexed):
    chosen, _ = choose(indexed, "@shop/tax.py @web/api.ts and cart.py and mirror.py", limit=2)
    assert chosen == [ChosenFile("shop/tax.py", "@shop/tax.py"), ChosenFile("web/api.ts", "@web/api.ts"),
                      ChosenFile("shop/cart.py", "named in the request"),
                      ChosenFile("net/mirror.py", "named in the request")]


# ---- the index -------------------------------------------------------------------------------

def test_a_request_naming_no_file_finds_the_file_defining_the_function(indexed):
    chosen, problems = choose(indexed, "add a retry to download_file when the connection drops")
    assert problems == []
    assert chosen[0] == ChosenFile("net/download.py", "defines download_file")
    chosen, _ = choose(indexed, "compute the vat for a cart total")
    assert paths(chosen)[0] in ("shop/tax.py", "shop/cart.py") and "shop/tax.py" in paths(chosen)[:2]


def test_plain_words_find_the_download_code(indexed):
    chosen, _ = choose(indexed, "add a retry to the download")
    assert chosen[0].path == "net/download.py"
    assert chosen[0].reason in ("file name matches 'download'", "defines download_file") \
        or chosen[0].reason.startswith("search match:")


def test_files_importing_the_chosen_module_are_offered_with_the_reason(indexed):
    chosen, _ = choose(indexed, "add a retry to download_file when the connection drops")
    assert chosen[0] == ChosenFile("net/download.py", "defines download_file")
    importing = {c.path: c.reason for c in chosen[1:] if c.reason.startswith(("imports ", "uses "))}
    assert importing, chosen
    for path, reason in importing.items():
        assert path in {"net/mirror.py", "tests/test_download.py", "app/cli.py", "net/__init__.py", "app/sync.py"}
        assert reason in ("imports download_file from download.py",
                          "uses download_file from download.py (through net)")


def test_the_test_file_of_the_chosen_module_is_offered(indexed):
    chosen, _ = choose(indexed, "vat_cents must round half up")
    assert chosen[0] == ChosenFile("shop/tax.py", "defines vat_cents")
    assert ChosenFile("tests/test_tax.py", "tests of tax.py") in chosen
    root, _ = indexed
    files = project_files(root) + ["web/http.test.ts", "pkg/tax_test.go"]
    assert checked_by("shop/tax.py", files) == ["tests/test_tax.py"]
    assert checked_by("web/http.ts", files) == ["web/http.test.ts"]
    assert checked_by("tests/test_download.py", files) == []
    assert checked_by("net/download.py", files) == ["tests/test_download.py"]


def test_importers_reads_python_and_js_imports(indexed):
    root, _ = indexed
    files = project_files(root)
    assert sorted(importers(root, "net/download.py", files, ["download_file"])) == [
        ("app/cli.py", ["download_file"], ""),           # import net.download ... net.download.download_file
        ("app/sync.py", ["download_file"], "net"),       # import net ... net.download_file (re-exported)
        ("net/__init__.py", ["download_file"], ""),      # from .download import download_file
        ("net/mirror.py", ["download_file"], ""),
        ("tests/test_download.py", ["download_file"], "")]
    assert sorted(importers(root, "net/download.py", files)) == [
        ("app/cli.py", [], ""), ("net/__init__.py", [], ""), ("net/mirror.py", [], ""),
        ("tests/test_download.py", [], "")]
    assert sorted(importers(root, "web/http.ts", files, ["fetchJson"])) == [
        ("web/api.ts", ["fetchJson"], ""), ("web/view.js", ["fetchJson"], "")]
    assert importers(root, "README.md", files) == []
    assert importers(root, "shop/tax.py", files, ["vat_cents"]) == [("tests/test_tax.py", [], "")]
    assert importers(root, "shop/cart.py", files, ["Cart"]) == []


def test_a_changelog_comes_only_when_asked_for(indexed):
    chosen, _ = choose(indexed, "download_file retries when the connection drops", limit=20)
    assert "CHANGES.md" not in paths(chosen) and chosen[0].path == "net/download.py"
    chosen, _ = choose(indexed, "download_file retries when the connection drops, note it in @CHANGES.md")
    assert chosen[0] == ChosenFile("CHANGES.md", "@CHANGES.md")


def test_the_byte_budget_skips_a_file_the_prompt_could_not_show(indexed):
    root, _ = indexed
    full, _ = choose(indexed, "add a retry to download_file when the connection drops")
    size = (root / "net/download.py").stat().st_size
    tight, _ = choose(indexed, "add a retry to download_file when the connection drops", max_bytes=size - 1)
    assert full[0].path == "net/download.py" and "net/download.py" not in paths(tight)
    assert sum((root / p).stat().st_size for p in paths(tight)) <= size - 1


def test_without_an_index_only_named_files_come(indexed):
    root, _ = indexed
    files = project_files(root)
    assert choose_files("add a retry to the download", root, files, None) == ([], [])
    assert choose_files("fix the total in cart.py", root, files, None) == (
        [ChosenFile("shop/cart.py", "named in the request")], [])


def test_request_terms_weigh_code_above_words():
    terms = request_terms("Add support of `pathlib.Path` to `edit` in getUserId() and the download")
    assert terms["edit"] == terms["path"] == terms["getuserid"] == 1.0
    assert terms["download"] == 0.5 and "the" not in terms and "add" not in terms

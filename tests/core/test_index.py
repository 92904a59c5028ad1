"""The project indexer with its real parts: the shipped ONNX embedder, hnswlib, SQLite FTS5,
tree-sitter grammars, files on disk."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app.core.index.chunk import MAX_CHUNK_TOKENS, chunk_file
from app.core.index.context import CITE_INSTRUCTIONS, build_context
from app.core.index.embed import Embedder
from app.core.index.indexer import ProjectIndex, index_dir_for
from app.core.index.rank import RankWeights, fuse
from app.core.index.snippet import SnippetError, read_snippet
from app.core.index.store import fts_query, split_identifier
from app.core.index.walk import walk_project
from app.core.index.watch import ProjectWatcher
from app.core.edits.project_path import UnsafePathError
from tests.support.index_project import INDEXED, make_project

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def embedder():
    return Embedder()


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path / "shop")


@pytest.fixture
def index(project, tmp_path, embedder):
    pi = ProjectIndex(project, tmp_path / "index", embedder)
    yield pi
    pi.close()


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")


# ---- walker and chunker ------------------------------------------------------------------

def test_walker_honours_gitignore_and_skip_rules(project):
    result = walk_project(project)
    assert [f.path for f in result.files] == INDEXED
    assert result.skipped["binary"] == 1 and result.skipped["over 1 MB"] == 1
    assert result.skipped["ignored"] >= 4  # *.log, secrets/, generated_*.py, nested draft.md
    langs = {f.path: f.language for f in result.files}
    assert langs["web/types.ts"] == "typescript" and langs["engine/src/lib.rs"] == "rust"


def test_walker_skips_symlinks_out_of_the_project(project, tmp_path):
    outside = tmp_path / "outside.py"
    outside.write_text("SECRET = 1\n")
    os.symlink(outside, project / "shop" / "link.py")
    os.symlink(tmp_path, project / "linked_dir")
    assert [f.path for f in walk_project(project).files] == INDEXED


def test_chunks_match_the_file_lines_and_name_definitions(project, embedder):
    symbols = {}
    for f in walk_project(project).files:
        if f.path == "latin1.py":
            continue
        text = (project / f.path).read_text(encoding="utf-8")
        lines = text.split("\n")
        for c in chunk_file(f.path, text, f.language, embedder.count_tokens):
            assert 1 <= c.start_line <= c.end_line <= len(lines)
            assert c.text == "\n".join(lines[c.start_line - 1:c.end_line]), c.citation
            assert c.language == f.language
            symbols.setdefault(f.path, set()).update(s.strip() for s in c.symbol.split(","))
    assert {"Cart", "apply_discount"} <= symbols["shop/cart.py"] or "Item, Cart" in str(symbols["shop/cart.py"])
    assert "charge_card" in symbols["shop/gateway.py"] and "sign_request" in symbols["shop/gateway.py"]
    assert {"parseQueryString", "debounce", "ProductList"} <= symbols["web/app.js"]
    assert {"Product", "formatPrice"} <= symbols["web/types.ts"]
    assert {"Server", "Address", "main"} <= symbols["server/main.go"]
    assert {"Inventory", "checksum"} <= symbols["engine/src/lib.rs"]
    assert "Invoice" in symbols["java/Invoice.java"]
    assert "ring_push" in symbols["native/ring.c"]
    assert "Payments" in symbols["README.md"]


def test_a_long_class_splits_into_methods_and_a_long_function_repeats_its_signature(embedder):
    methods = "\n".join(
        f"    def method_{i}(self, value):\n        \"\"\"Step {i} of the pipeline.\"\"\"\n"
        + "".join(f"        value = value * {j} + {i}  # mixing step {j}\n" for j in range(12)) + "        return value\n"
        for i in range(6))
    body = "".join(f"    total += compute_piece(number_{i}, factor={i})\n" for i in range(120))
    text = f"class Pipeline:\n    \"\"\"Many steps.\"\"\"\n\n{methods}\n\ndef long_function(a, b):\n    total = 0\n{body}    return total\n"
    chunks = chunk_file("p.py", text, "python", embedder.count_tokens)
    lines = text.split("\n")
    for c in chunks:
        assert c.text == "\n".join(lines[c.start_line - 1:c.end_line])
        assert embedder.count_tokens(c.text) <= MAX_CHUNK_TOKENS
    method_chunks = [c for c in chunks if c.symbol.startswith("Pipeline.method_")]
    assert {f"Pipeline.method_{i}" for i in range(6)} <= {s.strip() for c in method_chunks for s in c.symbol.split(",")}
    assert all(c.context == "class Pipeline:" for c in method_chunks)
    parts = [c for c in chunks if c.symbol == "long_function"]
    assert len(parts) >= 3
    assert parts[0].start_line == lines.index("def long_function(a, b):") + 1 and parts[0].context == ""
    assert all(p.context == "def long_function(a, b):" for p in parts[1:])
    assert all(a.end_line >= b.start_line - 1 for a, b in zip(parts, parts[1:]))  # no gap, some overlap
    assert parts[-1].end_line == len(lines) - 1  # the text ends with a newline


def test_files_without_grammar_get_overlapping_windows():
    text = "\n".join(f"key_{i} = {i}" for i in range(100)) + "\n"
    chunks = chunk_file("c.toml", text, "toml")
    assert chunks[0].start_line == 1 and chunks[-1].end_line == 100
    for a, b in zip(chunks, chunks[1:]):
        assert b.start_line <= a.end_line  # overlap
        assert b.start_line > a.start_line


# ---- search ----------------------------------------------------------------------------------

def test_retrieval_finds_the_right_chunk(index):
    stats = index.update()
    assert stats.files == len(INDEXED) and stats.chunks == stats.embedded > 0
    assert stats.skipped["undecodable"] == 1
    cases = {
        "how is a credit card charged": "shop/gateway.py",
        "reduce the total by a percentage discount": "shop/cart.py",
        "parseQueryString": "web/app.js",
        "sort products by price": "web/app.js",
        "ring_push": "native/ring.c",
        "value added tax of an invoice": "java/Invoice.java",
        "restock inventory slot": "engine/src/lib.rs",
        "server listen address port": "server/main.go",
        "is shipping free": "docs/notes/final.md",
    }
    for query, path in cases.items():
        top = [h.chunk.path for h in index.search(query, 3)]
        assert path in top, (query, top)
    best = index.search("charge_card", 1)[0]
    assert "def charge_card" in best.chunk.text and best.keyword_rank == 1


def test_keyword_search_works_before_anything_is_embedded(project, tmp_path):
    class NoVectors:  # an embedder that never finishes: only the keyword index can answer
        model_id = "none"

        def count_tokens(self, text):
            return len(text.split())

        def embed(self, texts):
            raise AssertionError("not reached")

    pi = ProjectIndex(project, tmp_path / "kw", NoVectors())
    pi.update(cancelled=lambda: pi.store.chunk_count() > 0 and pi.store.embedded_count() == 0
              and pi.store.file_count() == len(INDEXED))
    hits = pi.search("sign_request", 3, mode="bm25")
    assert hits and hits[0].chunk.path == "shop/gateway.py"
    pi.close()


def test_identifiers_are_split_for_keyword_search():
    assert split_identifier("getHTTPResponse_code") == ["get", "http", "response", "code"]
    q = fts_query("where is parseQueryString")
    assert '"parsequerystring"' in q and '"query"' in q and '"where"' not in q


def test_weighted_fusion_scores_ranks_not_raw_scores():
    dense, keyword = [1, 2, 3], [3, 4]
    scores = dict(fuse(dense, keyword, RankWeights(1.0, 0.3, 60)))
    assert scores[3] == pytest.approx(1 / 63 + 0.3 / 61)  # found by both: first
    assert scores[1] == pytest.approx(1 / 61) and scores[4] == pytest.approx(0.3 / 62)
    assert [cid for cid, _ in fuse(dense, keyword, RankWeights(1.0, 0.3, 60))] == [3, 1, 2, 4]
    # keyword-only weighting gives the keyword order
    assert [cid for cid, _ in fuse(dense, keyword, RankWeights(0.0, 1.0, 60))][:2] == [3, 4]


# ---- incremental --------------------------------------------------------------------------------

def test_only_changed_files_are_embedded_again(index, project, embedder):
    first = index.update()
    calls = embedder.calls
    again = index.update()
    assert again.embedded_now == 0 and again.changed == 0 and embedder.calls == calls
    # same content, new time stamp: hashed, not re-chunked
    os.utime(project / "shop/cart.py", ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
    assert index.update().changed == 0 and embedder.calls == calls
    # one function changed: only the chunks whose text changed are embedded
    gw = project / "shop/gateway.py"
    gw.write_text(gw.read_text().replace("transaction id", "transaction identifier"))
    changed = index.update()
    assert changed.changed == 1
    assert 1 <= changed.embedded_now == embedder.calls - calls <= 2
    assert changed.chunks == first.chunks
    assert "transaction identifier" in index.search("charge card transaction identifier", 1)[0].chunk.text


def test_a_deleted_file_disappears_from_results(index, project):
    index.update()
    assert any(h.chunk.path == "native/ring.c" for h in index.search("ring_push", 5))
    (project / "native/ring.c").unlink()
    stats = index.update()
    assert stats.removed == 1
    assert all(h.chunk.path != "native/ring.c" for h in index.search("ring_push", 20))
    assert all(h.chunk.path != "native/ring.c" for h in index.search("push a value into a ring buffer", 20, mode="dense"))


def test_undecodable_files_are_skipped_and_counted(index):
    s1 = index.update()
    s2 = index.update()
    assert s1.skipped["undecodable"] == s2.skipped["undecodable"] == 1
    assert "not UTF-8" in s1.summary()
    assert all(h.chunk.path != "latin1.py" for h in index.search("name Jos", 20))


def test_another_embedding_model_means_embedding_again(project, tmp_path, embedder):
    pi = ProjectIndex(project, tmp_path / "idx", embedder)
    n = pi.update().chunks
    pi.close()

    class Renamed:
        model_id = "other-model"

        def __init__(self, inner):
            self.inner = inner

        def embed(self, texts):
            return self.inner.embed(texts)

        def count_tokens(self, text):
            return self.inner.count_tokens(text)

    pi = ProjectIndex(project, tmp_path / "idx", Renamed(embedder))
    assert any("model changed" in n_ for n_ in pi.notices)
    assert pi.update().embedded_now == n
    pi.close()


def _stdlib_project(root: Path) -> Path:
    """About 250 chunks of real code: enough to kill an indexer halfway, small enough for CI."""
    import email
    import json
    shutil.copytree(Path(json.__file__).parent, root / "json", ignore=shutil.ignore_patterns("__pycache__", "tests"))
    (root / "email").mkdir()
    for name in ("_header_value_parser.py", "utils.py"):
        shutil.copy(Path(email.__file__).parent / name, root / "email" / name)
    return root


@pytest.mark.slow
def test_killed_indexer_resumes_without_re_embedding(tmp_path, embedder):
    root = _stdlib_project(tmp_path / "proj")
    index_dir = tmp_path / "idx"
    code = ("import sys; from pathlib import Path; from app.core.index.embed import Embedder; "
            "from app.core.index.indexer import ProjectIndex; "
            "ProjectIndex(Path(sys.argv[1]), Path(sys.argv[2]), Embedder()).update()")
    child = subprocess.Popen([sys.executable, "-c", code, str(root), str(index_dir)], cwd=ROOT)
    db = index_dir / "index.db"
    done = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.3)
        if db.exists():
            try:
                with sqlite3.connect(db) as c:
                    done = c.execute("SELECT count(*) FROM chunks WHERE vector IS NOT NULL").fetchone()[0]
            except sqlite3.OperationalError:
                continue
            if done >= 64:
                break
    assert child.poll() is None, "the indexer finished before it could be killed; make the project bigger"
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not (index_dir / "vectors.hnsw").exists()  # killed before it saved the graph

    pi = ProjectIndex(root, index_dir, embedder)
    with sqlite3.connect(db) as c:
        embedded_before = c.execute("SELECT count(*) FROM chunks WHERE vector IS NOT NULL").fetchone()[0]
    assert embedded_before >= done
    calls = embedder.calls
    stats = pi.update()
    assert stats.embedded == stats.chunks
    assert stats.embedded_now == embedder.calls - calls == stats.chunks - embedded_before
    assert pi.search("serialize an object to a JSON formatted string", 3)[0].chunk.path.startswith("json/")
    pi.close()


# ---- damaged index ------------------------------------------------------------------------------

def test_a_corrupt_database_is_rebuilt_with_a_message(project, tmp_path, embedder):
    d = tmp_path / "idx"
    pi = ProjectIndex(project, d, embedder)
    pi.update()
    pi.close()
    (d / "index.db").write_bytes(b"this is not a database" * 100)
    for extra in ("index.db-wal", "index.db-shm"):
        (d / extra).unlink(missing_ok=True)
    pi = ProjectIndex(project, d, embedder)
    assert any("damaged" in n for n in pi.notices)
    stats = pi.update()
    assert stats.files == len(INDEXED) and stats.embedded == stats.chunks
    assert pi.search("charge_card", 1)[0].chunk.path == "shop/gateway.py"
    pi.close()


@pytest.mark.parametrize("damage", ["missing", "garbage"])
def test_a_lost_or_damaged_vector_file_is_rebuilt_without_embedding(project, tmp_path, embedder, damage):
    d = tmp_path / "idx"
    pi = ProjectIndex(project, d, embedder)
    pi.update()
    pi.close()
    if damage == "missing":
        (d / "vectors.hnsw").unlink()
    else:
        (d / "vectors.hnsw").write_bytes(os.urandom(5000))
    calls = embedder.calls
    pi = ProjectIndex(project, d, embedder)
    assert damage == "missing" or pi.notices
    stats = pi.update()
    assert embedder.calls == calls and stats.embedded_now == 0
    hits = pi.search("push a value into a ring buffer", 3, mode="dense")
    assert hits and hits[0].chunk.path == "native/ring.c"
    pi.close()


def test_index_lives_per_project_under_the_cache_dir(tmp_path):
    a, b = tmp_path / "a" / "proj", tmp_path / "b" / "proj"
    assert index_dir_for(a, tmp_path / "cache") != index_dir_for(b, tmp_path / "cache")
    assert index_dir_for(a, tmp_path / "cache").parent == tmp_path / "cache" / "indexes"


# ---- prompt, snippets, watcher --------------------------------------------------------------------

def test_prompt_context_fits_the_budget_cites_and_drops_overlaps(index, embedder):
    index.update()
    hits = index.search("cart total and discount", 10)
    ctx = build_context(hits + hits[:1], 400, embedder.count_tokens)
    assert ctx.text.startswith(CITE_INSTRUCTIONS)
    assert embedder.count_tokens(ctx.text) <= 400
    assert len({h.citation for h in ctx.hits}) == len(ctx.hits)
    for h in ctx.hits:
        assert f"[{h.citation}]" in ctx.text
    assert build_context(hits, 10, embedder.count_tokens).text == ""


def test_snippets_read_the_cited_lines_and_stay_inside(project):
    s = read_snippet(project, "shop/cart.py", 3, 4)
    assert s.text == "\n".join(lines_of(project / "shop/cart.py")[2:4])
    with pytest.raises(UnsafePathError):
        read_snippet(project, "../outside.py", 1, 2)
    with pytest.raises(SnippetError, match="line 500 is gone"):
        read_snippet(project, "shop/cart.py", 500, 510)
    with pytest.raises(SnippetError, match="no longer in the project"):
        read_snippet(project, "shop/nope.py", 1, 2)


def test_the_watcher_reports_changed_files(project):
    seen: list[set[str]] = []
    got = threading.Event()
    w = ProjectWatcher(project, lambda paths: (seen.append(paths), got.set()), delay=0.3).start()
    try:
        time.sleep(0.3)
        (project / "shop/cart.py").write_text("# emptied\n")
        (project / "node_modules/left-pad/index.js").write_text("changed\n")
        assert got.wait(10)
    finally:
        w.stop()
    changed = set().union(*seen)
    assert "shop/cart.py" in changed
    assert not any(p.startswith("node_modules") for p in changed)


def test_every_listed_grammar_loads_offline():
    from app.core.index.grammars import GRAMMARS, parser_for
    missing = [lang for lang in GRAMMARS if parser_for(lang) is None]
    assert not missing, f"grammar wheels not installed: {missing}"


@pytest.fixture
def small_disk(tmpfs):
    return tmpfs("16m")


def _fill(folder: Path) -> Path:
    """Write a ballast file until the disk is full."""
    ballast = folder / "ballast"
    with open(ballast, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return ballast


def test_a_full_disk_stops_with_a_message_and_keeps_what_was_indexed(tmp_path, small_disk, embedder):
    from app.core.index.indexer import IndexDiskFull
    root = _stdlib_project(tmp_path / "proj")
    pi = ProjectIndex(root, small_disk / "idx", embedder)
    ballast: list[Path] = []

    def progress(p):  # the disk fills up once the first batches of vectors are stored
        if p.phase == "embedding" and p.embedded >= 64 and not ballast:
            ballast.append(_fill(small_disk))

    try:
        with pytest.raises(IndexDiskFull, match="disk holding the project index is full"):
            pi.update(progress)
    finally:
        pi.close()
    assert ballast and not (small_disk / "idx" / "vectors.hnsw.tmp").exists()
    ballast[0].unlink()
    with sqlite3.connect(small_disk / "idx" / "index.db") as c:
        kept = c.execute("SELECT count(*) FROM chunks WHERE vector IS NOT NULL").fetchone()[0]
    assert kept >= 64  # the batches stored before the disk filled are still there
    pi = ProjectIndex(root, small_disk / "idx", embedder)
    try:
        stats = pi.update()
        assert stats.embedded == stats.chunks and stats.embedded_now == stats.chunks - kept
        assert pi.search("serialize an object to a JSON formatted string", 3)[0].chunk.path.startswith("json/")
    finally:
        pi.close()

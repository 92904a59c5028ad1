"""How well project search finds code from a plain-English question: BM25 vs dense vs hybrid.

A code-search set built from the Python standard library (the running interpreter's, or
``--stdlib DIR``; test folders, idlelib, lib2to3, tkinter and site-packages left out): every
top-level function and every method of a top-level class whose docstring's first line has at
least 4 words gives one pair. The query is that first line; the document is the function's
source with the docstring lines removed (found with ``ast``), dedented, written as a file of
its own, ``<module path>/<qualname>.py``, in a temporary project. Queries whose text occurs
more than once in the pool are dropped (no right answer); ``--queries`` (default 1000) of the
rest are sampled with ``random.Random(0)``, and only their documents are indexed.

The project is indexed with the real ``ProjectIndex`` and the app's ``Embedder``, then each
query is searched in each mode ("bm25", "dense", "hybrid" with the default ``RankWeights``)
through ``ProjectIndex.search`` with k = 50 (the candidate depth). A query's rank is the place
of the first hit whose path is the right file (a long function may be several chunks). One
JSON line per mode: recall@1/5/10 and MRR (over the 50 places, 0 when not found); then

    {"figure": "hybrid_vs_best_single_mrr_ratio", "value": hybrid_mrr / max(bm25_mrr, dense_mrr)}

**Exit status 1 when the hybrid MRR is not above the better single mode** (ratio <= 1): the
fusion must earn its place.

``--tune`` re-ranks cached candidate lists (``store.dense`` / ``store.keyword``, 50 each, the
same query vectors the searches used) with ``rank.fuse`` over a grid of bm25 weights (dense
1.0) and RRF k, one JSON line per setting, then the best; no query is run again.

``--keep DIR`` keeps the project and its index in DIR, so a re-run embeds nothing (the
indexer is incremental; files are only rewritten when their text changes).

    .venv/bin/python bench/retrieval_quality.py [--queries 1000] [--tune] [--keep DIR]
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import sys
import sysconfig
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.index.embed import Embedder  # noqa: E402
from app.core.index.indexer import CANDIDATES, IndexProgress, ProjectIndex  # noqa: E402
from app.core.index.rank import RankWeights, fuse  # noqa: E402
from app.core.index.walk import SKIP_DIRS  # noqa: E402

SKIP_TOP = {"idlelib", "lib2to3", "tkinter", "site-packages", "test", "turtledemo"}
SKIP_ANY = {"test", "tests", "idle_test", "__pycache__", "site-packages"}
MODES = ("bm25", "dense", "hybrid")
TUNE_BM25 = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)
TUNE_K = (10, 30, 60)
MIN_WORDS = 4


@dataclass(frozen=True)
class Pair:
    query: str
    path: str      # the document's path in the project, POSIX
    source: str    # the function without its docstring, dedented


def _strip_indent(lines: list[str], col: int) -> list[str]:
    """Remove ``col`` leading columns where they are blank (a string literal's lines that start
    further left stay as they are, unlike textwrap.dedent which would then remove nothing)."""
    return [ln[col:] if ln[:col].strip() == "" else ln.lstrip() for ln in lines]


def _pairs_of(tree: ast.Module, lines: list[str]):
    """(qualname, first docstring line, source without docstring) of the top-level functions
    and of the methods of top-level classes."""
    todo = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            todo.append((node.name, node))
        elif isinstance(node, ast.ClassDef):
            todo += [(f"{node.name}.{n.name}", n) for n in node.body
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for qual, fn in todo:
        doc = ast.get_docstring(fn, clean=True)
        if not doc or not doc.strip():
            continue
        first = doc.strip().splitlines()[0].strip()
        if len(first.split()) < MIN_WORDS or len(fn.body) < 2:
            continue  # a short first line, or nothing left once the docstring is gone
        d = fn.body[0]
        if d.lineno <= fn.lineno or d.end_lineno >= fn.body[1].lineno:
            continue  # docstring on the def line, or sharing a line with code
        start = min([fn.lineno] + [x.lineno for x in fn.decorator_list])
        kept = lines[start - 1:d.lineno - 1] + lines[d.end_lineno:fn.end_lineno]
        src = "\n".join(_strip_indent(kept, fn.col_offset)).rstrip() + "\n"
        yield qual, first, src


def _dir_part(p: str) -> str:
    """Folder names the project walker would skip (``venv``, ``build``...) get a ``_``."""
    return p + "_" if p in SKIP_DIRS or p.endswith(".egg-info") else p


def collect(stdlib: Path) -> list[Pair]:
    """Every candidate pair, in a fixed order; ambiguous queries dropped."""
    raw: list[Pair] = []
    used: set[str] = set()
    for py in sorted(stdlib.rglob("*.py")):
        rel = py.relative_to(stdlib)
        if rel.parts[0] in SKIP_TOP or any(p in SKIP_ANY for p in rel.parts[:-1]):
            continue
        try:
            text = py.read_text(encoding="utf-8")
            tree = ast.parse(text)
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
            continue
        mod = list(rel.with_suffix("").parts)
        if mod[-1] == "__init__":
            mod = mod[:-1]
        folder = "/".join(_dir_part(p) for p in mod)
        lines = text.splitlines()
        for qual, first, src in _pairs_of(tree, lines):
            path = f"{folder}/{qual}.py"
            n = 2
            while path.lower() in used:  # property getter and setter, overloads
                path = f"{folder}/{qual}-{n}.py"
                n += 1
            used.add(path.lower())
            raw.append(Pair(first, path, src))
    seen = Counter(p.query.lower() for p in raw)
    return [p for p in raw if seen[p.query.lower()] == 1]


def sync_project(root: Path, pairs: Sequence[Pair]) -> None:
    """Make ``root`` hold exactly these documents (unchanged files are not rewritten)."""
    want = {p.path: p.source for p in pairs}
    for f in root.rglob("*.py"):
        rel = f.relative_to(root).as_posix()
        if rel not in want:
            f.unlink()
    for path, src in want.items():
        f = root / path
        if f.is_file() and f.read_text(encoding="utf-8") == src:
            continue
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(src, encoding="utf-8")


class CachingEmbedder:
    """The app's Embedder, remembering single-text calls (the query vectors), so that the dense
    and hybrid searches of a query and the --tune lists all use the very same vector."""

    def __init__(self, inner: Embedder):
        self.inner = inner
        self.model_id = inner.model_id
        self.cache: dict[str, np.ndarray] = {}

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if len(texts) != 1:
            return self.inner.embed(texts)
        v = self.cache.get(texts[0])
        if v is None:
            v = self.cache[texts[0]] = self.inner.embed(texts)[0]
        return v[None, :]


def rank_of(paths: Sequence[str], right: str) -> int:
    """1-based place of the first hit in the right file, 0 when absent."""
    for i, p in enumerate(paths):
        if p == right:
            return i + 1
    return 0


def scores(ranks: Sequence[int]) -> dict[str, float]:
    n = len(ranks)
    return {
        "recall@1": round(sum(0 < r <= 1 for r in ranks) / n, 4),
        "recall@5": round(sum(0 < r <= 5 for r in ranks) / n, 4),
        "recall@10": round(sum(0 < r <= 10 for r in ranks) / n, 4),
        "mrr": round(sum(1.0 / r for r in ranks if r) / n, 4),
    }


def _progress(last=[0.0]):  # noqa: B006 - a closure's clock
    def cb(p: IndexProgress) -> None:
        now = time.monotonic()
        if now - last[0] >= 5:
            last[0] = now
            print(f"  {p.text()}", file=sys.stderr, flush=True)
    return cb


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--tune", action="store_true", help="grid over the fusion weights on cached lists")
    ap.add_argument("--keep", type=Path, help="keep the project and index here (re-runs embed nothing)")
    ap.add_argument("--stdlib", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    ap.add_argument("--seed", type=int, default=0, help="sampling seed (another seed: a held-out check of --tune)")
    args = ap.parse_args()

    pool = collect(args.stdlib)
    pairs = random.Random(args.seed).sample(pool, min(args.queries, len(pool)))
    print(f"{len(pool)} candidate pairs in {args.stdlib}, {len(pairs)} sampled", file=sys.stderr)

    tmp = None
    if args.keep:
        base = args.keep
    else:
        tmp = tempfile.TemporaryDirectory(prefix="retrieval_quality-")
        base = Path(tmp.name)
    root, index_dir = base / "project", base / "index"
    root.mkdir(parents=True, exist_ok=True)
    sync_project(root, pairs)

    embedder = CachingEmbedder(Embedder())
    index = ProjectIndex(root, index_dir, embedder)
    stats = index.update(progress=_progress())
    print(f"indexed: {stats.summary()}, {stats.embedded_now} embedded now, {stats.seconds:.1f} s",
          file=sys.stderr)

    common = {"bench": "retrieval_quality", "queries": len(pairs), "seed": args.seed, "files": stats.files,
              "chunks": stats.chunks, "candidates": CANDIDATES}
    t0 = time.monotonic()
    ranks: dict[str, list[int]] = {m: [] for m in MODES}
    for i, p in enumerate(pairs):
        for m in MODES:
            hits = index.search(p.query, k=CANDIDATES, mode=m)
            ranks[m].append(rank_of([h.chunk.path for h in hits], p.path))
        if (i + 1) % 200 == 0:
            print(f"  searched {i + 1}/{len(pairs)}", file=sys.stderr, flush=True)
    search_s = time.monotonic() - t0
    mrr = {}
    for m in MODES:
        s = scores(ranks[m])
        mrr[m] = s["mrr"]
        print(json.dumps({**common, "mode": m, **s,
                          **({"weights": vars(RankWeights())} if m == "hybrid" else {})}))
    best_single = max(mrr["bm25"], mrr["dense"])
    ratio = mrr["hybrid"] / best_single if best_single else float("inf")
    print(json.dumps({"bench": "retrieval_quality", "figure": "hybrid_vs_best_single_mrr_ratio",
                      "value": round(ratio, 4), "hybrid_mrr": mrr["hybrid"], "bm25_mrr": mrr["bm25"],
                      "dense_mrr": mrr["dense"], "target": "> 1", "queries": len(pairs),
                      "search_s": round(search_s, 1)}))

    if args.tune:
        store = index.store
        lists = []
        for p in pairs:
            vec = embedder.embed([p.query.strip()])[0]
            lists.append((store.dense(vec, CANDIDATES), store.keyword(p.query.strip(), CANDIDATES), p.path))
        ids = {c for d, k, _ in lists for c in (*d, *k)}
        path_of = {cid: c.path for cid, c in store.chunks(ids).items()} if ids else {}
        results = []
        for k in TUNE_K:
            for b in TUNE_BM25:
                w = RankWeights(dense=1.0, bm25=b, k=k)
                rs = [rank_of([path_of.get(cid, "") for cid, _ in fuse(d, kw, w)[:CANDIDATES]], right)
                      for d, kw, right in lists]
                s = scores(rs)
                results.append((s["mrr"], b, k, s))
                print(json.dumps({"bench": "retrieval_quality", "tune": True, "dense": 1.0, "bm25": b,
                                  "k": k, **s, "queries": len(pairs)}))
        best = max(results, key=lambda r: (r[0], -abs(r[1] - 0.3), r[2]))
        print(json.dumps({"bench": "retrieval_quality", "figure": "tune_best", "dense": 1.0,
                          "bm25": best[1], "k": best[2], **best[3],
                          "vs_best_single_mrr_ratio": round(best[0] / best_single, 4) if best_single else None,
                          "queries": len(pairs)}))

    index.close()
    if tmp is not None:
        tmp.cleanup()
    return 0 if ratio > 1 else 1


if __name__ == "__main__":
    sys.exit(main())

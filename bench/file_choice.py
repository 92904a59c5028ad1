"""Does /code pick the right files for a request that names none? Measured on a git history.

Each usable commit of a repository is one request: its subject ("Add support of
`pathlib.Path` to `edit`") is the request, the files it changed are the answer. The request
is asked of the project as it was at the commit's PARENT (the tree is written into a work
folder and one ``ProjectIndex`` is updated incrementally from commit to commit, so only the
changed files are re-chunked and only changed chunks re-embedded; nothing of the answer is
in the index). Targets: the changed files that existed in the parent (modified, deleted, or
the old side of a rename; a request cannot name a file that does not exist yet) and are
files of the project (``project_files``), minus changelog files (CHANGES*, CHANGELOG*,
HISTORY*, NEWS*: written with nearly every change, never what a request is about).

Usable commits, walked from ``--rev`` back in ``--topo-order`` (each filter in order, the
counts are printed as the ``filter`` line): no merges; at most 8 changed files; not renames
only; at least one changed code file (a language of the indexer other than docs and data:
Markdown, reST, text, TOML, YAML, JSON, INI, HTML, CSS, XML); the subject (without a trailing
"(#123)") says something: 3+ words, not a version bump or release ("Bump version to 8.3.dev",
"Release 8.1.3", "This is 6.5-dev"), not a revert, not about typos, formatting, linters and
type checkers (flake8, black, mypy, pyright, ruff...), dependency updates or the changelog; a
subject seen before (a cherry-pick) is dropped; at least one target. The newest ``--commits``
usable ones are then processed oldest first.

Arms, each a ranked list of files for the same request and tree:

- ``named``: the old behaviour, ``project.mentioned_files`` (files the request names);
- ``bm25``: the files of ``ProjectIndex.search(k=50, mode="bm25")`` in order of first hit;
- ``search``: the same with the shipped hybrid ranking (plain retrieval, no choosing);
- ``choose``: ``edits.choose.choose_files(limit=5)``.

Figures (one JSON line per arm): ``hit@3``/``hit@5``: share of commits with at least one
target among the arm's first 3/5 files; ``recall@3``/``recall@5``: mean over commits of the
share of the commit's targets among the first 3/5 files (a commit with 6 targets scores at
most 5/6 at 5). Then ``choose_vs_search_recall@5_ratio`` (**exit 1 when it is <= 1**: the
chooser must beat plain retrieval), the chooser's own time against one search, and the run.

``--keep DIR`` holds the work tree, the index and ``results.jsonl`` (one line per commit):
a killed or ``--limit``-ed run resumes where it stopped. ``--rescore`` re-runs only
``choose_files`` on the stored search hits (the exact hits the index gave it), with the
parent tree written again: a change to choose.py is measured in seconds, without embedding.

    .venv/bin/python bench/file_choice.py --keep /tmp/fc [--commits 400] [--limit N] [--rescore]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.edits.choose import choose_files  # noqa: E402
from app.core.index.store import StoredChunk  # noqa: E402
from app.core.index.walk import language_of  # noqa: E402
from app.core.project import mentioned_files, project_files  # noqa: E402

REPO = Path("/work/.mirror/pallets+click/repo")
MAX_CHANGED = 8
K_STORED = 50
ARMS = ("named", "bm25", "search", "choose")
NOT_CODE = {"markdown", "rst", "text", "toml", "yaml", "json", "ini", "html", "css", "xml"}
CHANGELOG = re.compile(r"(^|/)(CHANGES|CHANGELOG|HISTORY|NEWS)([._-][^/]*)?$", re.I)
VERSION = re.compile(r"^(bump|release|prepare|start|set|this is|update|change)\b.*\d+\.\d+"
                     r"|^(bump|update|set|start) (the )?version|^(release|version) \d|^v?\d+\.\d+", re.I)
NOISE = re.compile(r"\b(typos?|whitespace|formatting|reformat\w*|pep ?8|flake8|black|isort|lint\w*|pre-commit"
                   r"|mypy|pyright|ruff|dependencies|pip-compile\S*|changelog|changes\.(rst|md)|wip)\b", re.I)


@dataclass
class Commit:
    sha: str
    parent: str
    subject: str
    targets: list[str]     # changed files that existed in the parent, changelogs left out


def git(gitdir: Path, *args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(["git", f"--git-dir={gitdir}", "-c", "core.quotePath=false", *args],
                          input=data, capture_output=True, check=True).stdout


def clean_subject(s: str) -> str:
    return re.sub(r"\s*\((#\d+[, ]*)+\)\s*$", "", s).strip()


def select_commits(gitdir: Path, rev: str, want: int) -> tuple[list[Commit], dict[str, int]]:
    """The newest ``want`` usable commits (oldest first) and the count each filter dropped."""
    out = git(gitdir, "log", "--no-merges", "--topo-order", "-M", "--name-status",
              "--format=%x01%H %P%x02%s", rev).decode("utf-8", "replace")
    dropped = {k: 0 for k in ("no parent", "over 8 files", "renames only", "no code file", "version or release",
                              "revert", "says nothing", "short subject", "no target", "duplicate subject")}
    kept: list[Commit] = []
    seen: set[str] = set()
    for block in out.split("\x01")[1:]:
        head, _, rest = block.partition("\x02")
        subject, _, body = rest.partition("\n")
        shas = head.split()
        changes = [ln.split("\t") for ln in body.splitlines() if "\t" in ln]
        why = None
        request = clean_subject(subject)
        code = [c[-1] for c in changes if (language_of(c[-1]) or "text") not in NOT_CODE]
        if len(shas) != 2:
            why = "no parent"
        elif len(changes) > MAX_CHANGED:
            why = "over 8 files"
        elif changes and all(c[0] == "R100" for c in changes):
            why = "renames only"
        elif not code:
            why = "no code file"
        elif VERSION.search(request):
            why = "version or release"
        elif request.lower().startswith("revert"):
            why = "revert"
        elif NOISE.search(request):
            why = "says nothing"
        elif len(request.split()) < 3:
            why = "short subject"
        targets = [c[1] for c in changes if c[0][0] in "MDR" and not c[1].startswith('"')
                   and not CHANGELOG.search(c[1])]
        if why is None and not targets:
            why = "no target"
        if why is None and request.lower() in seen:
            why = "duplicate subject"
        if why:
            dropped[why] += 1
            continue
        seen.add(request.lower())
        kept.append(Commit(shas[0], shas[1], request, targets))
        if len(kept) >= want:
            break
    return kept[::-1], dropped


class WorkTree:
    """A folder holding one commit's tree; moving to another commit rewrites only the blobs that
    differ (a manifest of path -> blob id is kept beside it, written after each move)."""

    def __init__(self, gitdir: Path, root: Path, manifest: Path):
        self.gitdir, self.root, self.manifest = gitdir, root, manifest
        self.root.mkdir(parents=True, exist_ok=True)

    def sync(self, commit: str) -> int:
        want: dict[str, str] = {}
        for rec in git(self.gitdir, "ls-tree", "-r", "-z", commit).split(b"\0"):
            if not rec:
                continue
            meta, _, path = rec.partition(b"\t")
            mode, kind, sha = meta.split()
            if kind == b"blob" and mode in (b"100644", b"100755"):
                want[path.decode("utf-8", "surrogateescape")] = sha.decode()
        try:
            have = json.loads(self.manifest.read_text())
        except (OSError, ValueError):
            have = None
        if have is None:  # unknown state (first run, or killed while moving): start empty
            subprocess.run(["rm", "-rf", str(self.root)], check=True)
            self.root.mkdir(parents=True)
            have = {}
        self.manifest.unlink(missing_ok=True)
        for p in set(have) - set(want):
            (self.root / p).unlink(missing_ok=True)
        todo = [p for p, sha in want.items() if have.get(p) != sha]
        if todo:
            data = git(self.gitdir, "cat-file", "--batch", data="".join(want[p] + "\n" for p in todo).encode())
            pos = 0
            for p in todo:
                nl = data.index(b"\n", pos)
                size = int(data[pos:nl].split()[2])
                target = self.root / p
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.is_symlink() or target.is_dir():
                    subprocess.run(["rm", "-rf", str(target)], check=True)
                target.write_bytes(data[nl + 1:nl + 1 + size])
                pos = nl + 1 + size + 1
        tmp = self.manifest.with_suffix(".tmp")
        tmp.write_text(json.dumps(want))
        os.replace(tmp, self.manifest)
        return len(todo)


class ReplaySearch:
    """``search`` for choose_files from stored hits: the very hits the index gave it."""

    def __init__(self, query: str, hits: list[list]):
        self.query, self.hits = query, hits

    def __call__(self, query: str, k: int):
        if query != self.query:
            raise SystemExit("choose_files now searches with another query than the stored one; "
                             "--rescore cannot replay it: run without --rescore into a fresh --keep folder.")
        return [_Hit(StoredChunk(0, p, a, b, sym, kind, "", "", "")) for p, sym, a, b, kind in self.hits[:k]]


@dataclass(frozen=True)
class _Hit:
    chunk: StoredChunk


class RecordingSearch:
    def __init__(self, index):
        self.index, self.query, self.hits, self.seconds = index, None, [], 0.0

    def __call__(self, query: str, k: int):
        t0 = time.perf_counter()
        hits = self.index.search(query, max(k, K_STORED))
        self.seconds += time.perf_counter() - t0
        self.query = query
        self.hits = [[h.chunk.path, h.chunk.symbol, h.chunk.start_line, h.chunk.end_line, h.chunk.kind] for h in hits]
        return hits[:k]


def first_files(hits) -> list[str]:
    out: list[str] = []
    for h in hits:
        if h.chunk.path not in out:
            out.append(h.chunk.path)
    return out


def run_commit(c: Commit, tree: WorkTree, index) -> dict | None:
    t0 = time.perf_counter()
    written = tree.sync(c.parent)
    stats = index.update()
    update_s = time.perf_counter() - t0
    files = project_files(tree.root)
    fileset = set(files)
    targets = [t for t in c.targets if t in fileset]
    if not targets:
        return {"sha": c.sha, "skip": "targets not project files"}
    t1 = time.perf_counter()
    hybrid = index.search(c.subject, K_STORED)
    search_s = time.perf_counter() - t1
    bm25 = index.search(c.subject, K_STORED, mode="bm25")
    rec = RecordingSearch(index)
    t2 = time.perf_counter()
    chosen, problems = choose_files(c.subject, tree.root, files, rec, limit=5)
    choose_s = time.perf_counter() - t2 - rec.seconds
    return {"sha": c.sha, "parent": c.parent, "request": c.subject, "targets": targets, "files": len(files),
            "named": mentioned_files(c.subject, files), "bm25": first_files(bm25)[:10],
            "search": first_files(hybrid)[:10], "choose": [[x.path, x.reason] for x in chosen],
            "problems": problems, "choose_query": rec.query, "hits": rec.hits,
            "written": written, "embedded_now": stats.embedded_now, "update_s": round(update_s, 3),
            "search_s": round(search_s, 4), "choose_s": round(choose_s, 4)}


def figures(results: list[dict], arm: str) -> dict:
    n = len(results)
    out: dict = {"bench": "file_choice", "arm": arm, "commits": n}
    for k in (3, 5):
        hit = rec = 0.0
        for r in results:
            top = [x[0] if isinstance(x, list) else x for x in r[arm]][:k]
            found = len(set(top) & set(r["targets"]))
            hit += found > 0
            rec += found / len(r["targets"])
        out[f"hit@{k}"] = round(hit / n, 4) if n else None
        out[f"recall@{k}"] = round(rec / n, 4) if n else None
    return out


def rescore(results: list[dict], gitdir: Path, base: Path) -> None:
    tree = WorkTree(gitdir, base / "replay-tree", base / "replay-tree.json")
    for i, r in enumerate(results):
        tree.sync(r["parent"])
        files = project_files(tree.root)
        t0 = time.perf_counter()
        chosen, r["problems"] = choose_files(r["request"], tree.root, files, ReplaySearch(r["choose_query"], r["hits"]),
                                             limit=5)
        r["choose_s"] = round(time.perf_counter() - t0, 4)
        r["choose"] = [[x.path, x.reason] for x in chosen]
        if (i + 1) % 50 == 0:
            print(f"  rescored {i + 1}/{len(results)}", file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", type=Path, default=REPO, help="a git directory (bare is fine)")
    ap.add_argument("--rev", default="HEAD")
    ap.add_argument("--commits", type=int, default=400, help="usable commits to measure (the newest)")
    ap.add_argument("--limit", type=int, help="process at most this many new commits in this run")
    ap.add_argument("--keep", type=Path, help="work tree, index and results here: a re-run resumes")
    ap.add_argument("--rescore", action="store_true", help="re-run choose_files on the stored hits only")
    ap.add_argument("--dump", action="store_true", help="print each commit's targets and choices to stderr")
    args = ap.parse_args()

    t_start = time.monotonic()
    commits, dropped = select_commits(args.repo, args.rev, args.commits)
    print(f"{len(commits)} usable commits selected; dropped: {dropped}", file=sys.stderr)
    tmp = None
    if args.keep:
        base = args.keep
        base.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="file_choice-")
        base = Path(tmp.name)
    results_path = base / "results.jsonl"
    done: dict[str, dict] = {}
    if results_path.exists():
        for line in results_path.read_text().splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue  # a line cut by a kill
            done[r["sha"]] = r
    todo = [c for c in commits if c.sha not in done]
    if args.limit is not None:
        todo = todo[:args.limit]
    embedded = 0
    if todo and not args.rescore:
        from app.core.index.embed import Embedder
        from app.core.index.indexer import ProjectIndex
        tree = WorkTree(args.repo, base / "tree", base / "tree.json")
        index = ProjectIndex(tree.root, base / "index", Embedder())
        with open(results_path, "a") as out:
            for i, c in enumerate(todo):
                r = run_commit(c, tree, index)
                done[c.sha] = r
                embedded += r.get("embedded_now", 0)
                out.write(json.dumps(r) + "\n")
                out.flush()
                print(f"  {i + 1}/{len(todo)} {c.sha[:8]} embedded {r.get('embedded_now', 0)} "
                      f"({time.monotonic() - t_start:.0f} s) {c.subject[:60]}", file=sys.stderr, flush=True)
        index.close()
    results = [done[c.sha] for c in commits if c.sha in done and "skip" not in done[c.sha]]
    if args.rescore:
        rescore(results, args.repo, base)
    if args.dump:
        for r in results:
            print(json.dumps({"request": r["request"], "targets": r["targets"], "choose": r["choose"]}), file=sys.stderr)
    print(json.dumps({"bench": "file_choice", "figure": "filter", "repo": str(args.repo), "rev": args.rev,
                      "usable": len(results), "selected": len(commits),
                      "skipped_no_project_target": sum("skip" in done.get(c.sha, {}) for c in commits),
                      "dropped": dropped}))
    scores = {arm: figures(results, arm) for arm in ARMS}
    for arm in ARMS:
        print(json.dumps(scores[arm]))
    if not results:
        return 1
    ratio = scores["choose"]["recall@5"] / scores["search"]["recall@5"] if scores["search"]["recall@5"] else float("inf")
    print(json.dumps({"bench": "file_choice", "figure": "choose_vs_search_recall@5_ratio", "value": round(ratio, 4),
                      "target": "> 1", "commits": len(results)}))
    choose_ms = [1000 * r["choose_s"] for r in results]
    search_ms = [1000 * r["search_s"] for r in results]
    p50 = statistics.median(choose_ms)
    print(json.dumps({"bench": "file_choice", "figure": "choose_overhead_vs_one_search_ratio",
                      "value": round(p50 / statistics.median(search_ms), 3), "choose_p50_ms": round(p50, 1),
                      "choose_p95_ms": round(sorted(choose_ms)[int(0.95 * (len(choose_ms) - 1))], 1),
                      "search_p50_ms": round(statistics.median(search_ms), 1),
                      "files_p50": statistics.median(r["files"] for r in results)}))
    print(json.dumps({"bench": "file_choice", "figure": "run", "seconds": round(time.monotonic() - t_start, 1),
                      "processed_now": 0 if args.rescore else len(todo), "embedded_now": embedded,
                      "rescore": args.rescore}))
    if tmp is not None:
        tmp.cleanup()
    return 0 if ratio > 1 else 1


if __name__ == "__main__":
    sys.exit(main())

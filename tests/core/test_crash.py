"""Crash consistency of the SQLite stores: a child process writes in a loop and is killed with
SIGKILL at random points; what it reported as committed must be there after reopening, the
database must pass ``PRAGMA integrity_check``, and the store must work on from there."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHAT_CHILD = r"""
import sys
from app.core.storage import Storage
s = Storage(sys.argv[1])
c = s.create_conversation("crash %s" % sys.argv[2])
print("conv", c.id, flush=True)
i = 0
while True:
    m = s.add_message(c.id, "user" if i % 2 == 0 else "assistant", "message %d " % i + "x" * (i * 37 % 3000))
    print("msg", m.id, i, flush=True)
    i += 1
"""

INDEX_CHILD = r"""
import sys
from pathlib import Path
from app.core.index.embed import Embedder
from app.core.index.indexer import ProjectIndex
pi = ProjectIndex(Path(sys.argv[1]), Path(sys.argv[2]), Embedder())
print("open", flush=True)

def progress(p):
    if p.phase == "scanning":
        print("files", p.files_done, flush=True)
    else:
        print("embedded", p.embedded, flush=True)

pi.update(progress)
print("done", flush=True)
"""


def _integrity(db: Path) -> None:
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _run_and_kill(code: str, args: list[str], until, delay: float,
                  timeout: float = 120.0) -> tuple[list[list[str]], bool]:
    """Start the child, read its reports until ``until(lines)`` is true, wait ``delay`` seconds,
    SIGKILL it; returns every line it printed (each was flushed after its commit) and whether
    the kill came before it finished."""
    p = subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(timeout, p.kill)  # a hung child must not hang the suite
    watchdog.start()
    lines: list[list[str]] = []
    try:
        while not until(lines):
            line = p.stdout.readline()
            if not line:
                pytest.fail(f"the child ended early: {p.wait()} {p.stderr.read()[-2000:]}")
            lines.append(line.split())
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        rest, _ = p.communicate()
    finally:
        watchdog.cancel()
    assert p.returncode in (-signal.SIGKILL, 0), p.returncode
    whole = rest.split("\n")[:-1]  # a last line without its newline was cut short by the kill
    lines += [line.split() for line in whole if line.strip()]
    return lines, p.returncode == -signal.SIGKILL


def test_chat_history_survives_sigkill_at_random_points(tmp_path):
    from app.core.storage import Storage
    rng = random.Random(20240611)
    db = tmp_path / "app.db"
    committed: dict[int, tuple[int, int]] = {}   # message id -> (conversation, i)
    convs: list[int] = []
    for rnd in range(6):
        target = rng.randint(5, 600)
        lines, killed = _run_and_kill(CHAT_CHILD, [str(db), str(rnd)],
                                      lambda ls: sum(1 for x in ls if x[0] == "msg") >= target, rng.random() * 0.05)
        assert killed
        conv = int(next(x[1] for x in lines if x[0] == "conv"))
        convs.append(conv)
        for x in lines:
            if x[0] == "msg" and len(x) == 3:
                committed[int(x[1])] = (conv, int(x[2]))
        _integrity(db)
        s = Storage(db)  # opens, and holds everything reported committed, in every round so far
        try:
            assert {c.id for c in s.conversations()} >= set(convs)
            stored = {m.id: m for c in convs for m in s.messages(c)}
            for mid, (c, i) in committed.items():
                m = stored.get(mid)
                assert m is not None, f"message {mid} was reported committed and is gone (round {rnd})"
                assert m.conversation_id == c and m.content == "message %d " % i + "x" * (i * 37 % 3000)
            s.add_message(conv, "assistant", "written after the crash")
        finally:
            s.close()
    assert len(committed) > 20


def _generated_project(root: Path, files: int = 90) -> Path:
    for i in range(files):
        d = root / f"pkg{i % 6}"
        d.mkdir(parents=True, exist_ok=True)
        body = "".join(
            f'def handler_{i}_{j}(request, limit={j}):\n'
            f'    """Handle request kind {j} of module {i}: check the limit, then answer."""\n'
            f"    if len(request) > limit:\n        raise ValueError('too long for handler {i}.{j}')\n"
            f"    return {{'module': {i}, 'kind': {j}, 'size': len(request)}}\n\n\n" for j in range(5))
        (d / f"module_{i}.py").write_text(body)
    (root / "pkg0" / "needle.py").write_text(
        'def reticulate_splines(splines):\n    """Reticulate every spline in place."""\n'
        "    for s in splines:\n        s.reticulated = True\n    return splines\n")
    return root


@pytest.fixture(scope="module")
def embedder():
    from app.core.index.embed import Embedder
    return Embedder()


def test_project_index_survives_sigkill_while_indexing(tmp_path, embedder):
    from app.core.index.indexer import ProjectIndex
    rng = random.Random(7)
    root = _generated_project(tmp_path / "proj")
    idx = tmp_path / "idx"

    def last(lines, kind) -> int:
        return max((int(x[1]) for x in lines if x[0] == kind and len(x) == 2), default=0)

    # while reading files, while embedding, and at a random moment after opening
    points = [(lambda ls: last(ls, "files") >= 40, rng.random() * 0.2),
              (lambda ls: last(ls, "embedded") >= 64, rng.random() * 0.5),
              (lambda ls: any(x[0] == "open" for x in ls), rng.random() * 3.0)]
    for i, (until, delay) in enumerate(points):
        lines, killed = _run_and_kill(INDEX_CHILD, [str(root), str(idx)], until, delay)
        assert killed or i == 2  # the random moment may come after the end
        _integrity(idx / "index.db")
        pi = ProjectIndex(root, idx, embedder)
        try:
            assert not any("damaged" in n for n in pi.notices), pi.notices
            assert pi.store.file_count() >= last(lines, "files")         # each file is its own commit
            assert pi.store.embedded_count() >= last(lines, "embedded")  # each batch of vectors too
            if pi.store.file_count():
                assert pi.search("handle request kind check the limit", 3, mode="bm25")
        finally:
            pi.close()
    pi = ProjectIndex(root, idx, embedder)
    try:
        stats = pi.update()
        assert stats.files == 91 and stats.embedded == stats.chunks
        assert pi.search("reticulate the splines", 3)[0].chunk.path == "pkg0/needle.py"
    finally:
        pi.close()
    _integrity(idx / "index.db")

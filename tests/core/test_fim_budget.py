"""Fill-in-the-middle reads the code nearest the cursor within a budget (app/core/api/fim.py),
counted by the real starter model's tokenizer, on a real file of this repository: what is
kept, what the user is told, and that the kept prompt starts the same way while the user
types (so llama.cpp's prefix cache spares re-reading it)."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest

from app.core.api.backend import ApiBackend, ServedModel
from app.core.api.fim import FIM_BUDGET, PREFIX_STEP, FimRequest, keep_prefix, keep_suffix
from app.core.api.gate import EngineGate
from app.core.api.requests import fim_prompt
from app.core.api.service import ApiServer
from app.core.learn.fim import FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX

KEY = "oc-fim-test-key-0123456789"
SOURCE = Path(__file__).resolve().parents[2] / "app" / "core" / "engine.py"


def around_the_middle(n_before: int = 256, n_after: int = 64) -> tuple[list[str], str, str, str]:
    """llama.vscode's window at the middle of a real file: (lines, prefix, cursor line start, suffix)."""
    lines = SOURCE.read_text(encoding="utf-8").splitlines(keepends=True)
    at = len(lines) // 2
    return lines, "".join(lines[at - n_before:at]), lines[at][:len(lines[at]) // 2], "".join(lines[at + 1:at + 1 + n_after])


def test_the_nearest_lines_within_the_budget(engine):
    lines, prefix, line, suffix = around_the_middle()
    count = engine.count_tokens
    assert count(prefix + line) > 3 * FIM_BUDGET  # the window is far beyond the budget
    kept, dropped = keep_prefix(prefix + line, count, FIM_BUDGET * 3 // 4)
    assert kept.endswith(line) and (prefix + line).endswith(kept)  # the end, up to the cursor
    assert count(kept) <= FIM_BUDGET * 3 // 4 and dropped % PREFIX_STEP == 0 and dropped > 0
    # snapped: at most PREFIX_STEP - 1 more lines would have fitted
    more = "".join((prefix + line).splitlines(keepends=True)[dropped - PREFIX_STEP:])
    assert count(more) > FIM_BUDGET * 3 // 4
    tail, cut = keep_suffix(suffix, count, FIM_BUDGET // 4)
    assert suffix.startswith(tail) and count(tail) <= FIM_BUDGET // 4 and cut > 0
    assert len(tail.splitlines()) + cut == len(suffix.splitlines())
    # a small request is read whole, and says nothing
    small = FimRequest("def add(a, b):\n    return ", "\n\nprint(add(1, 2))\n")
    assert small.build(count) == (fim_prompt(small.prefix, small.suffix), None)


def test_one_line_longer_than_the_budget_is_cut_not_refused(engine):
    long_line = "x = [" + ", ".join(str(i) for i in range(3000))
    kept, dropped = keep_prefix("import os\n" + long_line, engine.count_tokens, 100)
    assert dropped == 1 and long_line.endswith(kept) and engine.count_tokens(kept) <= 3 * 100
    tail, cut = keep_suffix(long_line + "\nend\n", engine.count_tokens, 50)
    assert long_line.startswith(tail) and cut == 1


def test_while_typing_the_kept_prompt_starts_the_same_way(engine):
    """Twenty keystrokes on the cursor's line: the prompt's start (what llama.cpp keeps cached)
    moves at most once, when the kept prefix crosses a PREFIX_STEP boundary."""
    _, prefix, line, suffix = around_the_middle()
    typed = "result = self.tokenize(text)"
    starts = []
    for i in range(20):
        prompt, note = FimRequest(prefix + line + typed[:i], suffix).build(engine.count_tokens)
        assert note and "lines before it" in note and "after it" in note
        starts.append(prompt[:prompt.index(line)])
    assert len(set(starts)) <= 2


def _infill(port: int, body: dict) -> tuple[int, dict, dict]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request("POST", "/infill", json.dumps(body), {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
    r = c.getresponse()
    out = r.status, {k.lower(): v for k, v in r.getheaders()}, json.loads(r.read())
    c.close()
    return out


@pytest.mark.parametrize("budget", [FIM_BUDGET, 0])
def test_infill_reads_the_budget_and_says_so(engine, budget):
    _, prefix, line, suffix = around_the_middle(*((256, 64) if budget else (80, 20)))  # (the test's context: 2,048)
    backend = ApiBackend(EngineGate(), lambda: ServedModel("starter", engine), KEY, fim_budget=budget)
    server = ApiServer(backend, port=0)
    server.start()
    try:
        status, headers, out = _infill(server.port, {"input_prefix": prefix, "prompt": line, "input_suffix": suffix,
                                                     "n_predict": 2})
    finally:
        server.stop()
    p = backend.last_prompt
    assert status == 200 and p.startswith(FIM_PREFIX) and p.endswith(FIM_MIDDLE) and line + FIM_SUFFIX in p
    kept_prefix, kept_suffix = p[len(FIM_PREFIX):p.index(FIM_SUFFIX)], p[p.index(FIM_SUFFIX) + len(FIM_SUFFIX):-len(FIM_MIDDLE)]
    if budget:
        assert engine.count_tokens(kept_prefix) + engine.count_tokens(kept_suffix) <= FIM_BUDGET
        assert (prefix + line).endswith(kept_prefix) and suffix.startswith(kept_suffix)
        assert "lines before it" in headers["x-offline-coder-note"] and out["tokens_evaluated"] < FIM_BUDGET + 20
    else:  # 0: everything the client sent
        assert p == fim_prompt(prefix + line, suffix) and "x-offline-coder-note" not in headers
        assert out["tokens_evaluated"] > FIM_BUDGET


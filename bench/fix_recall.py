"""Does /fix on the tests show the model the code with the bug? Recall over injected mutations.

The project is pallets/click (its own suite, about 2,000 tests), materialised from the mirror's
HEAD into ``--work`` with a virtualenv of its own (``.venv``: pytest and click installed
editable, made with pip on first use), as a user's project would be. Single-line mutations are
injected into ``src/click/*.py``, one at a time: a comparison flipped (``<`` to ``>=``, ``==`` to
``!=``, ``in`` to ``not in``, ...), a constant changed (an int + 1, ``True``/``False`` swapped),
or a call dropped (a statement that is only a call becomes ``pass``). The sites are shuffled with
``random.Random(seed)``; a mutation is kept when the suite then fails (exit code 1), until
``--mutations`` are kept (the others survive the suite and are counted).

For each kept mutation the real /fix pipeline runs: ``run_project_tests`` (the sandbox, the
traced re-run of the first failing test), ``fix_request`` within ``fix_budget`` and then
``build_edit_prompt`` with the room ``ChatService.prompt`` gives a change request, token counts
by the starter model's tokenizer. The budget is the app's default context, 4096 tokens
(``--n-ctx``), with the default 2048-token answer reserve: the room the starter and the 1.5B
model get unless the user raises the context. The baseline is the choice before tracing: the
files the output names plus the modules the tests import (``failing_files``), through the same
request text (without executed code) and the same ``build_edit_prompt``, from the same run.

Figures (one JSON line each), for ``traced`` and ``baseline``:

- ``recall_file``: the mutated file is shown, whole (``build_edit_prompt``'s shown files) or in
  part (an excerpt in the request).
- ``recall_line``: the mutated line itself is shown (a whole file, or inside an excerpt).
- ``recall_named``: the mutated file is named in the request's file list (shown or not).

and ``mutations_kept``, ``mutations_survived`` (the suite still passes),
``mutations_not_a_failing_test`` (an import error, a hang), ``trace_failures`` (kept mutations
whose traced re-run failed: the fallback), ``seconds_per_mutation`` (``run_project_tests``,
tracing included), ``trace_vs_suite_time_ratio`` (the traced re-run against the first run, over
the kept ones) and ``run_s``. **Exit status 1 when traced ``recall_file`` is below 0.8.**
Each suite run is limited to 120 s (a mutation can make a loop endless).

    .venv/bin/python bench/fix_recall.py [--mutations 50] [--seed 0] [--n-ctx 4096] [--work DIR]
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.chat.service import answer_reserve  # noqa: E402
from app.core.edits.prompt import EditRequest, build_edit_prompt  # noqa: E402
from app.core.run.project_tests import (  # noqa: E402
    TEST_LIMITS, SuiteRun, failing_files, fix_budget, fix_request, run_project_tests)
from app.core.run.fix_request import def_span, enclosing_def  # noqa: E402
from app.core.settings import Settings  # noqa: E402

MIRROR = Path("/work/.mirror/pallets+click/repo")
FLIPS = {ast.Lt: ">=", ast.GtE: "<", ast.Gt: "<=", ast.LtE: ">", ast.Eq: "!=", ast.NotEq: "==",
         ast.Is: "is not", ast.IsNot: "is", ast.In: "not in", ast.NotIn: "in"}
OP_TEXT = {ast.Lt: "<", ast.GtE: ">=", ast.Gt: ">", ast.LtE: "<=", ast.Eq: "==", ast.NotEq: "!=",
           ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}


@dataclass(frozen=True)
class Mutation:
    path: str     # relative to the project
    line: int     # 1-based
    kind: str     # "comparison" | "constant" | "call"
    new_line: str

    def describe(self) -> str:
        return f"{self.path}:{self.line} {self.kind}: {self.new_line.strip()[:80]}"


def emit(figure: str, value, **extra) -> None:
    print(json.dumps({"bench": "fix_recall", "figure": figure, "value": value, **extra}), flush=True)


def prepare(work: Path) -> Path:
    """click's HEAD in ``work/click`` with its own .venv (pytest, click editable)."""
    project = work / "click"
    if not (project / "src" / "click" / "core.py").is_file():
        project.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", f"--git-dir={MIRROR}", "archive", "HEAD"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(project)], input=archive, check=True)
    python = project / ".venv" / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(project / ".venv")], check=True)
    ok = subprocess.run([str(python), "-c", "import click, pytest; print(click.__file__)"],
                        capture_output=True, text=True)
    if ok.returncode != 0 or str(project / "src") not in ok.stdout:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "pytest", "-e", str(project)], check=True)
    return project


def sites(project: Path) -> list[Mutation]:
    """Every single-line mutation of src/click/*.py, in file and line order."""
    out: list[Mutation] = []
    for file in sorted((project / "src" / "click").glob("*.py")):
        rel = file.relative_to(project).as_posix()
        text = file.read_text(encoding="utf-8")
        lines = text.splitlines()
        tree = ast.parse(text)
        docs = {id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) is None or node.lineno != getattr(node, "end_lineno", None):
                continue
            line = lines[node.lineno - 1]
            if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in FLIPS:
                a, b = node.left.end_col_offset, node.comparators[0].col_offset
                if node.left.end_lineno != node.lineno or node.comparators[0].lineno != node.lineno:
                    continue
                mid = line[a:b]
                if mid.strip() != OP_TEXT[type(node.ops[0])]:
                    continue
                new = line[:a] + f" {FLIPS[type(node.ops[0])]} " + line[b:]
                out.append(Mutation(rel, node.lineno, "comparison", new))
            elif isinstance(node, ast.Constant) and id(node) not in docs and type(node.value) in (bool, int):
                value = (not node.value) if isinstance(node.value, bool) else node.value + 1
                new = line[:node.col_offset] + repr(value) + line[node.end_col_offset:]
                out.append(Mutation(rel, node.lineno, "constant", new))
            elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
                indent = line[:len(line) - len(line.lstrip())]
                if line.strip() == ast.get_source_segment(text, node).strip():
                    out.append(Mutation(rel, node.lineno, "call", indent + "pass"))
    return out


def shown(project: Path, run: SuiteRun, budget: int, room: int, reserve: int, count) -> dict:
    """What the model is shown for this run: whole files and excerpts, within the budget."""
    req = fix_request(run, budget_tokens=budget, count=count)
    _system, _user, whole = build_edit_prompt(EditRequest(project, req.text, list(req.files)), room,
                                              reserve, count)
    return {"whole": whole, "excerpts": [(e.path, e.lines) for e in req.excerpts],
            "named": list(req.files), "tokens": count(req.text)}


def scores(m: Mutation, seen: dict) -> dict:
    in_part = [lines for p, lines in seen["excerpts"] if p == m.path]
    return {"file": m.path in seen["whole"] or bool(in_part),
            "line": m.path in seen["whole"] or any(m.line in lines for lines in in_part),
            "named": m.path in seen["named"]}


def mutated_rank(project: Path, m: Mutation, run: SuiteRun) -> int | None:
    """Place of the mutated function in the trace's ranking (None: not traced)."""
    if run.trace is None:
        return None
    lines = (project / m.path).read_text(encoding="utf-8").splitlines()
    for i, f in enumerate(run.trace.ranked()):
        header = enclosing_def(lines, f.first) if f.path == m.path and f.first <= len(lines) else None
        if header is not None and not f.name.endswith("<module>"):
            a, b = def_span(lines, header)
            if a < m.line <= b:
                return i
    return None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mutations", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-ctx", type=int, default=4096)
    ap.add_argument("--max-tokens", type=int, default=Settings().generation.max_tokens)
    ap.add_argument("--work", type=Path, default=Path("/tmp/fix-recall"))
    ap.add_argument("--verbose", action="store_true", help="one line per mutation on stderr")
    ap.add_argument("--dump", type=Path, help="write each kept mutation and its trace here (JSON lines)")
    args = ap.parse_args()
    t0 = time.monotonic()
    project = prepare(args.work)
    from app.core.engine import Engine, EngineConfig
    from app.core.models.embedded import starter_model
    engine = Engine(starter_model().path, EngineConfig(n_ctx=512))  # only its tokenizer is used
    count = engine.count_tokens
    system = Settings().system_prompt
    reserve = answer_reserve(args.n_ctx, args.max_tokens)
    room = int((args.n_ctx - reserve) * 0.8) - count(system)       # as ChatService.prompt
    budget = fix_budget(args.n_ctx, args.max_tokens, count, system)
    emit("budget_tokens", budget, room=room, n_ctx=args.n_ctx, answer_reserve=reserve)

    candidates = sites(project)
    random.Random(args.seed).shuffle(candidates)
    originals: dict[str, str] = {}
    totals = {arm: {"file": 0, "line": 0, "named": 0} for arm in ("traced", "baseline")}
    kept = survived = other = trace_failures = 0
    run_s = suite_s = trace_s = 0.0
    for m in candidates:
        if kept >= args.mutations:
            break
        file = project / m.path
        original = originals.setdefault(m.path, file.read_text(encoding="utf-8"))
        lines = original.split("\n")
        lines[m.line - 1] = m.new_line
        file.write_text("\n".join(lines), encoding="utf-8")
        try:
            t = time.monotonic()
            run = run_project_tests(project, limits=replace(TEST_LIMITS, time_s=120.0))
            run_s += time.monotonic() - t
        finally:
            file.write_text(original, encoding="utf-8")
        if run.result.exit_code != 1 or run.result.timed_out:
            survived += run.passed
            other += not run.passed  # an import or collection error, a hang: not a failing test
            continue
        kept += 1
        trace_failures += run.trace is None
        suite_s += run.result.duration_s
        trace_s += run.trace.duration_s if run.trace else 0.0
        traced = shown(project, run, budget, room, reserve, count)
        old = replace(run, trace=None, trace_note="", files=failing_files(run.output, project))
        base = shown(project, old, budget, room, reserve, count)
        got = {"traced": scores(m, traced), "baseline": scores(m, base)}
        for arm in totals:
            for k in totals[arm]:
                totals[arm][k] += got[arm][k]
        if args.dump:
            with args.dump.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"mutation": asdict(m), "trace": asdict(run.trace) if run.trace else None,
                                    "note": run.trace_note, "files": run.files}) + "\n")
        if args.verbose:
            rank = mutated_rank(project, m, run)
            print(f"{kept:3d} {m.describe()} | traced {got['traced']} base {got['baseline']} rank {rank} "
                  f"| {run.trace.test if run.trace else run.trace_note} | shown {traced['whole']} "
                  f"{[(p, min(ls), max(ls)) for p, ls in traced['excerpts']]}", file=sys.stderr, flush=True)
    for arm, t in totals.items():
        for k, v in t.items():
            emit(f"{arm}_recall_{k}", round(v / max(kept, 1), 3), hits=v, mutations=kept)
    emit("mutations_kept", kept, seed=args.seed, candidates=len(candidates))
    emit("mutations_survived", survived)
    emit("mutations_not_a_failing_test", other)
    emit("trace_failures", trace_failures)
    emit("seconds_per_mutation", round(run_s / max(kept + survived + other, 1), 2))
    emit("trace_vs_suite_time_ratio", round(trace_s / max(suite_s, 1e-9), 3), trace_s=round(trace_s, 1),
         suite_s=round(suite_s, 1), note="kept mutations: the traced re-run against the first run (to the failure)")
    emit("run_s", round(time.monotonic() - t0, 1))
    return 0 if kept and totals["traced"]["file"] / kept >= 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())

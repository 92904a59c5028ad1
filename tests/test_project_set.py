"""A training set from a project's own code (app/core/learn), on real files in a temp project.

The project below has known definitions at known lines; the pairs that come out must be
exactly the documented ones, vendored and generated files must be skipped with their reason,
planted secrets must never reach the file, and no file may have pairs on both sides of the split.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.core.learn.dataset import SECRET_MARK, Example
from app.core.learn.definitions import read_definitions
from app.core.learn.fim import FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX, PLAIN, QWEN, fim_style_for
from app.core.learn.near_dup import near_duplicates
from app.core.learn.project_set import (FIM, WRITE, CodeExample, ProjectSetCancelled, ProjectSetError,
                                        ProjectSetOptions, build_project_set, default_output, export_project_set,
                                        parse_folders)
from app.core.models.gguf_info import read_gguf_info

OPENAI_KEY = "sk-live-abcdefghijklmnopqrstuvwxyz123456"
GITHUB_TOKEN = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"

MATHX = [
    '"""Math helpers."""',                                           # 1
    "import os",                                                      # 2
    "from typing import Iterable",                                    # 3
    "",                                                               # 4
    f'API_KEY = "{OPENAI_KEY}"',                                      # 5
    "",                                                               # 6
    "",                                                               # 7
    "def add(a: int, b: int) -> int:",                                # 8
    '    """Add two integers and return their sum."""',              # 9
    "    return a + b",                                               # 10
    "",                                                               # 11
    "",                                                               # 12
    "def _undocumented(x):",                                          # 13
    "    return x * 2 + 1 - 3 + len(os.sep) * 0",                     # 14
    "",                                                               # 15
    "",                                                               # 16
    "class Accumulator:",                                             # 17
    '    """Keep a running total of numbers."""',                    # 18
    "",                                                               # 19
    "    def __init__(self):",                                        # 20
    "        self.total = 0",                                         # 21
    "",                                                               # 22
    "    def push(self, value: float) -> float:",                     # 23
    '        """Add value to the total and return the new total."""',  # 24
    "        self.total += value",                                    # 25
    "        return self.total",                                      # 26
    "",                                                               # 27
    "",                                                               # 28
    "# Where the user's settings file lives.",                        # 29
    "def settings_path():",                                           # 30
    f'    token = "{GITHUB_TOKEN}"',                                   # 31
    '    return "/home/alice/.config/mathx/settings.toml"',           # 32
]
UTIL_JS = [
    'import { fmt } from "./fmt.js";',                    # 1
    "",                                                   # 2
    "/**",                                                # 3
    " * Format a price in euros.",                        # 4
    " */",                                                # 5
    "export function price(cents) {",                     # 6
    '  return fmt(cents / 100) + " EUR";',                # 7
    "}",                                                  # 8
    "",                                                   # 9
    "function helper(n) {",                               # 10
    "  return n + 1;",                                    # 11
    "}",                                                  # 12
    "",                                                   # 13
    "// Double every number in the list.",                # 14
    "const doubleAll = (xs) => xs.map((x) => x * 2);",   # 15
]
TOTAL = '''def total_price(order, tax_rate=0.2, discount=None):
    """The order's total with tax, after an optional discount."""
    subtotal = 0
    for line in order.lines:
        if line.quantity <= 0:
            continue
        subtotal += line.unit_price * line.quantity
    if discount is not None:
        subtotal -= discount.amount(subtotal)
    shipping = 0 if subtotal > 50 else 4.95
    return round(subtotal * (1 + tax_rate) + shipping, 2)
'''
DOCUMENTED_ELSEWHERE = '''def vendored_marker():
    """A function nobody in this project wrote."""
    return "this comes from somewhere else entirely"
'''

EXPECTED_WRITES = {  # (path, name, first line, last line)
    ("pkg/mathx.py", "add", 8, 10), ("pkg/mathx.py", "Accumulator", 17, 26),
    ("pkg/mathx.py", "Accumulator.push", 23, 26), ("pkg/mathx.py", "settings_path", 30, 32),
    ("web/util.js", "price", 6, 8), ("web/util.js", "doubleAll", 15, 15),
    ("pkg/copy.py", "total_price", 2, 12),  # pkg/orders.py's near-identical copy is dropped
}


def write(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")


@pytest.fixture
def project(tmp_path) -> Path:
    root = tmp_path / "shop"
    write(root, "pkg/__init__.py", "")
    write(root, "pkg/mathx.py", "\n".join(MATHX) + "\n")
    write(root, "web/util.js", "\n".join(UTIL_JS) + "\n")
    write(root, "pkg/copy.py", '"""Orders, copied in from the old shop."""\n' + TOTAL)
    # the same function with other comments, layout and one changed number: a near-duplicate
    near = TOTAL.replace("    subtotal = 0\n", "    subtotal = 0  # running sum\n").replace("4.95", "4.99")
    write(root, "pkg/orders.py", '"""Orders."""\n' + near.replace("    ", "  "))
    write(root, "vendor/lib.py", DOCUMENTED_ELSEWHERE)                      # root vendor/: the walk skips it
    write(root, "third_party/ext/lib.py", DOCUMENTED_ELSEWHERE)             # vendored at any depth
    write(root, "node_modules/pad/index.js", "/** Pads. */\nfunction vendored_marker() { return 1; }\n")
    write(root, "pkg/api_pb2.py", DOCUMENTED_ELSEWHERE.replace("vendored", "generated"))
    write(root, "pkg/schema.py", "# Code generated by schemagen. DO NOT EDIT.\n\n"
          + DOCUMENTED_ELSEWHERE.replace("vendored", "generated"))
    write(root, "README.md", "# Shop\n\nNothing to learn here.\n")
    return root


def rows_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def parse_source(source: str) -> tuple[str, str, int, int]:
    _project, kind, rest = source.split(":", 2)
    path, lines = rest.rsplit("#L", 1)
    start, end = lines.split("-L")
    return kind, path, int(start), int(end)


def test_the_pairs_are_exactly_the_documented_definitions(project):
    result = build_project_set(project)
    writes = [e for e in result.examples if isinstance(e, CodeExample) and e.kind == WRITE]
    assert {(e.path, e.name, e.start_line, e.end_line) for e in writes} == EXPECTED_WRITES
    assert len(writes) == len(EXPECTED_WRITES)
    by_name = {e.name: e for e in writes}
    # the code is the definition's own lines (dedented), fenced in its language
    assert by_name["add"].messages[1]["content"] == "```python\n" + "\n".join(MATHX[7:10]) + "\n```"
    assert by_name["Accumulator.push"].messages[1]["content"] == (
        "```python\n" + "\n".join(line[4:] for line in MATHX[22:26]) + "\n```")
    assert by_name["price"].messages[1]["content"] == "```javascript\n" + "\n".join(UTIL_JS[5:8]) + "\n```"
    # the instruction: name, documentation, signature, module context, owner
    push = by_name["Accumulator.push"].messages[0]["content"]
    assert "write the method `push` of `Accumulator`" in push
    assert "Add value to the total and return the new total." in push
    assert "Signature: `def push(self, value: float) -> float:`" in push
    assert "import os\nfrom typing import Iterable" in push
    assert "Format a price in euros." in by_name["price"].messages[0]["content"]
    assert "Double every number in the list." in by_name["doubleAll"].messages[0]["content"]
    assert "Where the user's settings file lives." in by_name["settings_path"].messages[0]["content"]
    # one fill-in-the-middle pair per file with definitions, its gap a whole definition of that file
    fims = [e for e in result.examples if isinstance(e, CodeExample) and e.kind == FIM]
    assert sorted(e.path for e in fims) == ["pkg/copy.py", "pkg/mathx.py", "web/util.js"]
    for e in fims:
        text = (project / e.path).read_text().splitlines()
        defs = read_definitions((project / e.path).read_text(), e.language).definitions
        assert (e.start_line, e.end_line) in {(d.start_line, d.end_line) for d in defs}
        assert "<MISSING>" in e.messages[0]["content"]  # the starter is no Qwen: plain instruction
        if e.path != "pkg/mathx.py":  # (mathx's text is scrubbed)
            middle = "\n".join(text[e.start_line - 1:e.end_line])
            assert e.messages[1]["content"] == f"```{e.language}\n{middle}\n```"
    report = result.report
    assert report.per_language["python"][WRITE] == 5 and report.per_language["javascript"][WRITE] == 2
    assert report.files_used == 3  # everything pkg/orders.py has repeats pkg/copy.py


def test_vendored_generated_and_near_duplicate_code_is_left_out_with_reasons(project):
    result = build_project_set(project)
    everything = json.dumps([e.messages for e in result.examples])
    assert "vendored_marker" not in everything and "generated_marker" not in everything
    r = result.report
    assert r.skipped_paths["vendored (third-party folder)"] == ["third_party/ext/lib.py"]
    assert r.skipped_paths["generated (by its name)"] == ["pkg/api_pb2.py"]
    assert r.skipped_paths["generated (says so at the top)"] == ["pkg/schema.py"]
    assert r.skipped_paths["not code we can parse (markdown)"] == ["README.md"]
    assert r.skipped_paths["no definitions"] == ["pkg/__init__.py"]
    assert r.walk_skipped["skipped folder"] == 2  # vendor/ at the root and node_modules/
    assert r.skipped_pairs["near-duplicate code (≥90% similar)"] >= 1
    lines = "\n".join(r.lines())
    assert "vendored (third-party folder) (e.g. third_party/ext/lib.py)" in lines
    assert "javascript: 2 write" in lines
    assert [e.path for e in result.examples if getattr(e, "name", "") == "total_price" and e.kind == WRITE] == [
        "pkg/copy.py"]


def test_secrets_and_home_paths_never_reach_the_file(project, tmp_path):
    out = tmp_path / "out" / "shop.jsonl"
    export_project_set(project, out, ProjectSetOptions(fim_per_file=3))
    text = out.read_text(encoding="utf-8")
    assert OPENAI_KEY not in text and GITHUB_TOKEN not in text and "/home/alice" not in text
    # they were there to be removed: the settings_path pair keeps the rest of its lines
    assert SECRET_MARK in text and "~/.config/mathx/settings.toml" in text


def test_no_file_is_on_both_sides_and_the_notebook_reads_the_file(project, tmp_path):
    from training import data  # the notebook's loader (standard library only)

    out = tmp_path / "shop.jsonl"
    report = export_project_set(project, out)
    rows = rows_of(out)
    assert len(rows) == report.train + report.valid and report.train and report.valid
    sides: dict[str, set[str]] = {}
    for row in rows:
        assert set(row) == {"messages", "split", "source"} and row["split"] in ("train", "valid")
        _kind, path, _a, _b = parse_source(row["source"])
        sides.setdefault(path, set()).add(row["split"])
    assert all(len(s) == 1 for s in sides.values()), sides
    assert {p for p, s in sides.items() if s == {"valid"}}  # whole files went to validation

    loaded = data.read_jsonl(out)
    normalised = [data.from_chat_export(r) for r in loaded]
    assert all(n is not None for n in normalised)
    prepared = data.prepare({"my_chats": normalised}, seed=0)
    assert prepared.summary["sources"]["my_chats"]["used"] == len(rows)
    assert len(prepared.train) + len(prepared.eval) == len(rows)


def test_filters_languages_folders_and_lengths(project):
    def names(**kw) -> set[tuple[str, str]]:
        result = build_project_set(project, ProjectSetOptions(fim_per_file=0, **kw))
        return {(e.path, e.name) for e in result.examples}

    js = {("web/util.js", "price"), ("web/util.js", "doubleAll")}
    assert names(languages=frozenset({"javascript"})) == js
    assert names(include=parse_folders("web")) == js
    assert names(exclude=parse_folders("pkg, third_party")) == js
    assert names(include=("web/*.js",)) == js
    short = build_project_set(project, ProjectSetOptions(fim_per_file=0, min_chars=60, include=("web",)))
    assert {e.name for e in short.examples} == {"price"}  # doubleAll's line is 47 characters
    assert short.report.skipped_pairs["code under 60 characters"] == 1
    long = build_project_set(project, ProjectSetOptions(fim_per_file=0, max_chars=400, include=("pkg/mathx.py",)))
    assert "Accumulator" not in {e.name for e in long.examples} and "add" in {e.name for e in long.examples}
    assert long.report.skipped_pairs["over 400 characters"] == 2  # the class and push
    assert parse_folders(" src/, tests\n\n docs ") == ("src", "tests", "docs")


def test_qwen_models_get_their_fim_tokens_and_the_file_is_whole_again(project, starter_path, tmp_path):
    from tests.gguf_writer import write_gguf

    assert fim_style_for(read_gguf_info(starter_path)) == PLAIN  # SmolLM2 is a llama
    qwen = write_gguf(tmp_path / "qwen.gguf", {"general.architecture": "qwen2"})
    assert fim_style_for(read_gguf_info(qwen)) == QWEN
    result = build_project_set(project, ProjectSetOptions(fim_style=QWEN, include=("web",)))
    (fim,) = [e for e in result.examples if e.kind == FIM]
    user, middle = fim.messages[0]["content"], fim.messages[1]["content"]
    assert user.startswith(FIM_PREFIX) and user.endswith(FIM_MIDDLE)
    prefix, suffix = user[len(FIM_PREFIX):-len(FIM_MIDDLE)].split(FIM_SUFFIX)
    assert prefix + middle + suffix == (project / "web/util.js").read_text()
    assert middle.startswith(UTIL_JS[fim.start_line - 1])


def test_accepted_edits_come_along_scrubbed_and_split_by_their_group(project):
    edit = Example(messages=[{"role": "user", "content": f"use {OPENAI_KEY} in the client"},
                             {"role": "assistant", "content": "client = Client(key=os.environ['KEY'])"}],
                   group="conversation-7", source="rated:7")
    result = build_project_set(project, extra=[edit, edit])
    extras = [e for e in result.examples if not isinstance(e, CodeExample)]
    assert len(extras) == 1 and result.report.extra == 1  # the copy is an exact duplicate
    assert OPENAI_KEY not in extras[0].messages[0]["content"] and extras[0].split in ("train", "valid")
    assert result.report.skipped_pairs["exact duplicates"] == 1


def test_cancel_writes_nothing_and_an_empty_project_says_why(project, tmp_path):
    out = tmp_path / "never.jsonl"
    with pytest.raises(ProjectSetCancelled, match="cancelled; nothing was written"):
        export_project_set(project, out, cancelled=lambda: True)
    assert not out.exists()
    docs = tmp_path / "docs-only"
    write(docs, "README.md", "# Hi\n")
    write(docs, "a.py", "def f():\n    return 1\n")
    with pytest.raises(ProjectSetError, match="No training pairs came out of this project.*documented"):
        build_project_set(docs)
    with pytest.raises(ProjectSetError, match="is not a folder"):
        build_project_set(tmp_path / "missing")


def test_default_output_names_the_project_and_the_day(tmp_path):
    from datetime import date

    out = default_output(tmp_path, Path("/x/My Shop"), date(2026, 3, 4))
    assert out == tmp_path / "exports" / "My-Shop-code-20260304.jsonl"


def test_doc_comments_per_language():
    rust = "/// Adds one.\npub fn inc(a: i32) -> i32 { a + 1 }\n\n// not attached\n\nfn bare() {}\n"
    go = ("package main\n\n// Add adds.\nfunc Add(a int) int { return a }\n\n"
          "//go:noinline\nfunc Sub(a int) int { return -a }\n")
    java = "/** A box. */\nclass Box {\n  /* licence text */\n  int size() { return 1; }\n}\n"
    c = "/* plain block */\nint one(void) { return 1; }\n/** The answer. */\nint two(void) { return 2; }\n"

    def docs(text, lang):
        return {d.name: d.doc for d in read_definitions(text, lang).definitions}

    assert docs(rust, "rust") == {"inc": "Adds one.", "bare": ""}
    assert docs(go, "go") == {"Add": "Add adds.", "Sub": ""}
    assert docs(java, "java") == {"Box": "A box.", "Box.size": ""}
    assert docs(c, "c") == {"one": "", "two": "The answer."}
    assert read_definitions("x", "markdown") is None


def test_near_duplicates_ignore_layout_and_comments_but_not_other_code():
    a = TOTAL
    b = TOTAL.replace("    subtotal = 0\n", "    subtotal = 0  # running sum\n").replace("    ", "\t")
    c = DOCUMENTED_ELSEWHERE
    assert near_duplicates([a, c, b]) == {2: 0}
    assert near_duplicates([a, c]) == {}

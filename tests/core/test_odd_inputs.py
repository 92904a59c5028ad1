"""Regression tests for inputs a fuzzer found (issue: every input surface fuzzed): each odd
input costs itself, with a message, never the project or a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.adapters.errors import AdapterError
from app.core.adapters.bundle import open_bundle
from app.core.index.embed import Embedder
from app.core.index.indexer import ProjectIndex
from app.core.index.walk import ODD_NAME, walk_project
from app.core.safe_json import JSONLimitError, loads, nesting_depth
from tests.support.adapter_zip import adapter_members, write_zip

ROOT = Path(__file__).resolve().parents[2]


def app_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", "--home", str(home), *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


@pytest.fixture
def odd_project(tmp_path) -> Path:
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / "src" / "good.py").write_text("def fetch_quota():\n    return 42\n")
    with open(os.path.join(os.fsencode(root / "src"), b"caf\xe9.py"), "wb") as f:  # not UTF-8
        f.write(b"def cafe():\n    return 'latin-1 name'\n")
    (root / "src" / "weird\nname.py").write_text("def weird():\n    return 1\n")
    (root / "src" / "tab\there.py").write_text("def tab():\n    return 2\n")
    return root


def test_a_file_name_that_is_not_utf8_or_has_control_characters_costs_only_itself(odd_project, tmp_path):
    walked = walk_project(odd_project)
    assert [f.path for f in walked.files] == ["src/good.py"]
    assert walked.skipped[ODD_NAME] == 3
    pi = ProjectIndex(odd_project, tmp_path / "index", Embedder())
    try:
        pi.update()
        hits = pi.search("fetch quota", 5)
        assert hits and all("\n" not in h.citation and "\t" not in h.citation for h in hits)
        assert {h.chunk.path for h in hits} == {"src/good.py"}
    finally:
        pi.close()


def test_the_cli_indexes_and_searches_a_project_with_odd_names(odd_project, tmp_path):
    home = tmp_path / "home"
    r = app_cli(home, "index", str(odd_project))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    r = app_cli(home, "search", str(odd_project), "fetch quota")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "src/good.py" in r.stdout and "Traceback" not in r.stderr


def test_json_nested_deeper_than_the_limit_is_refused_before_parsing():
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(JSONLimitError, match="nests 100,000 levels deep"):
        loads(deep)
    assert isinstance(JSONLimitError("x"), ValueError)  # every "not valid JSON" handler covers it
    assert nesting_depth('{"a": "[[[[", "b": [{"c": []}]}') == 4  # brackets in strings do not count
    assert loads('{"a": [1, {"b": "]]"}]}') == {"a": [1, {"b": "]]"}]}
    with pytest.raises(JSONLimitError, match="more than the 10 allowed"):
        loads("[1, 2, 3, 4, 5, 6]", max_bytes=10)


def test_an_adapter_manifest_nested_100000_deep_gets_the_usual_message(tmp_path):
    members = {**adapter_members(), "manifest.json": "[" * 100_000 + "]" * 100_000}
    z = write_zip(tmp_path / "deep-lora.zip", members)
    with pytest.raises(AdapterError, match="manifest.json in the adapter zip is not valid JSON .*nests 100,000"):
        open_bundle(z, tmp_path / "unpacked")
    r = app_cli(tmp_path / "home", "adapters", "import", str(z))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "manifest.json in the adapter zip is not valid JSON" in r.stderr


def test_a_deep_training_line_is_named_by_its_line(tmp_path):
    from app.core.adapters.validation import parse_lines

    good = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})
    with pytest.raises(AdapterError, match="line 2: not JSON .*nests"):
        parse_lines([good, "[" * 5000 + "]" * 5000], "validation.jsonl")


def test_a_chunker_failure_costs_the_file_its_structure_not_the_project(tmp_path, monkeypatch, caplog):
    """A syntax walk that fails (a bug not found yet) is logged and the file is cut by lines."""
    from app.core.index import chunk

    def broken(*_a, **_k):
        raise IndexError("a tree-sitter row past the last line")

    monkeypatch.setattr(chunk, "find_definitions", broken)  # the fault: no input produces it today
    chunks = chunk.chunk_file("src/x.py", "def a():\n    return 1\n\n\ndef b():\n    return 2\n", "python")
    assert chunks and chunks[0].start_line == 1 and chunks[-1].end_line == 6
    assert "chunking 'src/x.py' by its syntax failed" in caplog.text


def test_a_nerd_font_icon_after_a_brace_in_a_shell_script_does_not_crash_the_app(tmp_path):
    """tree-sitter-bash 0.25.1 segfaults (no exception: the process dies) on "{" followed by a
    4-byte UTF-8 character, depending on memory layout (tree-sitter-bash#337; the long fuzz run
    found "{\\U0005a952"). Such a file is cut by lines. In children: a crash would end pytest."""
    code = ("from app.core.index.chunk import chunk_file\n"
            "from app.core.learn.definitions import read_definitions\n"
            "for t in ['{\\U000f0001', 'echo {a,b}\\n# \\U000f0a1c prompt\\n', '{\\U0005a952']:\n"
            "    assert isinstance(chunk_file('x.sh', t, 'bash'), list)\n"
            "    assert read_definitions(t, 'bash') is None\n"
            "assert chunk_file('x.sh', 'echo {a,b}\\n# \\U000f0a1c prompt\\n', 'bash')[0].end_line == 2\n"
            "print('ok')\n")
    for _ in range(6):  # it crashed about every second run before
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode, r.stderr[-1500:])
    from app.core.index.grammars import native_crash_risk
    assert not native_crash_risk("bash", "echo {a,b}\n# é ok\n".encode())  # other shell scripts keep their syntax
    assert not native_crash_risk("python", "{'\U000f0001'}".encode())

"""The parser on answers the embedded model really wrote (recorded by
scripts/record_edit_answers.py), and on hand-written answers in each accepted format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.core.edits import MODIFIED, NEW, UndoStore, apply_changes, plan_changes, undo

FIXTURES = Path(__file__).parents[1] / "fixtures"
ANSWERS = FIXTURES / "edit_answers"


@pytest.fixture
def project(tmp_path) -> Path:
    root = tmp_path / "proj"
    shutil.copytree(FIXTURES / "edit_project", root)
    return root


def recorded(name: str) -> tuple[str, dict]:
    return (ANSWERS / f"{name}.md").read_text(encoding="utf-8"), json.loads((ANSWERS / f"{name}.json").read_text())


@pytest.mark.parametrize("name", ["docstring", "retry", "new_file", "rename"])
def test_the_small_model_forgets_path_lines_so_nothing_is_proposed_without_a_default(project, name):
    answer, meta = recorded(name)
    assert "```" in answer and meta["finish_reason"] == "stop"
    cs = plan_changes(project, answer)
    assert cs.changes == [] and cs.problems == []


def test_recorded_rename_answer_for_the_single_requested_file(project, tmp_path):
    answer, meta = recorded("rename")
    assert meta["files"] == ["pkg/mathx.py"]
    cs = plan_changes(project, answer, default_path="pkg/mathx.py")
    (c,) = cs.changes
    assert c.status == MODIFIED and "did not name a file" in c.warnings[0]
    assert "def multiply(a, b):" in c.result_text() and "def mul(" not in c.result_text()
    before = (project / "pkg/mathx.py").read_bytes()
    record = apply_changes(project, [(c, None)], UndoStore(tmp_path / "undo"))
    assert "def multiply" in (project / "pkg/mathx.py").read_text()
    undo(UndoStore(tmp_path / "undo"), record)
    assert (project / "pkg/mathx.py").read_bytes() == before


def test_recorded_new_file_answer(project):
    answer, _ = recorded("new_file")
    cs = plan_changes(project, answer, default_path="pkg/hello.py")
    (c,) = cs.changes
    assert c.status == NEW and c.needs_approval and "def hello():" in c.result_text()


def test_recorded_docstring_answer_applies_each_block_in_turn(project):
    answer, _ = recorded("docstring")
    cs = plan_changes(project, answer, default_path="pkg/mathx.py")
    (c,) = cs.changes
    # The first block is a whole file (it starts with an import), the later ones only
    # re-state add(): the result is the first block, mul() gone, which the diff shows.
    assert c.result_text() == "import mro\n\ndef add(a, b):\n    return a + b\n"
    assert [h.old for h in c.hunks][0] == ()


def test_a_block_in_another_language_is_not_taken_for_the_file(project):
    answer = "Run this:\n```bash\npip install requests\n```\n"
    assert plan_changes(project, answer, default_path="pkg/net.py").changes == []


HAND_WRITTEN = {
    "whole": ("Retries added.\n\npkg/net.py\n```python\nimport time\nimport urllib.request\n\n\ndef fetch(url, tries=3):\n"
              "    for n in range(tries):\n        try:\n            with urllib.request.urlopen(url) as response:\n"
              "                return response.read()\n        except OSError:\n            time.sleep(2 ** n)\n"
              "    raise OSError(url)\n```\n"),
    "search_replace": ("pkg/mathx.py\n```python\n<<<<<<< SEARCH\ndef mul(a, b):\n    return a * b\n=======\n"
                       "def mul(a, b):\n    \"\"\"Product.\"\"\"\n    return a * b\n>>>>>>> REPLACE\n```\n"),
    "udiff": ("```diff\n--- a/pkg/mathx.py\n+++ b/pkg/mathx.py\n@@ -1,2 +1,2 @@\n-def add(a, b):\n+def add(a, b=0):\n"
              "     return a + b\n```\n"),
}


@pytest.mark.parametrize("fmt", sorted(HAND_WRITTEN))
def test_hand_written_answers_in_each_format(project, fmt, tmp_path):
    cs = plan_changes(project, HAND_WRITTEN[fmt])
    assert not cs.problems
    (c,) = cs.changes
    apply_changes(project, [(c, None)], UndoStore(tmp_path / "undo"))
    text = (project / c.path).read_text()
    assert {"whole": "time.sleep(2 ** n)", "search_replace": '"""Product."""', "udiff": "def add(a, b=0):"}[fmt] in text


def test_hand_written_readme_answer_with_fenced_examples(tmp_path):
    """Three backticks around a README whose code examples have their own (the issue's shape):
    planned to the file the answer holds, byte for byte; its last fence missing, the same file
    only when the model stopped by itself."""
    answer, meta = recorded("readme_fences")
    original = (ANSWERS / "readme_fences.before.md").read_text(encoding="utf-8")
    meant = original.replace(*meta["change"])
    root = tmp_path / "readme"
    root.mkdir()
    (root / "README.md").write_text(original, encoding="utf-8")
    cs = plan_changes(root, answer, complete=meta["finish_reason"] == "stop")
    (c,) = cs.changes
    assert cs.problems == [] and c.result_bytes() == meant.encode() and len(c.hunks) == 1
    unclosed = answer[:answer.index("```\n\nI changed")]
    assert plan_changes(root, unclosed).changes == []
    (c,) = plan_changes(root, unclosed, complete=True).changes
    assert c.result_bytes() == meant.encode() and "no closing fence" in c.warnings[0]

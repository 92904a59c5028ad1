"""Fences of any length in answers and prompts (app/core/edits/fences.py), on real files.

A change to a file that holds ``` blocks must plan to exactly the file the model wrote: in a
longer fence (CommonMark), in three backticks as small models write it (nested blocks), in an
answer whose last fence is missing; and the /code prompt must show such a file so that its
own block, fed back as the answer, plans to the same bytes.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.edits import MODIFIED, UndoStore, apply_changes, parse_answer, plan_changes, undo
from app.core.edits.fences import fence_for, fence_of
from app.core.edits.prompt import EDIT_INSTRUCTIONS, EditRequest, build_edit_prompt

F = "```"

# A README as projects have them (2,213 characters, code examples with languages, the file's last
# line a fence), and the answer a small model writes for a one-line change to it: three backticks
# around it all. The old parser kept 118 characters of it and said nothing.
FIXTURES = Path(__file__).parents[1] / "fixtures" / "edit_answers"
README = (FIXTURES / "readme_fences.before.md").read_text(encoding="utf-8")
CHANGE = json.loads((FIXTURES / "readme_fences.json").read_text(encoding="utf-8"))["change"]
MEANT = README.replace(*CHANGE)  # what the model meant: exactly this file
EXPLANATION = "\nI raised the default limit in the usage example.\n\nTry it:\n```bash\ntidyfeed new\n```\n"


def readme_project(tmp_path: Path, text: str = README) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "README.md").write_text(text, encoding="utf-8")
    return root


def planned_bytes(root: Path, answer: str, **kw) -> bytes:
    cs = plan_changes(root, answer, **kw)
    assert [c.path for c in cs.changes] == ["README.md"], (cs.problems, cs.unchanged)
    return cs.changes[0].result_bytes()


# ---- the issue: a README with ``` blocks ----------------------------------------------------------
def test_the_readme_is_realistic():
    assert len(README) == 2213 and README.count("\n```") == 20 and README.endswith("```\n")


@pytest.mark.parametrize("outer", ["```", "````", "~~~", "`````", "~~~~~~"])
@pytest.mark.parametrize("lang", ["markdown", "", "md"])
def test_a_readme_with_code_blocks_plans_to_exactly_what_the_model_wrote(tmp_path, outer, lang):
    """Three backticks (what a small model writes): inner blocks with a language nest. Longer
    or tilde fences (CommonMark): inner ``` lines are content, the file's last fence kept."""
    answer = f"Here is the change.\n\nREADME.md\n{outer}{lang}\n{MEANT}{outer}\n{EXPLANATION}"
    parsed = parse_answer(answer)
    assert parsed.problems == []
    (edit,) = parsed.edits
    assert "\n".join(edit.lines) + "\n" == MEANT
    root = readme_project(tmp_path)
    assert planned_bytes(root, answer) == MEANT.encode()


def test_the_readme_change_applies_and_undoes_byte_exactly(tmp_path):
    root = readme_project(tmp_path)
    cs = plan_changes(root, f"README.md\n{F}markdown\n{MEANT}{F}\n{EXPLANATION}")
    (c,) = cs.changes
    assert c.status == MODIFIED and len(c.hunks) == 1
    record = apply_changes(root, [(c, None)], UndoStore(tmp_path / "undo"))
    assert (root / "README.md").read_text(encoding="utf-8") == MEANT
    undo(UndoStore(tmp_path / "undo"), record)
    assert (root / "README.md").read_text(encoding="utf-8") == README


def test_a_crlf_readme_keeps_its_endings(tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    (root / "README.md").write_bytes(README.replace("\n", "\r\n").encode())
    answer = f"README.md\r\n{F}markdown\r\n{MEANT}{F}\r\n".replace("\n", "\r\n").replace("\r\r\n", "\r\n")
    assert planned_bytes(root, answer) == MEANT.replace("\n", "\r\n").encode()


# ---- CommonMark: what closes a block ------------------------------------------------------------
def test_a_close_is_the_same_character_at_least_as_long_and_nothing_else():
    content = ["```", "~~~~", "```python", "``` x", "~~~~~", "` ` ` `", "```` `", "  ```  "]
    parsed = parse_answer("README.md\n````\n" + "\n".join(content) + "\n  `````  \nafter\n")
    (edit,) = parsed.edits
    assert edit.lines == content and parsed.problems == []


def test_fences_that_could_close_the_block_nest_whatever_its_length():
    """A ```` block holding ````markdown … ```` (the model did not go one longer): nested, not cut."""
    parsed = parse_answer("docs/fences.md\n````\nWrite:\n````markdown\n```\ncode\n```\n````\nDone.\n````\n")
    assert parsed.edits[0].lines == ["Write:", "````markdown", "```", "code", "```", "````", "Done."]
    assert parsed.problems == []


def test_a_fence_four_columns_deeper_than_the_opener_is_content():
    """A docstring's own example fences, indented with the code: never the block's close."""
    code = ('def total(items):\n    """Sum the prices.\n\n    ```\n    total([1, 2])\n    ```\n    """\n'
            "    return sum(items)\n")
    parsed = parse_answer(f"shop/total.py\n{F}python\n{code}{F}\n")
    assert "\n".join(parsed.edits[0].lines) + "\n" == code and parsed.problems == []


def test_fence_lines_as_commonmark_reads_them():
    assert fence_of("  ````python x") is not None and fence_of("  ````python x").length == 4
    assert fence_of("```js```") is None  # inline code: a backtick fence's info has no backtick
    assert fence_of("~~~ a`b") is not None  # a tilde fence's may
    assert fence_of("``") is None and fence_of("text ```") is None


# ---- three backticks around a file with fences: nesting and its limits ---------------------------
def test_code_that_writes_markdown_nests_its_fences():
    code = 'TEMPLATE = """\n```python\n{code}\n```\n"""\n\n\ndef render(code):\n    return TEMPLATE.format(code=code)\n'
    parsed = parse_answer(f"docs/render.py\n{F}python\n{code}{F}\nDone.\n")
    assert "\n".join(parsed.edits[0].lines) + "\n" == code and parsed.problems == []


BARE = "# Demo\n\nInstall:\n\n```\npip install demo\n```\n\nRun:\n\n```\ndemo run\n```\n\nLicense: MIT.\n"


@pytest.mark.parametrize("after", ["", "\n", "\nI added the Run section.\n", "\n\nRun it:\n```bash\ndemo\n```\n",
                                   "\nnotes.txt\n```\nnew notes\n```\n"])
def test_bare_inner_blocks_in_a_document_end_at_the_right_fence_with_a_note(tmp_path, after):
    """``` then code opens an inner block; the block ends at the fence followed by a blank line
    or the end, or at the last one before another file's block. That is a guess: it says so."""
    root = readme_project(tmp_path, "# Demo\n")
    answer = f"README.md\n{F}\n{BARE}{F}\n{after}"
    assert plan_changes(root, answer).change("README.md").result_bytes() == BARE.encode()
    problems = parse_answer(answer).problems
    assert len(problems) == 1 and "guessed" in problems[0].message and problems[0].path == "README.md"
    assert "answer line 18" in problems[0].message  # where it was taken to end


def test_a_document_without_inner_blocks_ends_at_its_first_fence_without_a_note():
    for after in ["", "\nRun it:\n```\ndemo\n```\n", "README2.md\n```\n# Two\n```\n",
                  "And:\n```markdown docs/b.md\n# B\n```\n"]:
        parsed = parse_answer(f"README.md\n{F}\n# Demo 2\n{F}\n{after}")
        assert parsed.edits[0].lines == ["# Demo 2"] and parsed.problems == [], after


def test_an_ambiguous_document_block_is_never_used_silently():
    """No blank line, then prose and a bare block: either the README holds them or the answer
    does. The longer reading is kept (nothing of the file lost) and the user is told."""
    parsed = parse_answer(f"README.md\n{F}\n# Demo 2\n{F}\nTry it:\n{F}\ndemo\n{F}\n")
    assert parsed.edits[0].lines == ["# Demo 2", F, "Try it:", F, "demo"]
    assert len(parsed.problems) == 1 and "guessed" in parsed.problems[0].message


def test_code_ends_at_its_first_bare_fence_and_says_when_it_may_be_cut():
    cut = parse_answer(f'tool.py\n{F}python\n"""Usage:\n{F}\ntool --all\n{F}\n"""\nimport sys\n{F}\n')
    assert cut.edits[0].lines == ['"""Usage:']
    assert len(cut.problems) == 1 and "may end too early" in cut.problems[0].message
    assert cut.problems[0].path == "tool.py" and "answer line 4" in cut.problems[0].message
    for answer in [f"a.py\n{F}\nx = 1\n{F}\n\nRun it:\n{F}\npython a.py\n{F}\n",
                   f"a.py\n{F}\nx = 1\n{F}\nb.py\n{F}\ny = 2\n{F}\n",
                   f"a.py\n{F}python\nx = 1\n{F}\nRun it:\n{F}bash\npython a.py\n{F}\n"]:
        parsed = parse_answer(answer)
        assert parsed.edits[0].lines == ["x = 1"] and parsed.problems == [], answer


MD_LINE = st.sampled_from(["# Title", "Some text.", "", "- item", "    indented code", "> quote", "x = 1",
                           "print('hi')", "Done."])


@st.composite
def markdown_files(draw) -> str:
    """Markdown with balanced code blocks (some bare, some with a language) that do not start
    with a blank line or hold a line that reads as a file name."""
    out: list[str] = []
    for _ in range(draw(st.integers(0, 6))):
        out += draw(st.lists(MD_LINE, max_size=3))
        if draw(st.booleans()):
            body = draw(st.lists(MD_LINE.filter(bool), min_size=1, max_size=3))
            out += [F + draw(st.sampled_from(["", "python", "bash"])), *body, F]
    return "".join(line + "\n" for line in out)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=markdown_files(), outer=st.sampled_from(["```", "````", "~~~"]),
       after=st.sampled_from(["", "\nDone.\n", "\nTry:\n```bash\nx\n```\n", "Try:\n```bash\nx\n```\n",
                              "\nTry:\n```\nx\n```\n", "Try:\n```\nx\n```\n", "b.py\n```\nx = 1\n```\n"]))
def test_any_markdown_file_is_planned_exactly_or_a_note_says_to_check(text, outer, after):
    """The contract: the README as written, or a note naming it. Never a silent cut."""
    parsed = parse_answer(f"README.md\n{outer}markdown\n{text}{outer}\n{after}")
    readme = [e for e in parsed.edits if e.path == "README.md"]
    assert len(readme) == 1
    got = "".join(line + "\n" for line in readme[0].lines)
    if got != text:
        assert any(p.path == "README.md" for p in parsed.problems), (got, text)
    if outer != "```":
        assert got == text and not parsed.problems


# ---- an answer that ends without its closing fence ------------------------------------------------
def test_a_missing_last_fence_is_refused_unless_the_answer_was_complete(tmp_path):
    root = readme_project(tmp_path)
    answer = f"README.md\n{F}markdown\n{MEANT}\n\n"  # the model stopped before the fence
    cut = parse_answer(answer)
    assert cut.edits == [] and "cut off" in cut.problems[0].message
    assert plan_changes(root, answer).changes == []
    done = parse_answer(answer, complete=True)
    assert done.problems == [] and done.edits[0].unclosed
    assert "\n".join(done.edits[0].lines) + "\n" == MEANT  # its own last ``` kept, the blank tail not
    cs = plan_changes(root, answer, complete=True)
    (c,) = cs.changes
    assert c.result_bytes() == MEANT.encode() and cs.problems == []
    assert any("no closing fence" in w for w in c.warnings)


def test_a_complete_answer_still_refuses_an_empty_unclosed_block_and_uses_unclosed_edits():
    assert parse_answer("a.py\n```python\n\n", complete=True).problems[0].message.count("cut off") == 1
    sr = parse_answer("a.py\n```python\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n", complete=True)
    assert [(e.path, e.fmt, e.unclosed) for e in sr.edits] == [("a.py", "search/replace", False)]
    closed = parse_answer("a.py\n```python\nx = 1\n```\n", complete=True)
    assert closed.edits[0].unclosed is False


# ---- how models name the file ------------------------------------------------------------------------
@pytest.mark.parametrize("opener", ["``` python src/app.py", '```py title="src/app.py"', "```python:src/app.py",
                                    "```python src/app.py", "```  src/app.py", "~~~python src/app.py"])
def test_the_path_in_the_fence_info(opener):
    close = opener[:3]
    parsed = parse_answer(f"{opener}\nx = 1\n{close}\n")
    assert [(e.path, e.lines) for e in parsed.edits] == [("src/app.py", ["x = 1"])] and not parsed.problems


def test_a_language_glued_to_the_path_is_not_split_but_a_label_wins():
    glued = parse_answer(f"{F}pythonsrc/app.py\nx = 1\n{F}\n")
    assert [e.path for e in glued.edits] == ["pythonsrc/app.py"]  # as written: no guess
    assert "glued" in glued.problems[0].message and "```python src/app.py" in glued.problems[0].message
    labelled = parse_answer(f"src/app.py\n{F}pythonsrc/app.py\nx = 1\n{F}\n")
    assert [e.path for e in labelled.edits] == ["src/app.py"] and not labelled.problems
    plain = parse_answer(f"{F}pkg/net.py\nx = 1\n{F}\n")  # a path alone is not glued to anything
    assert [e.path for e in plain.edits] == ["pkg/net.py"] and not plain.problems


@pytest.mark.parametrize("label", ["**`src/app.py`**", "`src/app.py`", "**src/app.py:**", "### `src/app.py`",
                                   "File: **src/app.py**", "1. `src/app.py`:"])
def test_the_path_in_bold_or_backticks_before_the_fence(label):
    parsed = parse_answer(f"Changed:\n\n{label}\n{F}python\nx = 1\n{F}\n")
    assert [(e.path, e.lines) for e in parsed.edits] == [("src/app.py", ["x = 1"])]


@pytest.mark.parametrize("lang,first,path", [("python", "# src/app.py", "src/app.py"),
                                             ("js", "// web/app.js", "web/app.js"),
                                             ("sql", "-- db/schema.sql", "db/schema.sql"),
                                             ("html", "<!-- web/index.html -->", "web/index.html"),
                                             ("css", "/* web/site.css */", "web/site.css"),
                                             ("python", "# File: src/app.py", "src/app.py")])
def test_a_first_line_path_comment_names_the_file_when_nothing_else_does(tmp_path, lang, first, path):
    answer = f"{F}{lang}\n{first}\nbody = 1\n{F}\n"
    (edit,) = parse_answer(answer).edits
    assert (edit.path, edit.lines, edit.path_comment, edit.guessed) == (path, ["body = 1"], first, False)
    # It beats the request's file (the model named one) and shows in the plan.
    (c,) = plan_changes(tmp_path, answer, default_path="other.py").changes
    assert c.path == path and c.result_bytes() == b"body = 1\n" and "named the file" in c.warnings[0]


def test_a_first_line_comment_is_content_when_the_file_is_named_or_it_is_no_path():
    named = parse_answer(f"src/app.py\n{F}python\n# src/app.py\nx = 1\n{F}\n").edits[0]
    assert named.lines == ["# src/app.py", "x = 1"] and named.path_comment is None
    for first in ["#!/usr/bin/env python", "# ... rest unchanged", "# Compute the totals.", "# 1.5"]:
        assert parse_answer(f"{F}python\n{first}\nx = 1\n{F}\n").edits == [], first


def test_crlf_answers(tmp_path):
    root = tmp_path / "p"
    root.mkdir()
    (root / "a.py").write_bytes(b"x = 1\n")
    crlf = "a.py\r\n```python\r\nx = 2\r\n```\r\n\r\nDone.\r\n"
    assert plan_changes(root, crlf).changes[0].result_bytes() == b"x = 2\n"
    unclosed = "a.py\r\n```python\r\nx = 3\r\n"
    assert plan_changes(root, unclosed, complete=True).changes[0].result_bytes() == b"x = 3\n"
    sr = "a.py\r\n<<<<<<< SEARCH\r\nx = 1\r\n=======\r\nx = 4\r\n>>>>>>> REPLACE\r\n"
    assert plan_changes(root, sr).changes[0].result_bytes() == b"x = 4\n"
    four = f"README.md\r\n````\r\n{MEANT}````\r\n".replace("\n", "\r\n").replace("\r\r\n", "\r\n")
    assert plan_changes(root, four).changes[0].new_lines == MEANT.splitlines()


# ---- the prompt ------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,fence", [("x = 1\n", "```"), ("a\n```\nb\n```\n", "````"),
                                        ("````md\n```\n````\n", "`````"), ("  ```js\n", "````"),
                                        ("~~~\n~~~~\n", "```"), ("x = '```'\ny ```\n", "```"), ("", "```")])
def test_the_fence_a_file_is_shown_in(text, fence):
    assert fence_for(text) == fence


def prompt_block(root: Path, rel: str) -> str:
    _, user, shown = build_edit_prompt(EditRequest(root, "Raise the limit.", [rel]), 8000, 4000, lambda t: len(t) // 4)
    assert shown == [rel]
    return user.split("Current content of the files:\n\n", 1)[1].split("\n\nRequest:", 1)[0] + "\n"


def test_the_prompt_shows_a_file_with_fences_in_a_longer_one_and_says_to_answer_so(tmp_path):
    assert "````" in EDIT_INSTRUCTIONS and "longer fence" in EDIT_INSTRUCTIONS
    root = readme_project(tmp_path)
    block = prompt_block(root, "README.md")
    assert block.startswith("README.md\n````markdown\n") and block.endswith("\n````\n")
    (root / "plain.py").write_text("x = 1\n")
    assert prompt_block(root, "plain.py") == "plain.py\n```python\nx = 1\n```\n"


def test_the_prompts_own_block_as_the_answer_plans_to_the_identical_file(tmp_path):
    root = readme_project(tmp_path)
    block = prompt_block(root, "README.md")
    cs = plan_changes(root, f"Sure.\n\n{block}\nNothing to change.\n")
    assert cs.changes == [] and cs.problems == [] and cs.unchanged == ["README.md"]
    edited = block.replace(*CHANGE)
    assert planned_bytes(root, edited) == MEANT.encode()


ANY_LINE = st.sampled_from(["x = 1", "", "```", "````", "```python", "````md", "~~~", "  ```", "\t```", "text",
                            "`````", "``` `x`", "# h"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(ANY_LINE, min_size=1, max_size=12), name=st.sampled_from(["README.md", "a.py", "docs/notes.rst"]))
def test_any_file_shown_in_the_prompt_round_trips(lines, name):
    text = "".join(line + "\n" for line in lines)
    with tempfile.TemporaryDirectory() as t:
        root = Path(t)
        (root / name).parent.mkdir(exist_ok=True)
        (root / name).write_text(text)
        block = prompt_block(root, name)
        cs = plan_changes(root, block)
        assert cs.changes == [] and cs.problems == [] and cs.unchanged == [name], block

"""The definitions of a source file and their documentation, read with tree-sitter.

A definition is what the chunker calls one (``index.syntax.find_definitions``: the grammar's
definition node types, looking through decorators, ``export`` and templates), at the top level
or inside a class-like body (methods of a class, functions of an ``impl``); functions nested
inside functions are not.

**Documented** means, per language:

* Python: a docstring (a string literal as the body's first statement), or ``#`` comment
  lines directly above the definition (its decorators), with no blank line between;
* every other language: a doc comment directly above, with no blank line between: ``/** */``
  blocks, ``///`` / ``//!`` / ``//`` line comments, ``#`` (Ruby, bash, PHP) and ``--`` lines.
  A plain ``/* */`` block is not documentation (it is usually a licence or code switched off),
  and neither are tool directives (``// eslint-disable``, ``# noqa``, ``//go:generate`` ...).

Line numbers are 1-based and inclusive and match the file as editors number it
(``syntax.source_lines``); ``start_line`` includes decorators and ``export``, not the doc comment.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from dataclasses import dataclass

from app.core.index.grammars import GRAMMARS, Grammar, native_crash_risk, parser_for
from app.core.index.syntax import end_row, find_definitions, node_text, source_lines

# Module-level statements that say what a file depends on: the context a "Write ..." pair shows.
_IMPORT_TYPES = {"import_statement", "import_from_statement", "future_import_statement", "import_declaration",
                 "preproc_include", "use_declaration", "using_directive", "package_clause",
                 "package_declaration", "namespace_use_declaration", "extern_crate_declaration",
                 "import_header", "import_list"}
MAX_CONTEXT_LINES = 12
MAX_CONTEXT_CHARS = 600
MAX_SIGNATURE_CHARS = 400
# Comments that talk to a tool, not to a reader.
_DIRECTIVE = re.compile(r"^(?:eslint|prettier-ignore|@ts-|noqa|type:\s*ignore|pylint:|mypy:|fmt:|isort:|nolint|"
                        r"go:\w|#?region\b|#?endregion\b|istanbul |c8 |jshint|tslint:|rubocop:|shellcheck |"
                        r"clang-format |NOLINT|pragma |-\*-)", re.I)
_FUNCTION_WORDS = ("function", "method", "constructor", "lexical_declaration", "variable_declaration",
                   "macro", "singleton_method")


@dataclass(frozen=True)
class Definition:
    name: str            # "Class.method" for members
    kind: str            # the grammar's node type
    start_line: int      # 1-based, inclusive; decorators and export included
    end_line: int
    code: str            # exactly lines start_line..end_line, dedented
    signature: str       # the header up to the body ("def f(a, b) -> int:")
    doc: str             # the docstring or doc comment, markers removed; "" when undocumented
    enclosing: str = ""  # the class (or impl, namespace) it belongs to

    @property
    def documented(self) -> bool:
        return bool(self.doc.strip())

    @property
    def is_member(self) -> bool:
        return bool(self.enclosing)

    @property
    def kind_word(self) -> str:
        """What a developer would call it: function, method, class, struct ..."""
        k = self.kind
        if any(w in k for w in ("method", "constructor")) or (self.enclosing and _is_function(k)):
            return "method"
        for word in ("class", "struct", "interface", "enum", "trait", "union", "record", "protocol",
                     "object", "macro"):
            if word in k:
                return word
        if k in ("impl_item",):
            return "impl block"
        if k in ("namespace_definition", "namespace_declaration", "mod_item", "module", "internal_module"):
            return "module"
        if "type" in k:
            return "type"
        return "function"


@dataclass
class FileDefinitions:
    definitions: list[Definition]
    imports: str         # the module's import lines, capped (context for the pairs)
    lines: list[str]     # the file's lines (syntax.source_lines)


def _is_function(node_type: str) -> bool:
    return any(w in node_type for w in _FUNCTION_WORDS)


def _python_docstring(node) -> str:
    body = node.child_by_field_name("body")
    first = body.named_children[0] if body is not None and body.named_children else None
    if first is None or first.type != "expression_statement" or len(first.named_children) != 1:
        return ""
    s = first.named_children[0]
    if s.type != "string":
        return ""
    raw = node_text(s)
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        content = [c for c in s.named_children if c.type == "string_content"]
        value = node_text(content[0]) if content else ""
    return inspect.cleandoc(value) if isinstance(value, str) else ""


def _strip_comment(text: str) -> list[str]:
    """A comment's lines without their markers."""
    out = []
    for line in text.splitlines():
        s = line.strip()
        for marker in ("/**", "/*!", "/*", "*/", "///", "//!", "//", "#", "--"):
            if s.startswith(marker):
                s = s[len(marker):]
                break
        if s.endswith("*/"):
            s = s[:-2]
        s = s.strip()
        if s.startswith("*") and not s.startswith("**"):
            s = s[1:].strip()
        out.append(s)
    return out


def _is_doc_comment(text: str, language: str) -> bool:
    s = text.lstrip()
    if s.startswith("/*"):
        return s.startswith("/**") or s.startswith("/*!")
    if s.startswith("#!"):
        return False
    return s.startswith(("//", "#", "--"))


def _doc_comment(outer, language: str) -> str:
    """The doc comment lines directly above ``outer`` (the definition with its wrappers)."""
    parts: list[str] = []
    top = outer.start_point.row
    node = outer.prev_named_sibling
    while node is not None and "comment" in node.type:
        if end_row(node) < top - 1:
            break  # a blank line between: not this definition's
        if not _is_doc_comment(node_text(node), language):
            break
        parts.insert(0, node_text(node))
        top = node.start_point.row
        node = node.prev_named_sibling
    lines = [ln for p in parts for ln in _strip_comment(p)]
    lines = [ln for ln in lines if not _DIRECTIVE.match(ln)]
    return "\n".join(lines).strip()


def _signature(target, lines: list[str]) -> str:
    body = target.child_by_field_name("body")
    if body is not None and body.start_byte > target.start_byte:
        raw = target.text[: body.start_byte - target.start_byte].decode("utf-8", "replace")
    else:
        raw = lines[target.start_point.row] if target.start_point.row < len(lines) else node_text(target)
        raw = raw.strip().rstrip("{").rstrip()
    sig = "\n".join(ln.rstrip() for ln in raw.strip().splitlines())
    if len(sig) > MAX_SIGNATURE_CHARS:
        sig = sig.splitlines()[0][:MAX_SIGNATURE_CHARS]
    return sig


def _imports(root, lines: list[str]) -> str:
    rows: list[int] = []
    for child in root.named_children:
        if child.type in _IMPORT_TYPES:
            rows.extend(range(child.start_point.row, end_row(child) + 1))
    out: list[str] = []
    size = 0
    for r in rows[:MAX_CONTEXT_LINES]:
        line = lines[r] if r < len(lines) else ""
        if size + len(line) > MAX_CONTEXT_CHARS:
            break
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)


def _members_of(target, grammar: Grammar):
    """The nodes inside a class-like definition that may hold member definitions."""
    found = []
    for child in target.named_children:
        if child.type in grammar.containers or child.type in ("body", "class_body", "block", "declaration_list",
                                                              "field_declaration_list"):
            found.append(child)
    return found


def _collect(node, grammar: Grammar, language: str, lines: list[str], enclosing: str,
             out: list[Definition]) -> None:
    for found in find_definitions(node, grammar, enclosing):
        target, start, end = found.node, found.start, found.end
        doc = _python_docstring(target) if language == "python" else ""
        if not doc:
            doc = _doc_comment(found.outer, language)
        out.append(Definition(
            name=found.symbol, kind=found.kind, start_line=start + 1, end_line=end + 1,
            code=textwrap.dedent("\n".join(lines[start:end + 1])), signature=_signature(target, lines),
            doc=doc, enclosing=enclosing))
        if not _is_function(found.kind):
            for body in _members_of(target, grammar):
                _collect(body, grammar, language, lines, found.symbol, out)


def read_definitions(text: str, language: str) -> FileDefinitions | None:
    """Every definition of a file (documented or not) in line order, or None when there is no
    grammar for ``language``."""
    parser = parser_for(language)
    data = text.encode("utf-8", "surrogatepass")
    if parser is None or native_crash_risk(language, data):
        return None
    lines = source_lines(text)
    tree = parser.parse(data)
    out: list[Definition] = []
    _collect(tree.root_node, GRAMMARS[language], language, lines, "", out)
    out.sort(key=lambda d: (d.start_line, -d.end_line))
    return FileDefinitions(out, _imports(tree.root_node, lines), lines)

"""The one reading of a file's definitions with tree-sitter, shared by the chunker
(``index.chunk``) and the training pairs (``learn.definitions``), so both see the same
definitions the same way.

``find_definitions`` lists the definitions directly under a node, looking through containers
(a namespace, an ``export {}`` list) and wrappers (decorators, ``export``, templates). Each one
comes with its wrapper node (``outer``: its rows are the definition's, decorators included,
and a doc comment sits right above it) and the definition node itself (``node``: its name,
body and members). Rows are tree-sitter's: 0-based, the lines of ``source_lines``.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.index.grammars import Grammar


@dataclass(frozen=True)
class FoundDefinition:
    start: int     # 0-based rows of ``outer``, inclusive
    end: int
    symbol: str    # "Class.method": the prefix given, then the definition's own name
    kind: str      # the definition node's type
    node: object   # the definition node
    outer: object  # the node with its wrappers (decorators, export); ``node`` itself when there are none


def source_lines(text: str) -> list[str]:
    """A file's lines as editors number them: split on ``\n`` only (tree-sitter's rows), a
    trailing ``\r`` dropped, and no extra empty line after the final newline (a lone ``\r``
    after it is a row of tree-sitter's, so it stays a line)."""
    raw = text.split("\n")
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in raw]
    if len(raw) > 1 and raw[-1] == "":
        lines.pop()
    return lines


def node_text(node) -> str:
    return node.text.decode("utf-8", "replace") if node is not None and node.text else ""


_NAME_TYPES = {"identifier", "field_identifier", "qualified_identifier", "type_identifier",
               "operator_name", "destructor_name", "property_identifier", "constant", "name",
               "simple_identifier", "namespace_identifier"}


def definition_name(node) -> str:
    """A definition node's own name ("" when it has none)."""
    n = node.child_by_field_name("name")
    if n is not None:
        return node_text(n)
    d = node.child_by_field_name("declarator")
    while d is not None:  # C/C++: declarator -> function_declarator -> identifier
        if d.type in _NAME_TYPES:
            return node_text(d)
        nxt = d.child_by_field_name("declarator") or d.child_by_field_name("name")
        if nxt is None:
            break
        d = nxt
    for c in node.named_children:  # JS const f = ..., Go type specs
        n = c.child_by_field_name("name")
        if n is not None:
            return node_text(n)
    t = node.child_by_field_name("type")  # Rust impl blocks
    if t is not None:
        return node_text(t)
    for c in node.named_children:
        if c.type in _NAME_TYPES:
            return node_text(c)
    return ""


_FUNCTION_VALUES = {"arrow_function", "function_expression", "function", "class", "generator_function"}


def is_definition(node, grammar: Grammar) -> bool:
    if node.type not in grammar.definitions:
        return False
    if node.type in ("lexical_declaration", "variable_declaration"):
        # only `const f = () => ...` and the like; plain constants are ordinary text
        return any(c.type == "variable_declarator"
                   and (v := c.child_by_field_name("value")) is not None and v.type in _FUNCTION_VALUES
                   for c in node.named_children)
    return True


def end_row(node) -> int:
    """The node's last row, not counting a final newline that ends it at column 0 of the next."""
    end = node.end_point
    return end.row - 1 if end.column == 0 and end.row > node.start_point.row else end.row


def find_definitions(node, grammar: Grammar, prefix: str = "") -> list[FoundDefinition]:
    """Definitions directly under ``node`` (looking through containers and wrappers), in order;
    each symbol is ``prefix.name`` (the name alone without a prefix, the prefix without a name)."""
    out: list[FoundDefinition] = []
    for child in node.named_children:
        target = child
        if child.type in grammar.wrappers:
            target = next((c for c in child.named_children if is_definition(c, grammar)), None)
            if target is None:
                continue
        if is_definition(target, grammar):
            name = definition_name(target)
            sym = f"{prefix}.{name}" if prefix and name else (name or prefix)
            out.append(FoundDefinition(child.start_point.row, end_row(child), sym, target.type, target, child))
        elif child.type in grammar.containers:
            out.extend(find_definitions(child, grammar, prefix))
    return out

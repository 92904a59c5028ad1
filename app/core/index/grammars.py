"""tree-sitter grammars per language, and which of their nodes are definitions.

The grammars come from the per-language wheels (``tree-sitter-python`` ...), which carry
compiled parsers: ``tree-sitter-language-pack`` 1.x downloads grammars at run time and fails
offline. A language without a grammar installed is chunked by line windows instead.
"""

from __future__ import annotations

import importlib
import re
import threading
from dataclasses import dataclass

import tree_sitter


@dataclass(frozen=True)
class Grammar:
    module: str                       # the wheel's import name
    function: str = "language"        # the function in it that returns the language pointer
    definitions: frozenset[str] = frozenset()   # nodes that become a chunk of their own
    containers: frozenset[str] = frozenset()    # nodes whose children may hold definitions
    wrappers: frozenset[str] = frozenset()      # nodes that wrap one definition (decorators, export)


def _g(module, defs, containers=(), wrappers=(), function="language") -> Grammar:
    return Grammar(module, function, frozenset(defs), frozenset(containers), frozenset(wrappers))


_JS_DEFS = ("function_declaration", "generator_function_declaration", "class_declaration",
            "method_definition", "lexical_declaration", "variable_declaration")
_TS_DEFS = _JS_DEFS + ("interface_declaration", "type_alias_declaration", "enum_declaration",
                       "abstract_class_declaration", "module", "internal_module")

GRAMMARS: dict[str, Grammar] = {
    "python": _g("tree_sitter_python", ("function_definition", "class_definition"),
                 ("block",), ("decorated_definition",)),
    "javascript": _g("tree_sitter_javascript", _JS_DEFS, ("class_body",), ("export_statement",)),
    "typescript": _g("tree_sitter_typescript", _TS_DEFS, ("class_body", "interface_body"),
                     ("export_statement",), "language_typescript"),
    "tsx": _g("tree_sitter_typescript", _TS_DEFS, ("class_body", "interface_body"),
              ("export_statement",), "language_tsx"),
    "java": _g("tree_sitter_java", ("class_declaration", "interface_declaration", "enum_declaration",
                                    "record_declaration", "method_declaration", "constructor_declaration"),
               ("class_body", "interface_body", "enum_body")),
    "c": _g("tree_sitter_c", ("function_definition", "struct_specifier", "enum_specifier",
                              "union_specifier")),
    "cpp": _g("tree_sitter_cpp", ("function_definition", "class_specifier", "struct_specifier",
                                  "enum_specifier", "namespace_definition"),
              ("field_declaration_list", "declaration_list"), ("template_declaration",)),
    "csharp": _g("tree_sitter_c_sharp", ("class_declaration", "interface_declaration",
                                         "struct_declaration", "enum_declaration", "record_declaration",
                                         "method_declaration", "constructor_declaration",
                                         "namespace_declaration"), ("declaration_list",)),
    "go": _g("tree_sitter_go", ("function_declaration", "method_declaration", "type_declaration")),
    "rust": _g("tree_sitter_rust", ("function_item", "struct_item", "enum_item", "trait_item",
                                    "impl_item", "mod_item", "macro_definition"), ("declaration_list",)),
    "ruby": _g("tree_sitter_ruby", ("method", "singleton_method", "class", "module"), ("body_statement",)),
    "php": _g("tree_sitter_php", ("function_definition", "class_declaration", "interface_declaration",
                                  "trait_declaration", "method_declaration"), ("declaration_list",),
              function="language_php"),
    "kotlin": _g("tree_sitter_kotlin", ("function_declaration", "class_declaration", "object_declaration"),
                 ("class_body",)),
    "swift": _g("tree_sitter_swift", ("function_declaration", "class_declaration", "protocol_declaration"),
                ("class_body", "protocol_body")),
    "scala": _g("tree_sitter_scala", ("function_definition", "class_definition", "object_definition",
                                      "trait_definition"), ("template_body",)),
    "bash": _g("tree_sitter_bash", ("function_definition",)),
}


_local = threading.local()  # a Parser is not shared between threads


_FOUR_BYTE_LEAD = re.compile(rb"[\xf0-\xf7]")


def native_crash_risk(language: str, data: bytes) -> bool:
    """Text a grammar's native code is known to crash on (SIGSEGV: no exception to catch), so
    callers use no syntax for it. tree-sitter-bash 0.25.1 reads past its tables on ``{``
    followed by a 4-byte UTF-8 character (a code point from about U+50000 up, e.g. a Nerd Font
    icon in a prompt script), depending on memory layout (tree-sitter/tree-sitter-bash#337,
    open; found here by the fuzzer). Any ``{`` before a 4-byte lead byte counts: a superset."""
    if language != "bash":
        return False
    i = data.find(b"{")
    return i >= 0 and _FOUR_BYTE_LEAD.search(data, i) is not None


def parser_for(language: str) -> tree_sitter.Parser | None:
    """A parser for ``language``, or None when no grammar wheel is installed for it."""
    cache = _local.__dict__.setdefault("parsers", {})
    if language not in cache:
        cache[language] = _make_parser(language)
    return cache[language]


def _make_parser(language: str) -> tree_sitter.Parser | None:
    g = GRAMMARS.get(language)
    if g is None:
        return None
    try:
        mod = importlib.import_module(g.module)
        return tree_sitter.Parser(tree_sitter.Language(getattr(mod, g.function)()))
    except (ImportError, AttributeError, ValueError, TypeError):
        return None

"""The shape rules of the code base (issue: one room per feature), checked on the source.

- every file of app/ui is under 400 lines, the main window well under (it only hosts);
- no import circle between the app's modules (imports parsed, TYPE_CHECKING blocks left out);
- no module uses another module's private attributes (``obj._name`` where ``_name`` is not
  defined in the module that uses it);
- every feature of the window lives in its own folder under app/ui/features/ with a feature.py;
- tests are grouped (core/, gui/, support/) and no test module imports another (helpers live in
  tests/support/, shared fixtures in tests/conftest.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"
UI_LIMIT, WINDOW_LIMIT = 400, 200


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def app_modules() -> dict[str, Path]:
    return {module_name(p): p for p in APP.rglob("*.py")}


def test_ui_files_are_small_and_the_window_only_hosts():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines()) for p in (APP / "ui").rglob("*.py")}
    assert {f: n for f, n in sizes.items() if n > UI_LIMIT} == {}
    assert sizes["app/ui/main_window.py"] <= WINDOW_LIMIT


def _imports(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Modules ``module`` imports, skipping `if TYPE_CHECKING:` blocks."""
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            out.add(prefix)
            out.update(f"{prefix}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def import_graph() -> dict[str, set[str]]:
    mods = app_modules()
    graph = {}
    for name, path in mods.items():
        found = _imports(ast.parse(path.read_text(encoding="utf-8")), name, path.name == "__init__.py")
        # `from app.core import x` names a module x, or a name in app/core/__init__.py: keep modules only.
        graph[name] = {m for m in found if m in mods and m != name and not name.startswith(m + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (c := dfs(m)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (c := dfs(n)):
            return c
    return None


def test_no_import_circle():
    assert find_cycle(import_graph()) is None


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def private_uses(path: Path) -> list[str]:
    """``x._name`` in ``path`` where x is not self/cls and ``_name`` is not defined in this module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    defined = {t.attr for n in ast.walk(tree) for t in getattr(n, "targets", [getattr(n, "target", None)])
               if isinstance(t, ast.Attribute)}
    defined |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    defined |= {t.id for c in ast.walk(tree) if isinstance(c, ast.ClassDef) for n in c.body  # class attributes
                for t in getattr(n, "targets", [getattr(n, "target", None)]) if isinstance(t, ast.Name)}
    out = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
                and node.attr not in defined):
            where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
            out.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
    return out


def test_no_module_uses_another_ones_private_attributes():
    offenders = [hit for p in APP.rglob("*.py") for hit in private_uses(p)]
    assert offenders == []


def test_the_private_attribute_check_catches_one(tmp_path):
    f = tmp_path / "probe.py"
    f.write_text("def f(w):\n    w._busy_guard()\n\n\nclass A:\n    def __init__(self):\n        self._ok = 1\n\n"
                 "    def same_module(self, other):\n        return other._ok\n")
    assert private_uses(f) == ["probe.py:2: w._busy_guard"]


def test_every_feature_has_its_room():
    features = APP / "ui" / "features"
    rooms = sorted(p.name for p in features.iterdir() if p.is_dir() and not p.name.startswith("_"))
    assert rooms == ["adapters", "api", "changes", "chat", "doctor", "feedback", "keys", "learn", "models", "network",
                     "project", "review", "settings", "tools"]
    for room in rooms:
        assert (features / room / "feature.py").is_file(), room
    loose = sorted(p.name for p in (APP / "ui").glob("*.py"))
    assert loose == ["__init__.py", "app_icon.py", "banners.py", "engine_service.py", "errors.py", "host.py",
                     "main_window.py", "shell.py", "workers.py"]


def test_tests_are_grouped_and_no_test_module_imports_another():
    tests = ROOT / "tests"
    loose = sorted(p.name for p in tests.glob("*.py"))
    assert loose == ["__init__.py", "conftest.py"]
    assert sorted(p.name for p in tests.iterdir() if p.is_dir() and not p.name.startswith("__")) == [
        "core", "fixtures", "gui", "support"]
    offenders = []
    for p in tests.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] + [a.name for a in node.names] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{p.relative_to(ROOT)}: {n}" for n in names if n.split(".")[-1].startswith("test_")]
    assert offenders == []

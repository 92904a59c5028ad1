"""Which linters a project uses, and whether this computer has them.

A linter runs only when the project configures it (its own config file says the project wants
it) AND it is installed; nothing is ever installed or downloaded. What the project configures
but this computer lacks is reported (``Detection.missing``), never run.

Where a tool is looked for, first hit wins: the project's own virtualenv (``.venv``, ``venv``,
``env``, as project_tests.project_python), then ``node_modules/.bin`` for eslint, then PATH.
Python tools (flake8, pyflakes) run as ``python -m tool`` with the interpreter that has them
(the venv's, or the one a console script's ``#!`` line names): that interpreter is what the
sandbox brings back when it lies under a hidden home, and a module also runs under the
python-guard fallback, where no other program may start. ruff is a native program: found as
``bin/ruff``.

pyflakes is the one guess: a Python project (pyproject.toml, setup.py, setup.cfg,
requirements.txt or a ``.py`` file at the top) that configures no Python linter gets pyflakes
when it is installed (its venv, PATH, or, outside a frozen build, the app's own Python); when it
is not, nothing is said (a guess that fails is no news). It reports only
what is certainly wrong (undefined names, unused imports), with no style opinions, so it
cannot contradict a style the project never wrote down.

cargo check is the one tool that writes into the project (``Cargo.lock``), so it runs on a copy
(run.py). Which files: ruff, flake8, pyflakes and eslint get the changed files they handle (by
extension); go vet and cargo check work on whole packages, so they check the project.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import re
import shutil
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from app.core.checks.settings import KNOWN_LINTERS, ProjectSettings
from app.core.run.project_tests import project_python

_VENV_NAMES = (".venv", "venv", "env")
_PY = (".py", ".pyi")
_JS = (".js", ".mjs", ".cjs", ".jsx", ".ts", ".mts", ".cts", ".tsx")
_ESLINT_CONFIGS = tuple(f"eslint.config.{e}" for e in ("js", "mjs", "cjs", "ts", "mts", "cts")) + tuple(
    f".eslintrc{e}" for e in ("", ".js", ".cjs", ".yaml", ".yml", ".json"))
_MAX_CONFIG_BYTES = 1024 * 1024  # a config file bigger than this is read as not configuring anything


@dataclass(frozen=True)
class Linter:
    """One runnable linter: how to start it and on what.

    ``module`` set: run ``python -m module args`` with ``python``. Else ``program`` is the
    executable. ``extensions`` empty: the tool checks the whole project (no file arguments).
    ``problem_codes``: exit codes meaning "found problems in the code" (anything else non-zero
    means the tool itself failed). ``keep``: folders the sandbox must bring back for it."""

    name: str
    why: str
    args: tuple[str, ...]
    program: str = ""
    module: str = ""
    python: str = ""
    extensions: tuple[str, ...] = ()
    problem_codes: frozenset[int] = frozenset({1})
    env: tuple[tuple[str, str], ...] = ()
    keep: tuple[str, ...] = ()
    memory_mb: int = 2048
    file_mb: int = 64              # largest file it may write: its output, or a build's artefacts
    copy: bool = False             # runs on a copy of the project (a tool that must write in it)

    def command(self, files: list[str]) -> list[str]:
        """The argv; a file whose name starts with "-" is passed as "./-name", never as an option."""
        head = [self.python, "-m", self.module] if self.module else [self.program]
        return head + list(self.args) + [f"./{f}" if f.startswith("-") else f for f in files]

    def shown(self, files: list[str]) -> str:
        """The command as a person would type it in the project folder."""
        head = ["python", "-m", self.module] if self.module else [Path(self.program).name]
        return " ".join(head + list(self.args) + files)


@dataclass
class Detection:
    """What will run (``found``) and what the project configures but this computer lacks
    (``missing``: (name, reason) pairs), each reason in words."""

    found: list[Linter] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        """For a settings dialog: "ruff: [tool.ruff] in pyproject.toml" and the missing ones."""
        return [f"{x.name}: {x.why}" for x in self.found] + [f"{n}: {why}" for n, why in self.missing]


def detect(root: Path, settings: ProjectSettings | None = None) -> Detection:
    """The linters to run in the project at ``root``: those it configures (settings "auto") or
    the user's list, each only when installed. Reads a few small files; runs nothing."""
    root = Path(root).resolve()
    settings = settings or ProjectSettings()
    configured = _configured(root)
    guessed = set()
    if settings.auto_linters:
        if _is_python_project(root) and not any(n in configured for n in ("ruff", "flake8")):
            configured["pyflakes"] = "a Python project with no linter configured (pyflakes reports only sure errors)"
            guessed.add("pyflakes")
        wanted = [n for n in KNOWN_LINTERS if n in configured]
    else:
        wanted = [n for n in KNOWN_LINTERS if n in settings.linters]
    out = Detection()
    for name in wanted:
        why = configured.get(name, "chosen in this project's check settings") if settings.auto_linters \
            else "chosen in this project's check settings"
        linter, lack = _RESOLVERS[name](root, why)
        if linter is not None:
            out.found.append(linter)
        elif name not in guessed:  # a guess that is not installed is no news
            out.missing.append((name, f"{why}, but {lack}"))
    return out


# ---- what the project configures --------------------------------------------------------------
def _read(path: Path) -> str | None:
    try:
        if not path.is_file() or path.stat().st_size > _MAX_CONFIG_BYTES:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _toml_table(path: Path, *keys: str) -> bool:
    text = _read(path)
    if text is None:
        return False
    try:
        table = tomllib.loads(text)
    except (ValueError, RecursionError):
        # a pyproject.toml the project's own tools would reject: fall back to the header
        return re.search(rf"^\s*\[{re.escape('.'.join(keys))}[\].]", text, re.M) is not None
    for k in keys:
        if not isinstance(table, dict) or k not in table:
            return False
        table = table[k]
    return True


def _has_section(path: Path, section: str) -> bool:
    text = _read(path)
    return text is not None and re.search(rf"^\s*\[{re.escape(section)}\]", text, re.M) is not None


def _configured(root: Path) -> dict[str, str]:
    """name → the reason the project is taken to want it."""
    found: dict[str, str] = {}
    for name in ("ruff.toml", ".ruff.toml"):
        if (root / name).is_file():
            found["ruff"] = f"{name} in the project"
            break
    else:
        if _toml_table(root / "pyproject.toml", "tool", "ruff"):
            found["ruff"] = "[tool.ruff] in pyproject.toml"
    if (root / ".flake8").is_file():
        found["flake8"] = ".flake8 in the project"
    else:
        for name in ("setup.cfg", "tox.ini"):
            if _has_section(root / name, "flake8"):
                found["flake8"] = f"[flake8] in {name}"
                break
    for name in _ESLINT_CONFIGS:
        if (root / name).is_file():
            found["eslint"] = f"{name} in the project"
            break
    else:
        text = _read(root / "package.json")
        try:
            if text and isinstance(data := json.loads(text), dict) and "eslintConfig" in data:
                found["eslint"] = "eslintConfig in package.json"
        except (ValueError, RecursionError):
            pass
    if (root / "go.mod").is_file():
        found["go vet"] = "go.mod in the project"
    if (root / "Cargo.toml").is_file():
        found["cargo check"] = "Cargo.toml in the project"
    return found


def _is_python_project(root: Path) -> bool:
    if any((root / n).is_file() for n in ("pyproject.toml", "setup.py", "setup.cfg", "requirements.txt")):
        return True
    try:
        return any(p.suffix == ".py" and p.is_file() for p in root.iterdir())
    except OSError:
        return False


# ---- whether this computer has it ---------------------------------------------------------------
def _venv_bins(root: Path) -> list[Path]:
    out = []
    for name in _VENV_NAMES:
        venv = root / name
        if (venv / "pyvenv.cfg").is_file():
            out += [venv / "bin", venv / "Scripts"]
    return out


def _venv_has_module(python: str, module: str) -> bool:
    """Whether a virtualenv's interpreter can import ``module``, from its site-packages on disk
    (nothing of the project's is run to find out)."""
    venv = Path(python).parent.parent
    return bool(glob.glob(str(venv / "lib" / "python*" / "site-packages" / module / "__init__.py"))
                or (venv / "Lib" / "site-packages" / module / "__init__.py").is_file())


def _keep_for(program: str) -> tuple[str, ...]:
    """The folders a program needs brought back in the sandbox: its own folder and, for a
    symlink into an install (pipx, a toolchain), the real one's prefix."""
    real = os.path.realpath(program)
    return tuple(dict.fromkeys([os.path.dirname(os.path.abspath(program)), os.path.dirname(os.path.dirname(real))]))


def _shebang_python(script: str) -> str | None:
    """The interpreter a Python console script names on its ``#!`` line, if it is a Python."""
    try:
        with open(script, "rb") as f:
            first = f.readline(512)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode("utf-8", errors="replace").split()
    if not words:
        return None
    exe = words[0] if "env" not in Path(words[0]).name else (shutil.which(words[1]) if len(words) > 1 else None)
    return exe if exe and re.match(r"python[\d.]*(\.exe)?$", Path(exe).name) and os.path.exists(exe) else None


def _python_tool(root: Path, why: str, name: str, args: tuple[str, ...]) -> tuple[Linter | None, str]:
    python = project_python(root)
    if python != sys.executable and _venv_has_module(python, name):
        return Linter(name, why, args, module=name, python=python, extensions=_PY), ""
    for folder in _venv_bins(root):
        for exe in (folder / name, folder / f"{name}.exe"):
            if exe.is_file():
                return Linter(name, why, args, module=name, python=python, extensions=_PY), ""
    on_path = shutil.which(name)
    if on_path:
        shebang = _shebang_python(on_path)
        if shebang:
            return Linter(name, why, args, module=name, python=shebang, extensions=_PY), ""
        return Linter(name, why, args, program=on_path, extensions=_PY, keep=_keep_for(on_path)), ""
    if not getattr(sys, "frozen", False) and importlib.util.find_spec(name) is not None:
        return Linter(name, why, args, module=name, python=sys.executable, extensions=_PY), ""
    return None, f"{name} is not installed (not in the project's virtualenv, not on PATH)"


def _ruff(root: Path, why: str) -> tuple[Linter | None, str]:
    args = ("check", "--no-cache", "--no-fix", "--output-format=concise", "--force-exclude")
    for folder in _venv_bins(root):
        for exe in (folder / "ruff", folder / "ruff.exe"):
            if exe.is_file():
                return Linter("ruff", why, args, program=str(exe), extensions=_PY, keep=_keep_for(str(exe))), ""
    on_path = shutil.which("ruff")
    if on_path:
        return Linter("ruff", why, args, program=on_path, extensions=_PY, keep=_keep_for(on_path)), ""
    return None, "ruff is not installed (not in the project's virtualenv, not on PATH)"


def _flake8(root: Path, why: str) -> tuple[Linter | None, str]:
    return _python_tool(root, why, "flake8", ("--jobs=1", "--color=never"))


def _pyflakes(root: Path, why: str) -> tuple[Linter | None, str]:
    return _python_tool(root, why, "pyflakes", ())


def _eslint(root: Path, why: str) -> tuple[Linter | None, str]:
    node = shutil.which("node")
    local = [root / "node_modules" / ".bin" / n for n in ("eslint", "eslint.cmd")]
    program = next((str(p) for p in local if p.is_file()), None) or shutil.which("eslint")
    if program is None:
        return None, "eslint is not installed (no node_modules/.bin/eslint, none on PATH)"
    if node is None:
        return None, "Node.js (node) is not on PATH, and eslint needs it"
    return Linter("eslint", why, ("--no-color",), program=program, extensions=_JS,
                  keep=_keep_for(program) + _keep_for(node), memory_mb=8192), ""


def _go_vet(root: Path, why: str) -> tuple[Linter | None, str]:
    go = shutil.which("go")
    if go is None:
        return None, "go is not on PATH"
    gopath = os.environ.get("GOPATH") or os.path.expanduser("~/go")
    modcache = os.environ.get("GOMODCACHE") or os.path.join(gopath.split(os.pathsep)[0], "pkg", "mod")
    # no download of modules or toolchains: what the module cache holds is what vet sees
    # go.mod and go.sum are read, never updated (Go's default -mod=readonly, or the vendor folder)
    env = (("GOTOOLCHAIN", "local"), ("GOPROXY", "off"), ("GOMODCACHE", modcache))
    keep = _keep_for(go) + ((modcache,) if os.path.isdir(modcache) else ())
    return Linter("go vet", why, ("vet", "./..."), program=go, env=env, keep=keep, memory_mb=16384,
                  file_mb=512), ""


def _cargo_check(root: Path, why: str) -> tuple[Linter | None, str]:
    cargo = shutil.which("cargo")
    if cargo is None:
        return None, "cargo is not on PATH"
    cargo_home = os.environ.get("CARGO_HOME") or os.path.expanduser("~/.cargo")
    rustup_home = os.environ.get("RUSTUP_HOME") or os.path.expanduser("~/.rustup")
    env = (("CARGO_HOME", cargo_home), ("RUSTUP_HOME", rustup_home), ("CARGO_TERM_COLOR", "never"))
    keep = _keep_for(cargo) + tuple(p for p in (cargo_home, rustup_home) if os.path.isdir(p))
    # cargo writes Cargo.lock into the project (creates or updates it): so it gets a copy, and its
    # build folder lies in the sandbox (no reuse between runs: the price of a read-only project)
    return Linter("cargo check", why, ("check", "--offline", "--quiet", "--message-format=short"),
                  program=cargo, env=env, keep=keep, problem_codes=frozenset({101}), memory_mb=16384,
                  file_mb=1024, copy=True), ""


_RESOLVERS = {"ruff": _ruff, "flake8": _flake8, "pyflakes": _pyflakes, "eslint": _eslint,
              "go vet": _go_vet, "cargo check": _cargo_check}

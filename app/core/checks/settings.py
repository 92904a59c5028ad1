"""Per-project settings for the checks after Apply, kept in the app's data folder.

Why not in the project: the user's repository is theirs; a file of ours there would show up in
``git status`` and in their diffs. So each project gets one small TOML file under
``<data>/projects/``, keyed by its resolved path like the index folder (``index_dir_for``).

Loading never stops the checks: a file that cannot be read, or a value of the wrong type, gives
the defaults there and one ``ProjectSettingsError`` (returned, not raised) naming the file and
what was wrong. The bad file is left as it is; the next save first keeps a copy of it beside
itself (``<name>.toml.bad``), so a hand edit with a typo is never lost.
"""

from __future__ import annotations

import hashlib
import math
import re
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from app.core.atomic import atomic_write_text, describe_os_error
from app.core.errors import UserError

AUTO = "auto"
# The linters the checks know how to run, in the order they run (linters.py has the details).
KNOWN_LINTERS = ("ruff", "flake8", "pyflakes", "eslint", "go vet", "cargo check")
MAX_FILE_BYTES = 64 * 1024  # the file is a dozen lines; anything bigger is not ours
_TIMEOUTS = {"check_timeout_s": (1.0, 3600.0), "tests_timeout_s": (1.0, 7200.0)}


class ProjectSettingsError(UserError, ValueError):
    """The project's check settings file could not be used (in part or whole), or not saved."""


@dataclass
class ProjectSettings:
    """What runs after Apply in one project. ``linters`` is ``"auto"`` (what the project
    configures and this computer has, see linters.detect) or the user's own list of
    ``KNOWN_LINTERS`` names (an empty list: no linter)."""

    linters: str | list = AUTO
    syntax_check: bool = True
    run_tests_after_apply: bool = False
    commit_after_apply: bool = False        # read and kept here; the git side acts on it
    check_timeout_s: float = 60.0           # each linter, killed at it
    tests_timeout_s: float = 300.0          # the project's tests, when enabled
    no_checks_said: bool = False            # "this project has no checks" was said once
    missing_said: list = field(default_factory=list)  # configured tools said once to be missing

    @property
    def auto_linters(self) -> bool:
        return self.linters == AUTO


def project_settings_path(data_dir: Path, root: Path) -> Path:
    """The settings file of the project at ``root``: one per resolved folder, named after it so
    a person looking in the data folder can tell which is which."""
    resolved = Path(root).resolve()
    key = hashlib.sha256(str(resolved).encode("utf-8")).hexdigest()[:16]
    name = re.sub(r"[^\w.-]", "_", resolved.name)[:60] or "root"
    return Path(data_dir) / "projects" / f"{name}-{key}.toml"


def load_project_settings(path: Path) -> tuple[ProjectSettings, ProjectSettingsError | None]:
    """The settings at ``path`` (defaults when there is no file), and one error describing
    whatever could not be used, or None. The file is never changed here."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ProjectSettings(), None
    except OSError as e:
        return ProjectSettings(), _error(path, [f"it cannot be read ({describe_os_error(e)})"], whole=True)
    try:
        if len(data) > MAX_FILE_BYTES:
            raise ValueError(f"it is {len(data):,} bytes; these settings are a few hundred")
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return ProjectSettings(), _error(path, ["it is not UTF-8 text"], whole=True)
    except RecursionError:
        return ProjectSettings(), _error(path, ["it nests too deeply"], whole=True)
    except ValueError as e:  # tomllib.TOMLDecodeError is one
        return ProjectSettings(), _error(path, [f"it is not valid TOML ({e})"], whole=True)
    settings, notes = _from_table(raw)
    return settings, (_error(path, notes, whole=False) if notes else None)


def save_project_settings(path: Path, settings: ProjectSettings, root: Path | None = None) -> None:
    """Write atomically (a crash leaves the old file). A file on disk that does not load cleanly
    is first copied to ``<name>.bad`` so the user's text survives; a failed write is a
    ProjectSettingsError saying so (the previous file is still in place)."""
    path = Path(path)
    try:
        if path.exists() and load_project_settings(path)[1] is not None:
            shutil.copyfile(path, path.with_name(path.name + ".bad"))
        where = "" if root is None else " ".join(str(root).splitlines())  # a comment is one line
        head = f"# Offline Coder: checks after Apply for {where}\n" if where else ""
        atomic_write_text(path, head + tomli_w.dumps(_to_table(settings)))
    except OSError as e:
        raise ProjectSettingsError(
            f"The check settings could not be saved to {path}: {describe_os_error(e)}. The previous "
            "file is kept; change the setting again once the disk is writable.") from e


def _error(path: Path, notes: list[str], whole: bool) -> ProjectSettingsError:
    what = "the defaults apply" if whole else "the defaults apply to those settings"
    return ProjectSettingsError(
        f"The check settings file {path} has a problem: {'; '.join(notes)}. Until it is fixed {what}; "
        f"the file is left as it is (a copy is kept as {path.name}.bad if the app saves over it).")


def _to_table(s: ProjectSettings) -> dict:
    return {"linters": s.linters if s.auto_linters else list(s.linters), "syntax_check": s.syntax_check,
            "run_tests_after_apply": s.run_tests_after_apply, "commit_after_apply": s.commit_after_apply,
            "check_timeout_s": s.check_timeout_s, "tests_timeout_s": s.tests_timeout_s,
            "no_checks_said": s.no_checks_said, "missing_said": list(s.missing_said)}


def _from_table(raw: dict) -> tuple[ProjectSettings, list[str]]:
    """Each known key checked on its own: a bad one keeps its default and gets a note;
    unknown keys are ignored (a newer version's file still loads)."""
    s, notes = ProjectSettings(), []
    if "linters" in raw:
        value = raw["linters"]
        if value == AUTO:
            s.linters = AUTO
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            unknown = [v for v in value if v not in KNOWN_LINTERS]
            if unknown:
                notes.append(f"'linters' names {', '.join(map(repr, unknown))}, which this app cannot "
                             f"run (it knows {', '.join(KNOWN_LINTERS)}); those are left out")
            s.linters = [v for v in dict.fromkeys(value) if v in KNOWN_LINTERS]
        else:
            notes.append(f"'linters' should be \"auto\" or a list of names, not {_shown(value)}")
    for name in ("syntax_check", "run_tests_after_apply", "commit_after_apply", "no_checks_said"):
        if name in raw:
            if isinstance(raw[name], bool):
                setattr(s, name, raw[name])
            else:
                notes.append(f"'{name}' should be true or false, not {_shown(raw[name])}")
    for name, (lo, hi) in _TIMEOUTS.items():
        if name in raw:
            value = raw[name]
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
                    and lo <= value <= hi:
                setattr(s, name, float(value))
            else:
                notes.append(f"'{name}' should be a number of seconds from {lo:g} to {hi:g}, not {_shown(value)}")
    if "missing_said" in raw:
        value = raw["missing_said"]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            s.missing_said = [v for v in value if v in KNOWN_LINTERS]
        else:
            notes.append(f"'missing_said' should be a list of names, not {_shown(value)}")
    return s, notes


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."

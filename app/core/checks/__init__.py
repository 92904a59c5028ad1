"""Checks after Apply: does the project still parse, lint and pass its tests after a change?

* ``settings.py``: the per-project settings file (in the app's data folder, not the project).
* ``syntax.py``: tree-sitter syntax errors of a file, the ones a change introduces, per hunk.
* ``linters.py``: which linters the project configures and this computer has.
* ``run.py``: running them (sandboxed, timed out, cancellable, output cut) and the tests.

``checks_after_apply`` is the whole round for the window's worker: load the project's settings,
run the checks, save what was said once.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, Iterable

from app.core.checks.linters import Detection, Linter, detect
from app.core.checks.run import (CANCELLED, ERROR, FAILED, NOTICE, PASSED, TIMED_OUT, CheckResult,
                                 human_size, run_checks, run_linter, run_tests)
from app.core.checks.settings import (AUTO, KNOWN_LINTERS, ProjectSettings, ProjectSettingsError,
                                      load_project_settings, project_settings_path, save_project_settings)
from app.core.checks.syntax import (SyntaxProblem, checkable, introduced_errors, problems_by_hunk,
                                    syntax_errors)

__all__ = [
    "AUTO", "CANCELLED", "ERROR", "FAILED", "KNOWN_LINTERS", "NOTICE", "PASSED", "TIMED_OUT",
    "CheckResult", "Detection", "Linter", "ProjectSettings", "ProjectSettingsError", "SyntaxProblem",
    "checkable", "checks_after_apply", "detect", "human_size", "introduced_errors", "load_project_settings",
    "problems_by_hunk", "project_settings_path", "run_checks", "run_linter", "run_tests",
    "save_project_settings", "syntax_errors",
]


def checks_after_apply(data_dir: Path, root: Path, changed_paths: Iterable[str], *,
                       cancel: threading.Event | None = None,
                       on_progress: Callable[[str], None] | None = None,
                       before: dict[str, str] | None = None) -> list[CheckResult]:
    """Load the project's check settings, run the checks, and save the settings when a
    once-only notice was said. A bad settings file becomes a first NOTICE result (its message
    names the file) and the defaults apply; a failed save becomes a last one."""
    path = project_settings_path(data_dir, root)
    settings, problem = load_project_settings(path)
    said = (settings.no_checks_said, list(settings.missing_said))
    results = run_checks(root, changed_paths, settings, cancel=cancel, on_progress=on_progress, before=before)
    if problem is not None:
        results.insert(0, CheckResult("checks", NOTICE, str(problem)))
    elif (settings.no_checks_said, list(settings.missing_said)) != said:
        # a bad file is not saved over here: the user fixes it, or a settings change saves
        # (keeping a copy); until then a notice may repeat, which beats losing their text
        try:
            save_project_settings(path, settings, root)
        except ProjectSettingsError as e:
            results.append(CheckResult("checks", NOTICE, str(e)))
    return results

"""What git says about the project: branch, an operation in progress, files with uncommitted edits.

Git is run as installed (``git`` on PATH), never re-implemented: its on-disk formats change
(worktrees, reftable, split index) and only git reads them right. Every call goes through
``run_git``, which makes it safe to run from a window: a timeout (git is stopped with SIGTERM
first, so that it removes its ``index.lock``), no prompt (``GIT_TERMINAL_PROMPT=0``, no stdin),
no pager, English messages (``LC_ALL=C``), no optional locks (a status in the background must
not make the user's own git fail), and no network at all (``protocol.allow=never`` reaches
hooks too, through ``GIT_CONFIG_PARAMETERS``; a partial clone never fetches a missing object).
Written and tested on Linux; Windows and macOS are untested.

Committing and undoing a commit live in ``git_commit``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import UserError

READ_TIMEOUT = 20.0
# Inherited variables that would point git at another repository or index than the project's.
_REDIRECTS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR",
              "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_PREFIX", "GIT_LITERAL_PATHSPECS",
              "GIT_GLOB_PATHSPECS", "GIT_NOGLOB_PATHSPECS", "GIT_ICASE_PATHSPECS")
# Marker files (in the per-worktree git dir) of each operation that is half done, in git's own order.
OPERATIONS = (("rebase-merge", "rebase"), ("rebase-apply/applying", "am"), ("rebase-apply", "rebase"),
              ("MERGE_HEAD", "merge"), ("CHERRY_PICK_HEAD", "cherry-pick"), ("REVERT_HEAD", "revert"),
              ("BISECT_LOG", "bisect"))


class GitError(UserError, RuntimeError):
    """Git refused or failed; the message says what git said and what to do."""


def git_executable() -> str | None:
    """The installed git, looked up on every call (PATH may change while the app runs)."""
    return shutil.which("git")


def git_env() -> dict[str, str]:
    """The app's environment for git: nothing that points it elsewhere, nothing that waits for a person."""
    env = {k: v for k, v in os.environ.items() if k not in _REDIRECTS}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_PAGER="cat", PAGER="cat", LC_ALL="C", LANGUAGE="",
               GIT_OPTIONAL_LOCKS="0", GIT_NO_LAZY_FETCH="1")
    return env


def run_git(cwd: Path, args: Sequence[str], *, stdin: str | None = None, timeout: float = READ_TIMEOUT,
            check: bool = True) -> subprocess.CompletedProcess:
    """Run ``git args`` in ``cwd``; raises ``GitError`` (with git's own words) on failure when ``check``.

    Output is decoded as UTF-8 (paths and messages are bytes to git; a bad byte becomes U+FFFD).
    """
    exe = git_executable()
    if exe is None:
        raise GitError("Git is not installed (no `git` on PATH), so the project's git state is not used.")
    cmd = [exe, "-c", "protocol.allow=never", "-c", "core.quotepath=off", *args]
    kwargs: dict = {}
    if sys.platform == "win32":
        kwargs["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
    else:
        kwargs["start_new_session"] = True  # its hooks too are stopped on a timeout
    try:
        proc = subprocess.Popen(cmd, cwd=cwd, env=git_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.PIPE if stdin is not None
                                else subprocess.DEVNULL, **kwargs)
    except OSError as e:
        raise GitError(f"Could not run git in {cwd}: {e.strerror or e}.") from e
    try:
        out, err = proc.communicate(None if stdin is None else stdin.encode("utf-8"), timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(proc)
        raise GitError(f"`git {_shown(args)}` did not finish within {timeout:.0f} s and was stopped. "
                       "Check the repository with git yourself (a hook that waits for input, a huge "
                       "repository, a network drive).") from None
    result = subprocess.CompletedProcess(cmd, proc.returncode, out.decode("utf-8", "replace"),
                                         err.decode("utf-8", "replace"))
    if check and result.returncode != 0:
        raise GitError(describe_failure(args, result))
    return result


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM first: git removes its lock files on it, SIGKILL would leave ``index.lock`` behind."""
    for sig in (signal.SIGTERM, getattr(signal, "SIGKILL", signal.SIGTERM)):
        try:
            if sys.platform == "win32":
                proc.terminate() if sig == signal.SIGTERM else proc.kill()
            else:
                os.killpg(proc.pid, sig)
            proc.communicate(timeout=3)
            return
        except (OSError, subprocess.TimeoutExpired):
            continue  # then SIGKILL; a child that left the group keeps the pipes: give up rather than wait


def _shown(args: Sequence[str]) -> str:
    return " ".join(a for a in args if not a.startswith(":(literal)"))[:80]


def describe_failure(args: Sequence[str], result: subprocess.CompletedProcess) -> str:
    said = "\n".join(s for s in (result.stderr.strip(), result.stdout.strip()) if s)[-4000:] or "(no message)"
    if "dubious ownership" in said:
        return ("Git refuses this repository because it belongs to another user (\"dubious ownership\"). "
                "If you trust it, allow it once with: git config --global --add safe.directory <the folder "
                f"git names below>.\n{said}")
    return f"`git {_shown(args)}` failed:\n{said}"


@dataclass(frozen=True)
class RepoState:
    """A repository as seen from the project folder (which may be a subfolder of it)."""

    project: Path              # the project folder git runs in; paths below are relative to it
    toplevel: Path             # the repository's working tree
    branch: str | None         # None: HEAD is detached
    head: str | None           # full sha of HEAD; None before the first commit
    operation: str | None      # "merge", "rebase", "am", "cherry-pick", "revert", "bisect" or None
    prefix: str = ""           # the project folder relative to the top, "" or ending in "/"

    @property
    def detached(self) -> bool:
        return self.branch is None

    @property
    def short(self) -> str:
        return self.head[:7] if self.head else ""

    def where(self) -> str:
        """``main``, ``main (no commits yet)`` or ``detached at 1a2b3c4``."""
        if self.branch is None:
            return f"detached at {self.short}"
        return self.branch if self.head else f"{self.branch} (no commits yet)"

    def dirty(self, paths: Iterable[str]) -> list[str]:
        """Those of ``paths`` (relative to the project) with uncommitted edits, in their order:
        staged or not, untracked (and not ignored), deleted, or in conflict. Asks git afresh."""
        paths = list(dict.fromkeys(paths))
        if not paths:
            return []
        r = run_git(self.project, ["status", "--porcelain=v2", "-z", "--untracked-files=all", "--no-renames",
                                   "--", *literal(paths)])
        changed = set(_status_paths(r.stdout))
        return [p for p in paths if self.prefix + p in changed]

    def line(self, paths: Iterable[str] = ()) -> str:
        """The status bar's words: ``git: main · 2 of the files to change have uncommitted edits``."""
        parts = [f"git: {self.where()}"]
        if self.operation:
            parts.append(f"{self.operation} in progress")
        paths = list(paths)
        n = len(self.dirty(paths)) if paths else 0
        if n:
            parts.append(f"{n} of the files to change {'has' if n == 1 else 'have'} uncommitted edits")
        return " · ".join(parts)


def literal(paths: Iterable[str]) -> list[str]:
    """Pathspecs that match exactly these names (a ``*`` or a leading ``:`` in a name is no pattern)."""
    return [f":(literal){p}" for p in paths]


def _status_paths(out: str) -> list[str]:
    """Paths (relative to the top) of ``git status --porcelain=v2 -z`` entries."""
    paths = []
    entries = iter(out.split("\0"))
    for entry in entries:
        kind = entry[:1]
        if kind == "1":
            paths.append(entry.split(" ", 8)[8])
        elif kind == "u":
            paths.append(entry.split(" ", 10)[10])
        elif kind == "2":  # a rename: the new name, then the old one as the next field
            paths.append(entry.split(" ", 9)[9])
            paths.append(next(entries, ""))
        elif kind in ("?", "!"):
            paths.append(entry[2:])
    return paths


def repo_state(root: Path) -> RepoState | None:
    """The project's git state; None when it is not in a git working tree or git is not installed.

    Raises ``GitError`` when git is there but refuses (a repository owned by another user) or
    hangs, so that a broken repository is not mistaken for none.
    """
    root = Path(root)
    if git_executable() is None or not root.is_dir():
        return None
    r = run_git(root, ["rev-parse", "--show-toplevel"], check=False)
    if r.returncode != 0:
        said = r.stderr
        if "not a git repository" in said or "must be run in a work tree" in said:
            return None
        raise GitError(describe_failure(["rev-parse", "--show-toplevel"], r))
    toplevel = Path(r.stdout.rstrip("\n")).resolve()
    prefix = run_git(root, ["rev-parse", "--show-prefix"]).stdout.rstrip("\n")
    sym = run_git(root, ["symbolic-ref", "-q", "--short", "HEAD"], check=False)
    branch = sym.stdout.strip() if sym.returncode == 0 else None
    head = run_git(root, ["rev-parse", "-q", "--verify", "HEAD^{commit}"], check=False)
    args = ["rev-parse"] + [a for marker, _ in OPERATIONS for a in ("--git-path", marker)]
    markers = run_git(root, args).stdout.split("\n")
    operation = next((op for (_, op), path in zip(OPERATIONS, markers) if path and (root / path).exists()), None)
    return RepoState(root.resolve(), toplevel, branch, head.stdout.strip() if head.returncode == 0 else None,
                     operation, prefix)


def warn_before_apply(state: RepoState | None, paths: Iterable[str], committing: bool = False) -> str | None:
    """What to confirm before applying over git state, or None when nothing needs saying.

    ``committing``: the project commits each applied change; then the commit also takes in any
    uncommitted edits of those files, and it is skipped in the middle of an operation or on a
    detached HEAD (``git_commit.commit_blocker`` says so again at commit time).
    """
    if state is None:
        return None
    notes = []
    dirty = state.dirty(paths)
    if dirty:
        names = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
        notes.append(f"{names} {'has' if len(dirty) == 1 else 'have'} uncommitted edits; the change is applied "
                     "on top of them (Undo puts back exactly what is there now)"
                     + ("; the commit will include your edits too." if committing else "."))
    if state.operation:
        notes.append(f"The repository is in the middle of a {state.operation}"
                     + ("; committing is off until you finish or abort it with git." if committing
                        else ": you are changing files git is still working on."))
    if state.detached:
        notes.append(f"HEAD is detached (at {state.short}), not on a branch"
                     + ("; the change will not be committed (switch to a branch to have it committed)."
                        if committing else "."))
    return " ".join(notes) or None

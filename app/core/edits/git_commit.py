"""Commit an applied change (optional, per project), and take the commit back on Undo.

The commit holds only the applied files: ``git commit --only -- paths`` builds it from a
temporary index (HEAD plus those paths), so whatever else the user has staged stays staged and
out of it, and the real index is only updated once the commit is made (a hook that refuses
leaves it as it was). The author is the user's own ``user.name``/``user.email``; git is told
never to guess one (``user.useConfigOnly``). Hooks run and their output is the error. Nothing
is ever pushed.

Undo always restores the files byte-exactly from the undo record (``apply.undo``): a checkout
of the parent commit would lose uncommitted edits the files had before the apply (the commit
took them in) and need not give back the same bytes (eol conversion, filters). ``undo_commit``
only takes the commit off the branch, when it is still the tip and nowhere else (remote-tracking
branches, tags): a compare-and-swap ``update-ref`` moves the branch back to the parent, and the
index entries of those paths go back to the parent's. The working files are not touched by git.
"""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

from app.core.edits.apply import UndoRecord, UndoStore, undo
from app.core.edits.formats import FENCE_OPEN, REPLACE_TAIL, SEARCH_HEAD, path_from_line
from app.core.edits.git import GitError, RepoState, git_executable, literal, repo_state, run_git

COMMIT_TIMEOUT = 300.0  # hooks may run linters or tests
SUBJECT_MAX, WIDTH, BODY_LINES, BODY_CHARS = 72, 72, 30, 2000
TRAILER = "Applied-with: Offline Coder"
_MENTION = re.compile(r"(?<!\S)@[\w./\\-]+")
_COMMAND = re.compile(r"^\s*/[a-z]+\b", re.IGNORECASE)
_LIST_ITEM = re.compile(r"^(\s*(?:[-*+]|\d+[.)])\s+)")


def commit_kept(sha: str) -> str:
    """What to tell the user when Undo restored the files but left the commit in history."""
    return (f"The commit {sha[:7]} is no longer the last one (or it was shared): files restored, commit kept. "
            "Revert it with git if it must go from the history too.")


# ---- the message -------------------------------------------------------------------------------
def explanation(answer: str) -> str:
    """The answer's prose: fenced blocks, SEARCH/REPLACE blocks, bare diffs and the path labels
    that introduce them left out."""
    lines = answer.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        m = FENCE_OPEN.match(line)
        if m or SEARCH_HEAD.match(line) or (line.startswith("--- ") and lines[i + 1:i + 2]
                                            and lines[i + 1].startswith("+++ ")):
            if out and path_from_line(out[-1]):
                out.pop()  # the file name that labels the block
            i = _block_end(lines, i, m.group(2) if m else None)
            continue
        out.append(line)
        i += 1
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _block_end(lines: list[str], i: int, fence: str | None) -> int:
    """The index after the block that starts at ``lines[i]`` (an unclosed one runs to the end)."""
    j = i + 1
    if fence is not None:
        while j < len(lines):
            s = lines[j].strip()
            j += 1
            if len(s) >= len(fence) and set(s) == {fence[0]}:
                return j
        return j
    if SEARCH_HEAD.match(lines[i]):
        while j < len(lines):
            j += 1
            if REPLACE_TAIL.match(lines[j - 1]):
                return j
        return j
    while j < len(lines) and lines[j][:1] in (" ", "+", "-", "@", "\\"):  # a bare unified diff
        j += 1
    return j


def commit_subject(request: str) -> str:
    """The request as one line of at most 72 characters: no ``/code``, no ``@file`` mentions."""
    text = _COMMAND.sub("", request, count=1)
    text = " ".join(_MENTION.sub(" ", text).split()).strip(" :;,-")
    if not text:
        return "Apply a change proposed by the model"
    text = text[0].upper() + text[1:]
    if len(text) > SUBJECT_MAX:
        cut = text[:SUBJECT_MAX - 1]
        return (cut.rsplit(" ", 1)[0] if " " in cut[20:] else cut).rstrip(" .,;:") + "…"
    return text[:-1] if text.endswith(".") and not text.endswith("..") else text


def _paragraph_lines(para: str) -> list[str]:
    """One paragraph wrapped at 72: soft-wrapped prose joined first, list items and headings kept apart."""
    items: list[tuple[str, str]] = []  # (first-line prefix, text)
    for line in para.splitlines():
        item = _LIST_ITEM.match(line)
        if item or line.lstrip().startswith("#") or not items:
            prefix = item.group(1) if item else ""
            items.append((prefix, line[len(prefix):].strip()))
        else:
            prefix, text = items[-1]
            items[-1] = (prefix, f"{text} {line.strip()}")
    out: list[str] = []
    for prefix, text in items:
        out.extend(textwrap.wrap(text, WIDTH, initial_indent=prefix, subsequent_indent=" " * len(prefix),
                                 break_long_words=False, break_on_hyphens=False) or [prefix.rstrip()])
    return out


def commit_message(request: str, answer: str) -> str:
    """Subject from the request, body from the model's explanation (wrapped at 72, bounded), trailer.

    ``answer`` may be the whole answer: its code is left out here.
    """
    body_lines: list[str] = []
    for para in re.split(r"\n\s*\n", explanation(answer)):
        if para.strip():
            body_lines.extend(([""] if body_lines else []) + _paragraph_lines(para))
    text = "\n".join(body_lines)
    if len(body_lines) > BODY_LINES or len(text) > BODY_CHARS:
        text = "\n".join(body_lines[:BODY_LINES])[:BODY_CHARS].rstrip() + "\n[…]"
    parts = [commit_subject(request)] + ([text] if text else []) + [TRAILER]
    return "\n\n".join(parts) + "\n"


# ---- committing --------------------------------------------------------------------------------
def identity(state: RepoState) -> tuple[str, str] | None:
    """The user's name and e-mail as git would use them (config, or ``GIT_AUTHOR_*``), or None."""
    found = []
    for key, var in (("user.name", "GIT_AUTHOR_NAME"), ("user.email", "GIT_AUTHOR_EMAIL")):
        r = run_git(state.project, ["config", "--get", key], check=False)
        value = r.stdout.strip() if r.returncode == 0 else os.environ.get(var, "").strip()
        if not value:
            return None
        found.append(value)
    return found[0], found[1]


NO_IDENTITY = ("Git does not know your name and e-mail, so changes cannot be committed (the app never "
               "makes one up). Set them once with:\n  git config --global user.name \"Your Name\"\n"
               "  git config --global user.email \"you@example.com\"\n(leave out --global for this "
               "repository only).")


def commit_blocker(state: RepoState | None) -> str | None:
    """Why a commit cannot be made now, or None. Worth asking before the apply too."""
    if state is None:
        if git_executable() is None:
            return "Git is not installed (no `git` on PATH), so changes cannot be committed."
        return "The project is not in a git repository, so changes cannot be committed."
    if state.operation:
        return (f"The repository is in the middle of a {state.operation}, so changes cannot be committed: "
                f"finish or abort the {state.operation} with git first.")
    if state.detached:
        return (f"HEAD is detached (at {state.short}), so changes cannot be committed: a commit on no branch "
                "is easy to lose. Switch to a branch (git switch <branch>) to have them committed.")
    if identity(state) is None:
        return NO_IDENTITY
    return None


def commit_applied(root: Path, paths: list[str], message: str, timeout: float = COMMIT_TIMEOUT) -> str | None:
    """Commit exactly ``paths`` (relative to the project) as they are on disk; the new commit's sha.

    None when there is nothing to commit (the files match HEAD, or git ignores them). Raises
    ``GitError``, having committed nothing and left the index as it was, when a commit cannot be
    made (see ``commit_blocker``) or git or a hook refuses (its output is in the message).
    """
    state = repo_state(root)
    reason = commit_blocker(state)
    if reason:
        raise GitError(reason)
    assert state is not None
    paths = list(dict.fromkeys(paths))
    new = _z(run_git(state.project, ["ls-files", "-z", "--others", "--exclude-standard", "--", *literal(paths)]))
    if state.head:
        changed = _z(run_git(state.project, ["diff", "--name-only", "-z", "--relative", "--no-renames",
                                             "--no-ext-diff", "HEAD", "--", *literal(paths)]))
    else:
        changed = _z(run_git(state.project, ["ls-files", "-z", "--", *literal(paths)]))
    chosen = [p for p in paths if p in set(new) | set(changed)]
    if not chosen:
        return None
    if new:  # an intent-to-add entry makes a new file known to `commit --only`; taken back on failure
        run_git(state.project, ["add", "--intent-to-add", "--", *literal(new)])
    r = run_git(state.project, ["-c", "user.useConfigOnly=true", "commit", "--only", "--no-edit", "-F", "-",
                                "--cleanup=whitespace", "--", *literal(chosen)],
                stdin=message, timeout=timeout, check=False)
    if r.returncode != 0:
        if new:
            run_git(state.project, ["rm", "--cached", "-q", "--ignore-unmatch", "--", *literal(new)], check=False)
        said = "\n".join(s for s in (r.stderr.strip(), r.stdout.strip()) if s)[-4000:]
        raise GitError("Nothing was committed: git commit refused (a hook, or git itself):\n" + said)
    return run_git(state.project, ["rev-parse", "HEAD"]).stdout.strip()


def _z(result) -> list[str]:
    return [p for p in result.stdout.split("\0") if p]


# ---- undo --------------------------------------------------------------------------------------
def undo_commit(root: Path, sha: str, paths: list[str]) -> bool:
    """Take commit ``sha`` off the branch when it is still its tip and nowhere else; True if done.

    The branch goes back to the parent (or to no commit, for a first commit) and the index
    entries of ``paths`` to the parent's; the working files are left to the byte-exact undo.
    False (nothing changed) when the commit is not HEAD any more, HEAD is detached, an
    operation is in progress, or a remote-tracking branch or tag holds it.
    """
    state = repo_state(root)
    if state is None or state.detached or state.operation or state.head != sha:
        return False
    if run_git(state.project, ["for-each-ref", "--contains", sha, "--format=%(refname)",
                               "refs/remotes", "refs/tags"]).stdout.strip():
        return False
    parent = run_git(state.project, ["rev-parse", "-q", "--verify", f"{sha}^1"], check=False)
    note = f"offline-coder: undo {sha[:12]}"
    # The index first (one atomic write), then the branch, only if it still points at ``sha``.
    if parent.returncode == 0:
        run_git(state.project, ["reset", "-q", parent.stdout.strip(), "--", *literal(paths)])
        move = ["update-ref", "-m", note, "HEAD", parent.stdout.strip(), sha]
    else:  # the first commit of the branch: it becomes unborn again
        run_git(state.project, ["rm", "--cached", "-q", "--ignore-unmatch", "--", *literal(paths)])
        move = ["update-ref", "-m", note, "-d", "HEAD", sha]
    try:
        run_git(state.project, move)
    except GitError:
        run_git(state.project, ["reset", "-q", "--", *literal(paths)], check=False)  # the index as the commit has it
        raise
    return True


def undo_applied(store: UndoStore, record: UndoRecord, sha: str | None,
                 force: bool = False) -> tuple[list[str], str | None]:
    """Undo an applied (and maybe committed) change: files byte-exactly first, then the commit.

    Returns the restored paths and a warning (None when there was no commit or it was removed).
    ``UndoConflict`` from ``apply.undo`` comes through as it is, before git is touched.
    """
    restored = undo(store, record, force)
    if not sha:
        return restored, None
    try:
        removed = undo_commit(Path(record.root), sha, record.paths)
    except GitError as e:
        return restored, f"{commit_kept(sha)}\n{e}"
    return restored, None if removed else commit_kept(sha)

"""Git-aware edits on real repositories: state, warnings, commits of applied changes, their undo.

Every repository is made here with the installed git and its own local identity; HOME is an empty
folder, so the user's own git config plays no part."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from app.core.edits import StaleFileError, UndoConflict, UndoStore, apply_changes, plan_changes
from app.core.edits.git import GitError, repo_state, run_git, warn_before_apply
from app.core.edits.git_commit import (NO_IDENTITY, TRAILER, commit_applied, commit_blocker, commit_kept,
                                       commit_message, commit_subject, explanation, undo_applied, undo_commit)

FENCE = "```"


@pytest.fixture(autouse=True)
def clean_git_env(tmp_path, monkeypatch):
    (home := tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL",
                "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(var, raising=False)


def git(repo: Path, *args: str, check: bool = True) -> str:
    r = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
    if check and r.returncode != 0:
        raise AssertionError(f"git {args} failed: {r.stderr}")
    return r.stdout


def make_repo(path: Path, identity: bool = True, commit: bool = True) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    if identity:
        git(path, "config", "user.name", "Ada Lovelace")
        git(path, "config", "user.email", "ada@example.org")
    if commit:
        files = {"a.py": b"def a():\r\n    return 1\r\n", "old.py": b"OLD = 1\n", "other.py": b"x = 1\n",
                 ".gitignore": b"build/\n*.log\n"}  # a.py with CRLF endings: undo must keep them
        for name, data in files.items():
            (path / name).write_bytes(data)
        git(path, "add", ".")
        git(path, "commit", "-q", "-m", "start")
    return path


@pytest.fixture
def repo(tmp_path) -> Path:
    return make_repo(tmp_path / "repo")


@pytest.fixture
def store(tmp_path) -> UndoStore:
    return UndoStore(tmp_path / "undo")


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and ".git" not in p.relative_to(root).parts}


def conflict(repo: Path) -> None:
    """Two branches that change the same line of other.py."""
    git(repo, "switch", "-q", "-c", "side")
    (repo / "other.py").write_text("x = 2\n")
    git(repo, "commit", "-q", "-am", "side")
    git(repo, "switch", "-q", "main")
    (repo / "other.py").write_text("x = 3\n")
    git(repo, "commit", "-q", "-am", "main")


ANSWER = (f"I made `a` return 2 and added a helper.\n\na.py\n{FENCE}python\ndef a():\n    return 2\n{FENCE}\n\n"
          f"new.py\n{FENCE}python\ndef helper():\n    return a()\n{FENCE}\n\nDELETE old.py\n\n"
          "The old module is no longer used, so it goes.\n")


def plan_and_apply(repo: Path, store: UndoStore, answer: str = ANSWER):
    cs = plan_changes(repo, answer)
    assert not cs.problems
    record = apply_changes(repo, [(c, None) for c in cs.changes], store, label="test")
    return cs, record


# ---- bad input first ----------------------------------------------------------------------------
def test_a_folder_outside_any_repository_or_missing_is_none(tmp_path):
    (tmp_path / "plain").mkdir()  # GIT_CEILING_DIRECTORIES: no repository above tmp_path counts
    assert repo_state(tmp_path / "plain") is None
    assert repo_state(tmp_path / "missing") is None
    assert "not in a git repository" in commit_blocker(None)


def test_without_git_installed_the_state_is_none_and_commit_says_why(repo, tmp_path, monkeypatch):
    empty = tmp_path / "nobin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert repo_state(repo) is None
    with pytest.raises(GitError, match="Git is not installed"):
        commit_applied(repo, ["a.py"], "x\n")


def test_a_repository_of_another_user_is_refused_with_the_way_out(repo):
    if os.geteuid() != 0:
        pytest.skip("needs root to give the repository to another user")
    subprocess.run(["chown", "-R", "4242:4242", str(repo)], check=True)
    try:
        with pytest.raises(GitError, match="safe.directory"):
            repo_state(repo)
    finally:
        subprocess.run(["chown", "-R", f"{os.getuid()}:{os.getgid()}", str(repo)], check=True)


def test_detached_head_is_shown_warned_and_never_committed_on(repo, store):
    sha = head(repo)
    git(repo, "checkout", "-q", "--detach")
    state = repo_state(repo)
    assert (state.branch, state.detached, state.head) == (None, True, sha)
    assert state.line() == f"git: detached at {sha[:7]}"
    warning = warn_before_apply(state, ["a.py"], committing=True)
    assert "detached" in warning and "will not be committed" in warning
    plan_and_apply(repo, store)
    with pytest.raises(GitError, match=r"HEAD is detached.*git switch"):
        commit_applied(repo, ["a.py", "new.py", "old.py"], "x\n")
    assert head(repo) == sha and git(repo, "symbolic-ref", "-q", "HEAD", check=False) == ""
    assert "?? new.py" in git(repo, "status", "--short")  # not left in the index


def test_merge_in_progress_turns_committing_off(repo, store):
    conflict(repo)
    git(repo, "merge", "-q", "side", check=False)
    before = head(repo)
    state = repo_state(repo)
    assert (state.branch, state.operation) == ("main", "merge")
    assert state.dirty(["other.py", "a.py"]) == ["other.py"]  # the conflicted file
    assert state.line() == "git: main · merge in progress"
    assert "middle of a merge; committing is off" in warn_before_apply(state, ["a.py"], committing=True)
    assert "middle of a merge" in warn_before_apply(state, ["a.py"])
    plan_and_apply(repo, store)
    with pytest.raises(GitError, match="middle of a merge"):
        commit_applied(repo, ["a.py"], "x\n")
    assert head(repo) == before and (repo / ".git" / "MERGE_HEAD").exists()


def test_rebase_in_progress_is_named(repo):
    conflict(repo)
    git(repo, "switch", "-q", "side")
    git(repo, "rebase", "main", check=False)
    state = repo_state(repo)
    assert state.operation == "rebase" and state.detached
    assert "rebase in progress" in state.line()
    assert "middle of a rebase" in warn_before_apply(state, [], committing=True)
    assert "middle of a rebase" in commit_blocker(state)


@pytest.mark.parametrize("operation", ["cherry-pick", "revert", "bisect"])
def test_other_operations_in_progress_are_named(repo, operation):
    conflict(repo)
    if operation == "cherry-pick":
        git(repo, "cherry-pick", "side", check=False)
    elif operation == "revert":  # a revert that conflicts with a later change
        (repo / "other.py").write_text("x = 4\n")
        git(repo, "commit", "-q", "-am", "four")
        git(repo, "revert", "--no-edit", "HEAD~1", check=False)
    else:
        git(repo, "bisect", "start")
    assert repo_state(repo).operation == operation


def test_without_an_identity_nothing_is_committed_and_the_command_is_named(tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "anon", identity=False, commit=False)
    (repo / "a.py").write_text("A = 1\n")
    subprocess.run(["git", "-c", "user.name=Setup", "-c", "user.email=setup@example.org", "commit", "-q",
                    "--allow-empty", "-m", "start"], cwd=repo, check=True)
    monkeypatch.setenv("EMAIL", "guessed@example.org")  # git would guess from this; we must not
    before = head(repo)
    with pytest.raises(GitError) as e:
        commit_applied(repo, ["a.py"], "x\n")
    assert str(e.value) == NO_IDENTITY and 'git config --global user.email "you@example.com"' in str(e.value)
    assert head(repo) == before and git(repo, "status", "--short") == "?? a.py\n"


def test_a_refusing_hook_is_the_error_and_the_index_is_as_it_was(repo, store):
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'lint says no: a.py line 2' >&2\nexit 1\n")
    hook.chmod(0o755)
    (repo / "other.py").write_text("x = 5\n")
    git(repo, "add", "other.py")
    plan_and_apply(repo, store)
    before, status = head(repo), git(repo, "status", "--porcelain")
    with pytest.raises(GitError, match="lint says no: a.py line 2"):
        commit_applied(repo, ["a.py", "new.py", "old.py"], "x\n")
    assert head(repo) == before and git(repo, "status", "--porcelain") == status
    assert "?? new.py" in status and "M  other.py" in status


def test_a_hook_that_hangs_is_stopped_without_leaving_a_lock(repo, store):
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\nsleep 60\n")
    hook.chmod(0o755)
    before = head(repo)
    plan_and_apply(repo, store)
    with pytest.raises(GitError, match="did not finish"):
        commit_applied(repo, ["a.py"], "x\n", timeout=2)
    assert head(repo) == before and not (repo / ".git" / "index.lock").exists()
    assert git(repo, "status", "--short") != ""  # git works on


def test_git_never_goes_over_the_network(repo, tmp_path):
    other = make_repo(tmp_path / "other")
    with pytest.raises(GitError, match="not allowed"):
        run_git(repo, ["fetch", str(other)])
    with pytest.raises(GitError, match="not allowed"):
        run_git(repo, ["ls-remote", f"file://{other}"])


# ---- state ------------------------------------------------------------------------------------
def test_branch_and_a_clean_line(repo):
    state = repo_state(repo)
    assert (state.branch, state.head, state.operation, state.toplevel) == ("main", head(repo), None, repo.resolve())
    assert state.line() == state.line(["a.py", "other.py"]) == "git: main"
    assert warn_before_apply(state, ["a.py", "other.py"], committing=True) is None


def test_dirty_detection_of_every_kind(repo):
    (repo / "a.py").write_text("changed\n")                      # modified, not staged
    (repo / "other.py").write_text("x = 9\n")
    git(repo, "add", "other.py")                                 # staged
    (repo / "old.py").unlink()                                   # deleted
    (repo / "fresh * ñ.py").write_text("new\n")                  # untracked, odd name
    (repo / "build").mkdir()
    (repo / "build" / "out.py").write_text("ignored\n")          # ignored: not git's to track
    paths = ["fresh * ñ.py", "a.py", "build/out.py", "old.py", "other.py", ".gitignore", "nowhere.py"]
    state = repo_state(repo)
    assert state.dirty(paths) == ["fresh * ñ.py", "a.py", "old.py", "other.py"]
    assert state.line(paths) == "git: main · 4 of the files to change have uncommitted edits"
    assert state.line(["a.py", ".gitignore"]) == "git: main · 1 of the files to change has uncommitted edits"
    warning = warn_before_apply(state, ["a.py", ".gitignore"])
    assert warning.startswith("a.py has uncommitted edits; the change is applied on top of them")
    assert "the commit" not in warning
    assert "the commit will include your edits too" in warn_before_apply(state, ["a.py"], committing=True)


def test_a_project_in_a_subfolder_of_the_repository(repo, store):
    sub = repo / "pkg"
    sub.mkdir()
    (sub / "m.py").write_text("M = 1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "pkg")
    (sub / "m.py").write_text("M = 2\n")
    state = repo_state(sub)
    assert (state.toplevel, state.prefix) == (repo.resolve(), "pkg/")
    assert state.dirty(["m.py", "a.py"]) == ["m.py"]  # a.py here means pkg/a.py, which is clean
    sha = commit_applied(sub, ["m.py"], "Change m\n")
    assert git(repo, "show", "--name-only", "--format=", sha) == "pkg/m.py\n"


def test_a_linked_worktree_has_its_own_branch(repo, tmp_path):
    git(repo, "worktree", "add", "-q", "-b", "feature", str(tmp_path / "wt"))
    assert repo_state(tmp_path / "wt").branch == "feature"
    assert repo_state(repo).branch == "main"


# ---- the message ------------------------------------------------------------------------------
def test_the_subject_comes_from_the_request():
    assert commit_subject("/code  make @src/app.py   retry on\ntimeouts.") == "Make retry on timeouts"
    assert commit_subject("/code @a.py") == "Apply a change proposed by the model"
    assert commit_subject("mail ada@example.org about it") == "Mail ada@example.org about it"
    long = commit_subject("/code " + "rename every helper in the parser module " * 5)
    assert len(long) <= 72 and long.endswith("…") and not long.endswith(" …")


def test_the_body_is_the_prose_wrapped_bounded_and_trailed():
    answer = ("Here is the fix. " * 12 + "\n\n- first point that is long enough to wrap " * 1 + "around the edge "
              "of seventy-two columns\n\n" + ANSWER + "\nsrc/x.py\n<<<<<<< SEARCH\nold\n=======\nnew\n"
              ">>>>>>> REPLACE\n")
    msg = commit_message("/code fix it", answer)
    subject = msg.partition("\n\n")[0]
    assert subject == "Fix it" and msg.endswith(f"\n\n{TRAILER}\n")
    assert all(len(line) <= 72 for line in msg.splitlines())
    assert "def helper" not in msg and "return a()" not in msg and "SEARCH" not in msg and "src/x.py" not in msg
    assert "\n  around the edge" not in msg and "- first point" in msg and "The old module is no longer used" in msg
    assert "DELETE old.py" in msg  # a deletion is worth reading in the history
    huge = commit_message("x", "word " * 5000)
    assert len(huge) < 2300 and "[…]" in huge
    assert explanation(f"Only code.\n\n{FENCE}\nprint(1)\n") == "Only code."  # unclosed block: dropped


def test_the_trailer_is_one_git_reads(repo):
    parsed = run_git(repo, ["interpret-trailers", "--parse"], stdin=commit_message("fix", "Because.")).stdout
    assert parsed == f"{TRAILER}\n"


# ---- commits and their undo -------------------------------------------------------------------
def test_the_commit_holds_only_the_applied_files_and_the_users_staging_stays(repo, store):
    (repo / "other.py").write_text("x = 7\n")
    git(repo, "add", "other.py")
    parent = head(repo)
    cs, _ = plan_and_apply(repo, store)
    msg = commit_message("/code make a return 2 @a.py", ANSWER)
    sha = commit_applied(repo, [c.path for c in cs.changes], msg)
    assert sha == head(repo) and git(repo, "rev-parse", f"{sha}^") .strip() == parent
    assert git(repo, "show", "--name-status", "--format=", sha).split("\n") == [
        "M\ta.py", "A\tnew.py", "D\told.py", ""]
    assert git(repo, "log", "-1", "--format=%an <%ae>%n%B", sha) == f"Ada Lovelace <ada@example.org>\n{msg}\n"
    assert git(repo, "diff", "--cached", "--name-only") == "other.py\n"  # still staged, not committed
    assert git(repo, "status", "--porcelain") == "M  other.py\n"
    assert git(repo, "for-each-ref", "refs/remotes") == ""  # nothing pushed, nowhere to push


def test_nothing_to_commit_is_none(repo):
    (repo / "build").mkdir()
    (repo / "build" / "gen.py").write_text("G = 1\n")  # ignored
    before = head(repo)
    assert commit_applied(repo, ["a.py", "build/gen.py"], "x\n") is None
    assert head(repo) == before and git(repo, "status", "--porcelain") == ""


def test_undo_on_the_tip_removes_the_commit_and_restores_the_exact_bytes(repo, store):
    (repo / "a.py").write_bytes(b"def a():\r\n    return 1  # mine, not committed\r\n")
    (repo / "other.py").write_text("x = 8\n")
    git(repo, "add", "other.py")
    parent, before, status = head(repo), snapshot(repo), git(repo, "status", "--porcelain")
    _, record = plan_and_apply(repo, store)
    sha = commit_applied(repo, record.paths, commit_message("change a", ANSWER))
    assert sha and snapshot(repo) != before
    restored, warning = undo_applied(store, record, sha)
    assert (sorted(restored), warning) == (["a.py", "new.py", "old.py"], None)
    assert head(repo) == parent and snapshot(repo) == before
    assert git(repo, "status", "--porcelain") == status  # a.py unstaged as before, other.py still staged
    assert "offline-coder: undo" in git(repo, "reflog", "-1", "--format=%gs", "main")


def test_undo_after_the_user_committed_on_top_keeps_both_commits(repo, store):
    before = snapshot(repo)
    _, record = plan_and_apply(repo, store)
    sha = commit_applied(repo, record.paths, "Ours\n")
    (repo / "other.py").write_text("x = 10\n")
    git(repo, "commit", "-q", "-am", "theirs")
    theirs = head(repo)
    assert undo_commit(repo, sha, record.paths) is False and head(repo) == theirs
    _, warning = undo_applied(store, record, sha)
    assert warning == commit_kept(sha) and "files restored, commit kept" in warning
    assert head(repo) == theirs and git(repo, "rev-parse", f"{theirs}^").strip() == sha
    assert snapshot(repo) == {**before, "other.py": b"x = 10\n"}


def test_undo_over_later_edits_is_refused_before_git_is_touched(repo, store):
    _, record = plan_and_apply(repo, store)
    sha = commit_applied(repo, record.paths, "Ours\n")
    (repo / "a.py").write_text("edited after the apply\n")
    with pytest.raises(UndoConflict, match="a.py"):
        undo_applied(store, record, sha)
    assert head(repo) == sha and (repo / "a.py").read_text() == "edited after the apply\n"
    assert git(repo, "diff", "--cached", "--name-only") == ""


def test_a_commit_a_remote_tracking_branch_holds_is_kept(repo, store):
    _, record = plan_and_apply(repo, store)
    sha = commit_applied(repo, record.paths, "Ours\n")
    git(repo, "update-ref", "refs/remotes/origin/main", sha)  # as after the user's own push
    assert undo_commit(repo, sha, record.paths) is False and head(repo) == sha


def test_a_first_commit_on_an_unborn_branch_and_its_undo(tmp_path, store):
    repo = make_repo(tmp_path / "fresh", commit=False)
    (repo / "notes.txt").write_text("mine\n")
    git(repo, "add", "notes.txt")
    state = repo_state(repo)
    assert (state.branch, state.head, state.line()) == ("main", None, "git: main (no commits yet)")
    _, record = plan_and_apply(repo, store, f"hello.py\n{FENCE}python\nprint('hi')\n{FENCE}\n")
    sha = commit_applied(repo, record.paths, "Add hello\n")
    assert git(repo, "show", "--name-only", "--format=", sha) == "hello.py\n"
    assert git(repo, "status", "--porcelain") == "A  notes.txt\n"
    restored, warning = undo_applied(store, record, sha)
    assert (restored, warning) == (["hello.py"], None)
    assert repo_state(repo).head is None and not (repo / "hello.py").exists()
    assert git(repo, "status", "--porcelain") == "A  notes.txt\n"


def test_a_file_changed_between_planning_and_apply_stays_a_stale_refusal(repo, store):
    cs = plan_changes(repo, ANSWER)
    (repo / "a.py").write_text("edited meanwhile\n")
    before = head(repo)
    with pytest.raises(StaleFileError):
        apply_changes(repo, [(c, None) for c in cs.changes], store)
    assert head(repo) == before and (repo / "a.py").read_text() == "edited meanwhile\n"

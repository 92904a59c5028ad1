"""The privileged helper: ``python -m app.core.net.firewall.helper on|off|status [--pid N]``
(in the bundle: ``offline-coder --firewall-helper ...``, through ``installer/linux/firewall-helper``).

Run as root (through ``pkexec`` with the polkit policy in ``installer/linux/``, or directly
when the app already is root, as in CI). It does three things only, for the calling user's
own process: put it in its cgroup and add that cgroup to the blocked set (``on``), take the
caller's own cgroup out of the set (``off``), report what the kernel has loaded (``status``).
Every process and cgroup it touches must belong to the caller; instances that are gone (an
empty cgroup) are cleaned on each on/off, whoever they belonged to, since nothing runs there.
Calls are serialised by a lock file, so two instances starting together cannot interleave.
Arguments are validated before anything is changed; every answer is one JSON line on stdout;
exit status 0 ok, 1 failed, 2 refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sys
from pathlib import Path

from app.core.net.firewall import linux_nft
from app.core.errors import UserError

ACTIONS = ("on", "off", "status")
LOCK = Path("/run/offline-coder-firewall.lock")


class Refused(UserError, ValueError):
    """The request is not one the helper may carry out; the message (sent back as the JSON
    answer's ``error``) says why."""


def caller_uid() -> int:
    """The user who asked: pkexec and sudo say who; otherwise ourselves."""
    for var in ("PKEXEC_UID", "SUDO_UID"):
        v = os.environ.get(var)
        if v is not None and v.isdigit():
            return int(v)
    return os.getuid()


def process_uid(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        raise Refused(f"There is no process {pid}.") from None
    m = re.search(r"^Uid:\s+(\d+)", text, re.MULTILINE)
    if not m:
        raise Refused(f"Cannot tell who owns process {pid}.")
    return int(m.group(1))


def parse(argv: list[str]) -> tuple[str, int | None]:
    if not argv or argv[0] not in ACTIONS:
        raise Refused(f"The first argument must be one of {', '.join(ACTIONS)}.")
    action, rest = argv[0], argv[1:]
    pid = None
    if rest:
        if len(rest) != 2 or rest[0] != "--pid" or not re.fullmatch(r"[1-9][0-9]{0,9}", rest[1]):
            raise Refused("The only option is --pid followed by a process number.")
        pid = int(rest[1])
    if action == "on" and pid is None:
        raise Refused("`on` needs --pid: the app's process.")
    if pid is not None:
        owner, uid = process_uid(pid), caller_uid()
        if owner != uid:
            raise Refused(f"Process {pid} belongs to user {owner}, not to the caller ({uid}); refused.")
    return action, pid


@contextlib.contextmanager
def _locked():
    """One helper at a time (all of them run as root): read-modify-write of the set is atomic."""
    path = LOCK if LOCK.parent.is_dir() and os.access(LOCK.parent, os.W_OK) else Path("/tmp") / LOCK.name
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def own_cgroup(pid: int, uid: int) -> str | None:
    """``pid``'s app cgroup if it is one of ``uid``'s (else None: nothing of the caller's to touch)."""
    try:
        path = linux_nft.cgroup_of(pid)
    except OSError:
        raise Refused(f"There is no process {pid}.") from None
    owner = linux_nft.owner_of(path)
    if owner is None:
        return None
    if owner[0] != uid:
        raise Refused(f"Process {pid} is in user {owner[0]}'s cgroup, not the caller's ({uid}); refused.")
    return path


def run(argv: list[str]) -> tuple[int, dict]:
    try:
        action, pid = parse(argv)
        uid = caller_uid()
        mine = own_cgroup(pid, uid) if pid is not None and action == "off" else None
    except Refused as e:
        return 2, {"ok": False, "error": str(e)}
    try:
        if action == "status":
            view = linux_nft.cgroup_of(pid) if pid is not None else None
            return 0, {"ok": True, "status": linux_nft.status(view).as_dict()}
        with _locked():
            linux_nft.clean_stale()
            if action == "on":
                mine = linux_nft.place_in_cgroup(pid, uid)
                linux_nft.block(mine)
            elif mine is not None:
                linux_nft.unblock(mine)
            linux_nft.drop_table_if_unused()
            view = linux_nft.cgroup_of(pid) if pid is not None else None
            return 0, {"ok": True, "status": linux_nft.status(view).as_dict()}
    except linux_nft.FirewallError as e:
        return 1, {"ok": False, "error": str(e)}
    except OSError as e:
        return 1, {"ok": False, "error": f"The firewall helper could not read the system: {e}"}


def main(argv: list[str] | None = None) -> int:
    """``argv`` without the program name (default ``sys.argv[1:]``); the frozen app passes what
    follows its hidden ``--firewall-helper`` flag."""
    if sys.platform != "linux":
        print(json.dumps({"ok": False, "error": "This helper is for Linux; see windows.py and macos_pf.py."}))
        return 1
    code, answer = run(sys.argv[1:] if argv is None else argv)
    print(json.dumps(answer))
    return code


if __name__ == "__main__":
    sys.exit(main())

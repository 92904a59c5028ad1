"""The privileged helper: ``python -m app.core.net.firewall.helper on|off|status [--pid N]``
(in the bundle: ``offline-coder --firewall-helper ...``, through ``installer/linux/firewall-helper``).

Run as root (through ``pkexec`` with the polkit policy in ``installer/linux/``, or directly
when the app already is root, as in CI). It does three things only, for the calling user's
own process: put it in its cgroup and load the block (``on``), remove the block (``off``),
report what the kernel has loaded (``status``). Arguments are validated before anything is
changed; every answer is one JSON line on stdout; exit status 0 ok, 1 failed, 2 refused.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from app.core.net.firewall import linux_nft

ACTIONS = ("on", "off", "status")


class Refused(ValueError):
    pass


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


def run(argv: list[str]) -> tuple[int, dict]:
    try:
        action, pid = parse(argv)
    except Refused as e:
        return 2, {"ok": False, "error": str(e)}
    try:
        if action == "on":
            linux_nft.block(linux_nft.place_in_cgroup(pid, caller_uid()))
        elif action == "off":
            linux_nft.unblock()
            linux_nft.remove_empty_app_cgroups()
        return 0, {"ok": True, "status": linux_nft.status().as_dict()}
    except linux_nft.FirewallError as e:
        return 1, {"ok": False, "error": str(e)}


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

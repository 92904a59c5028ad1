"""Verify: prove the block by a connection that must fail, made by a child process.

The child inherits the app's cgroup (so the OS firewall applies) but not the in-process
guard (a new interpreter), so a refusal proves the firewall, not our own hook.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

PROBE = (
    "import json,socket,sys\n"
    "h,p=sys.argv[1],int(sys.argv[2])\n"
    "try:\n"
    " s=socket.create_connection((h,p),timeout=4);s.close();r='connected'\n"
    "except ConnectionRefusedError: r='refused'\n"
    "except OSError as e: r='error: '+str(e)\n"
    "print(json.dumps(r))\n")

BLOCKED, LEAKED, INCONCLUSIVE = "blocked", "leaked", "inconclusive"
FROZEN_FLAG = "--net-probe"


@dataclass
class VerifyResult:
    verdict: str   # BLOCKED | LEAKED | INCONCLUSIVE
    target: str
    message: str


def parse_target(target: str) -> tuple[str, int]:
    host, _, port = target.strip().rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"The Verify target must look like host:port, not {target!r}.")
    return host.strip("[]"), int(port)


def probe_command() -> list[str]:
    """A fresh interpreter running PROBE: ``python -I -c``, or the frozen app itself with its
    hidden ``--net-probe`` flag (dispatched in ``app/__main__.py`` before the guard is installed)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, FROZEN_FLAG]
    return [sys.executable, "-I", "-c", PROBE]


def probe_main(argv: list[str]) -> int:
    """The frozen app's ``--net-probe HOST PORT``: runs PROBE as ``python -I -c`` would."""
    sys.argv = ["-c", *argv]
    exec(compile(PROBE, "<verify-probe>", "exec"), {"__name__": "__main__"})
    return 0


def verify(target: str, firewall_active: bool) -> VerifyResult:
    host, port = parse_target(target)
    r = subprocess.run([*probe_command(), host, str(port)], capture_output=True, text=True, timeout=30)
    try:
        outcome = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        outcome = f"error: {r.stderr.strip()[-200:]}"
    if outcome == "refused" and firewall_active:
        return VerifyResult(BLOCKED, target, f"Verified: the firewall refused a connection to {target}.")
    if outcome == "connected":
        return VerifyResult(LEAKED, target, f"NOT blocked: a child process connected to {target}. "
                                            + ("The firewall rule is not working." if firewall_active
                                               else "The firewall block is not active."))
    return VerifyResult(INCONCLUSIVE, target,
                        f"Inconclusive: {outcome} for {target}" + ("" if firewall_active else
                                                                  " (the firewall block is not active)") + ".")

"""Verify: prove the block with a connection that no third party can ever answer.

A privacy tool must not create traffic to someone else to show that it blocks traffic. So the
child process connects to a documentation address (RFC 5737 TEST-NET, RFC 3849 2001:db8::/32),
which is never routed on the internet, with a short timeout. The verdict comes from our own
firewall: blocked means the connect was refused at once *and* the firewall's counter for this
window rose; a timeout means the packet went out unrejected (not blocked); no route means
nothing could leave at all (inconclusive). Reaching a real host is never the test.

The child inherits the app's cgroup (so the OS firewall applies) but not the in-process guard
(a new interpreter), so a refusal proves the firewall, not our own hook.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable

from app.core.errors import UserError

PROBE = (
    "import errno,json,socket,sys,time\n"
    "h,p=sys.argv[1],int(sys.argv[2]);t=float(sys.argv[3]) if len(sys.argv)>3 else 3.0\n"
    "t0=time.monotonic()\n"
    "try:\n"
    " s=socket.create_connection((h,p),timeout=t);s.close();r='connected'\n"
    "except ConnectionRefusedError: r='refused'\n"
    "except TimeoutError: r='timeout'\n"
    "except OSError as e:\n"
    " r='unreachable' if e.errno in (errno.ENETUNREACH,errno.EHOSTUNREACH,errno.EADDRNOTAVAIL) "
    "else 'refused' if e.errno==errno.EPERM else 'error: '+str(e)\n"
    "print(json.dumps([r,round(time.monotonic()-t0,3)]))\n")

BLOCKED, LEAKED, INCONCLUSIVE = "blocked", "leaked", "inconclusive"
FROZEN_FLAG = "--net-probe"
DEFAULT_TARGET = "192.0.2.1:443"
TIMEOUT_S = 3.0
AT_ONCE_S = 1.0  # a local reject answers in microseconds; anything slower came from elsewhere
# Never routed on the internet: a packet to them reaches no third party.
DOCUMENTATION_NETS = [ipaddress.ip_network(n) for n in
                      ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")]


@dataclass
class VerifyResult:
    verdict: str   # BLOCKED | LEAKED | INCONCLUSIVE
    target: str
    message: str


class VerifyTargetError(UserError, ValueError):
    """The target is not one Verify may use; the message says which are."""


def parse_target(target: str) -> tuple[str, int]:
    """(address, port) of a documentation address, else VerifyTargetError. No names: resolving
    one would itself be traffic."""
    host, _, port = str(target).strip().rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise VerifyTargetError(f"The Verify target must look like address:port, not {target!r}.")
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise VerifyTargetError(f"The Verify target must be an address, not a name ({host!r}).") from None
    if not any(addr in net for net in DOCUMENTATION_NETS):
        raise VerifyTargetError(
            f"Verify only connects to documentation addresses that are never routed (192.0.2.0/24, "
            f"198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32), not {host}: it must not reach anyone.")
    return str(addr), int(port)


def allowed_target(target: str) -> str:
    """``target`` if Verify may use it, else the default (an old setting such as a public DNS
    server's address is replaced, never contacted)."""
    try:
        parse_target(target)
        return target
    except VerifyTargetError:
        return DEFAULT_TARGET


def probe_command() -> list[str]:
    """A fresh interpreter running PROBE: ``python -I -c``, or the frozen app itself with its
    hidden ``--net-probe`` flag (dispatched in ``app/__main__.py`` before the guard is installed)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, FROZEN_FLAG]
    return [sys.executable, "-I", "-c", PROBE]


def probe_main(argv: list[str]) -> int:
    """The frozen app's ``--net-probe HOST PORT TIMEOUT``: runs PROBE as ``python -I -c`` would."""
    sys.argv = ["-c", *argv]
    exec(compile(PROBE, "<verify-probe>", "exec"), {"__name__": "__main__"})
    return 0


def probe(host: str, port: int, timeout: float = TIMEOUT_S) -> tuple[str, float]:
    """(outcome, seconds) of a connect from a child process."""
    r = subprocess.run([*probe_command(), host, str(port), str(timeout)], capture_output=True, text=True,
                       timeout=timeout + 20)
    try:
        outcome, seconds = json.loads(r.stdout.strip().splitlines()[-1])
        return str(outcome), float(seconds)
    except (ValueError, IndexError, TypeError):
        return f"error: {r.stderr.strip()[-200:]}", 0.0


def verify(target: str, read_status: Callable[[], object] | None) -> VerifyResult:
    """Try ``target`` from a child; ``read_status()`` returns this window's FirewallStatus (or
    None when it cannot be read without a password)."""
    host, port = parse_target(target)
    before = read_status() if read_status else None
    outcome, seconds = probe(host, port)
    after = read_status() if read_status else None
    counted = (before is not None and after is not None
               and (after.blocked_packets > before.blocked_packets
                    or any(str(d[0]) == host and str(d[2]) == str(port) for d in after.destinations or [])))
    active = bool(after is not None and after.active)
    if outcome == "refused" and seconds <= AT_ONCE_S and counted:
        return VerifyResult(BLOCKED, target,
                            f"Verified: the firewall rejected a connection to {target} at once (its counter for "
                            f"this window went from {before.blocked_packets} to {after.blocked_packets}); "
                            "nothing left this computer.")
    if outcome == "timeout":
        return VerifyResult(LEAKED, target,
                            f"NOT blocked: a connection attempt to {target} (a documentation address nobody "
                            "answers) left this computer unrejected and timed out. "
                            + ("The firewall rule is loaded but did not catch it." if active
                               else "The firewall block is not active for this window."))
    if outcome == "connected":
        return VerifyResult(LEAKED, target, f"NOT blocked: a connection to {target} succeeded, so something on "
                                            "this network answers for documentation addresses.")
    if outcome == "unreachable":
        return VerifyResult(INCONCLUSIVE, target, f"Inconclusive: this computer has no route to {target}, so "
                                                  "nothing could leave either way.")
    why = ("" if outcome != "refused" else
           " the firewall's counter could not be read" if after is None else
           " the firewall's counter did not rise, so something else refused it" if not counted else
           f" it took {seconds:.1f} s, too slow for our own firewall")
    return VerifyResult(INCONCLUSIVE, target, f"Inconclusive: {outcome} for {target}"
                        + (f" ({why.strip()})" if why else "") + ".")

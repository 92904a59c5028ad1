"""Offline mode as the app sees it (settings, this process's policy, the guard, the last blocked
attempts) and as the OS firewall has it (read back from the kernel).

The nftables block is per app instance: the window adds its own cgroup
``offline-coder/app-<uid>-<pid>`` to the blocked set at start (and at each toggle). So
"expected" depends on who asks:

* the window (:func:`window_firewall`): the rule must cover the window's own cgroup;
* the command line (:func:`cli_firewall`): it must cover every running app process that the
  helper has put into an ``offline-coder`` cgroup; with none running, no rule is needed. Reading
  nftables needs root, so a user's terminal gets a warning saying how to read it.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

from app.core.doctor.check import FAIL, OK, WARN, Check
from app.core.net.audit import BLOCKED_APP, BLOCKED_FIREWALL, NetEvent

REAPPLY = ("Turn Offline off and on again in the toolbar (or restart the app) to load the rule again. If that "
           "fails, check that nftables is installed and that polkit lets the app run its firewall helper.")
SHOWN_ATTEMPTS = 5


@dataclass
class FirewallView:
    """What the firewall check may know: whether this app manages the OS firewall here, how to
    read the rule back (None: not without a password), and the cgroups the rule must cover."""

    managed: bool
    read: Callable[[], object] | None = None   # -> FirewallStatus, or None if never read back
    must_cover: list[str] = field(default_factory=list)
    who: str = "the app"                          # whose processes ("this window", "running app windows")


def check_offline(settings_offline: bool, events: list[NetEvent]) -> Check:
    from app.core.net import guard, policy

    title = "Offline mode"
    blocked = [e for e in events if e.verdict in (BLOCKED_APP, BLOCKED_FIREWALL)]
    last = "; ".join(
        f"{time.strftime('%H:%M:%S', time.localtime(e.time))} {e.destination}"
        + (f":{e.port}" if e.port else "") + f" ({e.protocol}, {e.verdict})"
        for e in blocked[-SHOWN_ATTEMPTS:])
    attempts = (f" Last blocked attempts ({len(blocked)} in all): {last}." if blocked
                else " No blocked attempts recorded in this session.")
    if not settings_offline:
        if policy.is_offline():
            return Check("offline", title, FAIL, "The settings say online, but this process still blocks the network.",
                         "Turn Offline on and off again in the toolbar.")
        return Check("offline", title, OK, "Offline mode is off (settings): connections are allowed and "
                     "recorded in the Network panel." + attempts)
    if not policy.is_offline():
        return Check("offline", title, FAIL,
                     "The settings say offline, but this process is not blocking connections.",
                     "Turn Offline off and on again in the toolbar (or restart the app).")
    if not guard.installed():
        return Check("offline", title, FAIL,
                     "Offline mode is on, but the in-process guard is not installed: Python code is not stopped.",
                     "Start the app with `python -m app` (it installs the guard before anything else), or "
                     "restart it.")
    return Check("offline", title, OK, "Offline mode is on (settings); the in-process guard is installed and refuses "
                 "every connection that is not loopback." + attempts)


def check_firewall(settings_offline: bool, view: FirewallView) -> Check:
    title = "OS firewall"
    if not view.managed:
        if not settings_offline:
            return Check("firewall", title, OK, "Offline mode is off; the OS firewall is not used.")
        return Check("firewall", title, WARN,
                     "The OS firewall is not managed here, so only the app's own guard blocks the network: "
                     "native code and child processes are not stopped.",
                     "On Linux start the app normally (`python -m app`) so it can load its nftables rule; on "
                     "Windows and macOS the firewall block is not available yet (see README).")
    if settings_offline and not view.must_cover:
        return Check("firewall", title, OK, "Offline mode is on; no app window is running, so no firewall rule is "
                     "needed now (the app loads its rule each time it starts).")
    if view.read is None:
        if not settings_offline:
            return Check("firewall", title, OK, "Offline mode is off; the OS firewall is not read (that needs "
                         "administrator rights).")
        return Check("firewall", title, WARN,
                     f"Offline mode is on for {view.who}, but reading the firewall needs administrator rights.",
                     "Run `sudo python -m app doctor`, or open Help → System check in the app.")
    from app.core.net.firewall.linux_nft import FirewallError

    try:
        st = view.read()
    except FirewallError as e:
        return Check("firewall", title, FAIL, f"The firewall cannot be read: {e}", REAPPLY)
    if st is None:
        if not settings_offline:
            return Check("firewall", title, OK, "Offline mode is off; no firewall rule was loaded in this session.")
        return Check("firewall", title, FAIL,
                     "Offline mode is on, but the firewall rule was never read back: loading it failed or was "
                     "refused (see the Network panel).", REAPPLY)
    dests = [f"{d[0]}:{d[2]} ({d[1]})" for d in (st.destinations or []) if len(d) == 3]
    seen = (f" The firewall rejected traffic to {len(dests)} destination(s), last: "
            f"{', '.join(dests[-SHOWN_ATTEMPTS:])}." if dests else "")
    covered = [str(c).strip('"').strip("/") for c in (st.covered or ([st.cgroup] if st.active else []))]
    mine = [c for c in view.must_cover if any(_covers(rule, c) for rule in covered)]
    if not settings_offline:
        if mine:
            return Check("firewall", title, WARN,
                         f"Offline mode is off, but {view.who} is still blocked ({', '.join(mine)}).",
                         "Turn Offline on and off again in the toolbar to remove it.")
        return Check("firewall", title, OK, f"Offline mode is off and {view.who} is not blocked (read from nftables).")
    if not mine:
        return Check("firewall", title, FAIL,
                     f"Offline mode is on, but the OS firewall does not block {view.who} (read back from nftables"
                     f"{'; it blocks ' + ', '.join(covered) if covered else ''}): native code and child processes "
                     f"of {view.who} could reach the network.", REAPPLY)
    uncovered = [c for c in view.must_cover if c not in mine]
    if uncovered:
        return Check("firewall", title, FAIL,
                     f"The offline rule blocks {', '.join(mine)}, but {view.who} also runs in "
                     f"{', '.join(uncovered)}: that is not blocked.", REAPPLY)
    return Check("firewall", title, OK,
                 f"Offline rule loaded (read from nftables) for {', '.join(mine)}; {st.blocked_packets} "
                 f"packets rejected.{seen}")


def _covers(rule: str, cgroup: str) -> bool:
    """Whether the rule's cgroup (as nft names it, relative to /sys/fs/cgroup, so possibly with a
    ``unified/`` prefix) is the v2 cgroup ``cgroup``."""
    c = cgroup.strip("/")
    return bool(c) and (rule == c or rule.endswith("/" + c))


# ---- how the window and the terminal see the firewall --------------------------------------------
def app_cgroups(uid: int) -> list[str]:
    """The cgroups (v2 paths) of running app processes of user ``uid`` that the helper made."""
    from app.core.net.firewall import linux_nft

    try:
        parent = linux_nft.cgroup2_mount() / linux_nft.CGROUP_PARENT
    except (OSError, linux_nft.FirewallError):
        return []
    out = []
    for d in sorted(parent.glob(f"app-{uid}-*")) if parent.is_dir() else []:
        try:
            if (d / "cgroup.procs").read_text().strip():
                out.append(f"/{linux_nft.CGROUP_PARENT}/{d.name}")
        except OSError:
            continue
    return out


def cli_firewall() -> FirewallView:
    """The terminal's view: root reads nftables directly; others cannot without a password."""
    if not sys.platform.startswith("linux"):
        return FirewallView(managed=False)
    from app.core.net.firewall import helper, linux_nft

    read = linux_nft.status if os.geteuid() == 0 else None
    return FirewallView(True, read, app_cgroups(helper.caller_uid()), "running app windows")


def window_firewall(client, last_status) -> FirewallView:
    """The window's view: ``client`` its FirewallClient (None: not managed in this session),
    ``last_status`` the FirewallStatus it last read back. Reads again when that needs no password."""
    if client is None:
        return FirewallView(managed=False)
    from app.core.net.firewall import linux_nft

    try:
        mine = [linux_nft.cgroup_of(client.pid or os.getpid())]
    except (OSError, linux_nft.FirewallError):
        mine = ["(unknown cgroup)"]
    read = client.status if client.quiet_status else (lambda: last_status)
    return FirewallView(True, read, mine, "this window")

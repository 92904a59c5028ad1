"""Linux backend: one nftables table that rejects what the blocked app instances send out.

Each app instance is moved into its own cgroup v2 (``offline-coder/app-<uid>-<pid>``) before it
opens sockets (a socket's cgroup is fixed when it is created); child processes inherit it.

Why a set: every instance of every user shares the one ``inet`` table ``offline_coder``. It
holds a set ``apps`` of blocked cgroups, with a counter per element, and one rule: loopback is
accepted, then ``socket cgroupv2 level 2 @apps`` → counter + ``reject`` (a TCP reset or ICMP
error: the app fails at once instead of hanging, as it would with ``drop``). ``on`` adds the
caller's own instance to the set, ``off`` removes only the caller's own one, so one instance
(or user) can never unblock another. The table itself is deleted only when its set is empty.

Set elements are cgroup ids (inode numbers): a cgroup must leave the set before its folder is
removed, or the element lingers under an id nft can no longer name (it then prints whatever
other file happens to have that inode number, and deleting by that printed name still works).
Crashed instances leave an empty cgroup behind: every on/off removes those elements and folders.

nft resolves the cgroup path below ``/sys/fs/cgroup``; on hybrid systems cgroup v2 is mounted
at ``/sys/fs/cgroup/unified``, so the path given to nft is relative to ``/sys/fs/cgroup``
while the level counts components inside the v2 hierarchy.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from app.core.errors import UserError

TABLE = "offline_coder"
COUNTER = "blocked"
APPS = "apps"
CGROUP_PARENT = "offline-coder"
LEVEL = 2  # offline-coder/app-<uid>-<pid>
NFT_CGROUP_BASE = Path("/sys/fs/cgroup")
_APP_RE = re.compile(rf"(?:^|/){CGROUP_PARENT}/app-(\d+)-(\d+)$")


class FirewallError(UserError, RuntimeError):
    """The firewall could not be changed or read; the message says what to do."""


@dataclass
class FirewallStatus:
    active: bool          # this instance's cgroup is in the blocked set (read back from the kernel)
    blocked_packets: int  # packets rejected for this instance
    cgroup: str | None    # this instance's cgroup as nft names it
    detail: str           # one line for the status bar
    destinations: list = field(default_factory=list)  # [address, protocol, port] rejected for this instance
    covered: list = field(default_factory=list)       # every blocked cgroup (all instances), as nft names them

    def as_dict(self) -> dict:
        return {"active": self.active, "blocked_packets": self.blocked_packets, "cgroup": self.cgroup,
                "detail": self.detail, "destinations": self.destinations, "covered": self.covered}

    @classmethod
    def from_dict(cls, d: dict) -> "FirewallStatus":
        return cls(bool(d["active"]), int(d["blocked_packets"]), d.get("cgroup"), str(d["detail"]),
                   list(d.get("destinations") or []), list(d.get("covered") or []))


def cgroup2_mount() -> Path:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        if right.split(" ")[0] == "cgroup2":
            return Path(left.split(" ")[4])
    raise FirewallError("This system has no cgroup v2 hierarchy mounted; the firewall block needs it.")


def cgroup_of(pid: int) -> str:
    """The v2 cgroup path of ``pid`` (``/offline-coder/app-0-123``)."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return line[3:]
    raise FirewallError(f"Process {pid} has no cgroup v2 entry.")


def app_cgroup_name(uid: int, pid: int) -> str:
    return f"{CGROUP_PARENT}/app-{uid}-{pid}"


def owner_of(path: str) -> tuple[int, int] | None:
    """(uid, pid) from an app cgroup path (v2 or as nft names it), None for any other path."""
    m = _APP_RE.search(str(path).strip('"').rstrip("/"))
    return (int(m.group(1)), int(m.group(2))) if m else None


def place_in_cgroup(pid: int, uid: int) -> str:
    """Move ``pid`` (all its threads) into its own cgroup; returns the v2 path."""
    d = cgroup2_mount() / app_cgroup_name(uid, pid)
    try:
        d.mkdir(parents=True, exist_ok=True)
        (d / "cgroup.procs").write_text(str(pid))
    except OSError as e:
        raise FirewallError(f"Could not move the app into its cgroup ({d}): {e.strerror or e}.") from e
    return "/" + app_cgroup_name(uid, pid)


def nft_path(v2_path: str) -> str:
    """The v2 cgroup path as nft wants it (relative to /sys/fs/cgroup)."""
    mount = cgroup2_mount()
    full = mount / v2_path.lstrip("/")
    try:
        return full.relative_to(NFT_CGROUP_BASE).as_posix()
    except ValueError:
        raise FirewallError(f"cgroup v2 is mounted at {mount}, outside {NFT_CGROUP_BASE}; nft cannot name it.") from None


def _quote(path: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_./:@+-]+", path):
        raise FirewallError(f"Refusing an unusual cgroup path: {path!r}.")
    return f'"{path}"'


def ruleset() -> str:
    """The table's definition (no elements). Loaded only when the table is missing or old."""
    m = f"socket cgroupv2 level {LEVEL}"
    return (f"table inet {TABLE} {{\n"
            f"  counter {COUNTER} {{ }}\n"
            f"  set {APPS} {{ typeof {m}; counter; }}\n"
            # Where each instance's rejected packets were going, for its audit (bounded, kernel-side).
            f"  set dst4 {{ typeof {m} . ip daddr . meta l4proto . th dport; flags dynamic; size 4096; }}\n"
            f"  set dst6 {{ typeof {m} . ip6 daddr . meta l4proto . th dport; flags dynamic; size 4096; }}\n"
            f"  chain output {{\n"
            f"    type filter hook output priority 0; policy accept;\n"
            f"    oifname \"lo\" accept\n"
            # One lookup per packet, so each element's counter counts that instance's packets.
            f"    {m} @{APPS} jump reject_app\n"
            f"  }}\n"
            f"  chain reject_app {{\n"
            f"    meta nfproto ipv4 meta l4proto {{ tcp, udp }} add @dst4 {{ {m} . ip daddr . meta l4proto . th dport }}\n"
            f"    meta nfproto ipv6 meta l4proto {{ tcp, udp }} add @dst6 {{ {m} . ip6 daddr . meta l4proto . th dport }}\n"
            f"    counter name \"{COUNTER}\" reject\n"
            f"  }}\n"
            f"}}\n")


def _nft(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which("nft") or "/usr/sbin/nft"
    if not os.path.exists(exe):
        raise FirewallError("nftables (the `nft` command) is not installed; install the nftables package.")
    return subprocess.run([exe, *args], input=stdin, capture_output=True, text=True, timeout=20)


def nft_available() -> bool:
    return bool(shutil.which("nft")) or os.path.exists("/usr/sbin/nft")


def _read() -> list[dict] | None:
    """The table as nft's JSON items, or None when it is not loaded."""
    r = _nft(["-j", "list", "table", "inet", TABLE])
    if r.returncode != 0:
        return None
    return json.loads(r.stdout).get("nftables", [])


def _set_elements(items: list[dict], name: str) -> list[dict]:
    for item in items:
        if "set" in item and item["set"].get("name") == name:
            return [el.get("elem", el) if isinstance(el, dict) else {"val": el} for el in item["set"].get("elem", [])]
    return []


def _has_apps_set(items: list[dict]) -> bool:
    """Whether the loaded table is this version's (an older one had no set and no jump)."""
    return (any("set" in i and i["set"].get("name") == APPS for i in items)
            and any("chain" in i and i["chain"].get("name") == "reject_app" for i in items))


def blocked_paths(items: list[dict] | None = None) -> list[str]:
    """Every cgroup in the blocked set, as nft names it."""
    items = _read() if items is None else items
    return [str(e.get("val")) for e in _set_elements(items or [], APPS)]


def block(v2_path: str) -> None:
    """Add ``v2_path`` to the blocked set (loading the table first if it is missing or old)."""
    items = _read()
    script = ""
    if items is None or not _has_apps_set(items):
        if items is not None:  # an older single-cgroup table: replace it in the same transaction
            script += f"delete table inet {TABLE}\n"
        script += ruleset()
    script += f"add element inet {TABLE} {APPS} {{ {_quote(nft_path(v2_path))} }}\n"
    r = _nft(["-f", "-"], script)
    if r.returncode != 0:
        raise FirewallError(f"nft refused the offline rules: {r.stderr.strip()}")


def unblock(v2_path: str) -> None:
    """Remove ``v2_path`` from the blocked set; delete the table once nothing is blocked."""
    items = _read()
    if items is None:
        return
    want = nft_path(v2_path)
    if want in blocked_paths(items):
        r = _nft(["delete", "element", "inet", TABLE, APPS, f"{{ {_quote(want)} }}"])
        if r.returncode != 0:
            raise FirewallError(f"nft could not remove the offline rule: {r.stderr.strip()}")
    drop_table_if_unused()


def drop_table_if_unused() -> None:
    items = _read()
    if items is not None and not blocked_paths(items):
        r = _nft(["delete", "table", "inet", TABLE])
        if r.returncode != 0 and "No such file" not in r.stderr:
            raise FirewallError(f"nft could not remove the offline rules: {r.stderr.strip()}")


def _live(path: str) -> bool:
    """Whether an app cgroup (as nft names it) still holds a process."""
    try:
        return bool((NFT_CGROUP_BASE / path / "cgroup.procs").read_text().strip())
    except OSError:
        return False


def clean_stale() -> list[str]:
    """Forget instances that are gone: elements whose cgroup holds no process (or is not an app
    cgroup at all: a stale id), then their empty folders. Returns what was removed."""
    removed = []
    items = _read()
    for path in blocked_paths(items) if items is not None else []:
        if owner_of(path) is not None and _live(path):
            continue
        try:
            _quote(path)
        except FirewallError:
            continue
        r = _nft(["delete", "element", "inet", TABLE, APPS, f"{{ {_quote(path)} }}"])
        if r.returncode == 0:
            removed.append(path)
    remove_empty_app_cgroups(keep=set(blocked_paths()))
    return removed


def status(v2_path: str | None = None) -> FirewallStatus:
    """What the kernel has loaded, seen from the instance in ``v2_path`` (None: all of them)."""
    items = _read()
    mine = nft_path(v2_path) if v2_path else None
    if items is None:
        return FirewallStatus(False, 0, mine, "Firewall: this window is NOT blocked: no offline rule is loaded "
                              "(read from nftables)." if mine else "Firewall: no offline rule loaded (read from nftables).")
    elements = _set_elements(items, APPS)
    covered = [str(e.get("val")) for e in elements]
    rule = (any("rule" in i and f"@{APPS}" in json.dumps(i["rule"]) and "jump" in json.dumps(i["rule"]) for i in items)
            and any("rule" in i and "reject" in json.dumps(i["rule"]) for i in items))
    packets, total = 0, 0
    for e in elements:
        n = int((e.get("counter") or {}).get("packets", 0))
        total += n
        if str(e.get("val")) == mine:
            packets = n
    dests = []
    for name in ("dst4", "dst6"):
        for e in _set_elements(items, name):
            val = e.get("val", e)
            if isinstance(val, dict) and "concat" in val and len(val["concat"]) == 4:
                who, *dest = val["concat"]
                if mine is None or str(who) == mine:
                    dests.append(dest)
    if mine is None:
        active = rule and bool(covered)
        detail = (f"Firewall: blocking {len(covered)} app instance(s) · {total} packets rejected (read from nftables)."
                  if active else "Firewall: no app instance is blocked (read from nftables).")
        return FirewallStatus(active, total, None, detail, dests, covered)
    active = rule and mine in covered
    others = len([c for c in covered if c != mine])
    also = f"; {others} other instance(s) blocked too" if others else ""
    detail = (f"Firewall: this window is blocked · {packets} packets rejected{also} (read from nftables)."
              if active else f"Firewall: this window is NOT blocked{also} (read from nftables).")
    return FirewallStatus(active, packets, mine, detail, dests, covered)


def remove_empty_app_cgroups(keep: set[str] | None = None) -> None:
    """Remove app cgroup folders that hold no process and are not in the blocked set."""
    try:
        parent = cgroup2_mount() / CGROUP_PARENT
    except FirewallError:
        return
    if not parent.is_dir():
        return
    keep = keep or set()
    for d in parent.iterdir():
        if not (d.is_dir() and d.name.startswith("app-")):
            continue
        try:
            if nft_path(f"/{CGROUP_PARENT}/{d.name}") in keep:
                continue
            if not (d / "cgroup.procs").read_text().strip():
                d.rmdir()
        except (OSError, FirewallError):
            pass

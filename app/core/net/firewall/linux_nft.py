"""Linux backend: an nftables table that rejects everything the app's cgroup sends out.

The app's process is moved into its own cgroup v2 (``offline-coder/app-<uid>-<pid>``) before
it opens sockets (a socket's cgroup is fixed when it is created); child processes inherit it.
One ``inet`` table (IPv4 and IPv6), loaded atomically with ``nft -f -``: loopback accepted,
then ``socket cgroupv2 level N "<path>"`` → named counter + ``reject`` (a TCP reset or ICMP
error: the app fails at once instead of hanging, as it would with ``drop``). Turning offline
off deletes the table: no rule of ours remains.

nft resolves the cgroup path below ``/sys/fs/cgroup``; on hybrid systems cgroup v2 is mounted
at ``/sys/fs/cgroup/unified``, so the path given to nft is relative to ``/sys/fs/cgroup``
while the level counts components inside the v2 hierarchy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

TABLE = "offline_coder"
COUNTER = "blocked"
CGROUP_PARENT = "offline-coder"
NFT_CGROUP_BASE = Path("/sys/fs/cgroup")


class FirewallError(RuntimeError):
    """The firewall could not be changed or read; the message says what to do."""


@dataclass
class FirewallStatus:
    active: bool          # our table is loaded (read back from the kernel)
    blocked_packets: int
    cgroup: str | None    # the cgroup path the rule matches
    detail: str           # one line for the status bar
    destinations: list = field(default_factory=list)  # [address, protocol, port] the firewall rejected

    def as_dict(self) -> dict:
        return {"active": self.active, "blocked_packets": self.blocked_packets, "cgroup": self.cgroup,
                "detail": self.detail, "destinations": self.destinations}


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


def place_in_cgroup(pid: int, uid: int) -> str:
    """Move ``pid`` (all its threads) into its own cgroup; returns the v2 path."""
    mount = cgroup2_mount()
    rel = app_cgroup_name(uid, pid)
    d = mount / rel
    try:
        d.mkdir(parents=True, exist_ok=True)
        (d / "cgroup.procs").write_text(str(pid))
    except OSError as e:
        raise FirewallError(f"Could not move the app into its cgroup ({d}): {e.strerror or e}.") from e
    return "/" + rel


def nft_path(v2_path: str) -> tuple[str, int]:
    """(path as nft wants it, level) for a v2 cgroup path."""
    mount = cgroup2_mount()
    full = mount / v2_path.lstrip("/")
    try:
        rel = full.relative_to(NFT_CGROUP_BASE)
    except ValueError:
        raise FirewallError(f"cgroup v2 is mounted at {mount}, outside {NFT_CGROUP_BASE}; nft cannot name it.") from None
    return rel.as_posix(), len([p for p in v2_path.split("/") if p])


def ruleset(v2_path: str) -> str:
    """The whole table, loaded atomically (replacing an older one in the same transaction)."""
    path, level = nft_path(v2_path)
    match = f'socket cgroupv2 level {level} "{path}"'
    return (f"table inet {TABLE}\n"
            f"delete table inet {TABLE}\n"
            f"table inet {TABLE} {{\n"
            f"  counter {COUNTER} {{ }}\n"
            # Where the rejected packets were going, for the audit (bounded, kernel-side).
            f"  set dst4 {{ type ipv4_addr . inet_proto . inet_service; flags dynamic; size 4096; }}\n"
            f"  set dst6 {{ type ipv6_addr . inet_proto . inet_service; flags dynamic; size 4096; }}\n"
            f"  chain output {{\n"
            f"    type filter hook output priority 0; policy accept;\n"
            f"    oifname \"lo\" accept\n"
            f"    {match} meta nfproto ipv4 meta l4proto {{ tcp, udp }} add @dst4 {{ ip daddr . meta l4proto . th dport }}\n"
            f"    {match} meta nfproto ipv6 meta l4proto {{ tcp, udp }} add @dst6 {{ ip6 daddr . meta l4proto . th dport }}\n"
            f"    {match} counter name \"{COUNTER}\" reject\n"
            f"  }}\n"
            f"}}\n")


def _nft(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which("nft") or "/usr/sbin/nft"
    if not os.path.exists(exe):
        raise FirewallError("nftables (the `nft` command) is not installed; install the nftables package.")
    return subprocess.run([exe, *args], input=stdin, capture_output=True, text=True, timeout=20)


def block(v2_path: str) -> None:
    r = _nft(["-f", "-"], ruleset(v2_path))
    if r.returncode != 0:
        raise FirewallError(f"nft refused the offline rules: {r.stderr.strip()}")


def unblock() -> None:
    r = _nft(["delete", "table", "inet", TABLE])
    if r.returncode != 0 and "No such file" not in r.stderr:
        raise FirewallError(f"nft could not remove the offline rules: {r.stderr.strip()}")


def status() -> FirewallStatus:
    r = _nft(["-j", "list", "table", "inet", TABLE])
    if r.returncode != 0:
        return FirewallStatus(False, 0, None, "Firewall: no offline rule loaded (read from nftables).")
    packets, cgroup, dests = 0, None, []
    for item in json.loads(r.stdout).get("nftables", []):
        if "counter" in item and item["counter"].get("name") == COUNTER:
            packets = int(item["counter"].get("packets", 0))
        if "set" in item and item["set"].get("name") in ("dst4", "dst6"):
            for el in item["set"].get("elem", []):
                val = el.get("elem", {}).get("val", el) if isinstance(el, dict) and "elem" in el else el
                if isinstance(val, dict) and "concat" in val:
                    dests.append(list(val["concat"]))
        if "rule" in item:
            for expr in item["rule"].get("expr", []):
                m = expr.get("match", {})
                left = m.get("left", {})
                if isinstance(left, dict) and "socket" in left:
                    cgroup = str(m.get("right"))
    active = cgroup is not None
    return FirewallStatus(active, packets, cgroup,
                          f"Firewall: blocking outbound traffic of {cgroup} · {packets} packets rejected "
                          "(read from nftables)." if active else "Firewall: table present but no block rule.", dests)


def remove_empty_app_cgroups() -> None:
    try:
        parent = cgroup2_mount() / CGROUP_PARENT
    except FirewallError:
        return
    if not parent.is_dir():
        return
    for d in parent.iterdir():
        if d.is_dir() and d.name.startswith("app-"):
            try:
                if not (d / "cgroup.procs").read_text().strip():
                    d.rmdir()
            except OSError:
                pass

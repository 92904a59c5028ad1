"""Test hosts in network namespaces the test makes itself (never any other address).

``Namespace`` creates a netns joined to the root namespace by a veth pair with a /30 of
10.231.x.0, IPv6 off on both ends (no router solicitations or DAD packets to muddy the
counters), and can run a small TCP server inside that answers ``hi``.

``SinkNamespaces`` (tests/core/test_leak.py) is two namespaces and no link to the root namespace at
all: the code under test in one, whose default route and DNS resolver lead over a veth into a
"sink" namespace that goes nowhere; every packet is counted on the way out.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest


def can_make_namespaces() -> str | None:
    """None if this machine can run the namespace tests, else why not."""
    if os.geteuid() != 0:
        return "needs root (CI runs as root)"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"needs the {tool} command (.ci/run installs it)"
    return None


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


class Namespace:
    def __init__(self, tag: int):
        n = (os.getpid() * 7 + tag) % 250 + 1
        self.name = f"oct-{os.getpid()}-{tag}"
        self.host_if, self.ns_if = f"och{os.getpid() % 100000}{tag}", f"ocn{os.getpid() % 100000}{tag}"
        self.host_ip, self.ns_ip = f"10.231.{n}.1", f"10.231.{n}.2"
        self.server: subprocess.Popen | None = None
        self.port = 8765

    def __enter__(self) -> "Namespace":
        sh("ip", "netns", "add", self.name)
        sh("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
        sh("ip", "link", "set", self.ns_if, "netns", self.name)
        sh("sysctl", "-qw", f"net.ipv6.conf.{self.host_if}.disable_ipv6=1", check=False)
        self.exec("sysctl", "-qw", f"net.ipv6.conf.{self.ns_if}.disable_ipv6=1", check=False)
        sh("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
        sh("ip", "link", "set", self.host_if, "up")
        self.exec("ip", "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if)
        self.exec("ip", "link", "set", self.ns_if, "up")
        self.exec("ip", "link", "set", "lo", "up")
        return self

    def exec(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return sh("ip", "netns", "exec", self.name, *args, check=check)

    def serve(self) -> "Namespace":
        code = ("import socket\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                f"s.bind(('{self.ns_ip}',{self.port}));s.listen()\nprint('up',flush=True)\n"
                "while True:\n c,_=s.accept();c.sendall(b'hi');c.close()\n")
        self.server = subprocess.Popen(["ip", "netns", "exec", self.name, sys.executable, "-c", code],
                                       stdout=subprocess.PIPE, text=True)
        assert self.server.stdout.readline().strip() == "up"
        return self

    def tx_packets(self, inside: bool = True) -> int:
        iface = self.ns_if if inside else self.host_if
        path = f"/sys/class/net/{iface}/statistics/tx_packets"
        if inside:
            return int(self.exec("cat", path).stdout)
        return int(open(path).read())

    def __exit__(self, *exc) -> None:
        if self.server is not None:
            self.server.kill()
            self.server.wait()
        sh("ip", "link", "del", self.host_if, check=False)
        sh("ip", "netns", "del", self.name, check=False)
        time.sleep(0.05)


# ---- an app namespace behind a sink ------------------------------------------------------------
EGRESS_TABLE = """table inet oc_egress {
  counter egress { }
  chain output { type filter hook output priority 0; policy accept; oifname != "lo" counter name "egress"; }
}
"""


class SinkNamespaces:
    """Two namespaces the test makes: ``name`` for the code under test, and ``sink``.

    The only link out of ``name`` is a veth whose other end is in ``sink`` (never the root
    namespace); ``name``'s only route is a default route through it, and ``sink`` has no route
    further and does not forward, so whatever the code sends, to any address, goes over the veth
    and stops in ``sink``. ``/etc/netns/<name>/resolv.conf`` names the sink as the resolver and
    ``nsswitch.conf`` there says ``hosts: files dns`` (``ip netns exec`` bind-mounts both over
    /etc), so a DNS lookup, from Python or from native threads through getaddrinfo, is a packet
    over the veth too, never a query to the machine's own resolver. IPv6 is off in both namespaces
    before the links exist (no router solicitations or DAD). The egress is counted twice: the
    veth's tx_packets (ARP included) and an nftables counter on every non-loopback output.

    With ``dns_log=True`` a UDP listener in the sink records the names asked for (it never
    answers, so nothing can follow a lookup), read with :meth:`dns_queries`.
    """

    def __init__(self, tag: int, dns_log: bool = False):
        pid = os.getpid()
        n = (pid * 11 + tag) % 250 + 1
        self.name, self.sink = f"oca-{pid}-{tag}", f"ocs-{pid}-{tag}"
        self.ns_if, self.sink_if = f"oca{pid % 100000}{tag}", f"ocs{pid % 100000}{tag}"
        self.ns_ip, self.sink_ip = f"10.232.{n}.2", f"10.232.{n}.1"
        self.etc = f"/etc/netns/{self.name}"
        self.dns_log = dns_log
        self.listener: subprocess.Popen | None = None
        self._log_path = f"/tmp/{self.sink}-dns.log"

    def __enter__(self) -> "SinkNamespaces":
        try:
            self._up()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _up(self) -> None:
        ipv6 = os.path.isdir("/proc/sys/net/ipv6")  # a kernel without IPv6 sends none anyway
        for ns in (self.name, self.sink):
            sh("ip", "netns", "add", ns)
            for scope in ("all", "default") if ipv6 else ():  # before the links exist
                sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{scope}.disable_ipv6=1")
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=0")
        sh("ip", "link", "add", self.ns_if, "netns", self.name, "type", "veth", "peer", "name", self.sink_if,
           "netns", self.sink)
        for ns, iface in ((self.name, self.ns_if), (self.sink, self.sink_if)) if ipv6 else ():
            v6 = sh("ip", "netns", "exec", ns, "sysctl", "-n", f"net.ipv6.conf.{iface}.disable_ipv6").stdout
            assert v6.strip() == "1", f"IPv6 still on for {iface} in {ns}"
        os.makedirs(self.etc, exist_ok=True)
        with open(f"{self.etc}/resolv.conf", "w") as f:
            f.write(f"nameserver {self.sink_ip}\noptions timeout:1 attempts:1\n")
        with open(f"{self.etc}/nsswitch.conf", "w") as f:
            f.write("passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\n"
                    "protocols: files\nservices: files\n")
        seen = self.exec("cat", "/etc/resolv.conf").stdout  # ip netns exec bind-mounted ours
        assert f"nameserver {self.sink_ip}" in seen, f"the namespace's resolv.conf is not ours: {seen!r}"
        self.sink_exec("ip", "addr", "add", f"{self.sink_ip}/30", "dev", self.sink_if)
        self.sink_exec("ip", "link", "set", "lo", "up")
        self.sink_exec("ip", "link", "set", self.sink_if, "up")
        self.exec("ip", "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if)
        self.exec("ip", "link", "set", "lo", "up")
        self.exec("ip", "link", "set", self.ns_if, "up")
        self.exec("ip", "route", "add", "default", "via", self.sink_ip, "dev", self.ns_if)
        r = subprocess.run(["ip", "netns", "exec", self.name, "nft", "-f", "-"], input=EGRESS_TABLE, text=True,
                           capture_output=True)
        assert r.returncode == 0, r.stderr
        if self.dns_log:
            code = ("import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                    f"s.bind(('{self.sink_ip}',53))\nprint('up',flush=True)\nlog=open(sys.argv[1],'a')\n"
                    "while True:\n d,_=s.recvfrom(4096);i=12;parts=[]\n"
                    " while i<len(d) and d[i]:\n  parts.append(d[i+1:i+1+d[i]].decode('ascii','replace'));i+=1+d[i]\n"
                    " log.write('.'.join(parts)+'\\n');log.flush()\n")
            self.listener = subprocess.Popen(["ip", "netns", "exec", self.sink, sys.executable, "-c", code,
                                              self._log_path], stdout=subprocess.PIPE, text=True)
            assert self.listener.stdout.readline().strip() == "up"

    def exec(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return sh("ip", "netns", "exec", self.name, *args, check=check)

    def sink_exec(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return sh("ip", "netns", "exec", self.sink, *args, check=check)

    def command(self, *cmd: str) -> list[str]:
        """``cmd`` as run inside the app namespace (for subprocess.run/Popen)."""
        return ["ip", "netns", "exec", self.name, *cmd]

    def egress(self) -> tuple[int, int]:
        """(tx packets on the namespace's veth, packets nft counted leaving on a non-lo link)."""
        out = json.loads(self.exec("nft", "-j", "list", "counter", "inet", "oc_egress", "egress").stdout)
        packets = next(i["counter"]["packets"] for i in out["nftables"] if "counter" in i)
        tx = int(self.exec("cat", f"/sys/class/net/{self.ns_if}/statistics/tx_packets").stdout)
        return tx, packets

    def dns_queries(self) -> list[str]:
        try:
            with open(self._log_path) as f:
                return f.read().split()
        except FileNotFoundError:
            return []

    def __exit__(self, *exc) -> None:
        if self.listener is not None:
            self.listener.kill()
            self.listener.wait()
        for ns in (self.name, self.sink):
            sh("ip", "netns", "del", ns, check=False)  # takes the veth pair with it
        shutil.rmtree(self.etc, ignore_errors=True)
        try:
            os.rmdir("/etc/netns")  # only when no other test's namespace still has a folder there
        except OSError:
            pass
        try:
            os.remove(self._log_path)
        except FileNotFoundError:
            pass
        time.sleep(0.05)


# ---- for the tests that need root and nftables ----------------------------------------------
NO_NS = can_make_namespaces()


needs_ns = pytest.mark.skipif(NO_NS is not None, reason=f"network namespace tests: {NO_NS}")


TEST_NET = "192.0.2.1"  # RFC 5737 documentation address: blocked before any packet is made


def ruleset() -> str:
    return sh("nft", "list", "ruleset").stdout

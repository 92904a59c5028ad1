"""Test hosts in network namespaces the test makes itself (never any other address).

``Namespace`` creates a netns joined to the root namespace by a veth pair with a /30 of
10.231.x.0, IPv6 off on both ends (no router solicitations or DAD packets to muddy the
counters), and can run a small TCP server inside that answers ``hi``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time


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

"""Offline mode: the in-process guard, the policy checks, and the real nftables firewall.

The firewall tests make their own network namespace with a veth pair and a TCP server in it
(no other address is ever contacted) and need root, as CI has.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app.core.models.download import DownloadOffline, download, hub_url
from app.core.net import guard, policy
from app.core.net.audit import ALLOWED, BLOCKED_APP, BLOCKED_FIREWALL, LOG, AuditLog, FirewallWatcher
from app.core.net.firewall import linux_nft, macos_pf, windows
from app.core.net.firewall.client import FirewallClient
from tests.support.fake_hub import FakeHub
from tests.support.netns import TEST_NET, Namespace, needs_ns, ruleset

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = ROOT / "tests" / "support"


@pytest.fixture
def log():
    log = AuditLog()
    guard.install(log)
    yield log
    guard.install(LOG)


@pytest.fixture
def offline():
    policy.set_offline(True)
    yield
    policy.set_offline(False)


def loopback_server():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            c.sendall(b"hi")
            c.close()
    threading.Thread(target=serve, daemon=True).start()
    return srv


# ---- the in-process guard ----------------------------------------------------------------------
def test_guard_blocks_and_logs_resolve_and_connect_when_offline(log, offline):
    with pytest.raises(PermissionError, match="Offline mode blocked a connection to example.org"):
        socket.getaddrinfo("example.org", 443)
    with pytest.raises(PermissionError, match=TEST_NET):
        socket.create_connection((TEST_NET, 80), timeout=1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with pytest.raises(PermissionError):
        s.sendto(b"x", (TEST_NET, 53))
    s.close()
    events = [(e.destination, e.protocol, e.state, e.verdict) for e in log.events()]
    assert ("example.org", "dns", "resolve", BLOCKED_APP) in events
    assert (TEST_NET, "tcp", "connect", BLOCKED_APP) in events
    assert (TEST_NET, "udp", "sendto", BLOCKED_APP) in events


def test_guard_allows_loopback_when_offline(log, offline):
    srv = loopback_server()
    for host in ("127.0.0.1", "localhost"):
        with socket.create_connection((host, srv.getsockname()[1]), timeout=2) as c:
            assert c.recv(2) == b"hi"
    srv.close()
    assert not [e for e in log.events() if e.verdict == BLOCKED_APP]
    assert policy.is_loopback_host("::1") and policy.is_loopback_host("::ffff:127.0.0.1")
    assert not policy.is_loopback_host("10.0.0.1") and not policy.is_loopback_host("localhost.evil.com")


def test_guard_records_but_allows_when_online(log):
    policy.set_offline(False)
    srv = loopback_server()
    with socket.create_connection(("127.0.0.1", srv.getsockname()[1]), timeout=2):
        pass
    srv.close()
    # A non-loopback attempt while online is allowed by the guard and logged as such; the
    # address is one of our own namespace's or, here, a resolve of a name that is never sent
    # anywhere (AI_NUMERICHOST makes getaddrinfo fail locally without a lookup).
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("not-an-ip.invalid", 80, flags=socket.AI_NUMERICHOST)
    assert ("not-an-ip.invalid", ALLOWED) in [(e.destination, e.verdict) for e in log.events()]


def test_audit_log_exports_csv(log, offline):
    with pytest.raises(PermissionError):
        socket.create_connection((TEST_NET, 443), timeout=1)
    rows = list(csv.DictReader(io.StringIO(log.to_csv())))
    assert rows and rows[-1]["destination"] == TEST_NET and rows[-1]["port"] == "443"
    assert rows[-1]["verdict"] == BLOCKED_APP and rows[-1]["protocol"] == "tcp"
    assert set(rows[0]) >= {"time", "process", "destination", "port", "protocol", "state", "verdict"}


def test_download_refuses_while_offline_and_contacts_nothing(tmp_path, offline, monkeypatch):
    with FakeHub() as hub:
        hub.files["m.gguf"] = b"x" * 1000
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        with pytest.raises(DownloadOffline, match="Offline mode is on. Turn Offline off in the toolbar"):
            download(hub_url("org/repo", "m.gguf"), tmp_path / "m.gguf")
        assert hub.ranges == []
    assert not (tmp_path / "m.gguf").exists()


# ---- command lines for the platforms we cannot run here ---------------------------------------
def test_windows_and_macos_command_lines():
    exe = r"C:\Program Files\Offline Coder\offline-coder.exe"
    assert windows.add_rule_command(exe) == [
        "netsh", "advfirewall", "firewall", "add", "rule", "name=Offline Coder block (offline-coder.exe)",
        "dir=out", "action=block", f"program={exe}", "enable=yes", "profile=any"]
    assert windows.set_enabled_command(exe, False)[-1] == "enable=no"
    assert "-Direction Outbound -Action Block" in windows.powershell_block_command(exe)[-1]
    with pytest.raises(ValueError):
        windows.powershell_block_command('C:\\x" ; calc.exe "')
    assert windows.delete_rule_command(exe)[-1] == "name=Offline Coder block (offline-coder.exe)"
    assert macos_pf.load_command() == ["pfctl", "-a", "com.apple/250.OfflineCoder", "-f", "-"]
    assert macos_pf.enable_command() == ["pfctl", "-E"]
    assert macos_pf.flush_command()[-2:] == ["-F", "rules"] and macos_pf.status_command()[-2:] == ["-s", "rules"]
    assert "block return out quick proto { tcp, udp } all group offlinecoder" in macos_pf.anchor_rules("offlinecoder")
    with pytest.raises(ValueError):
        macos_pf.anchor_rules("wheel; pass all")


def test_linux_ruleset_text():
    text = linux_nft.ruleset()
    assert "table inet offline_coder {" in text and 'oifname "lo" accept' in text
    assert "set apps { typeof socket cgroupv2 level 2; counter; }" in text
    assert "socket cgroupv2 level 2 @apps jump reject_app" in text and 'counter name "blocked" reject' in text
    assert text.index('oifname "lo" accept') < text.index("reject")
    assert "delete table" not in text  # loading it never drops other instances' blocks
    assert linux_nft.owner_of("unified/offline-coder/app-1000-42") == (1000, 42)
    assert linux_nft.owner_of("/offline-coder/app-0-7") == (0, 7)
    assert linux_nft.owner_of("memory/process_api/memory.max") is None
    with pytest.raises(linux_nft.FirewallError):
        linux_nft._quote('x" } ; flush ruleset ; {"')


# ---- the real firewall ---------------------------------------------------------------------------
def helper(*args: str, uid: int | None = None) -> subprocess.CompletedProcess:
    """The helper as root, called by user ``uid`` (pkexec tells it who through PKEXEC_UID)."""
    env = dict(os.environ)
    if uid is not None:
        env["PKEXEC_UID"] = str(uid)
    return subprocess.run([sys.executable, "-m", "app.core.net.firewall.helper", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env)




class AppProcess:
    """tests/net_app.py: the process the helper puts into the app's cgroup (as user ``uid``)."""

    def __init__(self, uid: int | None = None):
        # net_app.py needs only the standard library; our interpreter may live under /root.
        python = sys.executable if uid is None else shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
        self.p = subprocess.Popen([python, str(SUPPORT / "net_app.py")], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, user=uid, cwd="/")
        assert json.loads(self.p.stdout.readline())["ready"]

    def ask(self, cmd: str, host: str, port: int) -> str:
        self.p.stdin.write(f"{cmd} {host} {port}\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())["result"]

    def close(self):
        self.p.stdin.close()
        self.p.wait(10)


@needs_ns
@pytest.mark.slow
def test_firewall_blocks_the_apps_process_tree_and_off_removes_every_rule():
    with Namespace(1) as ns:
        ns.serve()
        app = AppProcess()
        client = FirewallClient(pid=app.p.pid)
        srv = loopback_server()
        try:
            assert app.ask("probe", ns.ns_ip, ns.port) == "connected"  # online: it works
            st = client.on()
            assert st.active and st.cgroup.endswith(f"offline-coder/app-0-{app.p.pid}")
            assert "this window is blocked" in st.detail
            assert linux_nft.cgroup_of(app.p.pid) == f"/offline-coder/app-0-{app.p.pid}"
            before = client.status().blocked_packets
            assert app.ask("probe", ns.ns_ip, ns.port) == "refused"   # a child of the app
            assert app.ask("self", ns.ns_ip, ns.port) == "refused"    # the app itself
            assert app.ask("probe", "127.0.0.1", srv.getsockname()[1]) == "connected"  # loopback still works
            # The rule is the app's only: this test process is outside its cgroup.
            with socket.create_connection((ns.ns_ip, ns.port), timeout=3) as c:
                assert c.recv(2) == b"hi"
            st = client.status()
            assert st.blocked_packets > before
            log = AuditLog()
            events = FirewallWatcher(log).update(st)
            assert [(e.destination, e.protocol, e.port, e.verdict) for e in events] == [
                (ns.ns_ip, "tcp", ns.port, BLOCKED_FIREWALL)]

            st = client.off()
            assert not st.active and "offline_coder" not in ruleset()
            assert app.ask("probe", ns.ns_ip, ns.port) == "connected"
        finally:
            client.off()
            app.close()
            srv.close()
    # With the app gone, the next `off` (of any instance) also removes its empty cgroup.
    FirewallClient().off()
    assert not (linux_nft.cgroup2_mount() / linux_nft.app_cgroup_name(0, app.p.pid)).exists()


@needs_ns
def test_helper_refuses_bad_arguments_without_touching_rules():
    before = ruleset()
    nobody = subprocess.Popen(["sleep", "30"], user=65534)
    try:
        cases = [["on", "--pid", str(nobody.pid)], ["on", "--pid", "/etc/passwd"], ["junk"], ["on"],
                 ["on", "--pid", "1; nft flush ruleset"], ["status", "--pid", "999999999"],
                 ["off", "--pid", str(os.getpid()), "--extra"], []]
        for args in cases:
            r = helper(*args)
            answer = json.loads(r.stdout)
            assert r.returncode == 2 and not answer["ok"] and answer["error"], args
        assert "belongs to user 65534" in json.loads(helper("on", "--pid", str(nobody.pid)).stdout)["error"]
    finally:
        nobody.kill()
        nobody.wait()
    assert ruleset() == before
    assert not (linux_nft.cgroup2_mount() / linux_nft.app_cgroup_name(65534, nobody.pid)).exists()


# ---- two instances, two users ---------------------------------------------------------------------
USER_A, USER_B = 60001, 60002


def answer(r: subprocess.CompletedProcess) -> dict:
    return json.loads(r.stdout)


@needs_ns
@pytest.mark.slow
def test_two_users_instances_are_blocked_independently_and_cannot_unblock_each_other():
    with Namespace(5) as ns:
        ns.serve()
        a, b = AppProcess(USER_A), AppProcess(USER_B)
        try:
            r = helper("on", "--pid", str(a.p.pid), uid=USER_A)
            assert r.returncode == 0 and answer(r)["status"]["active"], r.stdout + r.stderr
            assert a.ask("probe", ns.ns_ip, ns.port) == "refused"
            assert b.ask("probe", ns.ns_ip, ns.port) == "connected"   # A's block is A's only

            r = helper("on", "--pid", str(b.p.pid), uid=USER_B)
            assert r.returncode == 0, r.stdout + r.stderr
            assert a.ask("probe", ns.ns_ip, ns.port) == "refused"     # B's on did not replace A's
            assert b.ask("probe", ns.ns_ip, ns.port) == "refused"
            st_b = answer(r)["status"]
            assert st_b["active"] and st_b["cgroup"].endswith(f"app-{USER_B}-{b.p.pid}")
            assert "this window is blocked" in st_b["detail"] and "1 other instance(s)" in st_b["detail"]
            assert len(st_b["covered"]) == 2

            # B cannot take A out, nor put A in or out by naming A's process.
            for args in (["off", "--pid", str(a.p.pid)], ["on", "--pid", str(a.p.pid)]):
                r = helper(*args, uid=USER_B)
                assert r.returncode == 2 and f"belongs to user {USER_A}" in answer(r)["error"], args
            assert a.ask("probe", ns.ns_ip, ns.port) == "refused"

            r = helper("off", "--pid", str(b.p.pid), uid=USER_B)
            assert r.returncode == 0 and not answer(r)["status"]["active"], r.stdout
            assert "this window is NOT blocked" in answer(r)["status"]["detail"]
            assert b.ask("probe", ns.ns_ip, ns.port) == "connected"
            assert a.ask("probe", ns.ns_ip, ns.port) == "refused"     # B's off left A's block alone

            # Each instance's status is its own: A sees itself blocked, with its own packet count.
            st_a = answer(helper("status", "--pid", str(a.p.pid), uid=USER_A))["status"]
            assert st_a["active"] and st_a["blocked_packets"] >= 1
            assert any(d[0] == ns.ns_ip and int(d[2]) == ns.port for d in st_a["destinations"])
            st_b = answer(helper("status", "--pid", str(b.p.pid), uid=USER_B))["status"]
            assert not st_b["active"] and st_b["blocked_packets"] == 0

            r = helper("off", "--pid", str(a.p.pid), uid=USER_A)
            assert r.returncode == 0 and "offline_coder" not in ruleset()  # the last one out removes the table
            assert a.ask("probe", ns.ns_ip, ns.port) == "connected"
        finally:
            for app, uid in ((a, USER_A), (b, USER_B)):
                helper("off", "--pid", str(app.p.pid), uid=uid)
                app.close()
        assert "offline_coder" not in ruleset()


@needs_ns
def test_a_killed_instance_leaves_nothing_behind_after_the_next_on_or_off():
    a, b = AppProcess(USER_A), AppProcess(USER_B)
    try:
        assert helper("on", "--pid", str(a.p.pid), uid=USER_A).returncode == 0
        a_dir = linux_nft.cgroup2_mount() / linux_nft.app_cgroup_name(USER_A, a.p.pid)
        assert a_dir.is_dir()
        a.p.kill()  # a crash: A never says off
        a.p.wait()
        r = helper("on", "--pid", str(b.p.pid), uid=USER_B)
        assert r.returncode == 0, r.stdout + r.stderr
        covered = answer(r)["status"]["covered"]
        assert [c for c in covered if f"app-{USER_A}-" in c] == [] and len(covered) == 1
        assert not a_dir.exists()
        r = helper("off", "--pid", str(b.p.pid), uid=USER_B)
        assert r.returncode == 0 and "offline_coder" not in ruleset()
    finally:
        a.p.kill()
        helper("off", "--pid", str(b.p.pid), uid=USER_B)
        b.close()
    helper("off")  # no pid: only cleans what is gone
    parent = linux_nft.cgroup2_mount() / linux_nft.CGROUP_PARENT
    assert not list(parent.glob(f"app-{USER_A}-*")) and not list(parent.glob(f"app-{USER_B}-*"))


# ---- Verify contacts nobody --------------------------------------------------------------------------
def test_verify_accepts_only_documentation_addresses_and_old_settings_are_replaced(tmp_path):
    from app.core.net.verify import DEFAULT_TARGET, VerifyTargetError, parse_target, verify
    from app.core.settings import Settings

    assert parse_target("192.0.2.1:443") == ("192.0.2.1", 443)
    assert parse_target("[2001:db8::1]:80") == ("2001:db8::1", 80)
    assert parse_target("203.0.113.9:9") == ("203.0.113.9", 9)
    for bad in ("1.1.1.1:443", "8.8.8.8:53", "10.0.0.1:80", "127.0.0.1:80", "example.org:443", "192.0.2.1",
                "192.0.2.1:0", "[2606:4700::1111]:443"):
        with pytest.raises(VerifyTargetError):
            parse_target(bad)
    with pytest.raises(VerifyTargetError, match="never routed"):
        verify("1.1.1.1:443", None)  # refused before any child starts
    f = tmp_path / "settings.toml"
    f.write_text('verify_target = "1.1.1.1:443"\n')
    assert Settings.load(f).verify_target == DEFAULT_TARGET == Settings().verify_target


VERIFY_IN_NS = """
import json, os, sys
from app.core.net.firewall.client import FirewallClient
from app.core.net.verify import DEFAULT_TARGET, verify
client = FirewallClient(pid=os.getpid())
on = sys.argv[1] == "on" and client.on().active
r = verify(DEFAULT_TARGET, client.status)
print(json.dumps({"on": on, "verdict": r.verdict, "message": r.message, "off": on and client.off().active}))
"""


@needs_ns
@pytest.mark.slow
def test_verify_blocked_and_not_blocked_inside_a_namespace_that_reaches_nobody():
    """The not-blocked case sends a SYN to 192.0.2.1: only ever inside namespaces the test made,
    whose one route ends in a sink namespace. (nsenter, not `ip netns exec`, which would mount
    a /sys without the cgroup hierarchy.)"""
    from tests.support.netns import SinkNamespaces

    def run(mode: str) -> dict:
        r = subprocess.run(["nsenter", f"--net=/run/netns/{ns.name}", sys.executable, "-c", VERIFY_IN_NS, mode],
                           capture_output=True, text=True, cwd=ROOT, timeout=120,
                           env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    with SinkNamespaces(6) as ns:
        start = ns.egress()
        out = run("on")
        assert out["on"] and not out["off"]
        assert out["verdict"] == "blocked" and "counter for this window went from 0 to 1" in out["message"], out
        assert ns.egress() == start  # blocked: not one packet left the namespace
        out = run("off")
        assert out["verdict"] == "leaked" and "left this computer unrejected and timed out" in out["message"], out
        assert ns.egress()[1] > start[1]  # the unblocked attempt did go out, into the sink


# ---- no byte leaves --------------------------------------------------------------------------------
EGRESS_TABLE = """table inet oc_egress {
  counter egress { }
  chain output { type filter hook output priority 0; policy accept; oifname != "lo" counter name "egress"; }
}
"""


def egress(ns: Namespace) -> tuple[int, int]:
    """(tx packets on the namespace's veth, packets counted leaving by nft) inside ``ns``."""
    out = json.loads(ns.exec("nft", "-j", "list", "counter", "inet", "oc_egress", "egress").stdout)
    packets = next(i["counter"]["packets"] for i in out["nftables"] if "counter" in i)
    return ns.tx_packets(), packets


def run_in(ns: Namespace, *cmd: str, home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OFFLINE_CODER_HOME=str(home), PYTHONPATH=str(ROOT))
    return subprocess.run(["ip", "netns", "exec", ns.name, *cmd], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=240)


@needs_ns
@pytest.mark.slow
def test_no_byte_leaves_during_indexing_and_a_real_inference_and_a_leak_is_caught(tmp_path):
    from tests.support.index_project import make_project
    project = make_project(tmp_path / "shop")
    with Namespace(2) as ns:
        r = subprocess.run(["ip", "netns", "exec", ns.name, "nft", "-f", "-"], input=EGRESS_TABLE, text=True,
                           capture_output=True)
        assert r.returncode == 0, r.stderr
        start = egress(ns)
        # indexes the project (tree-sitter, onnxruntime, hnswlib), retrieves, then answers
        answer = run_in(ns, sys.executable, "-m", "app", "ask", "--greedy", "--max-tokens", "24",
                        "--project", str(project), "How is a card charged?", home=tmp_path / "home")
        assert answer.returncode == 0 and answer.stdout.strip(), answer.stderr
        assert "\nSources: " in answer.stdout and "shop/gateway.py:" in answer.stdout.rsplit("Sources:", 1)[1]
        assert egress(ns) == start  # not one packet left the namespace during indexing and a real answer

        # Negative control: the same check must fail for a run that does send something.
        leak = run_in(ns, sys.executable, str(SUPPORT / "net_app.py"), "--probe", ns.host_ip, "9", home=tmp_path / "h2")
        assert json.loads(leak.stdout)["result"] in ("refused", "error")
        tx, counted = egress(ns)
        assert tx > start[0] and counted > start[1]


@needs_ns
def test_poll_sees_a_child_process_connection_stuck_in_syn_sent():
    """Native code and child processes bypass the guard; the psutil poll still sees them."""
    from app.core.net.audit import SEEN, ConnectionPoller
    with Namespace(4) as ns:
        r = subprocess.run(["ip", "netns", "exec", ns.name, "nft", "-f", "-"], text=True, capture_output=True,
                           input="table inet sink {\n chain input {\n  type filter hook input priority 0;\n"
                                 "  tcp dport 9999 drop\n }\n}\n")
        assert r.returncode == 0, r.stderr
        app = AppProcess()
        try:
            log = AuditLog()
            poller = ConnectionPoller(log, pid=app.p.pid)
            app.p.stdin.write(f"probe {ns.ns_ip} 9999\n")  # answered after its 3 s timeout
            app.p.stdin.flush()
            deadline = time.time() + 2.5
            while time.time() < deadline and not log.events():
                poller.poll()
                time.sleep(0.1)
            events = [(e.destination, e.port, e.state, e.verdict, e.source) for e in log.events()]
            assert (ns.ns_ip, 9999, "SYN_SENT", SEEN, "poll") in events
            assert log.events()[0].pid != app.p.pid  # it was the child, not the app itself
            assert json.loads(app.p.stdout.readline())["result"] == "error"
        finally:
            app.close()

"""The Offline toggle and the Network panel in the real window (the firewall part as root)."""

from __future__ import annotations

import csv
import os
import socket

import pytest

from app.core.net import guard, policy
from app.core.net.audit import BLOCKED_APP, BLOCKED_FIREWALL
from app.core.net.firewall.client import FirewallClient
from app.core.net.verify import BLOCKED, LEAKED
from app.core.settings import Settings
from tests.netns import Namespace
from tests.test_gui import close_window, open_window
from tests.test_offline import TEST_NET, needs_ns, ruleset

pytestmark = pytest.mark.gui


def test_offline_is_the_default_and_the_toggle_persists_and_guards(qtbot, app_home):
    guard.install()
    w = open_window(qtbot, app_home)
    assert w.offline_action.isChecked() and policy.is_offline()
    assert "not managed" in w.network_panel.firewall_label.text()
    with pytest.raises(PermissionError):
        socket.create_connection((TEST_NET, 80), timeout=1)
    qtbot.waitUntil(lambda: any(r[2] == TEST_NET and r[6] == BLOCKED_APP for r in w.network_panel.rows()),
                    timeout=5_000)
    w.offline_action.setChecked(False)
    assert not policy.is_offline()
    assert Settings.load(w.ctx.paths.settings_file).offline is False
    close_window(w)


@needs_ns
@pytest.mark.slow
def test_firewall_status_verify_audit_and_off(qtbot, app_home, tmp_path):
    with Namespace(3) as ns:
        ns.serve()
        w = open_window(qtbot, app_home, verify_target=f"{ns.ns_ip}:{ns.port}")
        client = FirewallClient(pid=os.getpid())
        try:
            w.ctx.firewall = client
            with qtbot.waitSignal(w.firewall_changed, timeout=30_000) as changed:
                w.set_offline(True)
            status = changed.args[0]
            assert status.active, status
            assert "Firewall: blocking outbound traffic" in w.network_panel.firewall_label.text()
            with qtbot.waitSignal(w.verified, timeout=30_000) as v:
                w.network_panel.verify_button.click()
            assert v.args[0].verdict == BLOCKED and "refused" in w.network_panel.verify_label.text()
            # The firewall's own record of the rejected connection reaches the panel.
            qtbot.waitUntil(lambda: any(r[2] == ns.ns_ip and r[6] == BLOCKED_FIREWALL
                                        for r in w.network_panel.rows()), timeout=15_000)
            out = tmp_path / "log.csv"
            w.export_network_log(str(out))
            rows = list(csv.DictReader(out.open()))
            assert any(r["destination"] == ns.ns_ip and r["verdict"] == BLOCKED_FIREWALL for r in rows)

            with qtbot.waitSignal(w.firewall_changed, timeout=30_000) as changed:
                w.offline_action.setChecked(False)
            assert not changed.args[0].active and "offline_coder" not in ruleset()
            with qtbot.waitSignal(w.verified, timeout=30_000) as v:
                w.network_panel.verify_button.click()
            assert v.args[0].verdict == LEAKED  # honest: with offline off, the connection goes through
        finally:
            client.off()
            close_window(w)

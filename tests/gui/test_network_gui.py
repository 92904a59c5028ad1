"""The Offline toggle and the Network panel in the real window (the firewall part as root)."""

from __future__ import annotations

import csv
import os
import socket

import pytest

from app.core.net import guard, policy
from app.core.net.audit import BLOCKED_APP, BLOCKED_FIREWALL
from app.core.net.firewall import linux_nft
from app.core.net.firewall.client import FirewallClient
from app.core.net.verify import BLOCKED, DEFAULT_TARGET
from app.core.settings import Settings
from tests.support.gui import close_window, open_window, wait_loaded
from tests.support.netns import TEST_NET, needs_ns, ruleset

pytestmark = pytest.mark.gui


def test_offline_is_the_default_and_the_toggle_persists_and_guards(qtbot, app_home):
    guard.install()
    w = open_window(qtbot, app_home)
    assert w.features.network.offline_action.isChecked() and policy.is_offline()
    assert "not managed" in w.features.network.panel.firewall_label.text()
    with pytest.raises(PermissionError):
        socket.create_connection((TEST_NET, 80), timeout=1)
    qtbot.waitUntil(lambda: any(r[2] == TEST_NET and r[6] == BLOCKED_APP for r in w.features.network.panel.rows()),
                    timeout=5_000)
    w.features.network.offline_action.setChecked(False)
    assert not policy.is_offline()
    assert Settings.load(w.ctx.paths.settings_file).offline is False
    close_window(w)


@needs_ns
@pytest.mark.slow
def test_firewall_status_verify_audit_and_off(qtbot, app_home, tmp_path):
    w = open_window(qtbot, app_home)
    assert w.ctx.settings.verify_target == DEFAULT_TARGET  # a documentation address: it reaches nobody
    client = FirewallClient(pid=os.getpid())
    home_cgroup = linux_nft.cgroup_of(os.getpid())
    try:
        w.ctx.firewall = client
        with qtbot.waitSignal(w.features.network.firewall_changed, timeout=30_000) as changed:
            w.features.network.set_offline(True)
        status = changed.args[0]
        assert status.active, status  # (Verify below must only ever run while blocked here)
        assert "Firewall: this window is blocked" in w.features.network.panel.firewall_label.text()
        with qtbot.waitSignal(w.features.network.verified, timeout=30_000) as v:
            w.features.network.panel.verify_button.click()
        assert v.args[0].verdict == BLOCKED, v.args[0]
        assert "rejected a connection to 192.0.2.1:443 at once" in w.features.network.panel.verify_label.text()
        # The firewall's own record of the rejected connection reaches the panel.
        qtbot.waitUntil(lambda: any(r[2] == "192.0.2.1" and r[6] == BLOCKED_FIREWALL
                                    for r in w.features.network.panel.rows()), timeout=15_000)
        out = tmp_path / "log.csv"
        w.features.network.export_log(str(out))
        rows = list(csv.DictReader(out.open()))
        assert any(r["destination"] == "192.0.2.1" and r["verdict"] == BLOCKED_FIREWALL for r in rows)

        with qtbot.waitSignal(w.features.network.firewall_changed, timeout=30_000) as changed:
            w.features.network.offline_action.setChecked(False)
        assert not changed.args[0].active and "offline_coder" not in ruleset()
        assert "this window is NOT blocked" in w.features.network.panel.firewall_label.text()
        # (Verify while not blocked is tested inside a namespace: tests/core/test_offline.py.)
    finally:
        client.off()
        close_window(w)
        # This test process played the window: put it back, so later tests see no app instance.
        (linux_nft.cgroup2_mount() / home_cgroup.lstrip("/") / "cgroup.procs").write_text(str(os.getpid()))
        FirewallClient().off()


def test_offline_and_online_commands_do_what_the_toggle_does(qtbot, app_home):
    w = open_window(qtbot, app_home)
    wait_loaded(qtbot, w)
    assert policy.is_offline()
    w.features.chat.panel.input.setPlainText("/online")
    w.features.chat.panel.send_button.click()
    assert not policy.is_offline() and not w.features.network.offline_action.isChecked()
    assert Settings.load(w.ctx.paths.settings_file).offline is False
    notes = [m for m in w.ctx.storage.messages(w.features.chat.current_id) if m.role == "system"]
    assert "Offline mode is now off" in notes[-1].content
    w.features.chat.panel.input.setPlainText("/online")
    w.features.chat.panel.send_button.click()
    assert "already off: nothing changed" in w.ctx.storage.messages(w.features.chat.current_id)[-1].content
    w.features.chat.panel.input.setPlainText("/offline")
    w.features.chat.panel.send_button.click()
    assert policy.is_offline() and w.features.network.offline_action.isChecked()
    assert Settings.load(w.ctx.paths.settings_file).offline is True
    assert "Offline mode is now on" in w.ctx.storage.messages(w.features.chat.current_id)[-1].content
    assert "Offline mode is now on" in w.features.chat.panel.view.toPlainText()
    close_window(w)

"""Offline mode and the Network panel: the toolbar toggle (and /offline, /online), the OS
firewall through its helper, the live audit, Verify and the CSV export.

The app's own guard switches at once; the firewall changes on a worker and its state is
always what the kernel reports back (``firewall_changed``), never the app's own flag.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction

from app.core.chat.intent import network_note
from app.core.net import policy
from app.core.net.audit import LOG, ConnectionPoller, FirewallWatcher
from app.core.net.firewall.linux_nft import FirewallStatus
from app.core.net.verify import VerifyResult, verify
from app.ui.errors import describe_error
from app.ui.features.base import Feature
from app.ui.features.network.network_panel import NetworkPanel
from app.ui.workers import Job


class NetworkFeature(Feature):
    name = "network"
    firewall_changed = Signal(object)  # FirewallStatus read back from the OS (or an Exception)
    verified = Signal(object)          # VerifyResult

    def __init__(self, host):
        super().__init__(host)
        self.panel = NetworkPanel()
        self.dock = host.add_dock("Network", self.panel, Qt.BottomDockWidgetArea)
        self.offline_action = QAction("Offline", self)
        self.offline_action.setCheckable(True)
        self.offline_action.setToolTip("Block every connection of the app and its child processes (OS firewall)")
        self.panel_action = self.dock.toggleViewAction()
        self.panel_action.setText("Network")
        self._unsubscribe = LOG.subscribe(self.panel.event_arrived.emit)
        for e in LOG.events()[-200:]:
            self.panel.add_event(e)
        self.status: FirewallStatus | None = None
        self.poller = ConnectionPoller(LOG, firewall_active=lambda: self.status is not None and self.status.active)
        self.watcher = FirewallWatcher(LOG)
        self.net_job: Job | None = None
        self._polls = 0
        self.poll_timer = QTimer(self)
        self.poll_timer.setInterval(1000)
        self.poll_timer.timeout.connect(self.poll)
        self.panel.verify_requested.connect(self.verify_block)
        self.panel.export_requested.connect(self.export_log)

    def restore(self) -> None:
        self.poll_timer.start()
        self.offline_action.setChecked(self.ctx.settings.offline)
        self.offline_action.toggled.connect(self.set_offline)
        self.set_offline(self.ctx.settings.offline)

    def set_offline(self, on: bool) -> None:
        """Switch offline mode: the app's own check at once, the OS firewall on a worker."""
        policy.set_offline(on)
        if self.ctx.settings.offline != on:
            self.ctx.settings.offline = on
            self.ctx.save_settings()
        if self.offline_action.isChecked() != on:
            self.offline_action.setChecked(on)
        fw = self.ctx.firewall
        if fw is None:
            self.panel.set_firewall_status(
                "Firewall: not managed in this session; the app's own guard "
                + ("blocks every non-loopback connection." if on else "is recording connections."))
            return
        self.panel.set_firewall_status("Firewall: changing…")
        self.net_job = self.jobs.start(Job(lambda _ctx: fw.on() if on else fw.off(), name="firewall", parent=self)
                                       .on_success(self._firewall_read)
                                       .on_failure(self._firewall_read))

    def switch_from_chat(self, offline: bool) -> None:
        """/offline and /online: what the toolbar toggle does, said in the chat."""
        note = network_note(offline, policy.is_offline())
        self.set_offline(offline)
        self.host.features.chat.add_note(note, {"tool": "network", "offline": offline})

    def _firewall_read(self, status) -> None:
        if isinstance(status, BaseException):
            self.panel.set_firewall_status(
                f"Firewall: could not be changed ({status}). The app's own guard still "
                + ("blocks connections." if policy.is_offline() else "records connections."))
        else:
            self.status = status
            self.watcher.update(status)
            self.panel.set_firewall_status(status.detail)
        self.firewall_changed.emit(status)

    def poll(self) -> None:
        """Each second: the process tree's connections; every fifth, the firewall's own report
        (when reading it needs no password; otherwise it is read after each on/off)."""
        if self.net_job is not None and self.net_job.is_running():
            return
        self._polls += 1
        fw = self.ctx.firewall
        if self._polls % 5 or fw is None or not fw.quiet_status:
            fw = None
        poller = self.poller

        def job(_ctx):
            poller.poll()
            return fw.status() if fw is not None else None

        self.net_job = self.jobs.start(
            Job(job, name="network-poll", parent=self)
            .on_success(lambda st: st is not None and self._firewall_read(st))
            .on_failure(lambda e: self.panel.set_firewall_status(f"Firewall: cannot read ({e})")))

    def verify_block(self) -> None:
        target = self.ctx.settings.verify_target
        fw = self.ctx.firewall
        read = fw.status if fw is not None and fw.quiet_status else None
        self.panel.verify_label.setText(f"Verifying: connecting to {target} (a documentation address "
                                        "nobody answers) from a child process…")
        self.jobs.start(Job(lambda _ctx: verify(target, read), name="verify", parent=self)
                        .on_success(self._verified)
                        .on_failure(lambda e: self._verified(VerifyResult("inconclusive", target, describe_error(e)))))

    def _verified(self, result: VerifyResult) -> None:
        self.panel.verify_label.setText(result.message)
        self.verified.emit(result)

    def export_log(self, path: str) -> None:
        try:
            Path(path).write_text(LOG.to_csv(), encoding="utf-8")
        except OSError as e:
            self.panel.verify_label.setText(f"Could not export: {e.strerror or e}")
            return
        self.host.notify(f"Network log exported to {path}")

    def shutdown(self) -> None:
        self.poll_timer.stop()
        self._unsubscribe()
        self.jobs.cancel()

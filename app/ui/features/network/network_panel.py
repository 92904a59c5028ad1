"""The Network panel: every connection attempt, live, and the firewall as the OS reports it."""

from __future__ import annotations

import time

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QPushButton, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from app.core.net.audit import BLOCKED_APP, BLOCKED_FIREWALL, NetEvent

COLUMNS = ["Time", "Process", "Destination", "Port", "Protocol", "State", "Verdict"]
MAX_ROWS = 2000


class NetworkPanel(QWidget):
    event_arrived = Signal(object)   # NetEvent, emitted from any thread (queued to the GUI)
    verify_requested = Signal()
    export_requested = Signal(str)   # path

    def __init__(self, parent=None):
        super().__init__(parent)
        self.firewall_label = QLabel("Firewall: checking…")
        self.firewall_label.setObjectName("firewallStatus")
        self.firewall_label.setWordWrap(True)
        self.verify_label = QLabel()
        self.verify_label.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.verify_button = QPushButton("Verify")
        self.verify_button.setToolTip("Try a connection from a child process: it must be refused while offline")
        self.export_button = QPushButton("Export CSV…")
        self.clear_button = QPushButton("Clear")
        row = QHBoxLayout()
        row.addWidget(self.verify_button)
        row.addWidget(self.export_button)
        row.addWidget(self.clear_button)
        row.addStretch()
        lay = QVBoxLayout(self)
        lay.addWidget(self.firewall_label)
        lay.addWidget(self.verify_label)
        lay.addWidget(self.table, 1)
        lay.addLayout(row)
        self.event_arrived.connect(self.add_event)
        self.verify_button.clicked.connect(self.verify_requested)
        self.export_button.clicked.connect(self._export)
        self.clear_button.clicked.connect(lambda: self.table.setRowCount(0))

    def add_event(self, e: NetEvent) -> None:
        r = self.table.rowCount()
        if r >= MAX_ROWS:
            self.table.removeRow(0)
            r -= 1
        self.table.insertRow(r)
        values = [time.strftime("%H:%M:%S", time.localtime(e.time)), f"{e.process} ({e.pid})" if e.pid else e.process,
                  e.destination, "" if e.port is None else str(e.port), e.protocol, e.state, e.verdict]
        for c, v in enumerate(values):
            item = QTableWidgetItem(v)
            if e.verdict in (BLOCKED_APP, BLOCKED_FIREWALL) and c == len(values) - 1:
                item.setForeground(self.palette().link())
            self.table.setItem(r, c, item)
        self.table.scrollToBottom()

    def rows(self) -> list[list[str]]:
        return [[self.table.item(r, c).text() for c in range(self.table.columnCount())]
                for r in range(self.table.rowCount())]

    def set_firewall_status(self, text: str) -> None:
        self.firewall_label.setText(text)

    def _export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export network log", "network-log.csv", "CSV files (*.csv)")
        if path:
            self.export_requested.emit(path)

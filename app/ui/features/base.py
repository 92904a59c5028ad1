"""What every feature is: a QObject owned by the window, with its own job group.

``start()`` runs once every feature exists (so a feature may connect to another's signals);
``shutdown()`` asks its jobs to stop; the window then waits for every feature's jobs together
within a bounded time, delivers their last signals, and calls ``closed()`` to release the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject

from app.ui.workers import JobGroup

if TYPE_CHECKING:
    from app.ui.host import Host


class Feature(QObject):
    name = "feature"

    def __init__(self, host: "Host"):
        super().__init__(host.window)
        self.host = host
        self.ctx = host.ctx
        self.jobs = JobGroup(self)

    def start(self) -> None:
        """Every feature exists now: connect to the others' signals."""

    def restore(self) -> None:
        """Every feature is connected: bring back the state of the last session (its signals
        now reach everyone)."""

    def shutdown(self) -> None:
        """The window is closing: stop this feature's work (the window waits for the jobs)."""
        self.jobs.cancel()

    def closed(self) -> None:
        """Every feature's jobs have ended (or the wait ran out): release what is left."""

"""Settings → Local API…: the loaded model served to the user's editor over loopback HTTP
(``app/core/api/``), sharing the window's model through the engine service's gate.

Off unless the user turns it on; the on/off state and port are settings, so it comes back on
at the next start. The server runs on its own thread; nothing here is touched from it: the
status-bar count is polled from the backend once a second on the GUI thread, and the Network
panel gets each request's audit line through the audit log it already follows.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QAction

from app.core.api.backend import ApiBackend, ServedModel
from app.core.api.keys import api_key
from app.core.api.service import ApiServer
from app.core.errors import UserError
from app.ui.errors import describe_error
from app.ui.features.api.api_dialog import ApiDialog
from app.ui.features.base import Feature

HOST = "127.0.0.1"


class ApiFeature(Feature):
    name = "api"
    state_changed = Signal()  # started or stopped (the dialog and the label follow)

    def __init__(self, host):
        super().__init__(host)
        self.action = QAction("Local &API…", self)
        self.action.setToolTip("Serve the loaded model to your editor on this computer (OpenAI-compatible)")
        self.action.triggered.connect(self.show)
        self.server: ApiServer | None = None
        self.error = ""
        self.dialog: ApiDialog | None = None
        self.label = host.status_label("api")
        self.label.hide()
        self.timer = QTimer(self)
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self.refresh_label)

    # ---- the user's side -----------------------------------------------------------------------
    def restore(self) -> None:
        if self.ctx.settings.api_enabled and not self.start_server():
            self.host.notify(f"The local API did not start: {self.error}", 15000)

    def show(self) -> ApiDialog:
        self.dialog = ApiDialog(self.ctx.settings.api_enabled and self.running, self.ctx.settings.api_port,
                                parent=self.host.window)
        self.dialog.toggled.connect(self.set_enabled)
        self.dialog.key_copied.connect(lambda: self.host.notify("The local API key is on the clipboard."))
        self._show_state()
        self.dialog.show()
        return self.dialog

    def set_enabled(self, on: bool, port: int | None = None) -> bool:
        """Turn the API on (on ``port``; 0 the default or a free one) or off, keeping the choice
        in settings; False (and ``error`` says why) when it could not start."""
        if port is not None:
            self.ctx.settings.api_port = port
        ok = self.start_server() if on else (self.stop_server() or True)
        self.ctx.settings.api_enabled = on and ok
        self.ctx.save_settings()
        return ok

    @property
    def running(self) -> bool:
        return self.server is not None and self.server.running

    @property
    def url(self) -> str | None:
        return self.server.url if self.running else None

    # ---- the server ----------------------------------------------------------------------------
    def start_server(self) -> bool:
        self.stop_server()
        self.error = ""
        try:
            key = api_key()
            backend = ApiBackend(self.host.engine.gate, self._served, key, self.ctx.settings.generation,
                                 rules=self._rules)
            server = ApiServer(backend, HOST, self.ctx.settings.api_port or None)
            server.start()
        except UserError as e:  # no key (no keyring), port in use, did not start
            self.error = describe_error(e)
            self._changed()
            return False
        self.server = server
        self.timer.start()
        self._changed()
        return True

    def stop_server(self) -> None:
        server, self.server = self.server, None
        self.timer.stop()
        if server is not None:
            server.stop()
            self._changed()

    def _served(self) -> ServedModel | None:
        """The window's model as the API serves it (read on the API's threads, inside the gate)."""
        es = self.host.engine
        engine, model = es.engine, es.model
        return ServedModel(model.name, engine) if engine is not None and model is not None else None

    def _rules(self) -> list[str]:
        """The standing rules, read from their own connection (the window's is for its thread)."""
        from app.core.storage import Storage, StorageError

        try:
            storage = Storage(self.ctx.paths.database)
        except StorageError:
            return []
        try:
            return [r.text for r in storage.active_rules(self.ctx.settings.project_dir or None)]
        finally:
            storage.close()

    # ---- what shows it -------------------------------------------------------------------------
    def requests(self) -> int:
        return self.server.backend.requests if self.server is not None else 0

    def refresh_label(self) -> None:
        if self.running:
            n = self.requests()
            self.label.setText(f"API on {HOST}:{self.server.port} · {n} request{'' if n == 1 else 's'}")
            self.label.setToolTip(f"Local API: {self.server.url}/v1 (Settings → Local API…)")
            self.label.show()
        else:
            self.label.hide()

    def _changed(self) -> None:
        self.refresh_label()
        self._show_state()
        self.state_changed.emit()

    def _show_state(self) -> None:
        if self.dialog is None:
            return
        try:
            key = api_key(create=False)
        except UserError:
            key = ""
        self.dialog.show_state(self.url, key, self.error)

    def shutdown(self) -> None:
        self.stop_server()
        super().shutdown()

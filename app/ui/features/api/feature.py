"""Settings → Local API…: the loaded model served to the user's editor over loopback HTTP
(``app/core/api/``), sharing the window's model through the engine service's gate.

Off unless the user turns it on; the on/off state, port and completion model are settings, so
it comes back on at the next start. Starting (the key, maybe a second model to load, the
socket) and stopping run on a worker (``Job``, one at a time), the server on its own thread;
neither touches anything here but through the job's result. The status-bar count is polled
from the backend once a second on the GUI thread, and the Network panel gets each request's
audit line through the audit log it already follows.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QAction

from app.core.api import run as api_run
from app.core.api.backend import ServedModel
from app.core.api.completion_model import completion_models
from app.core.api.keys import api_key
from app.core.api.run import ApiRun
from app.core.api.service import ApiServer
from app.core.errors import UserError
from app.core.models.active import active_model
from app.core.models.registry import ModelRegistry
from app.ui.errors import describe_error
from app.ui.features.api.api_dialog import ApiDialog
from app.ui.features.base import Feature
from app.ui.workers import Job

HOST = "127.0.0.1"


class ApiFeature(Feature):
    name = "api"
    state_changed = Signal()  # started, stopped, or a start/stop began (the dialog and the label follow)

    def __init__(self, host):
        super().__init__(host)
        self.action = QAction("Local &API…", self)
        self.action.setToolTip("Serve the loaded model to your editor on this computer (OpenAI-compatible)")
        self.action.triggered.connect(self.show)
        self.run: ApiRun | None = None
        self.job: Job | None = None   # a start or a stop in progress (one at a time)
        self.chat_path = None         # the chat model the completion model was fitted beside
        self.error = ""
        self.dialog: ApiDialog | None = None
        self.label = host.status_label("api")
        self.label.hide()
        self.timer = QTimer(self)
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self.refresh_label)

    def start(self) -> None:
        # A new chat model may not leave room for the completion model (or may newly leave it):
        # the API is started again, which chooses again.
        self.host.engine.loaded.connect(self._chat_model_changed)

    # ---- the user's side -----------------------------------------------------------------------
    def restore(self) -> None:
        if self.ctx.settings.api_enabled:
            self.start_server(remember=False)

    def show(self) -> ApiDialog:
        registry = ModelRegistry(self.ctx.paths.models_dir)
        choices = [(m.name, m.id) for m in completion_models(registry)]
        self.dialog = ApiDialog(self.ctx.settings.api_enabled and self.running, self.ctx.settings.api_port,
                                choices, self.ctx.settings.api_completion_model, parent=self.host.window)
        self.dialog.toggled.connect(self.set_enabled)
        self.dialog.completion_chosen.connect(self.set_completion_model)
        self.dialog.key_copied.connect(lambda: self.host.notify("The local API key is on the clipboard."))
        self._show_state()
        self.dialog.show()
        return self.dialog

    def set_enabled(self, on: bool, port: int | None = None) -> None:
        """Turn the API on (on ``port``; 0 the default or a free one) or off, on a worker; the
        choice is kept in settings once it took (``error`` says why it did not)."""
        if port is not None:
            self.ctx.settings.api_port = port
        if on:
            self.start_server()
        else:
            self.stop_server()

    def set_completion_model(self, model_id: str) -> None:
        """The completion model ("" for none): kept, and the running API starts again with it."""
        self.ctx.settings.api_completion_model = model_id
        self.ctx.save_settings()
        if self.running:
            self.start_server()

    @property
    def running(self) -> bool:
        return self.run is not None and self.run.server.running

    @property
    def server(self) -> ApiServer | None:
        return self.run.server if self.run is not None else None

    @property
    def busy(self) -> bool:
        return self.job is not None and self.job.is_running()

    @property
    def url(self) -> str | None:
        return self.run.server.url if self.running else None

    @property
    def note(self) -> str:
        """What the user should know about the completion model of the running API."""
        return self.run.note if self.run is not None else ""

    # ---- the server, on a worker ---------------------------------------------------------------
    def start_server(self, remember: bool = True) -> Job | None:
        """(Re)start: the old run stops, the key is read, the completion model loads if chosen
        and it fits, the server listens. Nothing of it blocks the window (a model load takes
        seconds)."""
        if self.busy:
            return None
        old, self.run, self.error = self.run, None, ""
        s, engine_service = self.ctx.settings, self.host.engine
        model = engine_service.model
        chat_path = self.chat_path = model.path if model is not None else active_model(s).path
        args = (engine_service.gate, self._served, s.generation, self._rules, self.ctx.paths.models_dir,
                s.api_completion_model, chat_path, s.n_ctx, s.n_threads, HOST, s.api_port or None)

        def work(_ctx):
            if old is not None:
                old.stop()
            return api_run.start(*args)

        def started(run: ApiRun) -> None:
            self.run = run
            self.timer.start()
            if remember and not self.ctx.settings.api_enabled:
                self.ctx.settings.api_enabled = True
                self.ctx.save_settings()

        def refused(e: BaseException) -> None:
            self.error = describe_error(e)  # no key (no keyring), port in use, did not start
            if remember:
                self.ctx.settings.api_enabled = False
                self.ctx.save_settings()
            else:
                self.host.notify(f"The local API did not start: {self.error}", 15000)

        return self._work(work, started, refused)

    def stop_server(self) -> Job | None:
        if self.busy:
            return None
        old, self.run = self.run, None
        self.timer.stop()
        if self.ctx.settings.api_enabled:
            self.ctx.settings.api_enabled = False
            self.ctx.save_settings()
        if old is None:
            self._changed()
            return None
        return self._work(lambda _ctx: old.stop(), lambda _r: None, lambda e: setattr(self, "error", describe_error(e)))

    def _work(self, fn, success, failure) -> Job:
        self.job = (Job(fn, name="local-api", parent=self).on_success(success).on_failure(failure))
        self.job.finished.connect(self._changed)
        self.jobs.start(self.job)
        self._changed()
        return self.job

    def _chat_model_changed(self, loaded) -> None:
        if self.running and self.ctx.settings.api_completion_model and loaded.model.path != self.chat_path:
            self.start_server(remember=False)

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
        self.dialog.show_state(self.url, key, self.error, self.note, self.busy)

    def closed(self) -> None:
        """The window is gone and every job has ended: what still runs stops here (blocking for
        at most a few seconds, at exit only)."""
        run, self.run = self.run, None
        self.timer.stop()
        if run is not None:
            run.stop()

"""Settings → Preferences… and Help → Keyboard shortcuts (F1), and the settings file's notes.

Preferences: the values are checked in ``core.settings`` (bounds, the model's trained context,
the memory a context size needs by the models' fit rule) and written into the one Settings
object in place, so the next answer uses them (``ChatService.params`` copies them per answer).
Context size and threads are read when the model loads: changing them asks first, then loads
the model again through the engine service once it is free (never on the GUI thread); if the
new size cannot be loaded, the old one comes back and loads.

At start, what ``Settings.load_checked`` corrected in settings.toml (clamped numbers, defaults
for wrong types) is shown once; a model loaded with a context longer than it was trained on is
loaded again at its trained length, saying so.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMessageBox

from app.core import hardware
from app.core.errors import UserError
from app.core.models.active import active_model
from app.core.models.gguf_info import read_gguf_info
from app.core.settings import Preferences, Settings, SettingsError, clamp_context_to_model, context_memory
from app.ui.errors import describe_error
from app.ui.features.base import Feature
from app.ui.features.settings.preferences_dialog import PreferencesDialog
from app.ui.features.settings.shortcuts_dialog import ShortcutsDialog, collect_shortcuts


def standard_keys(key: QKeySequence.StandardKey, fallback: str) -> list[QKeySequence]:
    """The platform's keys for ``key`` (⌘, on macOS for Preferences), else ``fallback``."""
    return QKeySequence.keyBindings(key) or [QKeySequence(fallback)]


class SettingsFeature(Feature):
    name = "settings"

    def __init__(self, host):
        super().__init__(host)
        self.hardware_probe = None  # tests inject a machine here (as in Models)
        self.preferences_action = QAction("&Preferences…", self)
        self.preferences_action.setMenuRole(QAction.PreferencesRole)
        self.preferences_action.setShortcuts(standard_keys(QKeySequence.Preferences, "Ctrl+,"))
        self.preferences_action.setToolTip("Answers, context size and threads, system prompt, network and tools")
        self.preferences_action.triggered.connect(self.show_preferences)
        self.shortcuts_action = QAction("&Keyboard shortcuts", self)
        self.shortcuts_action.setShortcuts(standard_keys(QKeySequence.HelpContents, "F1"))
        self.shortcuts_action.triggered.connect(self.show_shortcuts)
        self.dialog: PreferencesDialog | None = None
        self.shortcuts_dialog: ShortcutsDialog | None = None
        self.question: QMessageBox | None = None  # "load the model again?"
        self.notice: QMessageBox | None = None    # the settings file's notes, once at start
        # Read before any feature saves: what the load corrected in the file (it is left as it was).
        self.start_notes = Settings.load_checked(self.ctx.paths.settings_file)[1]
        host.engine.loaded.connect(self._check_trained_length)

    def start(self) -> None:
        # Live wherever the window places them in its menus (a shortcut needs a widget in the window).
        self.host.window.addActions([self.preferences_action, self.shortcuts_action])

    def restore(self) -> None:
        if self.start_notes:
            self.host.notify(f"settings.toml: {len(self.start_notes)} value(s) could not be used as written "
                             "and were corrected; see Settings → Preferences….", 30000)
            QTimer.singleShot(0, self._show_start_notes)

    def _show_start_notes(self) -> None:
        box = self.notice = QMessageBox(QMessageBox.Information, "Settings corrected",
                                        "Some values in settings.toml could not be used as written:",
                                        QMessageBox.Ok, self.host.window)
        box.setObjectName("settingsNotice")
        box.setInformativeText("\n".join(self.start_notes) + "\n\nThe file stays as it is until settings are "
                               "saved; OK in Settings → Preferences… writes the corrected values.")
        box.setWindowModality(Qt.NonModal)
        box.show()

    # ---- Preferences ---------------------------------------------------------------------------
    def model_facts(self):
        """(GGUF info of the model in use or None, why not): the loaded engine's, else its file's header."""
        engine = self.host.engine.engine
        if engine is not None:
            return engine.model.info, ""
        try:
            return read_gguf_info(active_model(self.ctx.settings).path), ""
        except (UserError, OSError) as e:
            return None, f"The model's file cannot be read, so its context length is unknown: {describe_error(e)}"

    def show_preferences(self) -> PreferencesDialog:
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.raise_()
            self.dialog.activateWindow()
            return self.dialog
        info, why = self.model_facts()
        hw = (self.hardware_probe or hardware.probe)(self.ctx.paths.models_dir)
        if self.dialog is not None:
            self.dialog.deleteLater()  # the closed one (a new one reads the settings as they are now)
        self.dialog = PreferencesDialog(
            Preferences.of(self.ctx.settings), info.context_length if info else None,
            (lambda n: context_memory(info, n, hw)) if info else (lambda n: None), model_note=why,
            start_notes=self.start_notes, parent=self.host.window)
        self.dialog.submitted.connect(self.apply)
        self.dialog.show()
        self.dialog.raise_()
        self.dialog.activateWindow()
        return self.dialog

    def apply(self, prefs: Preferences) -> None:
        """Checked values from the dialog: saved now, or after asking when the model must reload."""
        if not prefs.needs_reload(self.ctx.settings):
            self._commit(prefs, "Preferences saved; they apply from the next answer.")
            return
        s = self.ctx.settings
        box = self.question = QMessageBox(QMessageBox.Question, "Load the model again?",
                                          f"Context size {prefs.n_ctx:,} and threads {prefs.n_threads or 'automatic'} "
                                          "take effect when the model loads.", parent=self.dialog)
        box.setObjectName("reloadQuestion")
        box.setInformativeText(f"Now: the model loads again (a few seconds; after the answer being written, if "
                               f"any). At next start: saved, the model keeps context {s.n_ctx:,} until then.")
        now = box.addButton("Reload now", QMessageBox.AcceptRole)
        later = box.addButton("At next start", QMessageBox.ApplyRole)
        box.addButton(QMessageBox.Cancel)
        box.setDefaultButton(now)
        box.finished.connect(lambda _r: self._reload_answered(prefs, box.clickedButton(), now, later))
        box.open()

    def _reload_answered(self, prefs: Preferences, clicked, now, later) -> None:
        if clicked not in (now, later):
            return  # Cancel: nothing changed, the dialog stays open
        old = (self.ctx.settings.n_ctx, self.ctx.settings.n_threads)
        done = ("Preferences saved; the model loads again with them." if clicked is now else
                f"Preferences saved; context {prefs.n_ctx:,} is used from the model's next load.")
        if self._commit(prefs, done) and clicked is now:
            service = self.host.engine
            if service.busy_text():
                self.host.notify("The model loads again with the new context once the current work ends.", 10000)
            service.when_free(lambda: self._reload(old))

    def _reload(self, old: tuple[int, int]) -> None:
        job = self.host.engine.load()
        if job is not None:
            job.on_failure(lambda e: self._reload_failed(old, e))

    def _reload_failed(self, old: tuple[int, int], e: BaseException) -> None:
        """The new context (or threads) could not be loaded: the old ones come back and load."""
        s = self.ctx.settings
        tried = s.n_ctx
        s.n_ctx, s.n_threads = old
        self._save()
        self.host.engine.load(notice=f"Context {tried:,} could not be loaded ({describe_error(e)}); "
                                     f"went back to {old[0]:,}.")

    def _commit(self, prefs: Preferences, done: str) -> bool:
        """Write the values into the settings and save them; False (shown in the dialog) if the
        save failed (they still apply in this session)."""
        s = self.ctx.settings
        offline_changed = prefs.offline != s.offline
        prefs.apply(s, skip=("offline",))
        if not self._save():
            return False
        if offline_changed:  # through the network feature: the guard and firewall switch too
            self.host.features.network.set_offline(prefs.offline)
        self.start_notes = []  # the file now holds good values
        if self.dialog is not None:
            self.dialog.accept()
        self.host.notify(done, 10000)
        return True

    def _save(self) -> bool:
        try:
            self.ctx.save_settings()
        except SettingsError as e:
            if self.dialog is not None and self.dialog.isVisible():
                self.dialog.show_error(f"{e} Until then they apply in this session only.")
            else:
                self.host.notify(str(e), 15000)
            return False
        return True

    def _check_trained_length(self, _lm) -> None:
        """A model loaded with a longer context than it was trained on loads again at its length."""
        engine = self.host.engine.engine
        if engine is None:
            return
        note = clamp_context_to_model(self.ctx.settings, engine.model.info.context_length)
        if note:
            self._save()
            self.host.engine.when_free(lambda: self.host.engine.load(notice=note))

    # ---- shortcuts -----------------------------------------------------------------------------
    def show_shortcuts(self) -> ShortcutsDialog:
        if self.shortcuts_dialog is not None:
            self.shortcuts_dialog.deleteLater()
        self.shortcuts_dialog = ShortcutsDialog(collect_shortcuts(self.host.window, self.host.features),
                                                parent=self.host.window)
        self.shortcuts_dialog.show()
        self.shortcuts_dialog.raise_()
        return self.shortcuts_dialog

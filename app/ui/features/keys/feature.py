"""Settings → Keys…: the web search provider and API keys (in the OS keyring only)."""

from __future__ import annotations

from PySide6.QtGui import QAction

from app.ui.features.base import Feature
from app.ui.features.keys.keys_dialog import KeysDialog


class KeysFeature(Feature):
    name = "keys"

    def __init__(self, host):
        super().__init__(host)
        self.action = QAction("&Keys…", self)
        self.action.setToolTip("Web search provider and API keys (kept in the OS keyring)")
        self.action.triggered.connect(self.show)
        self.dialog: KeysDialog | None = None

    def show(self) -> KeysDialog:
        self.dialog = KeysDialog(self.ctx.settings.search_provider, parent=self.host.window)
        self.dialog.provider_changed.connect(self._set_provider)
        self.dialog.show()
        return self.dialog

    def _set_provider(self, name: str) -> None:
        self.ctx.settings.search_provider = name
        self.ctx.save_settings()

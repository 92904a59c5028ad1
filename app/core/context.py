"""What every front end of the app works with: where data lives, the user's settings, the chat
database, the adapter store, each model's measured speed, what the model read for recent
conversations (the KV cache on disk) and (when this session manages it)
the OS firewall. No Qt: the
window and the command line open the same context."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from app.core.adapters.store import AdapterStore
from app.core.chat.kv_cache import KvCache
from app.core.models.speed import SpeedBook
from app.core.paths import AppPaths
from app.core.settings import Settings
from app.core.storage import Storage

if TYPE_CHECKING:
    from app.core.net.firewall.client import FirewallClient


@dataclass
class AppContext:
    paths: AppPaths
    settings: Settings
    storage: Storage
    # The OS firewall (through the privileged helper); None: not managed (tests, other OSes).
    firewall: "FirewallClient | None" = None
    adapters: AdapterStore = field(default=None)  # type: ignore[assignment]
    speeds: SpeedBook = field(default=None)  # type: ignore[assignment]
    kv_cache: KvCache = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.adapters is None:
            self.adapters = AdapterStore(self.paths.data_dir / "adapters")
        if self.speeds is None:
            self.speeds = SpeedBook(self.paths.cache_dir / "speeds.json")
        if self.kv_cache is None:
            self.kv_cache = KvCache(self.paths.cache_dir / "kv")

    @classmethod
    def open(cls, paths: AppPaths) -> "AppContext":
        paths.ensure()
        return cls(paths, Settings.load(paths.settings_file), Storage(paths.database))

    def save_settings(self) -> None:
        self.settings.save(self.paths.settings_file)

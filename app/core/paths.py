"""Where the app keeps its data.

Everything lives under the platform's user directories (platformdirs), except when
``OFFLINE_CODER_HOME`` is set: then settings, data, cache and logs all go under that one
folder. Tests and portable installs use it so that nothing leaks into the real profile.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_DIR_NAME = "OfflineCoder"
HOME_ENV = "OFFLINE_CODER_HOME"


@dataclass(frozen=True)
class AppPaths:
    config_dir: Path
    data_dir: Path
    cache_dir: Path
    log_dir: Path

    @property
    def settings_file(self) -> Path:
        return self.config_dir / "settings.toml"

    @property
    def database(self) -> Path:
        return self.data_dir / "app.db"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    def ensure(self) -> "AppPaths":
        for d in (self.config_dir, self.data_dir, self.cache_dir, self.log_dir, self.models_dir):
            d.mkdir(parents=True, exist_ok=True)
        return self


def app_paths(home: Path | str | None = None) -> AppPaths:
    """The app's folders; ``home`` (or $OFFLINE_CODER_HOME) puts them all under one root."""
    root = home if home is not None else os.environ.get(HOME_ENV)
    if root:
        r = Path(root).expanduser().resolve()
        return AppPaths(r / "config", r / "data", r / "cache", r / "logs")
    return AppPaths(
        Path(platformdirs.user_config_dir(APP_DIR_NAME, appauthor=False)),
        Path(platformdirs.user_data_dir(APP_DIR_NAME, appauthor=False)),
        Path(platformdirs.user_cache_dir(APP_DIR_NAME, appauthor=False)),
        Path(platformdirs.user_log_dir(APP_DIR_NAME, appauthor=False)),
    )

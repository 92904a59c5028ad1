"""Where the app keeps things, whether it can write there, the free disk, and the key store."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Callable

from app.core.doctor.check import FAIL, OK, WARN, Check, worst
from app.core.hardware import Hardware
from app.core.paths import AppPaths

# Below this the app's own writes (chats, indexes, undo records, settings) start failing.
MIN_FREE_DISK = 1_000_000_000
# Below this the recommended models (1.1-4.7 GB) cannot be downloaded.
LOW_FREE_DISK = 5_000_000_000


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB"


def places(paths: AppPaths) -> list[tuple[str, Path]]:
    return [("Settings", paths.settings_file), ("Chats", paths.database), ("Logs", paths.log_dir),
            ("Models", paths.models_dir), ("Indexes", paths.cache_dir / "indexes"),
            ("Adapters", paths.data_dir / "adapters"), ("Undo records", paths.data_dir / "undo")]


def _nearest_existing(p: Path) -> Path:
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_storage(paths: AppPaths) -> Check:
    title = "Where data is stored"
    where = "; ".join(f"{name}: {p}" for name, p in places(paths))
    unwritable = []
    for d in (paths.config_dir, paths.data_dir, paths.cache_dir, paths.log_dir, paths.models_dir):
        if not os.access(_nearest_existing(d), os.W_OK):
            unwritable.append(str(d))
    if unwritable:
        return Check("storage", title, FAIL, f"Cannot write to {', '.join(unwritable)}. {where}.",
                     "Give your user write access to those folders, or start the app with --home pointing "
                     "at a folder you own.")
    if paths.settings_file.exists():
        try:
            tomllib.loads(paths.settings_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return Check("storage", title, WARN, f"settings.toml cannot be read, so the defaults apply. {where}.",
                         "Change any setting in the app to write a good settings.toml (the broken one is "
                         "replaced), or delete it.")
    return Check("storage", title, OK, where + ".")


def check_disk(paths: AppPaths, probe: Callable[[Path], Hardware]) -> Check:
    """Free space where models (data) and project indexes (cache) live; one line if they share a disk."""
    title = "Free disk"
    spots = {"models": paths.models_dir, "indexes": paths.cache_dir / "indexes"}
    free = {name: probe(p).free_disk for name, p in spots.items()}
    status = worst(*(FAIL if f < MIN_FREE_DISK else WARN if f < LOW_FREE_DISK else OK for f in free.values()))
    if len(set(free.values())) == 1:
        detail = f"{_gb(free['models'])} free for models ({spots['models']}) and indexes ({spots['indexes']})."
    else:
        detail = "; ".join(f"{_gb(f)} free for {name} ({spots[name]})" for name, f in free.items()) + "."
    if status == FAIL:
        return Check("disk", title, FAIL, f"{detail} Below {_gb(MIN_FREE_DISK)} chats, indexes and settings "
                     "can fail to save.", "Free some disk space (delete unused models in Models, or other files).")
    if status == WARN:
        return Check("disk", title, WARN, f"{detail} Below {_gb(LOW_FREE_DISK)} a recommended model may not fit.",
                     "Free some disk space before downloading a larger model.")
    return Check("disk", title, OK, detail)


def check_keyring() -> Check:
    from app.core import secrets

    st = secrets.status()
    if st.usable:
        return Check("keyring", "Key store", OK, st.message)
    return Check("keyring", "Key store", FAIL,
                 f"No usable OS key store (keyring backend: {st.backend}); API keys (Tavily web search) cannot "
                 "be saved.",
                 "On Linux install and unlock a Secret Service keyring (GNOME Keyring or KWallet); on Windows "
                 "and macOS the system one is used. Only needed for keys: DuckDuckGo search needs none.")

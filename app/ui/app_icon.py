"""The window icon: the PNGs made by scripts/make_icons.py from resources/icons/*.svg.

They live in the repository's ``resources/icons/hicolor`` (which the installers also use); the
bundle carries them at ``<bundle>/_internal/resources/icons/hicolor`` (build.spec), the same
place relative to the ``app`` package. An install without them (a wheel) gets Qt's default.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QIcon

NAME = "org.offlinecoder.OfflineCoder"


def icon_files() -> list[Path]:
    hicolor = Path(__file__).resolve().parents[2] / "resources" / "icons" / "hicolor"
    return sorted(hicolor.glob(f"*/apps/{NAME}.png"), key=lambda p: int(p.parts[-3].split("x")[0]))


def app_icon() -> QIcon:
    icon = QIcon()
    for f in icon_files():
        icon.addFile(str(f))
    return icon

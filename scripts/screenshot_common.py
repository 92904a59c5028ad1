"""What every screenshot script shares: a 1366×768 laptop screen filled by the window, and the
dark palette a desktop in dark mode gives the app (Fusion's colours), for ``--dark`` shots.

    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python scripts/screenshot_first.py

The picture is grabbed from the X screen (not rendered from a widget), so it is what a user sees.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SCREEN = (1366, 768)


def dark_palette() -> QPalette:
    p = QPalette()
    colours = {QPalette.Window: "#2d2d2d", QPalette.WindowText: "#e6e6e6", QPalette.Base: "#1f1f1f",
               QPalette.AlternateBase: "#2a2a2a", QPalette.ToolTipBase: "#2d2d2d", QPalette.ToolTipText: "#e6e6e6",
               QPalette.Text: "#e6e6e6", QPalette.Button: "#363636", QPalette.ButtonText: "#e6e6e6",
               QPalette.BrightText: "#ff6b6b", QPalette.Link: "#6cb6ff", QPalette.Highlight: "#2f6fba",
               QPalette.HighlightedText: "#ffffff", QPalette.PlaceholderText: "#9a9a9a", QPalette.Mid: "#444444",
               QPalette.Dark: "#1a1a1a", QPalette.Light: "#505050", QPalette.Shadow: "#000000"}
    for role, colour in colours.items():
        p.setColor(role, QColor(colour))
    for role in (QPalette.WindowText, QPalette.Text, QPalette.ButtonText):
        p.setColor(QPalette.Disabled, role, QColor("#7a7a7a"))
    return p


def application(dark: bool = False) -> QApplication:
    """The app as the scripts run it: Fusion (what Qt uses without a desktop theme), light or dark."""
    app = QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    if dark:
        app.setPalette(dark_palette())
    return app


def place(window) -> None:
    """The window over the whole screen, as a maximised window on a laptop."""
    window.setGeometry(0, 0, *SCREEN)
    window.show()


def grab(app: QApplication, out: str) -> None:
    app.primaryScreen().grabWindow(0).save(out)
    print(f"wrote {out}")
    app.quit()

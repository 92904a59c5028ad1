# Overrides PyInstaller's hook for PySide6.QtWidgets: the same analysis, but only the Qt plugins in
# qt_keep.py, and no Qt translations (the app is in English only).
import os
import sys

from PyInstaller.utils.hooks.qt import add_qt6_dependencies

sys.path.insert(0, os.path.dirname(__file__))
from qt_keep import keep_plugins  # noqa: E402

hiddenimports, binaries, datas = add_qt6_dependencies(__file__)
binaries = keep_plugins(binaries)
datas = [(src, dest) for src, dest in datas if not src.endswith(".qm")]

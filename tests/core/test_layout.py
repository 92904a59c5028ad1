"""The layout rule: app/core works without Qt."""

import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "app" / "core"


def test_core_never_imports_qt():
    import re
    pattern = re.compile(r"^\s*(from|import)\s+(PySide6|shiboken6)", re.M)
    offenders = [str(p) for p in CORE.rglob("*.py") if pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_core_imports_in_a_process_without_qt():
    code = ("import sys, pkgutil, importlib, app.core as c\n"
            "for m in pkgutil.walk_packages(c.__path__, 'app.core.'):\n"
            "    importlib.import_module(m.name)\n"
            "assert not [k for k in sys.modules if k.startswith('PySide6')], 'Qt was imported'\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_app_never_imports_the_training_stack():
    """torch, transformers and peft are the `train` extra: the app and its bundle run without them."""
    import re
    app = CORE.parent
    pattern = re.compile(r"^\s*(from|import)\s+(torch|transformers|peft|training)\b", re.M)
    offenders = [str(p) for p in app.rglob("*.py") if pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
    code = ("import sys, pkgutil, importlib, app as a\n"
            "for m in pkgutil.walk_packages(a.__path__, 'app.'):\n"
            "    if m.name != 'app.__main__':\n"
            "        importlib.import_module(m.name)\n"
            "bad = [k for k in sys.modules if k.split('.')[0] in ('torch', 'transformers', 'peft')]\n"
            "assert not bad, bad\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**__import__('os').environ, "QT_QPA_PLATFORM": "offscreen"})
    assert r.returncode == 0, r.stderr

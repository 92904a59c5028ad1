"""Take docs/screenshot-adapters.png: the Adapters panel after importing two adapters, one on.

    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python scripts/screenshot_adapters.py

The zips are built with tests/adapter_zip.py (zero-B adapters in the notebook's format), so the
screenshot needs no training run; the import goes through the real importer and probe.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import Qt, QTimer

from screenshot_common import application, grab, place

from app.core.paths import app_paths  # noqa: E402
from app.ui.main_window import AppContext, MainWindow  # noqa: E402
from tests.support.adapter_zip import make_adapter_zip  # noqa: E402


def main(out: str) -> int:
    app = application()
    home = Path(tempfile.mkdtemp(prefix="oc-shot-"))
    zips = [make_adapter_zip(home / "my-codebase-lora.zip"), make_adapter_zip(home / "zephyr-facts-lora.zip")]
    w = MainWindow(AppContext.open(app_paths(home / "home")))
    place(w)
    pending = list(zips)

    def next_import(*_args) -> None:
        if pending:
            w.features.adapters.import_zip(str(pending.pop(0)))
            return
        first = w.features.adapters.store.list()[0]
        w.features.adapters.panel.item(first.id).setCheckState(0, Qt.Checked)

    def applied(_wanted) -> None:
        w.features.adapters.adapters_applied.disconnect(applied)
        w.features.adapters.panel.tree.setCurrentItem(w.features.adapters.panel.item(w.features.adapters.store.list()[0].id))
        w.features.adapters.panel.scale.setValue(80)
        w.features.chat.panel.view.add_message("user", "What is the project codename?")
        w.features.chat.panel.view.add_message("assistant", "The project codename is ZEPHYR-9.")
        w.features.chat.panel.view.end_stream()
        QTimer.singleShot(800, lambda: grab(app, out))

    w.engine_service.loaded.connect(next_import)
    # one import at a time: start the next once this job has wound down
    w.features.adapters.adapter_imported.connect(lambda _a: QTimer.singleShot(300, next_import))
    w.features.adapters.adapters_applied.connect(applied)
    QTimer.singleShot(120_000, app.quit)
    app.exec()
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshot-adapters.png"))

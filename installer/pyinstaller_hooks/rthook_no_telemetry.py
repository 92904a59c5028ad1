"""PyInstaller runtime hook (build.spec ``runtime_hooks``): the no-telemetry switches, set in the
frozen app before the entry script or any bundled module is imported.

The values repeat ``app.no_telemetry.NO_TELEMETRY``: a runtime hook runs before the bundle's
modules are importable as usual, so it cannot import ``app``. ``tests/core/test_no_telemetry.py``
checks that both say the same. Forced, like ``app/__init__.py`` does: the user's environment
cannot turn telemetry back on. Child processes of the bundle (the probes, the firewall helper)
re-run the executable, so they pass through this hook too.
"""

import os

_NO_TELEMETRY = {
    "ORT_DISABLE_TELEMETRY": "1",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
}

os.environ.update(_NO_TELEMETRY)

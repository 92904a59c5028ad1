"""Switches that keep dependencies from phoning home, set before any of them is imported.

Why here: ``app/__init__.py`` runs before any ``app.*`` module, so every entry point (the
window, each CLI command, the helper, the probes) sets these before onnxruntime or any other
library initialises. They are forced, not defaulted: a user's own environment cannot turn
telemetry back on by accident. Child processes inherit them; the sandbox, which builds a clean
environment, adds them explicitly. See docs/decisions.md, "What the app may send, and when".
"""

from __future__ import annotations

import os
from typing import MutableMapping

# onnxruntime >= 1.29 sends 1DS telemetry from native threads on Linux and macOS unless this is
# set before it initialises; disable_telemetry_events() does not stop it.
NO_TELEMETRY: dict[str, str] = {
    "ORT_DISABLE_TELEMETRY": "1",
}


def apply(env: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Force every switch in ``env`` (default: this process's environment); returns ``env``."""
    target = os.environ if env is None else env
    target.update(NO_TELEMETRY)
    return target

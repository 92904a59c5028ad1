"""Switches that keep dependencies from phoning home, set before any of them is imported.

Why here: ``app/__init__.py`` runs before any ``app.*`` module, so every entry point (the
window, each CLI command, the helper, the probes) sets these before onnxruntime or any other
library initialises. They are forced, not defaulted: a user's own environment cannot turn
telemetry back on by accident. Child processes inherit them; the sandbox, which builds a clean
environment, adds them explicitly. The frozen bundle also sets them in a PyInstaller runtime
hook (``installer/pyinstaller_hooks/rthook_no_telemetry.py``, which cannot import this module
and repeats the values; a test keeps the two equal). The audit of every runtime dependency is in
docs/decisions.md, "What the app may send, and when".
"""

from __future__ import annotations

import os
from typing import MutableMapping

NO_TELEMETRY: dict[str, str] = {
    # onnxruntime >= 1.29 (1.32.0 measured) writes a device id and an event queue under
    # ~/.cache/Microsoft/DeveloperTools/.onnxruntime/ on import and, ~9 s later, resolves
    # mobile.events.data.microsoft.com from a native thread to upload them, unless this is set
    # before it initialises; disable_telemetry_events() does not stop it.
    "ORT_DISABLE_TELEMETRY": "1",
    # huggingface_hub is installed as a dependency of tokenizers. The app never imports it (its
    # model downloads are its own, core/models/download.py), but Tokenizer.from_pretrained and
    # llama_cpp's Llama.from_pretrained would: then no hub request and no telemetry ping.
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    # The cross-tool convention (huggingface_hub reads it too); also reaches the tools a user's
    # project tests start in the sandbox.
    "DO_NOT_TRACK": "1",
}


def apply(env: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Force every switch in ``env`` (default: this process's environment); returns ``env``."""
    target = os.environ if env is None else env
    target.update(NO_TELEMETRY)
    return target

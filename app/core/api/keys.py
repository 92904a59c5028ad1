"""The local API's key: random, made on first use, kept in the OS keyring only.

Clients send it as ``Authorization: Bearer <key>``. A headless machine has no keyring (see
``app/core/secrets.py``); there ``OFFLINE_CODER_API_KEY`` in the environment gives the key
instead, so ``python -m app serve`` works on a server without ever writing the key to a file.
"""

from __future__ import annotations

import os
import secrets as pysecrets

from app.core import secrets

KEY_NAME = "local-api"
ENV_KEY = "OFFLINE_CODER_API_KEY"
MIN_ENV_KEY = 16


class ApiKeyError(secrets.KeyringUnavailable):
    """No key can be had: no keyring and no usable ``OFFLINE_CODER_API_KEY``."""


def api_key(create: bool = True) -> str:
    """The key (the environment's, else the keyring's, made there on first use)."""
    env = os.environ.get(ENV_KEY, "").strip()
    if env:
        if len(env) < MIN_ENV_KEY:
            raise ApiKeyError(f"{ENV_KEY} is shorter than {MIN_ENV_KEY} characters; use a long random key "
                              "(python -c \"import secrets; print(secrets.token_urlsafe(32))\").")
        return env
    status = secrets.status()
    if not status.usable:
        raise ApiKeyError(f"{status.message} The local API needs a key: unlock a keyring, or set {ENV_KEY} "
                          "to a long random value for this run.")
    key = secrets.get_key(KEY_NAME)
    if key or not create:
        return key or ""
    key = "oc-" + pysecrets.token_urlsafe(32)
    secrets.set_key(KEY_NAME, key)
    return key


def new_api_key() -> str:
    """Replace the stored key (clients must be given the new one)."""
    key = "oc-" + pysecrets.token_urlsafe(32)
    secrets.set_key(KEY_NAME, key)
    return key

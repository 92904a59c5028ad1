"""API keys, kept only in the OS keyring (Secret Service, macOS Keychain, Windows Credential
Locker) through ``keyring``.

Keys never go into settings.toml, logs, chat exports or crash reports: this module is the
only place that reads or writes them, and ``redact`` scrubs any text that is about to leave
the app. When the machine has no usable keyring backend (a headless Linux box has none; keyring
then picks its "fail" backend) the key is refused with a message; it is never written in
plain text as a fallback.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.errors import UserError

SERVICE = "OfflineCoder"
# name -> what it is for (the Keys dialog lists these)
KNOWN_KEYS = {"tavily": "Tavily API key (an alternative web search provider)",
              "director": "Review director API key (an OpenAI-compatible endpoint; optional)"}


class KeyringUnavailable(UserError, RuntimeError):
    """No secure key store on this machine; the message says what to install."""


class InvalidKey(UserError, ValueError):
    """The key typed cannot be stored (it is empty); the message says so."""


@dataclass(frozen=True)
class KeyringStatus:
    usable: bool
    backend: str
    message: str


def status() -> KeyringStatus:
    import keyring
    from keyring.backends import fail

    try:
        backend = keyring.get_keyring()
    except Exception as e:  # noqa: BLE001 - a broken keyring config must not stop the app
        return KeyringStatus(False, "none", f"The OS key store cannot be opened ({e}). Keys cannot be saved.")
    name = getattr(backend, "name", type(backend).__name__)
    priority = getattr(backend, "priority", 1)
    if isinstance(backend, fail.Keyring) or (isinstance(priority, (int, float)) and priority <= 0):
        return KeyringStatus(False, name, (
            "No secure key store is available on this computer (keyring found no backend), so keys are "
            "not saved; they are never written in plain text. On Linux install and unlock a Secret "
            "Service keyring (GNOME Keyring or KWallet), then try again."))
    return KeyringStatus(True, name, f"Keys are kept in {name}.")


def _require() -> None:
    s = status()
    if not s.usable:
        raise KeyringUnavailable(s.message)


def set_key(name: str, value: str) -> None:
    import keyring

    _require()
    value = value.strip()
    if not value:
        raise InvalidKey("The key is empty.")
    try:
        keyring.set_password(SERVICE, name, value)
    except keyring.errors.KeyringError as e:
        raise KeyringUnavailable(f"The OS key store refused the key ({type(e).__name__}). It was not saved.") from None


def get_key(name: str) -> str | None:
    """The key, or None if none is stored or no key store is usable."""
    import keyring

    if not status().usable:
        return None
    try:
        return keyring.get_password(SERVICE, name)
    except keyring.errors.KeyringError:
        return None


def delete_key(name: str) -> None:
    import keyring

    _require()
    try:
        keyring.delete_password(SERVICE, name)
    except keyring.errors.PasswordDeleteError:
        pass  # nothing stored: already gone


# Keys the app makes itself (not typed in the Keys dialog), removed from logs all the same.
OWN_KEYS = ("local-api",)  # the local API's key (app/core/api/keys.py)


def redact(text: str) -> str:
    """``text`` with every stored key replaced (for logs, exports and crash reports)."""
    for name in (*KNOWN_KEYS, *OWN_KEYS):
        value = get_key(name)
        if value and len(value) >= 4:
            text = text.replace(value, f"<{name} key removed>")
    return text

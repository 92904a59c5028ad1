"""The system check as text (Copy report, the terminal) and as JSON (``doctor --json``).

Everything that leaves the app goes through :func:`scrub`: the keys stored in the keyring
(``secrets.redact``), anything shaped like a credential, and the user's home folder (``~``) are
replaced, the same rules as the training-data export. The checks themselves never put file
contents in a detail, only names, sizes, counts and states.
"""

from __future__ import annotations

import json
import platform
import time

from app import APP_NAME, __version__
from app.core.doctor.check import FAIL, OK, WARN, Check

LABELS = {OK: "OK", WARN: "WARN", FAIL: "FAIL"}


def exit_code(checks: list[Check]) -> int:
    """0 when nothing the app needs is broken (warnings allowed), 1 otherwise."""
    return 1 if any(c.status == FAIL for c in checks) else 0


def scrubber():
    """A function that removes stored keys, credential-shaped strings and the home folder's
    path from a text (it reads the keyring once)."""
    from app.core import secrets
    from app.core.learn.dataset import Scrubber

    s = Scrubber()
    return lambda text: s(secrets.redact(text))


def scrub(text: str) -> str:
    return scrubber()(text)


def summary(checks: list[Check]) -> str:
    n = {s: sum(c.status == s for c in checks) for s in (OK, WARN, FAIL)}
    if n[FAIL]:
        return f"{n[FAIL]} problem(s) need attention, {n[WARN]} warning(s), {n[OK]} OK."
    if n[WARN]:
        return f"Everything needed works; {n[WARN]} warning(s)."
    return "Everything works."


def format_report(checks: list[Check], when: float | None = None) -> str:
    """The plain-text report: a header, one line per check, ``→ remedy`` under the others."""
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(when if when is not None else time.time()))
    width = max((len(c.title) for c in checks), default=0)
    lines = [f"{APP_NAME} {__version__} system check, {stamp}",
             f"{platform.system()} {platform.release()} ({platform.machine()})",
             summary(checks), ""]
    for c in checks:
        lines.append(f"{LABELS[c.status]:<5}{c.title:<{width}}  {c.detail}")
        if c.status != OK and c.remedy:
            lines.append(f"{'':<5}{'':<{width}}  → {c.remedy}")
    return scrub("\n".join(lines) + "\n")


def to_json(checks: list[Check]) -> str:
    """For machines: ``ok``, ``exit_code`` and every check's fields."""
    clean = scrubber()
    doc = {"app": APP_NAME, "version": __version__, "ok": exit_code(checks) == 0,
           "exit_code": exit_code(checks),
           "checks": [{k: clean(v) for k, v in c.as_dict().items()} for c in checks]}
    return json.dumps(doc, indent=2, ensure_ascii=False)

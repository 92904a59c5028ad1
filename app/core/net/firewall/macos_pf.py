"""macOS backend (built and unit-tested here, untested on macOS): a pf anchor that blocks the
app's group outbound; the helper runs the app's worker under that group."""

from __future__ import annotations

import re

ANCHOR = "com.apple/250.OfflineCoder"


def anchor_rules(group: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,31}", group):
        raise ValueError(f"Refused group name {group!r}.")
    return (f"pass out quick on lo0 all\n"
            f"block return out quick proto {{ tcp, udp }} all group {group}\n")


def load_command() -> list[str]:
    """Feed ``anchor_rules`` on stdin."""
    return ["pfctl", "-a", ANCHOR, "-f", "-"]


def enable_command() -> list[str]:
    return ["pfctl", "-E"]


def flush_command() -> list[str]:
    return ["pfctl", "-a", ANCHOR, "-F", "rules"]


def status_command() -> list[str]:
    return ["pfctl", "-a", ANCHOR, "-s", "rules"]

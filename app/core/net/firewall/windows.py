"""Windows backend (built and unit-tested here, untested on Windows): one outbound block rule
per bundled executable, created once and toggled with Enable/Disable by an elevated helper."""

from __future__ import annotations

RULE_PREFIX = "Offline Coder block"


def _quote(s: str) -> str:
    if '"' in s or "\n" in s:
        raise ValueError(f"Refused a program path with quotes or newlines: {s!r}")
    return f'"{s}"'


def rule_name(exe: str) -> str:
    return f"{RULE_PREFIX} ({exe.rsplit(chr(92), 1)[-1]})"


def add_rule_command(exe: str) -> list[str]:
    return ["netsh", "advfirewall", "firewall", "add", "rule", f"name={rule_name(exe)}", "dir=out",
            "action=block", f"program={exe}", "enable=yes", "profile=any"]


def set_enabled_command(exe: str, on: bool) -> list[str]:
    return ["netsh", "advfirewall", "firewall", "set", "rule", f"name={rule_name(exe)}", "new",
            f"enable={'yes' if on else 'no'}"]


def delete_rule_command(exe: str) -> list[str]:
    return ["netsh", "advfirewall", "firewall", "delete", "rule", f"name={rule_name(exe)}"]


def powershell_block_command(exe: str) -> list[str]:
    return ["powershell", "-NoProfile", "-Command",
            f"New-NetFirewallRule -DisplayName {_quote(rule_name(exe))} -Direction Outbound -Action Block "
            f"-Program {_quote(exe)}"]

"""How the app talks to the privileged helper: one subprocess per on/off/status.

When the app is root (CI, a container) the helper runs directly; otherwise through
``pkexec``, which checks the polkit policy (``installer/linux/org.offlinecoder.firewall.policy``).
The installed policy lets the active local user run exactly this helper without a password
(see docs/decisions.md); from a source checkout pkexec falls back to the generic action and
asks. Every call names this instance's process, so status, on and off are about this window
only. The state comes back read from the kernel, never from the app's own flag.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

from app.core.net.firewall.linux_nft import FirewallError, FirewallStatus

HELPER_MODULE = "app.core.net.firewall.helper"
FROZEN_FLAG = "--firewall-helper"
# Installed next to the bundle's executable by the .deb (installer/linux/firewall-helper): the
# program the polkit policy names, so pkexec can run the helper and nothing else of the app.
WRAPPER = "firewall-helper"
# The .deb's policy: the active local user runs the helper without a password.
POLICY = "/usr/share/polkit-1/actions/org.offlinecoder.firewall.policy"


def helper_command(python: str = sys.executable) -> list[str]:
    """The helper's command line: the module under Python; in the bundle, the wrapper the
    .deb installs beside the executable, else the executable with its hidden flag."""
    if not getattr(sys, "frozen", False):
        return [python, "-m", HELPER_MODULE]
    wrapper = os.path.join(os.path.dirname(sys.executable), WRAPPER)
    return [wrapper] if os.access(wrapper, os.X_OK) else [sys.executable, FROZEN_FLAG]


@dataclass
class FirewallClient:
    pid: int = 0
    python: str = sys.executable
    timeout: float = 60.0

    @property
    def quiet_status(self) -> bool:
        """Whether ``status()`` runs without asking for a password: as root, or in the installed
        app whose polkit policy allows the active user (``allow_active`` yes).

        Otherwise each pkexec call may show the password dialog, so the app polls the firewall
        only when this is true, and else reads it back after each on/off.
        """
        if os.geteuid() == 0:
            return True
        if not getattr(sys, "frozen", False):
            return False
        try:
            text = open(POLICY, encoding="utf-8").read()
        except OSError:
            return False
        return "<allow_active>yes</allow_active>" in text

    def command(self, action: str) -> list[str]:
        cmd = [*helper_command(self.python), action, "--pid", str(self.pid or os.getpid())]
        if os.geteuid() != 0:
            pkexec = shutil.which("pkexec")
            if pkexec is None:
                raise FirewallError("The firewall block needs administrator rights, and pkexec (polkit) is not "
                                    "installed. Offline mode still blocks the app's own connections.")
            cmd = [pkexec, *cmd]
        return cmd

    def _call(self, action: str) -> FirewallStatus:
        if sys.platform != "linux":
            raise FirewallError("The firewall block is implemented for Linux; Windows and macOS commands are "
                                "built but untested (see README).")
        env = dict(os.environ)
        if not getattr(sys, "frozen", False):
            env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        try:
            r = subprocess.run(self.command(action), capture_output=True, text=True, timeout=self.timeout, env=env)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise FirewallError(f"The firewall helper did not run: {e}") from e
        try:
            answer = json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise FirewallError(f"The firewall helper failed: {(r.stderr or r.stdout).strip()[-300:]}") from None
        if not answer.get("ok"):
            raise FirewallError(answer.get("error", "The firewall helper failed."))
        return FirewallStatus.from_dict(answer["status"])

    def on(self) -> FirewallStatus:
        return self._call("on")

    def off(self) -> FirewallStatus:
        return self._call("off")

    def status(self) -> FirewallStatus:
        return self._call("status")

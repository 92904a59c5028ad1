"""What a sandbox run is given (``SandboxLimits``) and what it returns (``RunResult``), with
the words for its isolation (``netns``, ``python-guard``) and its file system (``read-only``,
``open``). The run itself is sandbox.py's."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from pathlib import Path

NETNS = "netns"
PYTHON_GUARD = "python-guard"
READ_ONLY = "read-only"
OPEN = "open"


@dataclass
class SandboxLimits:
    time_s: float = 10.0
    memory_mb: int = 512
    output_bytes: int = 200_000
    file_mb: int = 64


@dataclass
class RunResult:
    exit_code: int | None          # negative: killed by that signal (POSIX convention)
    stdout: str
    stderr: str
    timed_out: bool
    memory_exceeded: bool
    cancelled: bool
    duration_s: float
    isolation: str                 # "netns" | "python-guard"
    output_truncated: bool
    filesystem: str = OPEN         # "read-only" (all but the sandbox folder) | "open"
    limits: SandboxLimits | None = None
    directory: Path | None = None  # the sandbox folder, only when keep_dir=True
    notes: list[str] = field(default_factory=list)  # what the bootstrap could not set up, for logs
    hidden: list[str] = field(default_factory=list)  # folders covered by an empty one (mounts.py)

    def summary(self) -> str:
        """One line for the chat: what happened, in words a user understands."""
        limits = self.limits or SandboxLimits()
        if self.cancelled:
            text = f"stopped: cancelled after {self.duration_s:.1f} s"
        elif self.timed_out:
            text = f"stopped: time limit ({limits.time_s:g} s)"
        elif self.memory_exceeded:
            text = f"stopped: memory limit ({limits.memory_mb} MB)"
        elif self.exit_code is not None and self.exit_code < 0:
            try:
                name = signal.Signals(-self.exit_code).name
            except ValueError:
                name = f"signal {-self.exit_code}"
            text = f"killed by {name} after {self.duration_s:.1f} s"
        else:
            text = f"exited with {self.exit_code} in {self.duration_s:.1f} s"
        if self.output_truncated:
            text += f"; output cut at {limits.output_bytes // 1000} kB"
        return text

"""One line of the system check: what was checked, how it stands, and what to do about it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

OK, WARN, FAIL = "ok", "warn", "fail"
STATUSES = (OK, WARN, FAIL)


@dataclass(frozen=True)
class Check:
    id: str        # stable, for machines (`doctor --json`) and tests
    title: str     # what the user reads
    status: str    # OK | WARN | FAIL ("fail": something the app needs is broken)
    detail: str    # what was found, in one or a few sentences
    remedy: str = ""  # what to do, when the status is not OK

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown check status {self.status!r}")

    def as_dict(self) -> dict:
        return asdict(self)


def worst(*statuses: str) -> str:
    """The most serious of the statuses (for a check made of several findings)."""
    return max(statuses, key=STATUSES.index, default=OK)

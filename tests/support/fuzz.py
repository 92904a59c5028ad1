"""The fuzzing contract every input surface is held to, and the per-surface tally.

Contract: given any input, an operation either returns a result or raises a ``UserError``
whose message is written for the user (names the input, says why); never another exception,
never a hang (pytest-timeout and each test's own bounds), nothing written outside where it
belongs, nothing already stored lost (each test checks the last two its own way).

    @given(...)
    @fuzz_settings
    def test_x(data):
        with surface("index: file names"):
            outcome = holds(lambda: do_it(data), names="the file")

``FUZZ_LONG`` (pytest --fuzz-long) raises the example counts for a local run; CI uses a
bounded, derandomised profile so the suite stays under its time budget and stays green.
At the end of the session pytest prints "fuzz: <surface>: N examples" (tests/conftest.py).
"""

from __future__ import annotations

import os
from collections import Counter
from contextlib import contextmanager
from typing import Any, Callable

from hypothesis import HealthCheck, settings

from app.core.errors import UserError

FUZZ_LONG = os.environ.get("OFFLINE_CODER_FUZZ_LONG") == "1"
TALLY: Counter = Counter()            # surface -> examples tried this session
REFUSED: Counter = Counter()          # surface -> examples that got a user message

settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                                 HealthCheck.data_too_large, HealthCheck.filter_too_much])
settings.register_profile("long", max_examples=2000, deadline=None, derandomize=False,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                                 HealthCheck.data_too_large, HealthCheck.filter_too_much])


def examples(ci: int) -> settings:
    """Settings for one property test: ``ci`` examples in CI, 30× that (at least 2,000) with
    --fuzz-long."""
    if FUZZ_LONG:
        return settings(settings.get_profile("long"), max_examples=max(2000, ci * 30))
    return settings(settings.get_profile("ci"), max_examples=ci)


@contextmanager
def surface(name: str):
    """Count one example against ``name`` (the line in the session's fuzz report)."""
    TALLY[name] += 1
    yield


def holds(fn: Callable[[], Any], surface_name: str | None = None, mentions: tuple[str, ...] = ()) -> Any:
    """Run ``fn`` under the contract: its result, or the ``UserError`` it raised (returned, not
    raised), whose message must be non-empty, one paragraph, and contain each of ``mentions``.
    Any other exception propagates, and the property test fails with it (hypothesis shrinks)."""
    try:
        return fn()
    except UserError as e:
        text = str(e)
        assert text.strip(), f"{type(e).__name__} with an empty message"
        assert "Traceback" not in text, text
        for m in mentions:
            assert m in text, f"the message does not name {m!r}: {text}"
        if surface_name:
            REFUSED[surface_name] += 1
        return e

"""The speed estimate and the speed-aware recommendation (core arithmetic; the Models window's
use of it is tests/gui/test_models_gui.py)."""

from __future__ import annotations

import pytest

from app.core.models.catalog import CATALOG
from app.core.models.pick import Estimate, entry_gparams, estimate_entry, first_answer_s, pick
from app.core.models.speed import Speed

STARTER = next(e for e in CATALOG if e.embedded)
QWEN = {e.params: e for e in CATALOG if not e.embedded}
# measured on this 2-core machine, idle (bench/README.md): (read, write) tokens/s
MEASURED = {"1.5B": (65, 30), "3B": (34, 17), "7B": (15, 7)}


def test_the_estimates_from_the_starter_reproduce_the_twins_measurements():
    anchor = Speed(270.0, 110.0, True)
    for size, (read, write) in MEASURED.items():
        est = estimate_entry(QWEN[size], anchor, STARTER)
        assert 0.75 <= est.prompt_tps / read <= 1.33, size
        assert 0.75 <= est.gen_tps / write <= 1.33, size
    assert 1.4 < entry_gparams(QWEN["1.5B"]) < 1.7 and entry_gparams(STARTER) == pytest.approx(0.134, abs=0.01)


def test_a_slower_computer_scales_every_model():
    fast = estimate_entry(QWEN["3B"], Speed(270.0, 110.0, True), STARTER)
    slow = estimate_entry(QWEN["3B"], Speed(135.0, 55.0, True), STARTER)
    assert slow.gen_tps == pytest.approx(fast.gen_tps / 2) and slow.prompt_tps == pytest.approx(fast.prompt_tps / 2)
    assert slow.first_answer_s > fast.first_answer_s


def test_first_answer_time_follows_the_code_budget():
    # fast reader: code capped at 1,500 tokens; slow one: the budget shrinks, but never below one piece
    assert first_answer_s(300.0, 50.0) == pytest.approx((150 + 1500 + 25) / 300 + 1 / 50)
    assert first_answer_s(5.0, 2.0) == pytest.approx((150 + 220 + 25) / 5 + 0.5)


def test_the_pick_is_the_largest_that_fits_and_is_fast_enough():
    ok, slow = Estimate(20, 60, 22), Estimate(4, 10, 60)
    small, mid, big = QWEN["1.5B"], QWEN["3B"], QWEN["7B"]
    p = pick([(small, True, ok), (mid, True, ok), (big, True, slow)])
    assert p.entry is mid and "7B-Instruct also fits but would be slow here (4 tokens/s" in p.reason
    assert pick([(small, True, ok), (mid, False, ok), (big, False, ok)]).entry is small  # memory first
    assert pick([(small, True, slow)]) is None  # nothing qualifies: the caller falls back

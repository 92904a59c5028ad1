"""The speed estimate and the speed-aware recommendation (core arithmetic; the Models window's
use of it is tests/gui/test_models_gui.py)."""

from __future__ import annotations

import pytest

from app.core.models.catalog import CATALOG
from app.core.models.pick import Estimate, entry_gparams, estimate_entry, first_answer_s, pick
from app.core.models.speed import Speed

STARTER = next(e for e in CATALOG if e.embedded)
QWEN = {e.params: e for e in CATALOG if not e.embedded and e.for_chat}
# measured on this 2-core machine, idle (bench/README.md, bench/picker.py): the starter's probe
# (read, write tokens/s) and the twins' (read, write) with llama.cpp's zen4 (AVX-512) variant
ZEN4_ANCHOR = Speed(465.1, 147.1, True)
ZEN4 = {"1.5B": (171.2, 31.9), "3B": (77.7, 17.4), "7B": (37.1, 8.9)}
# the old portable build (= the haswell variant): twins' reading speeds; the anchor as above
HASWELL_ANCHOR = Speed(461.0, 147.1, True)
HASWELL_READ = {"1.5B": 85.8, "3B": 42.1, "7B": 19.0}


def test_the_estimates_from_the_starter_reproduce_the_twins_measurements():
    for size, (read, write) in ZEN4.items():
        est = estimate_entry(QWEN[size], ZEN4_ANCHOR, STARTER, variant="zen4")
        assert 0.75 <= est.prompt_tps / read <= 1.33, size
        assert 0.75 <= est.gen_tps / write <= 1.33, size
    for size, read in HASWELL_READ.items():
        est = estimate_entry(QWEN[size], HASWELL_ANCHOR, STARTER, variant="haswell")
        assert 0.75 <= est.prompt_tps / read <= 1.33, size
        # the AVX-512 fit would say twice as fast: the variant matters
        assert estimate_entry(QWEN[size], HASWELL_ANCHOR, STARTER, variant="zen4").prompt_tps / read > 1.33
    assert 1.4 < entry_gparams(QWEN["1.5B"]) < 1.7 and entry_gparams(STARTER) == pytest.approx(0.134, abs=0.01)


def test_a_slower_computer_scales_every_model():
    fast = estimate_entry(QWEN["3B"], Speed(270.0, 110.0, True), STARTER)
    slow = estimate_entry(QWEN["3B"], Speed(135.0, 55.0, True), STARTER)
    assert slow.gen_tps == pytest.approx(fast.gen_tps / 2) and slow.prompt_tps == pytest.approx(fast.prompt_tps / 2)
    assert slow.first_answer_s > fast.first_answer_s


def test_first_answer_time_follows_the_code_budget():
    # fast reader: code capped at what 8 pieces bring; slow one: the budget shrinks, never below one piece
    assert first_answer_s(300.0, 50.0) == pytest.approx((150 + 1000 + 25) / 300 + 1 / 50)
    assert first_answer_s(40.0, 8.0) == pytest.approx(20.0 + 1 / 8)  # the budget: 20 s of reading
    assert first_answer_s(5.0, 2.0) == pytest.approx((150 + 220 + 25) / 5 + 0.5)


def test_the_pick_is_the_largest_that_fits_and_is_fast_enough():
    ok, slow = Estimate(20, 60, 22), Estimate(4, 10, 60)
    small, mid, big = QWEN["1.5B"], QWEN["3B"], QWEN["7B"]
    p = pick([(small, True, ok), (mid, True, ok), (big, True, slow)])
    assert p.entry is mid and "7B-Instruct also fits but would be slow here (4 tokens/s" in p.reason
    assert pick([(small, True, ok), (mid, False, ok), (big, False, ok)]).entry is small  # memory first
    assert pick([(small, True, slow)]) is None  # nothing qualifies: the caller falls back

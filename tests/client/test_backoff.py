"""Exponential backoff with full jitter: bounds, ceiling, attempt limit."""

from __future__ import annotations

import random

import pytest

from adapters.client.backoff import Backoff
from tests.client.fakes import ScriptedRandom


def test_cap_doubles_from_the_base_up_to_the_ceiling() -> None:
    backoff = Backoff(base_s=0.1, ceiling_s=1.0, max_attempts=10)

    assert [backoff.cap(n) for n in range(7)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0])


def test_full_jitter_scales_the_cap_by_the_random_fraction() -> None:
    backoff = Backoff(base_s=0.5, ceiling_s=8.0)
    scripted = ScriptedRandom([0.0, 0.25, 0.5, 0.999999])

    delays = [backoff.delay(3, scripted) for _ in range(4)]

    assert delays == pytest.approx([0.0, 1.0, 2.0, 3.999996])


def test_delays_stay_within_zero_and_the_cap_and_are_spread_out() -> None:
    backoff = Backoff(base_s=0.05, ceiling_s=2.0)
    source = random.Random(1234).random
    for attempt in range(12):
        delays = [backoff.delay(attempt, source) for _ in range(200)]
        cap = min(2.0, 0.05 * 2**attempt)
        assert all(0.0 <= d <= cap for d in delays)
        assert max(delays) > 0.8 * cap  # full jitter spreads over the whole range
        assert min(delays) < 0.2 * cap


def test_the_ceiling_holds_for_huge_attempt_numbers() -> None:
    backoff = Backoff(base_s=1.0, ceiling_s=30.0)

    assert backoff.cap(10_000) == 30.0
    assert backoff.delay(10_000, lambda: 0.5) == 15.0


def test_out_of_range_random_values_are_clamped() -> None:
    backoff = Backoff(base_s=1.0, ceiling_s=4.0)

    assert backoff.delay(2, lambda: 7.0) == 4.0
    assert backoff.delay(2, lambda: -1.0) == 0.0


def test_attempts_are_bounded() -> None:
    backoff = Backoff(max_attempts=3)

    assert [backoff.exhausted(n) for n in range(5)] == [False, False, False, True, True]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_s": 0.0},
        {"base_s": -1.0},
        {"ceiling_s": 0.0},
        {"base_s": 2.0, "ceiling_s": 1.0},
        {"max_attempts": 0},
    ],
)
def test_nonsense_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)  # type: ignore[arg-type]

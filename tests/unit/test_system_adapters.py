"""The system clock and id generator (adapters/system.py)."""

from __future__ import annotations

import types
from datetime import UTC, datetime, timedelta

import pytest

from adapters import system
from adapters.system import SystemClock, TimeOrderedIds
from domain.ports import Clock, IdGenerator


def test_the_system_clock_tells_aware_utc_now() -> None:
    clock: Clock = SystemClock()

    before = datetime.now(UTC)
    now = clock.now()
    after = datetime.now(UTC)

    assert now.utcoffset() == timedelta(0)
    assert before <= now <= after


def _frozen_time(monkeypatch: pytest.MonkeyPatch, seconds: list[float]) -> None:
    """Make `adapters.system` read its wall clock from `seconds[0]` (only there)."""
    monkeypatch.setattr(system, "time", types.SimpleNamespace(time=lambda: seconds[0]))


def test_ids_are_unique_and_sort_by_creation_across_milliseconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1_800_000_000.0]
    _frozen_time(monkeypatch, now)
    ids: IdGenerator = TimeOrderedIds()

    made = []
    for _ in range(2_000):
        made.append(ids.new_id())
        now[0] += 0.001

    assert len(set(made)) == len(made)
    assert sorted(made) == made


def test_two_ids_of_one_millisecond_sort_by_creation_whatever_came_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1_800_000_000.0]
    _frozen_time(monkeypatch, now)
    ids = TimeOrderedIds()
    for _ in range(0xFFFE):  # a busy server's earlier ids, one per millisecond
        ids.new_id()
        now[0] += 0.001

    first, second = ids.new_id(), ids.new_id()  # within one millisecond

    assert first < second

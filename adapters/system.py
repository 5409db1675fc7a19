"""The system clock and id generator."""

from __future__ import annotations

import itertools
import secrets
import time
from datetime import UTC, datetime


class SystemClock:
    """The wall clock, timezone-aware UTC."""

    def now(self) -> datetime:
        """The current time."""
        return datetime.now(UTC)


class TimeOrderedIds:
    """Ids that sort by creation time: 12 hex digits of milliseconds, a counter, randomness."""

    def __init__(self) -> None:
        self._counter = itertools.count()

    def new_id(self) -> str:
        """A new unique id."""
        millis = int(time.time() * 1000)
        return f"{millis:012x}{next(self._counter) % 0xFFFF:04x}{secrets.token_hex(6)}"

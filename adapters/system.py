"""The system clock and id generator."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime


class SystemClock:
    """The wall clock, timezone-aware UTC."""

    def now(self) -> datetime:
        """The current time."""
        return datetime.now(UTC)


class TimeOrderedIds:
    """Ids that sort by creation time: 12 hex digits of milliseconds, a 16-bit sequence within
    the millisecond, then randomness (so ids of several instances do not collide)."""

    def __init__(self) -> None:
        self._last_millis = 0
        self._sequence = 0

    def new_id(self) -> str:
        """A new unique id, greater than every id this generator made before."""
        millis = max(int(time.time() * 1000), self._last_millis)
        if millis == self._last_millis:
            self._sequence += 1
            if self._sequence > 0xFFFF:  # more than 65,536 ids in one millisecond: borrow the next
                millis, self._sequence = millis + 1, 0
        else:
            self._sequence = 0
        self._last_millis = millis
        return f"{millis:012x}{self._sequence:04x}{secrets.token_hex(6)}"

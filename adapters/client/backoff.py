"""Exponential backoff with full jitter, a ceiling and a bounded number of attempts."""

from __future__ import annotations

from collections.abc import Callable

import attrs

RandomSource = Callable[[], float]
"""Returns a float in [0, 1), like `random.random` (injected in tests)."""

_MAX_EXPONENT = 60  # 2**60 times any sane base is far above any ceiling


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0 (got {value!r})")


@attrs.frozen
class Backoff:
    """Delay before retry attempt `n` (from 0) is `uniform(0, min(ceiling, base * 2**n))`.

    `max_attempts` bounds the attempts of one connect or one outage (at least 1).
    """

    base_s: float = attrs.field(default=0.5, validator=_positive)
    ceiling_s: float = attrs.field(default=15.0, validator=_positive)
    max_attempts: int = 20

    def __attrs_post_init__(self) -> None:
        if self.ceiling_s < self.base_s:
            raise ValueError("ceiling_s must be at least base_s")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def cap(self, attempt: int) -> float:
        """The upper bound of the delay before attempt `attempt` (0-based)."""
        exponent = min(max(attempt, 0), _MAX_EXPONENT)
        return min(self.ceiling_s, self.base_s * 2.0**exponent)

    def delay(self, attempt: int, random: RandomSource) -> float:
        """A full-jitter delay in [0, cap(attempt)]."""
        fraction = min(max(random(), 0.0), 1.0)
        return fraction * self.cap(attempt)

    def exhausted(self, attempts_made: int) -> bool:
        """True when no attempt is left after `attempts_made` failed ones."""
        return attempts_made >= self.max_attempts

"""Readiness of the in-memory stores: they always answer (`degraded` when a fallback)."""

from __future__ import annotations


class MemoryProbe:
    """`/readyz` probe of the in-memory stores."""

    name = "memory"

    def __init__(self, *, fallback: bool = False) -> None:
        self._fallback = fallback

    async def check(self) -> str:
        """`ok`, or `degraded` when memory stands in for an unreachable Redis."""
        return "degraded" if self._fallback else "ok"

"""Readiness of the in-memory stores: they always answer."""

from __future__ import annotations


class MemoryProbe:
    """`/readyz` probe of the in-memory stores."""

    name = "memory"

    async def check(self) -> str:
        """Always `ok`: memory answers while the process runs."""
        return "ok"

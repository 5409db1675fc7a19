"""`RateLimiter` in process memory: the generic cell rate algorithm (GCRA), O(1) per hit.

Why not `limits` here too: its async `MemoryStorage` hops to a thread to expire keys, once
per active key after every hit; under chat traffic that cost more CPU than everything else
a command does (measured with scripts/bench: 348 -> 91 CPU us per delivered message in the
500-rooms workload). `limits` still parses the rates. With several instances the same
algorithm runs in Redis (`RedisGcraRateLimiter`, one Lua call per hit), so a limit means
the same thing on one instance and on many.

A rate "N per P seconds" lets a key through at one hit per P/N seconds with bursts of up to
N: exactly "20 per second with bursts of 40" for "40 per 2 seconds". A refusal says how long
until the next hit fits (`retry_after_ms`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping

import redis.asyncio as aioredis
from limits import parse

from adapters.redis.base import Keys
from application.logging import get_logger

log = get_logger("switchboard.ratelimit")

FORGET_EVERY = 10_000


class GcraRateLimiter:
    """Named rates hit per key; one float of state per (rate, key) while it matters."""

    def __init__(
        self, limits: Mapping[str, str], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._rates: dict[str, tuple[float, float]] = {}
        for name, text in limits.items():
            item = parse(text)
            period = float(item.get_expiry())
            interval = period / item.amount
            self._rates[name] = (interval, period - interval)
        self._arrival: dict[tuple[str, str], float] = {}
        self._hits = 0

    async def hit(self, limit_name: str, key: str) -> int | None:
        """Record one hit; None if allowed, else milliseconds until a retry may succeed."""
        rate = self._rates.get(limit_name)
        if rate is None:
            return None
        interval, tolerance = rate
        now = self._clock()
        slot = (limit_name, key)
        theoretical = max(self._arrival.get(slot, now), now)
        wait = theoretical - now - tolerance
        if wait > 0:
            return max(1, math.ceil(wait * 1000))
        self._arrival[slot] = theoretical + interval
        self._hits += 1
        if self._hits % FORGET_EVERY == 0:
            self._forget(now)
        return None

    def _forget(self, now: float) -> None:
        """Drop keys whose every past hit has drained (they start afresh anyway)."""
        for stale in [slot for slot, at in self._arrival.items() if at <= now]:
            del self._arrival[stale]


_REDIS_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat - now - tonumber(ARGV[2])
if wait > 0 then return math.ceil(wait) end
local new = tat + tonumber(ARGV[1])
redis.call('SET', KEYS[1], tostring(new), 'PX', math.ceil(new - now) + 1000)
return 0
"""


class RedisGcraRateLimiter:
    """The same GCRA shared by every instance: one key per (rate, key) in Redis, one Lua
    call per hit, Redis' own clock (instances' clocks may differ). Fails open if Redis
    does not answer: a rate-limit outage must not refuse every command of every user."""

    def __init__(self, client: aioredis.Redis, prefix: str, limits: Mapping[str, str]) -> None:
        self._client = client
        self._prefix = prefix + "gcra:"
        self._script = client.register_script(_REDIS_GCRA)
        self._rates: dict[str, tuple[float, float]] = {}
        for name, text in limits.items():
            item = parse(text)
            period_ms = float(item.get_expiry()) * 1000
            interval_ms = period_ms / item.amount
            self._rates[name] = (interval_ms, period_ms - interval_ms)

    async def hit(self, limit_name: str, key: str) -> int | None:
        """Record one hit; None if allowed, else milliseconds until a retry may succeed."""
        rate = self._rates.get(limit_name)
        if rate is None:
            return None
        interval_ms, tolerance_ms = rate
        redis_key = self._prefix + Keys.tag("l", f"{limit_name}:{key}")
        try:
            wait = await self._script(keys=[redis_key], args=[interval_ms, tolerance_ms])
        except Exception as exc:
            log.warning("rate_limit_storage_failed", limit=limit_name, error=type(exc).__name__)
            return None
        waited = int(wait) if isinstance(wait, int | bytes | str) else 0
        return waited if waited > 0 else None

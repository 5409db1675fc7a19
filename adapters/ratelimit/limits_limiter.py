"""`RateLimiter` on the `limits` library: moving windows, in memory or in Redis.

With several instances the Redis storage makes every limit cluster-wide. If the storage
fails, the limiter lets the command through (fails open) and logs it: a rate-limit outage
must not refuse every command of every user.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

import redis.asyncio as aioredis
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from application.logging import get_logger

log = get_logger("switchboard.ratelimit")


def memory_storage() -> Storage:
    """Process-local storage (one instance)."""
    return MemoryStorage()


def redis_storage(redis_url: str, prefix: str, pool: aioredis.ConnectionPool) -> Storage:
    """Redis storage through redis-py on our (blocking, sized) connection pool, under our
    key prefix: the library's own default pool refuses connections under a storm."""
    uri = "async+" + redis_url if not redis_url.startswith("async+") else redis_url
    return RedisStorage(
        uri,
        implementation="redispy",
        key_prefix=prefix + "limits",
        connection_pool=pool,  # type: ignore[arg-type]  # the library types options narrowly
    )


class LimitsRateLimiter:
    """Named limits (`"40 per 2 seconds"`...) hit per key with a moving window."""

    def __init__(self, storage: Storage, limits: Mapping[str, str]) -> None:
        self._strategy = MovingWindowRateLimiter(storage)
        self._items: dict[str, RateLimitItem] = {name: parse(text) for name, text in limits.items()}

    async def hit(self, limit_name: str, key: str) -> int | None:
        """Record one hit; None if allowed, else milliseconds until a retry may succeed."""
        item = self._items.get(limit_name)
        if item is None:
            return None
        try:
            if await self._strategy.hit(item, limit_name, key):
                return None
            stats = await self._strategy.get_window_stats(item, limit_name, key)
        except Exception as exc:
            log.warning("rate_limit_storage_failed", limit=limit_name, error=type(exc).__name__)
            return None
        return max(1, math.ceil((stats.reset_time - time.time()) * 1000))

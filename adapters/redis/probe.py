"""Readiness of Redis for `/readyz`, and the start-up check behind `REDIS_FALLBACK`."""

from __future__ import annotations

import redis.asyncio as aioredis

from adapters.redis.base import REDIS_DOWN


class RedisProbe:
    """`ok` when Redis answers PING, else the reason."""

    name = "redis"

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    async def check(self) -> str:
        """PING Redis."""
        try:
            await self._client.ping()
        except REDIS_DOWN as exc:
            return f"unreachable: {type(exc).__name__}"
        return "ok"


async def redis_answers(url: str, timeout_s: float = 3.0) -> str | None:
    """None if Redis at `url` answers PING within the timeout, else the reason it does not."""
    client = aioredis.Redis.from_url(
        url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s
    )
    try:
        await client.ping()
    except (*REDIS_DOWN, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        await client.aclose()
    return None

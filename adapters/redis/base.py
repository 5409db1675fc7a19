"""What every Redis adapter shares: the client, the key prefix, and error translation."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import ParamSpec, TypeVar

import redis.asyncio as aioredis
import redis.exceptions

from domain.errors import Unavailable

P = ParamSpec("P")
T = TypeVar("T")

REDIS_DOWN = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.TryAgainError,
    ConnectionError,
    TimeoutError,
    OSError,
)


def create_client(
    url: str, *, max_connections: int = 200, timeout_s: float = 5.0
) -> aioredis.Redis:
    """A client whose pool blocks (up to `timeout_s`) instead of failing when all are busy.

    redis-py's default pool raises `MaxConnectionsError` past 100 connections, which a storm
    of handshakes reaches; a `BlockingConnectionPool` queues them instead.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout_s,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=30,
        retry_on_timeout=False,
    )
    return aioredis.Redis(connection_pool=pool)


def translate_errors(
    method: Callable[P, Awaitable[T]],
) -> Callable[P, Coroutine[object, object, T]]:
    """Turn "Redis is unreachable" into the domain's `Unavailable` (answers `unavailable`)."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except REDIS_DOWN as exc:
            raise Unavailable("the backing store is unavailable; retry with backoff") from exc

    return wrapper


class Keys:
    """Key names under one prefix; `tag(kind, id)` is a hash tag for Redis Cluster."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def key(self, *parts: str) -> str:
        """`<prefix>` + parts joined with `:`."""
        return self.prefix + ":".join(parts)

    @staticmethod
    def safe(ident: str) -> str:
        """An id made safe inside a key: `%`, `:`, `{` and `}` are percent-encoded."""
        return ident.translate(_ESCAPES)

    @classmethod
    def tag(cls, kind: str, ident: str) -> str:
        """`{kind:ident}`: keys with the same tag land in the same cluster slot."""
        return "{" + kind + ":" + cls.safe(ident) + "}"


_ESCAPES = str.maketrans({"%": "%25", ":": "%3A", "{": "%7B", "}": "%7D"})

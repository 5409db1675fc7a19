"""What every Redis adapter shares: the client, the key prefix, and error translation."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import ParamSpec, TypeVar

import redis.asyncio as aioredis
import redis.exceptions
from redis.commands.core import AsyncScript

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


PipelineFill = Callable[[aioredis.client.Pipeline], None]


async def run_pipeline_with_script(
    client: aioredis.Redis, script: AsyncScript, fill: PipelineFill
) -> list[object]:
    """Run a non-transactional pipeline that `fill` fills, with `queue_script` calls of one
    script among its commands, in one round trip.

    redis-py's own pipelined scripts cost a `SCRIPT EXISTS` round trip before every
    execute; here the script goes by `EVALSHA`, and only when Redis answers NOSCRIPT (it
    restarted, or its script cache was flushed) is it loaded and the pipeline run again.
    So the pipeline's other commands must be idempotent (a NOSCRIPT means the script did
    not run)."""
    for attempt in range(2):
        async with client.pipeline(transaction=False) as pipe:
            fill(pipe)
            try:
                replies: list[object] = await pipe.execute()
            except redis.exceptions.NoScriptError:
                if attempt:
                    raise
                await client.script_load(script.script)
                continue
            return replies
    raise AssertionError("unreachable")


def queue_script(
    pipe: aioredis.client.Pipeline, script: AsyncScript, keys: list[str], args: list[str]
) -> None:
    """Queue one `EVALSHA` of `script` on `pipe` (see `run_pipeline_with_script`)."""
    pipe.evalsha(script.sha, len(keys), *keys, *args)

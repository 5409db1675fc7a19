"""Fixtures shared by every test folder: a real Redis server for the Redis adapters."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from tests.support.redis_server import shared_redis_url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """`REDIS_URL` when set, else a `redis-server` of ours for the whole session."""
    url, server = shared_redis_url()
    try:
        yield url
    finally:
        if server is not None:
            server.cleanup()


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix of this test alone, so tests share a server without flushing it."""
    return f"sbtest:{uuid.uuid4().hex[:10]}:"


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client on the test Redis, closed after the test."""
    client = aioredis.Redis.from_url(redis_url, decode_responses=False)
    try:
        yield client
    finally:
        await client.aclose()

"""Fixtures of the port contract suites: each yields one store per backend under test.

Every contract test is written once against the port (`domain.ports`) and runs once per
backend in `STORE_BACKENDS`.

SEAM FOR NEW ADAPTERS: a backend is a name in `STORE_BACKENDS` and a branch in each `_make_*`
factory below. The Redis branches build the adapter on the test server (`redis_url`) under a
key prefix of the test alone (`redis_prefix`), delete those keys and close the client after
the test. Nothing else changes: the test modules only see the port types.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NoReturn

import pytest
import redis.asyncio as aioredis

from adapters.memory import (
    MemoryActiveUsersStore,
    MemoryMessageStore,
    MemoryNotificationStore,
    MemoryRoomRepository,
)
from adapters.redis.active_users import RedisActiveUsersStore
from adapters.redis.base import create_client
from adapters.redis.messages import RedisMessageStore
from adapters.redis.notifications import RedisNotificationStore
from adapters.redis.rooms import RedisRoomRepository
from domain.ports import ActiveUsersStore, MessageStore, NotificationStore, RoomRepository

STORE_BACKENDS = ["memory", "redis"]
ACTIVE_USERS_BACKENDS = STORE_BACKENDS


def _unknown(backend: str) -> NoReturn:
    pytest.fail(f"no {backend!r} backend is wired in tests/contract/conftest.py")


@asynccontextmanager
async def _redis(request: pytest.FixtureRequest) -> AsyncIterator[tuple[aioredis.Redis, str]]:
    """A client of `create_client` on the test server and this test's key prefix."""
    url = str(request.getfixturevalue("redis_url"))
    prefix = str(request.getfixturevalue("redis_prefix"))
    client = create_client(url)
    try:
        yield client, prefix
    finally:
        try:
            async for key in client.scan_iter(match=prefix + "*", count=1000):
                await client.unlink(key)
        finally:
            # The client does not own a pool it was given, so close the pool explicitly.
            await client.aclose(close_connection_pool=True)


async def _make_active_users(
    backend: str, request: pytest.FixtureRequest
) -> AsyncIterator[ActiveUsersStore]:
    if backend == "memory":
        yield MemoryActiveUsersStore()
        return
    if backend == "redis":
        async with _redis(request) as (client, prefix):
            yield RedisActiveUsersStore(client, prefix)
        return
    _unknown(backend)


async def _make_rooms(
    backend: str, request: pytest.FixtureRequest
) -> AsyncIterator[RoomRepository]:
    if backend == "memory":
        yield MemoryRoomRepository()
        return
    if backend == "redis":
        async with _redis(request) as (client, prefix):
            yield RedisRoomRepository(client, prefix)
        return
    _unknown(backend)


async def _make_messages(
    backend: str, request: pytest.FixtureRequest
) -> AsyncIterator[MessageStore]:
    if backend == "memory":
        yield MemoryMessageStore()
        return
    if backend == "redis":
        async with _redis(request) as (client, prefix):
            yield RedisMessageStore(client, prefix)
        return
    _unknown(backend)


async def _make_notifications(
    backend: str, request: pytest.FixtureRequest
) -> AsyncIterator[NotificationStore]:
    if backend == "memory":
        yield MemoryNotificationStore()
        return
    if backend == "redis":
        async with _redis(request) as (client, prefix):
            yield RedisNotificationStore(client, prefix)
        return
    _unknown(backend)


@pytest.fixture(params=STORE_BACKENDS)
async def notification_store(request: pytest.FixtureRequest) -> AsyncIterator[NotificationStore]:
    """An empty `NotificationStore` of each backend."""
    async for store in _make_notifications(str(request.param), request):
        yield store


@pytest.fixture(params=ACTIVE_USERS_BACKENDS)
async def active_users(request: pytest.FixtureRequest) -> AsyncIterator[ActiveUsersStore]:
    """An empty `ActiveUsersStore` of each backend."""
    async for store in _make_active_users(str(request.param), request):
        yield store


@pytest.fixture(params=STORE_BACKENDS)
async def room_repository(request: pytest.FixtureRequest) -> AsyncIterator[RoomRepository]:
    """An empty `RoomRepository` of each backend."""
    async for repository in _make_rooms(str(request.param), request):
        yield repository


@pytest.fixture(params=STORE_BACKENDS)
async def message_store(request: pytest.FixtureRequest) -> AsyncIterator[MessageStore]:
    """An empty `MessageStore` of each backend."""
    async for store in _make_messages(str(request.param), request):
        yield store

"""Fixtures of the port contract suites: each yields one store per backend under test.

Every contract test is written once against the port (`domain.ports`) and runs once per
backend in `STORE_BACKENDS`.

SEAM FOR NEW ADAPTERS: to run the suites on Redis, add `"redis"` to `STORE_BACKENDS` and a
`"redis"` branch to each `_make_*` factory below that builds the Redis adapter on a freshly
flushed database (and closes it after the test). Nothing else changes: the test modules
only see the port types.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import NoReturn

import pytest

from adapters.memory import (
    MemoryActiveUsersStore,
    MemoryMessageStore,
    MemoryNotificationStore,
    MemoryRoomRepository,
)
from domain.ports import ActiveUsersStore, MessageStore, NotificationStore, RoomRepository

STORE_BACKENDS = ["memory"]  # add "redis" here (and a branch in each factory below)


def _unknown(backend: str) -> NoReturn:
    pytest.fail(f"no {backend!r} backend is wired in tests/contract/conftest.py")


async def _make_active_users(backend: str) -> AsyncIterator[ActiveUsersStore]:
    if backend == "memory":
        yield MemoryActiveUsersStore()
        return
    _unknown(backend)


async def _make_rooms(backend: str) -> AsyncIterator[RoomRepository]:
    if backend == "memory":
        yield MemoryRoomRepository()
        return
    _unknown(backend)


async def _make_messages(backend: str) -> AsyncIterator[MessageStore]:
    if backend == "memory":
        yield MemoryMessageStore()
        return
    _unknown(backend)


async def _make_notifications(backend: str) -> AsyncIterator[NotificationStore]:
    if backend == "memory":
        yield MemoryNotificationStore()
        return
    _unknown(backend)


@pytest.fixture(params=STORE_BACKENDS)
async def notification_store(request: pytest.FixtureRequest) -> AsyncIterator[NotificationStore]:
    """An empty `NotificationStore` of each backend."""
    async for store in _make_notifications(str(request.param)):
        yield store


@pytest.fixture(params=STORE_BACKENDS)
async def active_users(request: pytest.FixtureRequest) -> AsyncIterator[ActiveUsersStore]:
    """An empty `ActiveUsersStore` of each backend."""
    async for store in _make_active_users(str(request.param)):
        yield store


@pytest.fixture(params=STORE_BACKENDS)
async def room_repository(request: pytest.FixtureRequest) -> AsyncIterator[RoomRepository]:
    """An empty `RoomRepository` of each backend."""
    async for repository in _make_rooms(str(request.param)):
        yield repository


@pytest.fixture(params=STORE_BACKENDS)
async def message_store(request: pytest.FixtureRequest) -> AsyncIterator[MessageStore]:
    """An empty `MessageStore` of each backend."""
    async for store in _make_messages(str(request.param)):
        yield store

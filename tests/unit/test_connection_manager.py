"""ConnectionManager: several connections per user, on several namespaces."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

import pytest

from adapters.memory import MemoryActiveUsersStore
from domain.errors import Forbidden
from domain.model import CHAT_NAMESPACE, NOTIFICATIONS_NAMESPACE, Connection, ConnectionChange
from domain.services import ConnectionManager
from tests.support.fakes import Domain, FixedClock, build_domain

CHAT = CHAT_NAMESPACE
NOTIFS = NOTIFICATIONS_NAMESPACE


async def test_register_records_the_connection_with_instance_and_time(domain: Domain) -> None:
    domain.clock.advance(30)

    change = await domain.connections.register_connection("alice", "s1", CHAT)

    assert change.user_online_changed is True
    assert change.connection == Connection(
        sid="s1",
        user_id="alice",
        namespace=CHAT,
        instance_id="instance-a",
        connected_at=domain.clock.now(),
    )
    assert await domain.connections.get_user_connections("alice") == [change.connection]


async def test_instance_id_comes_from_the_manager() -> None:
    domain = build_domain(instance_id="instance-z")

    change = await domain.connections.register_connection("alice", "s1", CHAT)

    assert domain.connections.instance_id == "instance-z"
    assert change.connection.instance_id == "instance-z"


async def test_only_the_first_connection_per_namespace_is_a_transition(domain: Domain) -> None:
    first = await domain.connections.register_connection("alice", "s1", CHAT)
    second_device = await domain.connections.register_connection("alice", "s2", CHAT)
    first_notifs = await domain.connections.register_connection("alice", "n1", NOTIFS)
    second_notifs = await domain.connections.register_connection("alice", "n2", NOTIFS)

    assert [c.user_online_changed for c in (first, second_device, first_notifs, second_notifs)] == [
        True,
        False,
        True,
        False,
    ]
    sids = sorted(c.sid for c in await domain.connections.get_user_connections("alice"))
    assert sids == ["n1", "n2", "s1", "s2"]


async def test_registering_a_sid_twice_keeps_one_connection(domain: Domain) -> None:
    await domain.connections.register_connection("alice", "s1", CHAT)

    again = await domain.connections.register_connection("alice", "s1", CHAT)

    assert again.user_online_changed is False
    assert len(await domain.connections.get_user_connections("alice")) == 1


async def test_only_the_last_connection_going_is_a_transition(domain: Domain) -> None:
    await domain.connections.register_connection("alice", "s1", CHAT)
    await domain.connections.register_connection("alice", "s2", CHAT)

    not_last = await domain.connections.unregister_connection("alice", "s1")
    assert await domain.connections.is_user_online("alice") is True
    last = await domain.connections.unregister_connection("alice", "s2")

    assert not_last is not None
    assert not_last.user_online_changed is False
    assert last is not None
    assert last.user_online_changed is True
    assert last.connection.sid == "s2"
    assert await domain.connections.is_user_online("alice") is False


async def test_unregister_records_last_seen_at_the_clock_time(domain: Domain) -> None:
    await domain.connections.register_connection("alice", "s1", CHAT)
    left_at = domain.clock.advance(42)

    await domain.connections.unregister_connection("alice", "s1")
    domain.clock.advance(10)

    (entry,) = await domain.active_users.presence(["alice"], CHAT)
    assert entry.last_seen == left_at


async def test_unregister_of_an_unknown_sid_returns_none(domain: Domain) -> None:
    await domain.connections.register_connection("alice", "s1", CHAT)

    assert await domain.connections.unregister_connection("alice", "ghost") is None
    assert await domain.connections.unregister_connection("nobody", "ghost") is None
    assert await domain.connections.is_user_online("alice") is True


async def test_a_user_cannot_unregister_another_users_connection(domain: Domain) -> None:
    await domain.connections.register_connection("alice", "s1", CHAT)

    result = await domain.connections.unregister_connection("mallory", "s1")

    assert result is None
    assert await domain.connections.is_user_online("alice") is True
    assert [c.sid for c in await domain.connections.get_user_connections("alice")] == ["s1"]


class _SidTakenOverStore(MemoryActiveUsersStore):
    """Simulates a race: right after the ownership check, the sid passes to another user."""

    async def user_connections(self, user_id: str) -> list[Connection]:
        found = await super().user_connections(user_id)
        for connection in found:
            await self.remove_connection(connection.sid, connection.connected_at)
            await self.add_connection(
                Connection(
                    sid=connection.sid,
                    user_id="mallory",
                    namespace=connection.namespace,
                    instance_id=connection.instance_id,
                    connected_at=connection.connected_at,
                )
            )
        return found


async def test_unregister_refuses_a_connection_that_turned_out_to_be_someone_elses() -> None:
    store = _SidTakenOverStore()
    clock = FixedClock()
    # registered by another instance, so this manager must ask the store who owns the sid
    await ConnectionManager(store, clock, instance_id="other").register_connection(
        "alice", "s1", CHAT
    )
    manager = ConnectionManager(store, clock, instance_id="i")

    with pytest.raises(Forbidden) as raised:
        await manager.unregister_connection("alice", "s1")

    assert raised.value.code == "forbidden"


async def test_is_user_online_defaults_to_chat(domain: Domain) -> None:
    await domain.connections.register_connection("alice", "n1", NOTIFS)

    assert await domain.connections.is_user_online("alice") is False
    assert await domain.connections.is_user_online("alice", NOTIFS) is True


async def test_get_all_connections_lists_every_user_and_namespace(domain: Domain) -> None:
    await domain.connections.register_connection("alice", "s1", CHAT)
    await domain.connections.register_connection("alice", "n1", NOTIFS)
    await domain.connections.register_connection("bob", "s2", CHAT)
    await domain.connections.unregister_connection("alice", "s1")

    everything = await domain.connections.get_all_connections()

    assert sorted((c.user_id, c.sid) for c in everything) == [("alice", "n1"), ("bob", "s2")]


async def test_connected_at_follows_the_clock(domain: Domain) -> None:
    times: list[datetime] = []
    for sid in ("s1", "s2"):
        times.append(domain.clock.advance(5))
        await domain.connections.register_connection("alice", sid, CHAT)

    found = await domain.connections.get_user_connections("alice")

    assert sorted((c.sid, c.connected_at) for c in found) == list(
        zip(["s1", "s2"], times, strict=True)
    )


class _SlowHeartbeatStore(MemoryActiveUsersStore):
    """A store whose heartbeat lets other tasks run before it writes (like a round trip)."""

    def __init__(self) -> None:
        super().__init__()
        self.started = asyncio.Event()
        self.proceed = asyncio.Event()

    async def heartbeat(
        self, connections: Sequence[Connection], expires_at: datetime
    ) -> list[ConnectionChange]:
        self.started.set()
        await self.proceed.wait()
        return await super().heartbeat(connections, expires_at)


async def test_a_heartbeat_never_resurrects_a_connection_closed_meanwhile() -> None:
    store = _SlowHeartbeatStore()
    manager = ConnectionManager(store, FixedClock(), instance_id="i", ttl_s=12)
    await manager.register_connection("alice", "s1", CHAT)

    beat = asyncio.create_task(manager.heartbeat())
    await store.started.wait()
    assert await manager.unregister_connection("alice", "s1") is not None  # closes now
    store.proceed.set()
    changes = await beat

    assert changes == []
    assert await manager.is_user_online("alice") is False
    assert await manager.get_user_connections("alice") == []

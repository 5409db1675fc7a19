"""Contract of the expiry part of `ActiveUsersStore`: heartbeats, sweeps, re-assertion."""

from __future__ import annotations

import asyncio

from domain.model import CHAT_NAMESPACE
from domain.ports import ActiveUsersStore
from tests.contract.test_active_users_contract import at, conn, entry


async def test_connections_without_expiry_are_never_swept(active_users: ActiveUsersStore) -> None:
    await active_users.add_connection(conn("s1", "alice"))
    assert await active_users.next_expiry() is None
    assert await active_users.sweep_expired(at(10_000)) == []
    assert await active_users.is_online("alice", CHAT_NAMESPACE)


async def test_sweep_removes_only_expired_and_reports_the_last_one(
    active_users: ActiveUsersStore,
) -> None:
    await active_users.add_connection(conn("s1", "alice"), expires_at=at(10))
    await active_users.add_connection(conn("s2", "alice"), expires_at=at(20))
    await active_users.add_connection(conn("s3", "bob"), expires_at=at(30))
    assert await active_users.next_expiry() == at(10)

    first = await active_users.sweep_expired(at(15))
    assert [(c.connection.sid, c.user_online_changed) for c in first] == [("s1", False)]
    assert await active_users.next_expiry() == at(20)

    second = await active_users.sweep_expired(at(25))
    assert [(c.connection.sid, c.user_online_changed) for c in second] == [("s2", True)]
    assert not await active_users.is_online("alice", CHAT_NAMESPACE)
    gone = await entry(active_users, "alice")
    assert gone.last_seen is not None
    assert gone.last_seen <= at(25)
    assert await active_users.is_online("bob", CHAT_NAMESPACE)
    assert await active_users.sweep_expired(at(25)) == []


async def test_heartbeat_renews_expiry(active_users: ActiveUsersStore) -> None:
    live = conn("s1", "alice")
    await active_users.add_connection(live, expires_at=at(10))
    assert await active_users.heartbeat([live], at(40)) == []
    assert await active_users.sweep_expired(at(30)) == []
    assert await active_users.next_expiry() == at(40)
    assert await active_users.is_online("alice", CHAT_NAMESPACE)


async def test_heartbeat_reasserts_lost_connections(active_users: ActiveUsersStore) -> None:
    live = [conn("s1", "alice"), conn("s2", "alice"), conn("s3", "bob")]
    for connection in live:
        await active_users.add_connection(connection, expires_at=at(10))
    await active_users.sweep_expired(at(11))  # as if the store forgot them all
    assert await active_users.online_count(CHAT_NAMESPACE) == 0

    changes = await active_users.heartbeat(live, at(30))

    assert sorted(c.connection.user_id for c in changes) == ["alice", "bob"]
    assert all(c.user_online_changed for c in changes)
    assert {c.sid for c in await active_users.user_connections("alice")} == {"s1", "s2"}
    assert await active_users.online_count(CHAT_NAMESPACE) == 2
    assert await active_users.heartbeat(live, at(40)) == []  # nothing was lost this time


async def test_online_count_counts_users_not_connections(active_users: ActiveUsersStore) -> None:
    await active_users.add_connection(conn("s1", "alice"))
    await active_users.add_connection(conn("s2", "alice"))
    await active_users.add_connection(conn("s3", "bob"))
    await active_users.add_connection(conn("n1", "carol", namespace="/notifications"))
    assert await active_users.online_count(CHAT_NAMESPACE) == 2
    assert await active_users.online_count("/notifications") == 1
    await active_users.remove_connection("s1", at(1))
    assert await active_users.online_count(CHAT_NAMESPACE) == 2
    await active_users.remove_connection("s2", at(1))
    assert await active_users.online_count(CHAT_NAMESPACE) == 1


async def test_concurrent_sweeps_report_each_removal_once(active_users: ActiveUsersStore) -> None:
    for i in range(30):
        await active_users.add_connection(conn(f"s{i}", f"u{i % 7}"), expires_at=at(5))
    results = await asyncio.gather(*(active_users.sweep_expired(at(6)) for _ in range(4)))
    removed = [c.connection.sid for batch in results for c in batch]
    assert sorted(removed) == sorted(f"s{i}" for i in range(30))
    leaves = [c.connection.user_id for batch in results for c in batch if c.user_online_changed]
    assert sorted(leaves) == sorted(f"u{i}" for i in range(7))


async def test_removed_connection_is_not_swept_later(active_users: ActiveUsersStore) -> None:
    await active_users.add_connection(conn("s1", "alice"), expires_at=at(5))
    await active_users.remove_connection("s1", at(1))
    assert await active_users.next_expiry() is None
    assert await active_users.sweep_expired(at(6)) == []


async def test_online_among_keeps_the_order_asked(active_users: ActiveUsersStore) -> None:
    await active_users.add_connection(conn("s1", "carol"))
    await active_users.add_connection(conn("s2", "alice"))
    await active_users.add_connection(conn("n1", "bob", namespace="/notifications"))
    asked = ["alice", "bob", "carol", "dave", "alice"]
    assert await active_users.online_among(asked, CHAT_NAMESPACE) == ["alice", "carol", "alice"]
    assert await active_users.online_among([], CHAT_NAMESPACE) == []
    await active_users.remove_connection("s2", at(1))
    assert await active_users.online_among(asked, CHAT_NAMESPACE) == ["carol"]

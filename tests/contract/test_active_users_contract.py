"""Contract of the `ActiveUsersStore` port: every adapter passes it unchanged."""

from __future__ import annotations

from datetime import datetime, timedelta

from domain.model import CHAT_NAMESPACE, NOTIFICATIONS_NAMESPACE, Connection, PresenceEntry
from domain.ports import ActiveUsersStore
from tests.support.fakes import EPOCH

CHAT = CHAT_NAMESPACE
NOTIFS = NOTIFICATIONS_NAMESPACE


def at(seconds: int) -> datetime:
    """A whole-second time after the epoch of the tests (safe for any serialisation)."""
    return EPOCH + timedelta(seconds=seconds)


def conn(
    sid: str, user_id: str, namespace: str = CHAT, instance_id: str = "i1", when: int = 0
) -> Connection:
    """A connection record."""
    return Connection(
        sid=sid,
        user_id=user_id,
        namespace=namespace,
        instance_id=instance_id,
        connected_at=at(when),
    )


async def entry(store: ActiveUsersStore, user_id: str, namespace: str = CHAT) -> PresenceEntry:
    """The single presence entry of one user."""
    (only,) = await store.presence([user_id], namespace)
    return only


# --- add / remove transitions ---------------------------------------------------------------


async def test_first_connection_of_a_user_changes_presence(active_users: ActiveUsersStore) -> None:
    change = await active_users.add_connection(conn("s1", "alice"))

    assert change.user_online_changed is True
    assert change.connection == conn("s1", "alice")
    assert await active_users.is_online("alice", CHAT) is True


async def test_second_device_on_the_same_namespace_does_not(active_users: ActiveUsersStore) -> None:
    await active_users.add_connection(conn("s1", "alice"))

    change = await active_users.add_connection(conn("s2", "alice", instance_id="i2"))

    assert change.user_online_changed is False
    assert change.connection.sid == "s2"
    assert (await entry(active_users, "alice")).connections == 2


async def test_first_connection_on_another_namespace_changes_presence_there(
    active_users: ActiveUsersStore,
) -> None:
    await active_users.add_connection(conn("s1", "alice", CHAT))

    change = await active_users.add_connection(conn("n1", "alice", NOTIFS))

    assert change.user_online_changed is True
    assert await active_users.is_online("alice", NOTIFS) is True
    assert (await entry(active_users, "alice", CHAT)).connections == 1
    assert (await entry(active_users, "alice", NOTIFS)).connections == 1


async def test_users_are_independent(active_users: ActiveUsersStore) -> None:
    await active_users.add_connection(conn("s1", "alice"))

    change = await active_users.add_connection(conn("s2", "bob"))

    assert change.user_online_changed is True
    removed = await active_users.remove_connection("s1", at(5))
    assert removed is not None
    assert removed.user_online_changed is True
    assert await active_users.is_online("alice", CHAT) is False
    assert await active_users.is_online("bob", CHAT) is True


async def test_adding_the_same_sid_twice_is_a_no_op(active_users: ActiveUsersStore) -> None:
    await active_users.add_connection(conn("s1", "alice", when=0))

    again = await active_users.add_connection(conn("s1", "alice", when=3))

    assert again.user_online_changed is False
    assert again.connection.connected_at == at(0)  # the registered connection is kept
    assert [c.sid for c in await active_users.user_connections("alice")] == ["s1"]
    assert (await entry(active_users, "alice")).connections == 1
    # one removal is enough to take the user offline: no phantom second connection
    removed = await active_users.remove_connection("s1", at(5))
    assert removed is not None
    assert removed.user_online_changed is True
    assert await active_users.is_online("alice", CHAT) is False


async def test_removing_an_unknown_sid_returns_none(active_users: ActiveUsersStore) -> None:
    await active_users.add_connection(conn("s1", "alice"))

    assert await active_users.remove_connection("nope", at(1)) is None
    assert await active_users.is_online("alice", CHAT) is True


async def test_removing_twice_returns_none_the_second_time(active_users: ActiveUsersStore) -> None:
    await active_users.add_connection(conn("s1", "alice"))
    await active_users.add_connection(conn("s2", "alice"))

    first = await active_users.remove_connection("s1", at(1))
    second = await active_users.remove_connection("s1", at(2))

    assert first is not None
    assert first.connection == conn("s1", "alice")
    assert second is None
    assert (await entry(active_users, "alice")).connections == 1


async def test_only_the_last_connection_going_changes_presence(
    active_users: ActiveUsersStore,
) -> None:
    for sid in ("s1", "s2", "s3"):
        await active_users.add_connection(conn(sid, "alice"))

    changes = [await active_users.remove_connection(sid, at(1)) for sid in ("s2", "s1", "s3")]

    assert [c.user_online_changed if c else None for c in changes] == [False, False, True]
    assert await active_users.is_online("alice", CHAT) is False
    assert await active_users.user_connections("alice") == []


async def test_last_per_namespace_not_per_user(active_users: ActiveUsersStore) -> None:
    await active_users.add_connection(conn("s1", "alice", CHAT))
    await active_users.add_connection(conn("n1", "alice", NOTIFS))
    await active_users.add_connection(conn("n2", "alice", NOTIFS))

    chat_gone = await active_users.remove_connection("s1", at(1))
    notif_one = await active_users.remove_connection("n1", at(2))
    notif_last = await active_users.remove_connection("n2", at(3))

    assert chat_gone is not None
    assert chat_gone.user_online_changed is True  # the last chat one, though notifs remain
    assert notif_one is not None
    assert notif_one.user_online_changed is False
    assert notif_last is not None
    assert notif_last.user_online_changed is True


async def test_a_user_can_come_back_after_going_offline(active_users: ActiveUsersStore) -> None:
    await active_users.add_connection(conn("s1", "alice"))
    await active_users.remove_connection("s1", at(1))

    change = await active_users.add_connection(conn("s2", "alice", when=2))

    assert change.user_online_changed is True
    assert await active_users.is_online("alice", CHAT) is True


# --- lookups --------------------------------------------------------------------------------


async def test_user_connections_cover_every_namespace_and_instance(
    active_users: ActiveUsersStore,
) -> None:
    mine = [
        conn("s1", "alice", CHAT, "i1"),
        conn("s2", "alice", CHAT, "i2"),
        conn("n1", "alice", NOTIFS, "i1"),
    ]
    for connection in mine:
        await active_users.add_connection(connection)
    await active_users.add_connection(conn("s3", "bob"))

    found = await active_users.user_connections("alice")

    assert sorted(found, key=lambda c: c.sid) == sorted(mine, key=lambda c: c.sid)
    assert await active_users.user_connections("nobody") == []


async def test_all_connections_lists_every_live_connection(active_users: ActiveUsersStore) -> None:
    assert await active_users.all_connections() == []
    for connection in (conn("s1", "alice"), conn("n1", "alice", NOTIFS), conn("s2", "bob")):
        await active_users.add_connection(connection)
    await active_users.remove_connection("s1", at(1))

    assert sorted(c.sid for c in await active_users.all_connections()) == ["n1", "s2"]


async def test_online_users_per_namespace(active_users: ActiveUsersStore) -> None:
    await active_users.add_connection(conn("s1", "alice", CHAT))
    await active_users.add_connection(conn("s2", "alice", CHAT))
    await active_users.add_connection(conn("s3", "bob", CHAT))
    await active_users.add_connection(conn("n1", "carol", NOTIFS))
    await active_users.add_connection(conn("s4", "dave", CHAT))
    await active_users.remove_connection("s4", at(1))

    assert sorted(await active_users.online_users(CHAT)) == ["alice", "bob"]
    assert await active_users.online_users(NOTIFS) == ["carol"]


async def test_is_online_is_per_namespace(active_users: ActiveUsersStore) -> None:
    await active_users.add_connection(conn("n1", "alice", NOTIFS))

    assert await active_users.is_online("alice", NOTIFS) is True
    assert await active_users.is_online("alice", CHAT) is False
    assert await active_users.is_online("nobody", CHAT) is False


# --- presence entries and last_seen ---------------------------------------------------------


async def test_presence_is_in_the_order_asked_with_unknown_users(
    active_users: ActiveUsersStore,
) -> None:
    await active_users.add_connection(conn("s1", "bob"))
    await active_users.add_connection(conn("s2", "bob"))
    await active_users.add_connection(conn("s3", "alice"))

    entries = await active_users.presence(["carol", "bob", "alice"], CHAT)

    assert entries == [
        PresenceEntry(user_id="carol", online=False, last_seen=None, connections=0),
        PresenceEntry(user_id="bob", online=True, last_seen=None, connections=2),
        PresenceEntry(user_id="alice", online=True, last_seen=None, connections=1),
    ]
    assert [e.user_id for e in await active_users.presence(["alice", "bob"], CHAT)] == [
        "alice",
        "bob",
    ]
    assert await active_users.presence([], CHAT) == []


async def test_last_seen_is_recorded_when_the_last_connection_goes(
    active_users: ActiveUsersStore,
) -> None:
    await active_users.add_connection(conn("s1", "alice"))
    await active_users.add_connection(conn("s2", "alice"))

    await active_users.remove_connection("s1", at(10))
    while_online = await entry(active_users, "alice")
    await active_users.remove_connection("s2", at(20))
    offline = await entry(active_users, "alice")

    assert while_online == PresenceEntry("alice", online=True, last_seen=None, connections=1)
    assert offline == PresenceEntry("alice", online=False, last_seen=at(20), connections=0)


async def test_last_seen_is_cleared_while_online_and_renewed_on_the_next_leave(
    active_users: ActiveUsersStore,
) -> None:
    await active_users.add_connection(conn("s1", "alice"))
    await active_users.remove_connection("s1", at(10))

    await active_users.add_connection(conn("s2", "alice", when=15))
    back_online = await entry(active_users, "alice")
    await active_users.remove_connection("s2", at(30))
    offline_again = await entry(active_users, "alice")

    assert back_online.online is True
    assert back_online.last_seen is None
    assert offline_again.last_seen == at(30)


async def test_unknown_sid_removal_does_not_touch_last_seen(active_users: ActiveUsersStore) -> None:
    await active_users.add_connection(conn("s1", "alice"))
    await active_users.remove_connection("s1", at(10))

    await active_users.remove_connection("s1", at(99))
    await active_users.remove_connection("ghost", at(99))

    assert (await entry(active_users, "alice")).last_seen == at(10)


async def test_last_seen_is_per_namespace(active_users: ActiveUsersStore) -> None:
    await active_users.add_connection(conn("s1", "alice", CHAT))
    await active_users.add_connection(conn("n1", "alice", NOTIFS))
    await active_users.add_connection(conn("n2", "bob", NOTIFS))

    await active_users.remove_connection("n1", at(5))
    await active_users.remove_connection("n2", at(6))

    assert await entry(active_users, "alice", CHAT) == PresenceEntry(
        "alice", online=True, last_seen=None, connections=1
    )
    assert (await entry(active_users, "alice", NOTIFS)).last_seen == at(5)
    # bob never was on chat: a notifications leave says nothing about chat
    assert await entry(active_users, "bob", CHAT) == PresenceEntry(
        "bob", online=False, last_seen=None, connections=0
    )

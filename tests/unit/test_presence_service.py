"""PresenceService: user-level online/offline from /chat connections, and presence entries."""

from __future__ import annotations

from domain.events import PresenceChanged
from domain.model import NOTIFICATIONS_NAMESPACE, PresenceEntry, Visibility
from tests.support.fakes import Domain


async def test_first_chat_connection_announces_online_with_the_users_rooms(
    domain: Domain,
) -> None:
    general = await domain.rooms.create("bob", "general", members=["alice"])
    secret = await domain.rooms.create("alice", "secret", Visibility.PRIVATE)
    await domain.rooms.create("bob", "elsewhere")
    domain.events.clear()

    change, _ = await domain.presence.connect("alice", "s1")

    assert change.user_online_changed is True
    assert domain.events.events == [
        PresenceChanged(
            user_id="alice", online=True, room_ids=tuple(sorted((general.id, secret.id)))
        )
    ]


async def test_more_devices_announce_nothing(domain: Domain) -> None:
    await domain.presence.connect("alice", "s1")

    second, _ = await domain.presence.connect("alice", "s2")
    again, _ = await domain.presence.connect("alice", "s1")

    assert second.user_online_changed is False
    assert again.user_online_changed is False
    assert domain.events.presence_of("alice") == [
        PresenceChanged(user_id="alice", online=True, room_ids=())
    ]


async def test_only_the_last_chat_disconnection_announces_offline(domain: Domain) -> None:
    room = await domain.rooms.create("alice", "general")
    await domain.presence.connect("alice", "s1")
    await domain.presence.connect("alice", "s2")
    domain.events.clear()

    not_last = await domain.presence.disconnect("alice", "s1")
    assert domain.events.events == []
    last = await domain.presence.disconnect("alice", "s2")

    assert not_last is not None
    assert not_last.user_online_changed is False
    assert last is not None
    assert last.user_online_changed is True
    assert domain.events.events == [
        PresenceChanged(user_id="alice", online=False, room_ids=(room.id,))
    ]


async def test_room_ids_are_the_rooms_at_the_time_of_the_change(domain: Domain) -> None:
    kept = await domain.rooms.create("alice", "kept")
    left = await domain.rooms.create("alice", "left")
    await domain.presence.connect("alice", "s1")
    await domain.rooms.leave("alice", left.id)

    await domain.presence.disconnect("alice", "s1")

    online, offline = domain.events.presence_of("alice")
    assert online.room_ids == tuple(sorted((kept.id, left.id)))
    assert offline.room_ids == (kept.id,)


async def test_disconnecting_an_unknown_sid_announces_nothing(domain: Domain) -> None:
    await domain.presence.connect("alice", "s1")
    domain.events.clear()

    assert await domain.presence.disconnect("alice", "ghost") is None
    assert await domain.presence.disconnect("bob", "s1") is None  # someone else's sid

    assert domain.events.events == []
    assert await domain.connections.is_user_online("alice") is True


async def test_disconnecting_twice_announces_offline_once(domain: Domain) -> None:
    await domain.presence.connect("alice", "s1")

    await domain.presence.disconnect("alice", "s1")
    assert await domain.presence.disconnect("alice", "s1") is None

    assert [e.online for e in domain.events.presence_of("alice")] == [True, False]


async def test_notifications_connections_do_not_make_a_user_present(domain: Domain) -> None:
    await domain.connections.register_connection("alice", "n1", NOTIFICATIONS_NAMESPACE)

    (entry,) = await domain.presence.presence_of(["alice"])

    assert entry == PresenceEntry("alice", online=False, last_seen=None, connections=0)
    assert domain.events.events == []


async def test_chat_presence_survives_the_notifications_connection_going(
    domain: Domain,
) -> None:
    await domain.presence.connect("alice", "s1")
    await domain.connections.register_connection("alice", "n1", NOTIFICATIONS_NAMESPACE)
    domain.events.clear()

    await domain.connections.unregister_connection("alice", "n1")

    (entry,) = await domain.presence.presence_of(["alice"])
    assert entry.online is True
    assert domain.events.events == []


async def test_reconnecting_after_going_offline_announces_online_again(domain: Domain) -> None:
    await domain.presence.connect("alice", "s1")
    await domain.presence.disconnect("alice", "s1")

    await domain.presence.connect("alice", "s2")

    assert [e.online for e in domain.events.presence_of("alice")] == [True, False, True]


async def test_presence_of_keeps_the_order_asked_and_collapses_duplicates(
    domain: Domain,
) -> None:
    await domain.presence.connect("bob", "s1")
    await domain.presence.connect("bob", "s2")
    await domain.presence.connect("alice", "s3")

    entries = await domain.presence.presence_of(["carol", "bob", "carol", "alice", "bob"])

    assert entries == [
        PresenceEntry("carol", online=False, last_seen=None, connections=0),
        PresenceEntry("bob", online=True, last_seen=None, connections=2),
        PresenceEntry("alice", online=True, last_seen=None, connections=1),
    ]


async def test_last_seen_is_when_the_last_connection_closed_and_cleared_on_return(
    domain: Domain,
) -> None:
    await domain.presence.connect("alice", "s1")
    await domain.presence.connect("alice", "s2")
    domain.clock.advance(10)
    await domain.presence.disconnect("alice", "s1")
    last_gone = domain.clock.advance(10)
    await domain.presence.disconnect("alice", "s2")
    domain.clock.advance(100)

    (offline,) = await domain.presence.presence_of(["alice"])
    await domain.presence.connect("alice", "s3")
    (back,) = await domain.presence.presence_of(["alice"])

    assert offline == PresenceEntry("alice", online=False, last_seen=last_gone, connections=0)
    assert back == PresenceEntry("alice", online=True, last_seen=None, connections=1)


async def test_online_members_lists_only_online_members(domain: Domain) -> None:
    room = await domain.rooms.create("alice", "general", members=["bob", "carol"])
    await domain.presence.connect("alice", "s1")
    await domain.presence.connect("bob", "s2")
    await domain.presence.connect("bob", "s3")
    await domain.presence.connect("zed", "s4")  # online, not a member
    await domain.presence.connect("carol", "s5")
    await domain.presence.disconnect("carol", "s5")

    entries, count = await domain.presence.online_members(room.id)

    assert count == 2
    assert entries == [
        PresenceEntry("alice", online=True, last_seen=None, connections=1),
        PresenceEntry("bob", online=True, last_seen=None, connections=2),
    ]


async def test_online_members_limits_the_entries_not_the_count(domain: Domain) -> None:
    members = [f"user{i:02d}" for i in range(12)]
    room = await domain.rooms.create("owner", "big", members=members)
    for user_id in members:
        await domain.presence.connect(user_id, f"sid-{user_id}")

    entries, count = await domain.presence.online_members(room.id, limit=5)

    assert count == 12
    assert len(entries) == 5
    assert all(e.online and e.user_id in members for e in entries)


async def test_announce_expired_announces_a_chat_leave_found_by_expiry(domain: Domain) -> None:
    room = await domain.rooms.create("alice", "general")
    await domain.presence.connect("alice", "s1")
    domain.events.clear()
    # the connection's instance died: a sweeper removes it from the store directly
    change = await domain.active_users.remove_connection("s1", domain.clock.advance(12))
    assert change is not None

    await domain.presence.announce_expired(change)

    assert domain.events.events == [
        PresenceChanged(user_id="alice", online=False, room_ids=(room.id,))
    ]


async def test_announce_expired_is_silent_when_the_user_is_still_online(domain: Domain) -> None:
    await domain.presence.connect("alice", "s1")
    await domain.presence.connect("alice", "s2")
    domain.events.clear()
    change = await domain.active_users.remove_connection("s1", domain.clock.now())
    assert change is not None

    await domain.presence.announce_expired(change)

    assert domain.events.events == []


async def test_announce_expired_ignores_other_namespaces(domain: Domain) -> None:
    await domain.connections.register_connection("alice", "n1", NOTIFICATIONS_NAMESPACE)
    change = await domain.active_users.remove_connection("n1", domain.clock.now())
    assert change is not None
    assert change.user_online_changed is True

    await domain.presence.announce_expired(change)

    assert domain.events.events == []


async def test_connect_reads_the_rooms_once_for_the_announcement_and_the_channels(
    domain: Domain,
) -> None:
    general = await domain.rooms.create("bob", "general", members=["alice"])
    domain.events.clear()

    first, rooms = await domain.presence.connect("alice", "s1")
    second, again = await domain.presence.connect("alice", "s2")

    assert first.user_online_changed is True
    assert rooms == again == (general.id,)  # every connection learns its channels
    assert second.user_online_changed is False
    assert domain.events.events == [  # only the first announces
        PresenceChanged(user_id="alice", online=True, room_ids=(general.id,))
    ]

"""ChatRoomService: create, list, join, leave, invite, with their rules and events."""

from __future__ import annotations

import pytest

from domain.errors import Forbidden, NotFound
from domain.events import MembershipChanged, MessagePosted
from domain.model import PresenceEntry, Room, Visibility
from domain.services.rooms import MAX_MISSED, MAX_ONLINE
from tests.support.fakes import Domain

PRIVATE = Visibility.PRIVATE


async def post_many(domain: Domain, room: Room, count: int, author: str = "alice") -> None:
    """Store `count` messages by `author` (texts `message 0`..., without the membership rule)."""
    for i in range(count):
        await domain.messages.post_unchecked(author, room.id, f"message {i}", f"c{i}")


# --- create ---------------------------------------------------------------------------------


async def test_create_makes_the_creator_owner_and_member(domain: Domain) -> None:
    domain.clock.advance(60)

    room = await domain.rooms.create("alice", "general")

    assert room.owner_id == "alice"
    assert room.name == "general"
    assert room.visibility is Visibility.PUBLIC
    assert room.created_at == domain.clock.now()
    assert room.member_count == 1
    assert await domain.room_repository.is_member(room.id, "alice") is True
    assert await domain.room_repository.get(room.id) == room


async def test_create_announces_each_first_member_once(domain: Domain) -> None:
    room = await domain.rooms.create("alice", "team", PRIVATE, members=["bob", "alice", "carol"])

    assert room.member_count == 3
    assert domain.events.events == [
        MembershipChanged(room_id=room.id, user_id="alice", joined=True),
        MembershipChanged(room_id=room.id, user_id="bob", joined=True),
        MembershipChanged(room_id=room.id, user_id="carol", joined=True),
    ]
    assert sorted(await domain.room_repository.members(room.id)) == ["alice", "bob", "carol"]


async def test_rooms_get_distinct_ids(domain: Domain) -> None:
    first = await domain.rooms.create("alice", "same name")
    second = await domain.rooms.create("alice", "same name")

    assert first.id != second.id


# --- list and visibility --------------------------------------------------------------------


async def test_list_rooms_shows_public_rooms_and_own_private_ones_oldest_first(
    domain: Domain,
) -> None:
    general = await domain.rooms.create("alice", "general")
    domain.clock.advance(1)
    mine = await domain.rooms.create("alice", "mine", PRIVATE)
    domain.clock.advance(1)
    theirs = await domain.rooms.create("bob", "theirs", PRIVATE, members=["carol"])
    domain.clock.advance(1)
    random = await domain.rooms.create("bob", "random")

    assert [r.id for r in await domain.rooms.list_rooms("alice")] == [
        general.id,
        mine.id,
        random.id,
    ]
    assert [r.id for r in await domain.rooms.list_rooms("carol")] == [
        general.id,
        theirs.id,
        random.id,
    ]
    assert [r.id for r in await domain.rooms.list_rooms("dave")] == [general.id, random.id]


async def test_get_visible(domain: Domain) -> None:
    public = await domain.rooms.create("alice", "public")
    private = await domain.rooms.create("alice", "private", PRIVATE)

    assert (await domain.rooms.get_visible(public.id, "stranger")).id == public.id
    assert (await domain.rooms.get_visible(private.id, "alice")).id == private.id
    with pytest.raises(Forbidden):
        await domain.rooms.get_visible(private.id, "stranger")
    with pytest.raises(NotFound):
        await domain.rooms.get_visible("missing", "alice")


async def test_require_member(domain: Domain) -> None:
    public = await domain.rooms.create("alice", "public")

    assert (await domain.rooms.require_member(public.id, "alice")).id == public.id
    with pytest.raises(Forbidden) as forbidden:
        await domain.rooms.require_member(public.id, "stranger")
    with pytest.raises(NotFound) as not_found:
        await domain.rooms.require_member("missing", "alice")

    assert forbidden.value.code == "forbidden"
    assert not_found.value.code == "not_found"


# --- join -----------------------------------------------------------------------------------


async def test_join_a_public_room_makes_a_member_and_announces_it(domain: Domain) -> None:
    room = await domain.rooms.create("alice", "general")
    domain.events.clear()

    result = await domain.rooms.join("bob", room.id)

    assert await domain.room_repository.is_member(room.id, "bob") is True
    assert result.room.id == room.id
    assert result.room.member_count == 2
    assert domain.events.events == [MembershipChanged(room_id=room.id, user_id="bob", joined=True)]


async def test_joining_again_announces_nothing(domain: Domain) -> None:
    room = await domain.rooms.create("alice", "general")
    await domain.rooms.join("bob", room.id)
    domain.events.clear()

    again = await domain.rooms.join("bob", room.id)
    owner = await domain.rooms.join("alice", room.id)

    assert domain.events.events == []
    assert again.room.member_count == owner.room.member_count == 2


async def test_join_a_missing_room_is_not_found(domain: Domain) -> None:
    with pytest.raises(NotFound):
        await domain.rooms.join("bob", "missing")

    assert domain.events.events == []
    assert await domain.room_repository.rooms_of("bob") == []


async def test_join_a_private_room_is_forbidden_to_outsiders(domain: Domain) -> None:
    room = await domain.rooms.create("alice", "secret", PRIVATE)
    domain.events.clear()

    with pytest.raises(Forbidden):
        await domain.rooms.join("mallory", room.id)

    assert await domain.room_repository.is_member(room.id, "mallory") is False
    assert domain.events.events == []


async def test_join_a_private_room_is_allowed_after_an_invite(domain: Domain) -> None:
    room = await domain.rooms.create("alice", "secret", PRIVATE)
    await domain.rooms.invite("alice", room.id, "bob")
    domain.events.clear()

    result = await domain.rooms.join("bob", room.id)

    assert result.room.id == room.id
    assert result.room.member_count == 2
    assert domain.events.events == []  # already a member since the invite


async def test_join_reports_the_online_members(domain: Domain) -> None:
    room = await domain.rooms.create("alice", "general", members=["carol"])
    await domain.presence.connect("alice", "s1")
    await domain.presence.connect("bob", "s2")
    await domain.presence.connect("dave", "s3")  # online but not a member

    result = await domain.rooms.join("bob", room.id)

    assert result.online == (
        PresenceEntry("alice", online=True, last_seen=None, connections=1),
        PresenceEntry("bob", online=True, last_seen=None, connections=1),
    )
    assert result.online_count == 2


async def test_join_caps_the_online_list_but_not_the_count(domain: Domain) -> None:
    members = [f"user{i:03d}" for i in range(101)]
    room = await domain.rooms.create("owner", "crowd", members=members)
    for user_id in members:
        await domain.presence.connect(user_id, f"sid-{user_id}")

    result = await domain.rooms.join("owner", room.id)

    assert MAX_ONLINE == 100
    assert len(result.online) == 100
    assert all(entry.online for entry in result.online)
    assert result.online_count == 101


async def test_join_without_since_seq_returns_no_missed_messages(domain: Domain) -> None:
    room = await domain.rooms.create("alice", "general")
    await post_many(domain, room, 3)

    result = await domain.rooms.join("bob", room.id)

    assert result.missed == ()
    assert result.has_more is False


async def test_join_with_since_seq_returns_exactly_the_missed_messages(domain: Domain) -> None:
    room = await domain.rooms.create("alice", "general")
    await post_many(domain, room, 10)

    result = await domain.rooms.join("alice", room.id, since_seq=6)
    caught_up = await domain.rooms.join("alice", room.id, since_seq=10)
    from_start = await domain.rooms.join("alice", room.id, since_seq=0)

    assert [m.seq for m in result.missed] == [7, 8, 9, 10]
    assert result.has_more is False
    assert caught_up.missed == ()
    assert caught_up.has_more is False
    assert [m.seq for m in from_start.missed] == list(range(1, 11))
    assert from_start.missed[0].text == "message 0"


async def test_join_cuts_missed_messages_at_500_with_has_more(domain: Domain) -> None:
    room = await domain.rooms.create("alice", "general")
    await post_many(domain, room, MAX_MISSED + 2)

    cut = await domain.rooms.join("alice", room.id, since_seq=0)
    nearly = await domain.rooms.join("alice", room.id, since_seq=2)

    assert MAX_MISSED == 500
    assert [m.seq for m in cut.missed] == list(range(1, MAX_MISSED + 1))
    assert cut.has_more is True
    assert [m.seq for m in nearly.missed] == list(range(3, MAX_MISSED + 3))
    assert nearly.has_more is False


async def test_join_missed_messages_include_tombstones(domain: Domain) -> None:
    room = await domain.rooms.create("alice", "general")
    await post_many(domain, room, 3)
    second = domain.events.of_type(MessagePosted)[1].message
    await domain.messages.delete("alice", room.id, second.id)

    result = await domain.rooms.join("alice", room.id, since_seq=0)

    assert [(m.seq, m.deleted, m.text) for m in result.missed] == [
        (1, False, "message 0"),
        (2, True, ""),
        (3, False, "message 2"),
    ]


# --- leave ----------------------------------------------------------------------------------


async def test_leave_ends_the_membership_and_announces_it(domain: Domain) -> None:
    room = await domain.rooms.create("alice", "general", members=["bob"])
    domain.events.clear()

    await domain.rooms.leave("bob", room.id)

    assert await domain.room_repository.is_member(room.id, "bob") is False
    assert domain.events.events == [MembershipChanged(room_id=room.id, user_id="bob", joined=False)]
    stored = await domain.room_repository.get(room.id)
    assert stored is not None
    assert stored.member_count == 1


async def test_leave_when_not_a_member_is_a_silent_no_op(domain: Domain) -> None:
    room = await domain.rooms.create("alice", "general")
    domain.events.clear()

    await domain.rooms.leave("bob", room.id)

    assert domain.events.events == []


async def test_leave_a_missing_room_is_not_found(domain: Domain) -> None:
    with pytest.raises(NotFound):
        await domain.rooms.leave("bob", "missing")


async def test_after_leaving_a_private_room_it_is_hidden_and_closed(domain: Domain) -> None:
    room = await domain.rooms.create("alice", "secret", PRIVATE, members=["bob"])

    await domain.rooms.leave("bob", room.id)

    assert await domain.rooms.list_rooms("bob") == []
    with pytest.raises(Forbidden):
        await domain.rooms.join("bob", room.id)


# --- invite ---------------------------------------------------------------------------------


async def test_a_member_invites_into_a_private_room(domain: Domain) -> None:
    room = await domain.rooms.create("alice", "secret", PRIVATE, members=["bob"])
    domain.events.clear()

    await domain.rooms.invite("bob", room.id, "carol")  # any member, not only the owner

    assert await domain.room_repository.is_member(room.id, "carol") is True
    assert [r.id for r in await domain.rooms.list_rooms("carol")] == [room.id]
    assert domain.events.events == [
        MembershipChanged(room_id=room.id, user_id="carol", joined=True)
    ]


async def test_inviting_a_member_again_announces_nothing(domain: Domain) -> None:
    room = await domain.rooms.create("alice", "secret", PRIVATE, members=["bob"])
    domain.events.clear()

    await domain.rooms.invite("alice", room.id, "bob")

    assert domain.events.events == []


async def test_an_outsider_cannot_invite(domain: Domain) -> None:
    private = await domain.rooms.create("alice", "secret", PRIVATE)
    public = await domain.rooms.create("alice", "general")
    domain.events.clear()

    with pytest.raises(Forbidden):
        await domain.rooms.invite("mallory", private.id, "mallory")
    with pytest.raises(Forbidden):
        await domain.rooms.invite("mallory", public.id, "eve")

    assert await domain.room_repository.is_member(private.id, "mallory") is False
    assert await domain.room_repository.is_member(public.id, "eve") is False
    assert domain.events.events == []


async def test_invite_into_a_missing_room_is_not_found(domain: Domain) -> None:
    with pytest.raises(NotFound):
        await domain.rooms.invite("alice", "missing", "bob")

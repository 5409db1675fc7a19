"""Room commands over the wire: room:create, room:list, room:join, room:leave, room:invite."""

from __future__ import annotations

from tests.integration.conftest import Connector
from tests.integration.support import (
    ISO_MS,
    create_room,
    integer,
    obj,
    objs,
    send,
    seqs,
    string,
    strings,
)

ROOM_KEYS = {"id", "name", "visibility", "owner_id", "created_at", "member_count"}
PRESENCE_KEYS = {"user_id", "online", "last_seen", "connections"}


# --- room:create ----------------------------------------------------------------------------


async def test_create_public_room_returns_the_room_resource(connect: Connector) -> None:
    alice = await connect("alice")

    room = await create_room(alice, "general")

    assert set(room) == ROOM_KEYS
    assert string(room["id"])
    assert room["name"] == "general"
    assert room["visibility"] == "public"
    assert room["owner_id"] == "alice"
    assert room["member_count"] == 1
    assert ISO_MS.match(string(room["created_at"]))


async def test_create_defaults_to_public(connect: Connector) -> None:
    alice = await connect("alice")

    data = await alice.ok("room:create", {"name": "general"})

    assert obj(data["room"])["visibility"] == "public"


async def test_create_private_room_with_members(connect: Connector) -> None:
    alice = await connect("alice")
    bob = await connect("bob")

    room = await create_room(alice, "team", visibility="private", members=["bob", "carol"])

    assert room["visibility"] == "private"
    assert room["member_count"] == 3
    # the listed members are members: bob may read the history and hears new messages
    history = await bob.ok("message:history", {"room_id": room["id"]})
    assert history == {"messages": [], "has_more": False}
    message = await send(alice, string(room["id"]), "hi team", "c1")
    new = await bob.wait_for("message:new")
    assert new["id"] == message["id"]


async def test_create_counts_the_owner_once_when_listed_as_member(connect: Connector) -> None:
    alice = await connect("alice")

    room = await create_room(alice, "solo", members=["alice", "alice"])

    assert room["member_count"] == 1


# --- room:list ------------------------------------------------------------------------------


async def test_list_shows_public_rooms_and_own_private_rooms_only(connect: Connector) -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    carol = await connect("carol")
    lobby = await create_room(alice, "lobby")
    alice_private = await create_room(alice, "alice-only", visibility="private")
    shared = await create_room(carol, "carol-and-bob", visibility="private", members=["bob"])

    bob_rooms = await bob.ok("room:list", {})
    alice_rooms = await alice.ok("room:list", {})
    carol_rooms = await carol.ok("room:list", {})

    assert {string(r["id"]) for r in objs(bob_rooms["rooms"])} == {lobby["id"], shared["id"]}
    assert {string(r["id"]) for r in objs(alice_rooms["rooms"])} == {
        lobby["id"],
        alice_private["id"],
    }
    assert {string(r["id"]) for r in objs(carol_rooms["rooms"])} == {lobby["id"], shared["id"]}
    assert all(set(r) == ROOM_KEYS for r in objs(bob_rooms["rooms"]))


async def test_list_with_no_rooms_is_empty(connect: Connector) -> None:
    alice = await connect("alice")

    assert await alice.ok("room:list", {}) == {"rooms": []}


# --- room:join ------------------------------------------------------------------------------


async def test_join_public_room_makes_a_member(connect: Connector) -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    room = await create_room(alice, "general")
    room_id = string(room["id"])
    await bob.fails(
        "message:send", {"room_id": room_id, "text": "x", "client_msg_id": "1"}, code="forbidden"
    )

    data = await bob.ok("room:join", {"room_id": room_id})

    assert set(data) == {"room", "online", "online_count", "missed", "has_more"}
    joined = obj(data["room"])
    assert joined["id"] == room_id
    assert joined["member_count"] == 2
    assert data["missed"] == []
    assert data["has_more"] is False
    await send(bob, room_id, "now I can", "1")


async def test_join_reports_the_online_members(connect: Connector) -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    room = await create_room(alice, "general", members=["carol"])  # carol is offline

    data = await bob.ok("room:join", {"room_id": room["id"]})

    online = objs(data["online"])
    assert all(set(entry) == PRESENCE_KEYS for entry in online)
    assert {string(e["user_id"]) for e in online} == {"alice", "bob"}
    assert all(e["online"] is True and e["connections"] == 1 for e in online)
    assert data["online_count"] == 2


async def test_join_with_since_seq_returns_exactly_the_missed_messages(
    connect: Connector,
) -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    room = await create_room(alice, "general")
    room_id = string(room["id"])
    sent = [await send(alice, room_id, f"message {i}", f"c{i}") for i in range(1, 6)]

    data = await bob.ok("room:join", {"room_id": room_id, "since_seq": 2})

    missed = objs(data["missed"])
    assert seqs(missed) == [3, 4, 5]
    assert [m["id"] for m in missed] == [m["id"] for m in sent[2:]]
    assert [m["text"] for m in missed] == ["message 3", "message 4", "message 5"]
    assert data["has_more"] is False


async def test_join_since_the_last_seq_misses_nothing(connect: Connector) -> None:
    alice = await connect("alice")
    room = await create_room(alice, "general")
    room_id = string(room["id"])
    await send(alice, room_id, "one", "c1")

    data = await alice.ok("room:join", {"room_id": room_id, "since_seq": 1})
    from_start = await alice.ok("room:join", {"room_id": room_id, "since_seq": 0})

    assert data["missed"] == []
    assert seqs(from_start["missed"]) == [1]


async def test_join_unknown_room_is_not_found(connect: Connector) -> None:
    alice = await connect("alice")

    await alice.fails("room:join", {"room_id": "no-such-room"}, code="not_found")


# --- room:leave -----------------------------------------------------------------------------


async def test_leave_ends_the_membership(connect: Connector) -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    room = await create_room(alice, "general", members=["bob"])
    room_id = string(room["id"])

    assert await bob.ok("room:leave", {"room_id": room_id}) == {}

    await bob.fails("message:history", {"room_id": room_id}, code="forbidden")
    # bob no longer hears the room: alice's next message reaches alice but not bob
    await send(alice, room_id, "bye bob", "c1")
    await alice.wait_for("message:new")
    rejoined = await bob.ok("room:join", {"room_id": room_id})
    assert obj(rejoined["room"])["member_count"] == 2
    assert bob.received("message:new") == []


async def test_leave_unknown_room_is_not_found(connect: Connector) -> None:
    alice = await connect("alice")

    await alice.fails("room:leave", {"room_id": "no-such-room"}, code="not_found")


# --- room:invite ----------------------------------------------------------------------------


async def test_private_room_is_forbidden_until_invited(connect: Connector) -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    room = await create_room(alice, "secret", visibility="private")
    room_id = string(room["id"])

    await bob.fails("room:join", {"room_id": room_id}, code="forbidden")
    assert await alice.ok("room:invite", {"room_id": room_id, "user_id": "bob"}) == {}
    data = await bob.ok("room:join", {"room_id": room_id})

    assert obj(data["room"])["member_count"] == 2
    assert room_id in strings([r["id"] for r in objs((await bob.ok("room:list", {}))["rooms"])])


async def test_invited_user_hears_the_room_without_joining(connect: Connector) -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    room = await create_room(alice, "secret", visibility="private")
    room_id = string(room["id"])

    await alice.ok("room:invite", {"room_id": room_id, "user_id": "bob"})
    message = await send(alice, room_id, "welcome", "c1")

    assert (await bob.wait_for("message:new"))["id"] == message["id"]


async def test_non_member_cannot_invite(connect: Connector) -> None:
    alice = await connect("alice")
    mallory = await connect("mallory")
    room = await create_room(alice, "secret", visibility="private")
    room_id = string(room["id"])

    await mallory.fails("room:invite", {"room_id": room_id, "user_id": "mallory"}, code="forbidden")
    await mallory.fails("room:join", {"room_id": room_id}, code="forbidden")


async def test_invite_to_unknown_room_is_not_found(connect: Connector) -> None:
    alice = await connect("alice")

    await alice.fails("room:invite", {"room_id": "nope", "user_id": "bob"}, code="not_found")


async def test_member_count_follows_joins_and_leaves(connect: Connector) -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    room = await create_room(alice, "general")
    room_id = string(room["id"])

    await bob.ok("room:join", {"room_id": room_id})
    await bob.ok("room:leave", {"room_id": room_id})
    data = await alice.ok("room:join", {"room_id": room_id})

    assert integer(obj(data["room"])["member_count"]) == 1

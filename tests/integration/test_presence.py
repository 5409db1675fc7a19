"""Presence over the wire: presence:get, coalesced presence:diff and room:members, several
devices of one user."""

from __future__ import annotations

import asyncio
import time

from application.json_types import JsonObject
from tests.integration.conftest import Connector
from tests.integration.support import (
    DEFAULT_WAIT_S,
    ISO_MS,
    ChatClient,
    create_room,
    integer,
    objs,
    send,
    string,
    strings,
    wait_until,
)


async def _presence(client: ChatClient, *user_ids: str) -> list[JsonObject]:
    data = await client.ok("presence:get", {"user_ids": list(user_ids)})
    return objs(data["presence"])


async def _connections_of(client: ChatClient, user_id: str) -> int:
    return integer((await _presence(client, user_id))[0]["connections"])


async def _wait_connections(client: ChatClient, user_id: str, count: int) -> None:
    """Poll presence:get until the server counts `count` connections of `user_id`."""
    deadline = time.monotonic() + DEFAULT_WAIT_S
    while (seen := await _connections_of(client, user_id)) != count:
        if time.monotonic() >= deadline:
            raise AssertionError(f"{user_id} has {seen} connections, not {count}")
        await asyncio.sleep(0.01)


def _diffs_with(client: ChatClient, key: str, user_id: str) -> list[JsonObject]:
    return [d for d in client.received("presence:diff") if user_id in strings(d[key])]


# --- presence:get ---------------------------------------------------------------------------


async def test_presence_get_in_the_order_asked(connect: Connector) -> None:
    alice = await connect("alice")
    await connect("bob")
    await connect("bob")

    entries = await _presence(alice, "bob", "nobody", "alice")

    assert entries == [
        {"user_id": "bob", "online": True, "last_seen": None, "connections": 2},
        {"user_id": "nobody", "online": False, "last_seen": None, "connections": 0},
        {"user_id": "alice", "online": True, "last_seen": None, "connections": 1},
    ]


async def test_presence_get_after_the_last_connection_closes_has_last_seen(
    connect: Connector,
) -> None:
    alice = await connect("alice")
    bob = await connect("bob")

    await bob.disconnect()
    await _wait_connections(alice, "bob", 0)

    (entry,) = await _presence(alice, "bob")
    assert entry["online"] is False
    assert ISO_MS.match(string(entry["last_seen"]))


async def test_presence_get_validates_the_list(connect: Connector) -> None:
    alice = await connect("alice")

    await alice.fails("presence:get", {"user_ids": []}, code="validation_failed")
    await alice.fails(
        "presence:get", {"user_ids": [f"u{i}" for i in range(101)]}, code="validation_failed"
    )
    await alice.fails("presence:get", {"user_ids": "alice"}, code="validation_failed")


# --- presence:diff --------------------------------------------------------------------------


async def test_member_coming_online_is_announced_to_the_rooms_members(
    connect: Connector,
) -> None:
    bob = await connect("bob")
    outsider = await connect("outsider")
    room = await create_room(bob, "general", members=["alice"])
    room_id = string(room["id"])

    await connect("alice")

    diff = await bob.wait_for("presence:diff", lambda d: "alice" in strings(d["joins"]))
    # bob, online when the room was made, may share alice's window: he entered its presence
    assert diff["room_id"] == room_id
    assert set(strings(diff["joins"])) <= {"alice", "bob"}
    assert diff["leaves"] == []
    await outsider.ok("room:list", {})
    assert outsider.received("presence:diff") == []


async def test_presence_diff_goes_to_every_room_of_the_user(connect: Connector) -> None:
    bob = await connect("bob")
    carol = await connect("carol")
    with_bob = string((await create_room(bob, "bob's", members=["alice"]))["id"])
    with_carol = string((await create_room(carol, "carol's", members=["alice"]))["id"])

    alice = await connect("alice")
    await bob.wait_for("presence:diff", lambda d: d["room_id"] == with_bob and bool(d["joins"]))
    await carol.wait_for("presence:diff", lambda d: d["room_id"] == with_carol and bool(d["joins"]))
    await alice.disconnect()

    await bob.wait_for("presence:diff", lambda d: d["room_id"] == with_bob and bool(d["leaves"]))
    await carol.wait_for(
        "presence:diff", lambda d: d["room_id"] == with_carol and bool(d["leaves"])
    )
    assert all(d["room_id"] == with_bob for d in bob.received("presence:diff"))
    assert all(d["room_id"] == with_carol for d in carol.received("presence:diff"))


async def test_leave_is_announced_only_after_the_last_device_disconnects(
    connect: Connector,
) -> None:
    bob = await connect("bob")
    room = await create_room(bob, "general", members=["alice", "carol"])
    room_id = string(room["id"])
    phone = await connect("alice")
    await bob.wait_for("presence:diff", lambda d: "alice" in strings(d["joins"]))
    laptop = await connect("alice")
    await _wait_connections(bob, "alice", 2)

    await phone.disconnect()
    await _wait_connections(bob, "alice", 1)
    # barrier: carol's join is announced in the same or a later window than anything
    # the phone's disconnect could have caused
    await connect("carol")
    await bob.wait_for("presence:diff", lambda d: "carol" in strings(d["joins"]))

    assert _diffs_with(bob, "leaves", "alice") == []
    assert len(_diffs_with(bob, "joins", "alice")) == 1  # the laptop was no new join

    await laptop.disconnect()

    diff = await bob.wait_for("presence:diff", lambda d: "alice" in strings(d["leaves"]))
    assert diff == {"room_id": room_id, "joins": [], "leaves": ["alice"]}
    (entry,) = await _presence(bob, "alice")
    assert entry["online"] is False


async def test_both_devices_of_a_user_receive_messages(connect: Connector) -> None:
    phone = await connect("alice")
    laptop = await connect("alice")
    bob = await connect("bob")
    room = await create_room(bob, "general", members=["alice"])

    message = await send(bob, string(room["id"]), "hi alice", "c1")

    assert await phone.wait_for("message:new") == message
    assert await laptop.wait_for("message:new") == message


async def test_a_device_connecting_later_receives_the_rooms_events(connect: Connector) -> None:
    phone = await connect("alice")
    room = await create_room(phone, "general")
    laptop = await connect("alice")

    message = await send(phone, string(room["id"]), "from the phone", "c1")

    assert await laptop.wait_for("message:new") == message


# --- room:members ---------------------------------------------------------------------------


async def test_room_members_on_join_and_leave(connect: Connector) -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    room = await create_room(alice, "general")
    room_id = string(room["id"])
    await alice.wait_for("room:members")  # alice's own membership by creating it

    await bob.ok("room:join", {"room_id": room_id})
    joined = await alice.wait_for("room:members", lambda d: "bob" in strings(d["joined"]))
    await bob.ok("room:leave", {"room_id": room_id})
    left = await alice.wait_for("room:members", lambda d: "bob" in strings(d["left"]))

    assert joined == {"room_id": room_id, "joined": ["bob"], "left": []}
    assert left == {"room_id": room_id, "joined": [], "left": ["bob"]}


async def test_room_members_on_invite(connect: Connector) -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    room = await create_room(alice, "secret", visibility="private")
    room_id = string(room["id"])

    await alice.ok("room:invite", {"room_id": room_id, "user_id": "bob"})

    event = await alice.wait_for("room:members", lambda d: "bob" in strings(d["joined"]))
    assert event["room_id"] == room_id
    await bob.wait_for("room:members", lambda d: "bob" in strings(d["joined"]))


async def test_room_members_coalesces_a_burst_of_joins(connect: Connector) -> None:
    alice = await connect("alice")
    room = await create_room(alice, "general")
    room_id = string(room["id"])
    await alice.wait_for("room:members")
    before = len(alice.received("room:members"))
    others = [await connect(f"user{i}") for i in range(6)]

    await asyncio.gather(*(other.ok("room:join", {"room_id": room_id}) for other in others))

    await wait_until(
        lambda: (
            {user for d in alice.received("room:members")[before:] for user in strings(d["joined"])}
            == {o.user_id for o in others}
        ),
        what="every join announced",
    )
    assert len(alice.received("room:members")) - before < len(others)


async def test_an_online_user_joining_a_room_enters_its_presence(connect: Connector) -> None:
    bob = await connect("bob")
    alice = await connect("alice")
    room_id = string((await create_room(bob, "general"))["id"])
    await bob.wait_for("presence:diff", lambda d: d["room_id"] == room_id)

    await alice.ok("room:join", {"room_id": room_id})
    joined = await bob.wait_for(
        "presence:diff", lambda d: d["room_id"] == room_id and "alice" in strings(d["joins"])
    )
    assert joined["leaves"] == []

    await alice.ok("room:leave", {"room_id": room_id})
    left = await bob.wait_for(
        "presence:diff", lambda d: d["room_id"] == room_id and "alice" in strings(d["leaves"])
    )
    assert left["joins"] == []

"""Reconnecting: catching up with `room:join` + `since_seq`, and membership that outlives
connections."""

from __future__ import annotations

from tests.integration.conftest import Connector
from tests.integration.support import create_room, integer, objs, send, seqs, string


async def test_reconnecting_client_catches_up_with_exactly_the_missed_messages(
    connect: Connector,
) -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    room_id = string((await create_room(bob, "general"))["id"])
    await alice.ok("room:join", {"room_id": room_id})
    await send(bob, room_id, "before 1", "b1")
    await send(bob, room_id, "before 2", "b2")
    await alice.wait_for("message:new", lambda m: m["seq"] == 2)
    last_seen = max(integer(m["seq"]) for m in alice.received("message:new"))
    await alice.disconnect()

    missed_sent = [await send(bob, room_id, f"while away {i}", f"w{i}") for i in range(3)]
    alice_again = await connect("alice")
    data = await alice_again.ok("room:join", {"room_id": room_id, "since_seq": last_seen})

    missed = objs(data["missed"])
    assert last_seen == 2
    assert seqs(missed) == [3, 4, 5]
    assert missed == missed_sent
    assert data["has_more"] is False
    assert alice.received("message:new")[-1]["seq"] == 2  # the old client saw none of them


async def test_membership_persists_across_reconnects(connect: Connector) -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    room_id = string((await create_room(bob, "general"))["id"])
    await alice.ok("room:join", {"room_id": room_id})
    await alice.disconnect()

    alice_again = await connect("alice")  # no room:join this time
    message = await send(bob, room_id, "still there?", "c1")

    assert await alice_again.wait_for("message:new") == message
    rooms = objs((await alice_again.ok("room:list", {}))["rooms"])
    assert [r["member_count"] for r in rooms] == [2]


async def test_private_membership_persists_across_reconnects(connect: Connector) -> None:
    bob = await connect("bob")
    room_id = string(
        (await create_room(bob, "secret", visibility="private", members=["alice"]))["id"]
    )

    alice = await connect("alice")  # first connection after being made a member
    message = await send(bob, room_id, "psst", "c1")

    assert await alice.wait_for("message:new") == message
    history = await alice.ok("message:history", {"room_id": room_id})
    assert objs(history["messages"]) == [message]

"""Message commands over the wire: message:send, message:edit, message:delete,
message:history, and typing."""

from __future__ import annotations

from tests.integration.conftest import Connector
from tests.integration.support import (
    ISO_MS,
    ChatClient,
    create_room,
    obj,
    objs,
    send,
    seqs,
    string,
)

MESSAGE_KEYS = {
    "id",
    "room_id",
    "seq",
    "author_id",
    "text",
    "client_msg_id",
    "created_at",
    "edited_at",
    "deleted",
}


async def _room_of(owner: ChatClient, *members: ChatClient) -> str:
    room = await create_room(owner, "general", members=[m.user_id for m in members])
    return string(room["id"])


# --- message:send ---------------------------------------------------------------------------


async def test_send_returns_the_stored_message_with_seq_from_1(connect: Connector) -> None:
    alice = await connect("alice")
    room_id = await _room_of(alice)

    messages = [await send(alice, room_id, f"hello {i}", f"c{i}") for i in range(1, 4)]

    assert seqs(messages) == [1, 2, 3]
    first = messages[0]
    assert set(first) == MESSAGE_KEYS
    assert first["room_id"] == room_id
    assert first["author_id"] == "alice"
    assert first["text"] == "hello 1"
    assert first["client_msg_id"] == "c1"
    assert first["edited_at"] is None
    assert first["deleted"] is False
    assert ISO_MS.match(string(first["created_at"]))
    assert len({m["id"] for m in messages}) == 3


async def test_send_delivers_message_new_to_members_including_the_sender(
    connect: Connector,
) -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    outsider = await connect("outsider")
    room_id = await _room_of(alice, bob)

    message = await send(alice, room_id, "hi", "c1")

    assert await bob.wait_for("message:new") == message
    assert await alice.wait_for("message:new") == message
    # the outsider is not in the room: a round trip on its socket shows nothing arrived
    await outsider.ok("room:list", {})
    assert outsider.received("message:new") == []


async def test_resend_with_the_same_client_msg_id_is_idempotent(connect: Connector) -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    room_id = await _room_of(alice, bob)

    first = await send(alice, room_id, "once", "same-id")
    again = await send(alice, room_id, "once", "same-id")
    after = await send(alice, room_id, "next", "other-id")

    assert again == first
    assert after["seq"] == 2  # the retry took no seq
    # message:new of `after` arrives after anything the retry might have broadcast
    await bob.wait_for("message:new", lambda m: m["id"] == after["id"])
    assert [m["id"] for m in bob.received("message:new")] == [first["id"], after["id"]]


async def test_same_client_msg_id_from_another_author_is_another_message(
    connect: Connector,
) -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    room_id = await _room_of(alice, bob)

    mine = await send(alice, room_id, "from alice", "c1")
    theirs = await send(bob, room_id, "from bob", "c1")

    assert mine["id"] != theirs["id"]
    assert seqs([mine, theirs]) == [1, 2]


async def test_seq_is_per_room(connect: Connector) -> None:
    alice = await connect("alice")
    first_room = await _room_of(alice)
    second_room = string((await create_room(alice, "other"))["id"])

    await send(alice, first_room, "a", "c1")
    await send(alice, first_room, "b", "c2")
    other = await send(alice, second_room, "c", "c3")

    assert other["seq"] == 1


# --- message:edit ---------------------------------------------------------------------------


async def test_author_edits_and_members_get_message_updated(connect: Connector) -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    room_id = await _room_of(alice, bob)
    message = await send(alice, room_id, "helo", "c1")

    data = await alice.ok(
        "message:edit", {"room_id": room_id, "message_id": message["id"], "text": "hello"}
    )

    edited = obj(data["message"])
    assert edited["id"] == message["id"]
    assert edited["seq"] == message["seq"]
    assert edited["text"] == "hello"
    assert ISO_MS.match(string(edited["edited_at"]))
    assert await bob.wait_for("message:updated") == edited
    history = await bob.ok("message:history", {"room_id": room_id})
    assert objs(history["messages"])[0]["text"] == "hello"


async def test_only_the_author_may_edit(connect: Connector) -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    room_id = await _room_of(alice, bob)
    message = await send(bob, room_id, "bob's words", "c1")

    # not even the room owner
    await alice.fails(
        "message:edit",
        {"room_id": room_id, "message_id": message["id"], "text": "alice's words"},
        code="forbidden",
    )

    history = await bob.ok("message:history", {"room_id": room_id})
    assert objs(history["messages"])[0]["text"] == "bob's words"
    await bob.ok("room:list", {})
    assert bob.received("message:updated") == []


async def test_edit_unknown_message_is_not_found(connect: Connector) -> None:
    alice = await connect("alice")
    room_id = await _room_of(alice)

    await alice.fails(
        "message:edit", {"room_id": room_id, "message_id": "nope", "text": "x"}, code="not_found"
    )


# --- message:delete -------------------------------------------------------------------------


async def test_author_deletes_leaving_a_tombstone(connect: Connector) -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    room_id = await _room_of(alice, bob)
    await send(bob, room_id, "first", "c1")
    doomed = await send(bob, room_id, "oops", "c2")
    await send(bob, room_id, "third", "c3")

    data = await bob.ok("message:delete", {"room_id": room_id, "message_id": doomed["id"]})

    assert data == {}
    event = await alice.wait_for("message:deleted")
    assert event == {"room_id": room_id, "message_id": doomed["id"], "seq": 2}
    history = objs((await alice.ok("message:history", {"room_id": room_id}))["messages"])
    assert seqs(history) == [1, 2, 3]  # still gap-free
    tombstone = history[1]
    assert tombstone["id"] == doomed["id"]
    assert tombstone["deleted"] is True
    assert tombstone["text"] == ""


async def test_room_owner_may_delete_anyones_message(connect: Connector) -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    room_id = await _room_of(alice, bob)
    message = await send(bob, room_id, "spam", "c1")

    await alice.ok("message:delete", {"room_id": room_id, "message_id": message["id"]})

    event = await bob.wait_for("message:deleted")
    assert event["message_id"] == message["id"]


async def test_other_members_may_not_delete(connect: Connector) -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    carol = await connect("carol")
    room_id = await _room_of(alice, bob, carol)
    message = await send(bob, room_id, "mine", "c1")

    await carol.fails(
        "message:delete", {"room_id": room_id, "message_id": message["id"]}, code="forbidden"
    )

    history = objs((await carol.ok("message:history", {"room_id": room_id}))["messages"])
    assert history[0]["deleted"] is False
    assert history[0]["text"] == "mine"
    assert carol.received("message:deleted") == []


async def test_deleted_message_cannot_be_edited(connect: Connector) -> None:
    alice = await connect("alice")
    room_id = await _room_of(alice)
    message = await send(alice, room_id, "gone", "c1")
    await alice.ok("message:delete", {"room_id": room_id, "message_id": message["id"]})

    await alice.fails(
        "message:edit",
        {"room_id": room_id, "message_id": message["id"], "text": "back"},
        code="conflict",
    )


# --- message:history ------------------------------------------------------------------------


async def test_history_pages(connect: Connector) -> None:
    alice = await connect("alice")
    room_id = await _room_of(alice)
    for i in range(1, 6):
        await send(alice, room_id, f"m{i}", f"c{i}")

    async def page(**query: int) -> tuple[list[int], object]:
        data = await alice.ok("message:history", {"room_id": room_id, **query})
        assert set(data) == {"messages", "has_more"}
        return seqs(data["messages"]), data["has_more"]

    assert await page() == ([1, 2, 3, 4, 5], False)
    assert await page(limit=2) == ([4, 5], True)
    assert await page(before_seq=4, limit=2) == ([2, 3], True)
    assert await page(before_seq=3, limit=5) == ([1, 2], False)
    assert await page(after_seq=2, limit=2) == ([3, 4], True)
    assert await page(after_seq=3, limit=10) == ([4, 5], False)
    assert await page(after_seq=5) == ([], False)
    assert await page(limit=5) == ([1, 2, 3, 4, 5], False)


async def test_history_messages_are_full_resources(connect: Connector) -> None:
    alice = await connect("alice")
    room_id = await _room_of(alice)
    sent = await send(alice, room_id, "hello", "c1")

    data = await alice.ok("message:history", {"room_id": room_id})

    assert objs(data["messages"]) == [sent]


async def test_history_is_for_members_only(connect: Connector) -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    room_id = await _room_of(alice)
    await send(alice, room_id, "private talk", "c1")

    error = await bob.fails("message:history", {"room_id": room_id}, code="forbidden")

    assert "private talk" not in str(error)


async def test_history_limit_is_validated(connect: Connector) -> None:
    alice = await connect("alice")
    room_id = await _room_of(alice)

    for bad in (0, 101, -1, "5", True):
        error = await alice.fails(
            "message:history", {"room_id": room_id, "limit": bad}, code="validation_failed"
        )
        paths = [f["path"] for f in objs(obj(error["details"])["fields"])]
        assert paths == ["$.limit"], (bad, error)


# --- typing ---------------------------------------------------------------------------------


async def test_typing_reaches_other_members_but_none_of_the_senders_connections(
    connect: Connector,
) -> None:
    alice_phone = await connect("alice")
    alice_laptop = await connect("alice")
    bob = await connect("bob")
    room_id = await _room_of(alice_phone, bob)

    ack = await alice_phone.call("typing", {"room_id": room_id, "typing": True})

    assert ack == {"ok": True, "data": {}}
    assert await bob.wait_for("typing") == {"room_id": room_id, "user_id": "alice", "typing": True}
    # a message sent afterwards reaches all three; the typing event would have come first
    message = await send(alice_phone, room_id, "done typing", "c1")
    for client in (alice_phone, alice_laptop, bob):
        await client.wait_for("message:new", lambda m: m["id"] == message["id"])
    assert alice_phone.received("typing") == []
    assert alice_laptop.received("typing") == []
    assert len(bob.received("typing")) == 1


async def test_typing_false_is_broadcast_too(connect: Connector) -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    room_id = await _room_of(alice, bob)

    await alice.ok("typing", {"room_id": room_id, "typing": False})

    assert (await bob.wait_for("typing"))["typing"] is False


async def test_typing_by_a_non_member_is_forbidden(connect: Connector) -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    room_id = await _room_of(alice)

    await bob.fails("typing", {"room_id": room_id, "typing": True}, code="forbidden")

    await alice.ok("room:list", {})
    assert alice.received("typing") == []

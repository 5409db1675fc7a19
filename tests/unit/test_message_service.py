"""ChatMessageService: post (idempotent, gap-free seq), edit, delete, history, typing."""

from __future__ import annotations

import pytest

from domain.errors import Conflict, Forbidden, NotFound
from domain.events import (
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    NotificationCreated,
    TypingChanged,
)
from domain.model import ChatMessage, Room, Visibility
from domain.services.messages import DEFAULT_HISTORY_LIMIT
from tests.support.fakes import Domain


@pytest.fixture
async def room(domain: Domain) -> Room:
    """A public room owned by alice with bob as a member; no events recorded yet."""
    created = await domain.rooms.create("alice", "general", members=["bob"])
    domain.events.clear()
    return created


async def post(domain: Domain, room: Room, author: str, text: str, cmid: str) -> ChatMessage:
    """Post as a member."""
    return await domain.messages.post(author, room.id, text, cmid)


# --- post -----------------------------------------------------------------------------------


async def test_post_stores_the_message_and_announces_it(domain: Domain, room: Room) -> None:
    domain.clock.advance(5)

    message = await post(domain, room, "bob", "hello", "c1")

    assert (message.room_id, message.seq, message.author_id) == (room.id, 1, "bob")
    assert (message.text, message.client_msg_id) == ("hello", "c1")
    assert message.created_at == domain.clock.now()
    assert (message.edited_at, message.deleted) == (None, False)
    assert await domain.message_store.get(room.id, message.id) == message
    assert domain.events.events == [MessagePosted(message=message)]


async def test_posts_get_consecutive_seqs(domain: Domain, room: Room) -> None:
    messages = [await post(domain, room, "alice", f"m{i}", f"c{i}") for i in range(5)]

    assert [m.seq for m in messages] == [1, 2, 3, 4, 5]
    assert len({m.id for m in messages}) == 5


async def test_a_non_member_cannot_post(domain: Domain, room: Room) -> None:
    with pytest.raises(Forbidden):
        await post(domain, room, "stranger", "hi", "c1")

    assert await domain.message_store.last_seq(room.id) == 0
    assert domain.events.events == []


async def test_posting_to_a_missing_room_is_not_found(domain: Domain) -> None:
    with pytest.raises(NotFound):
        await domain.messages.post("alice", "missing", "hi", "c1")

    assert await domain.message_store.last_seq("missing") == 0


async def test_resending_returns_the_stored_message_and_announces_nothing(
    domain: Domain, room: Room
) -> None:
    first = await post(domain, room, "bob", "hello", "c1")
    domain.clock.advance(3)

    again = await post(domain, room, "bob", "hello (retry)", "c1")

    assert again == first
    assert await domain.message_store.last_seq(room.id) == 1
    assert domain.events.of_type(MessagePosted) == [MessagePosted(message=first)]


async def test_the_same_client_msg_id_of_two_authors_makes_two_messages(
    domain: Domain, room: Room
) -> None:
    mine = await post(domain, room, "alice", "a", "c1")
    theirs = await post(domain, room, "bob", "b", "c1")

    assert (mine.seq, theirs.seq) == (1, 2)
    assert len(domain.events.of_type(MessagePosted)) == 2


async def test_post_unchecked_skips_the_membership_rule(domain: Domain, room: Room) -> None:
    message = await domain.messages.post_unchecked("system", room.id, "welcome", "sys-1")
    again = await domain.messages.post_unchecked("system", room.id, "welcome", "sys-1")

    assert message.author_id == "system"
    assert again == message
    assert domain.events.events == [MessagePosted(message=message)]


# --- mentions -------------------------------------------------------------------------------


def mentioned(domain: Domain) -> list[tuple[str, object]]:
    """(user, message id) of each mention notification published so far."""
    return [
        (e.notification.user_id, e.notification.data.get("message_id"))
        for e in domain.events.of_type(NotificationCreated)
        if e.notification.kind == "mention"
    ]


async def test_a_new_message_notifies_the_members_it_mentions(domain: Domain, room: Room) -> None:
    await domain.rooms.join("carol", room.id)

    message = await post(domain, room, "alice", "hi @bob and @carol, not @zed nor @alice", "c1")

    assert sorted(mentioned(domain)) == [("bob", message.id), ("carol", message.id)]
    assert await domain.notifications.unread_count("bob") == 1
    assert await domain.notifications.unread_count("alice") == 0


async def test_a_resend_or_an_edit_does_not_notify_again(domain: Domain, room: Room) -> None:
    message = await post(domain, room, "alice", "@bob look", "c1")

    await post(domain, room, "alice", "@bob look", "c1")
    await domain.messages.edit("alice", room.id, message.id, "@bob look again")

    assert mentioned(domain) == [("bob", message.id)]
    assert await domain.notifications.unread_count("bob") == 1


async def test_a_message_without_mentions_notifies_nobody(domain: Domain, room: Room) -> None:
    await post(domain, room, "alice", "mail me at bob@example.org", "c1")
    await post(domain, room, "alice", "@bobby is not bob", "c2")

    assert mentioned(domain) == []


# --- edit -----------------------------------------------------------------------------------


async def test_the_author_edits_their_message(domain: Domain, room: Room) -> None:
    original = await post(domain, room, "bob", "helo", "c1")
    domain.events.clear()
    edited_at = domain.clock.advance(30)

    edited = await domain.messages.edit("bob", room.id, original.id, "hello")

    assert edited.text == "hello"
    assert edited.edited_at == edited_at
    assert (edited.id, edited.seq, edited.created_at) == (
        original.id,
        original.seq,
        original.created_at,
    )
    assert await domain.message_store.get(room.id, original.id) == edited
    assert domain.events.events == [MessageEdited(message=edited)]


async def test_only_the_author_may_edit_not_even_the_owner(domain: Domain, room: Room) -> None:
    original = await post(domain, room, "bob", "mine", "c1")
    domain.events.clear()

    with pytest.raises(Forbidden):
        await domain.messages.edit("alice", room.id, original.id, "owned")

    assert await domain.message_store.get(room.id, original.id) == original
    assert domain.events.events == []


async def test_an_author_who_left_can_no_longer_edit(domain: Domain, room: Room) -> None:
    original = await post(domain, room, "bob", "mine", "c1")
    await domain.rooms.leave("bob", room.id)
    domain.events.clear()

    with pytest.raises(Forbidden):
        await domain.messages.edit("bob", room.id, original.id, "changed")

    assert domain.events.events == []


async def test_editing_a_missing_message_is_not_found(domain: Domain, room: Room) -> None:
    with pytest.raises(NotFound):
        await domain.messages.edit("bob", room.id, "missing", "x")
    with pytest.raises(NotFound):
        await domain.messages.edit("bob", "no-room", "missing", "x")


async def test_editing_a_message_of_another_room_is_not_found(domain: Domain, room: Room) -> None:
    other = await domain.rooms.create("bob", "other")
    message = await domain.messages.post("bob", other.id, "elsewhere", "c1")

    with pytest.raises(NotFound):
        await domain.messages.edit("bob", room.id, message.id, "moved?")


async def test_editing_a_deleted_message_is_a_conflict(domain: Domain, room: Room) -> None:
    original = await post(domain, room, "bob", "oops", "c1")
    await domain.messages.delete("bob", room.id, original.id)
    domain.events.clear()

    with pytest.raises(Conflict) as raised:
        await domain.messages.edit("bob", room.id, original.id, "back")

    assert raised.value.code == "conflict"
    current = await domain.message_store.get(room.id, original.id)
    assert current is not None
    assert (current.deleted, current.text) == (True, "")
    assert domain.events.events == []


# --- delete ---------------------------------------------------------------------------------


async def test_the_author_deletes_leaving_a_tombstone(domain: Domain, room: Room) -> None:
    first = await post(domain, room, "bob", "one", "c1")
    second = await post(domain, room, "bob", "two", "c2")
    domain.events.clear()

    await domain.messages.delete("bob", room.id, first.id)

    assert domain.events.events == [MessageDeleted(room_id=room.id, message_id=first.id, seq=1)]
    page = await domain.messages.history("alice", room.id)
    assert [(m.seq, m.deleted, m.text) for m in page.messages] == [(1, True, ""), (2, False, "two")]
    assert page.messages[1] == second
    assert await domain.message_store.last_seq(room.id) == 2
    assert (await post(domain, room, "bob", "three", "c3")).seq == 3


async def test_the_owner_deletes_someone_elses_message(domain: Domain, room: Room) -> None:
    message = await post(domain, room, "bob", "spam", "c1")
    domain.events.clear()

    await domain.messages.delete("alice", room.id, message.id)

    stored = await domain.message_store.get(room.id, message.id)
    assert stored is not None
    assert stored.deleted is True
    assert domain.events.events == [
        MessageDeleted(room_id=room.id, message_id=message.id, seq=message.seq)
    ]


async def test_another_member_may_not_delete(domain: Domain, room: Room) -> None:
    await domain.rooms.join("carol", room.id)
    message = await post(domain, room, "alice", "owner's words", "c1")
    bobs = await post(domain, room, "bob", "bob's words", "c2")
    domain.events.clear()

    with pytest.raises(Forbidden):
        await domain.messages.delete("bob", room.id, message.id)
    with pytest.raises(Forbidden):
        await domain.messages.delete("carol", room.id, bobs.id)

    assert await domain.message_store.get(room.id, message.id) == message
    assert await domain.message_store.get(room.id, bobs.id) == bobs
    assert domain.events.events == []


async def test_deleting_twice_announces_once(domain: Domain, room: Room) -> None:
    message = await post(domain, room, "bob", "x", "c1")
    domain.events.clear()

    await domain.messages.delete("bob", room.id, message.id)
    await domain.messages.delete("bob", room.id, message.id)
    await domain.messages.delete("alice", room.id, message.id)

    assert len(domain.events.of_type(MessageDeleted)) == 1


async def test_deleting_a_missing_message_is_not_found(domain: Domain, room: Room) -> None:
    with pytest.raises(NotFound):
        await domain.messages.delete("alice", room.id, "missing")
    with pytest.raises(NotFound):
        await domain.messages.delete("alice", "no-room", "missing")


async def test_an_outsider_cannot_delete_in_a_private_room(domain: Domain) -> None:
    private = await domain.rooms.create("alice", "secret", Visibility.PRIVATE)
    message = await domain.messages.post("alice", private.id, "hush", "c1")
    domain.events.clear()

    with pytest.raises(Forbidden):
        await domain.messages.delete("mallory", private.id, message.id)

    assert domain.events.of_type(MessageDeleted) == []


# --- history --------------------------------------------------------------------------------


async def test_history_is_for_members_only(domain: Domain, room: Room) -> None:
    await post(domain, room, "bob", "x", "c1")

    with pytest.raises(Forbidden):
        await domain.messages.history("stranger", room.id)
    with pytest.raises(NotFound):
        await domain.messages.history("alice", "missing")


async def test_history_defaults_to_the_last_fifty(domain: Domain, room: Room) -> None:
    for i in range(DEFAULT_HISTORY_LIMIT + 10):
        await domain.messages.post_unchecked("alice", room.id, f"m{i}", f"c{i}")

    page = await domain.messages.history("bob", room.id)

    assert DEFAULT_HISTORY_LIMIT == 50
    assert [m.seq for m in page.messages] == list(range(11, 61))
    assert page.has_more is True


async def test_history_pages_forward_and_backward(domain: Domain, room: Room) -> None:
    for i in range(10):
        await domain.messages.post_unchecked("alice", room.id, f"m{i}", f"c{i}")

    after = await domain.messages.history("bob", room.id, after_seq=3, limit=4)
    before = await domain.messages.history("bob", room.id, before_seq=4, limit=4)
    between = await domain.messages.history("bob", room.id, after_seq=3, before_seq=6, limit=4)

    assert ([m.seq for m in after.messages], after.has_more) == ([4, 5, 6, 7], True)
    assert ([m.seq for m in before.messages], before.has_more) == ([1, 2, 3], False)
    assert ([m.seq for m in between.messages], between.has_more) == ([4, 5], False)


# --- typing ---------------------------------------------------------------------------------


async def test_typing_is_announced_not_stored(domain: Domain, room: Room) -> None:
    await domain.messages.typing("bob", room.id, True)
    await domain.messages.typing("bob", room.id, False)

    assert domain.events.events == [
        TypingChanged(room_id=room.id, user_id="bob", typing=True),
        TypingChanged(room_id=room.id, user_id="bob", typing=False),
    ]
    assert await domain.message_store.last_seq(room.id) == 0


async def test_typing_is_for_members_only(domain: Domain, room: Room) -> None:
    with pytest.raises(Forbidden):
        await domain.messages.typing("stranger", room.id, True)
    with pytest.raises(NotFound):
        await domain.messages.typing("bob", "missing", True)

    assert domain.events.events == []

"""Contract of the `MessageStore` port: every adapter passes it unchanged."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from domain.model import ChatMessage, NewMessage
from domain.ports import MessageStore
from tests.support.fakes import EPOCH

LATER = EPOCH + timedelta(minutes=5)


def new(
    message_id: str, room_id: str = "r1", author: str = "alice", client_msg_id: str | None = None
) -> NewMessage:
    """A message to append; the client id defaults to one derived from the id."""
    return NewMessage(
        id=message_id,
        room_id=room_id,
        author_id=author,
        text=f"text of {message_id}",
        client_msg_id=client_msg_id if client_msg_id is not None else f"c-{message_id}",
        created_at=EPOCH,
    )


async def fill(store: MessageStore, count: int, room_id: str = "r1") -> list[ChatMessage]:
    """Append `count` messages one after the other."""
    return [
        (await store.append(new(f"{room_id}-m{i}", room_id=room_id))).message
        for i in range(1, count + 1)
    ]


def seqs(messages: tuple[ChatMessage, ...] | list[ChatMessage]) -> list[int]:
    """The seq of each message."""
    return [m.seq for m in messages]


# --- append and idempotency -----------------------------------------------------------------


async def test_append_assigns_seq_from_one_and_copies_the_fields(
    message_store: MessageStore,
) -> None:
    result = await message_store.append(new("m1", client_msg_id="abc"))

    assert result.created is True
    assert result.message == ChatMessage(
        id="m1",
        room_id="r1",
        seq=1,
        author_id="alice",
        text="text of m1",
        client_msg_id="abc",
        created_at=EPOCH,
        edited_at=None,
        deleted=False,
    )


async def test_appends_get_seq_one_to_n(message_store: MessageStore) -> None:
    messages = await fill(message_store, 7)

    assert seqs(messages) == [1, 2, 3, 4, 5, 6, 7]
    assert await message_store.last_seq("r1") == 7


async def test_replay_returns_the_stored_message_without_creating(
    message_store: MessageStore,
) -> None:
    first = await message_store.append(new("m1", client_msg_id="same"))
    await message_store.append(new("m2"))

    replay = await message_store.append(
        NewMessage(
            id="other-id",
            room_id="r1",
            author_id="alice",
            text="another text",
            client_msg_id="same",
            created_at=LATER,
        )
    )

    assert replay.created is False
    assert replay.message == first.message
    assert await message_store.last_seq("r1") == 2
    assert await message_store.get("r1", "other-id") is None


async def test_same_client_msg_id_of_another_author_is_a_new_message(
    message_store: MessageStore,
) -> None:
    mine = await message_store.append(new("m1", author="alice", client_msg_id="same"))
    theirs = await message_store.append(new("m2", author="bob", client_msg_id="same"))

    assert theirs.created is True
    assert (mine.message.seq, theirs.message.seq) == (1, 2)


async def test_same_client_msg_id_in_another_room_is_a_new_message(
    message_store: MessageStore,
) -> None:
    await message_store.append(new("m1", room_id="r1", client_msg_id="same"))

    other = await message_store.append(new("m2", room_id="r2", client_msg_id="same"))

    assert other.created is True
    assert other.message.seq == 1


async def test_rooms_have_independent_seqs(message_store: MessageStore) -> None:
    got: dict[str, list[int]] = {"a": [], "b": []}
    for i, room_id in enumerate("abaabba"):
        result = await message_store.append(new(f"m{i}", room_id=room_id))
        got[room_id].append(result.message.seq)

    assert got == {"a": [1, 2, 3, 4], "b": [1, 2, 3]}
    assert await message_store.last_seq("a") == 4
    assert await message_store.last_seq("b") == 3
    assert await message_store.last_seq("empty") == 0


async def test_replay_of_a_deleted_message_does_not_revive_it(message_store: MessageStore) -> None:
    await message_store.append(new("m1", client_msg_id="k"))
    await message_store.tombstone("r1", "m1", LATER)

    replay = await message_store.append(new("m9", client_msg_id="k"))

    assert replay.created is False
    assert replay.message.id == "m1"
    assert replay.message.seq == 1
    assert replay.message.deleted is True
    assert await message_store.last_seq("r1") == 1


# --- get, edit, tombstone -------------------------------------------------------------------


async def test_get_finds_a_message_in_its_room_only(message_store: MessageStore) -> None:
    (stored,) = await fill(message_store, 1)

    assert await message_store.get("r1", stored.id) == stored
    assert await message_store.get("r2", stored.id) is None
    assert await message_store.get("r1", "missing") is None


async def test_edit_replaces_text_and_sets_edited_at(message_store: MessageStore) -> None:
    first, second = await fill(message_store, 2)

    edited = await message_store.edit("r1", first.id, "new text", LATER)

    assert edited is not None
    assert edited.text == "new text"
    assert edited.edited_at == LATER
    assert (edited.id, edited.seq, edited.author_id) == (first.id, 1, first.author_id)
    assert await message_store.get("r1", first.id) == edited
    page = await message_store.history("r1", limit=10)
    assert page.messages == (edited, second)


async def test_edit_of_a_missing_message_returns_none(message_store: MessageStore) -> None:
    await fill(message_store, 1)

    assert await message_store.edit("r1", "missing", "x", LATER) is None
    assert await message_store.edit("r2", "r1-m1", "x", LATER) is None


async def test_edit_of_a_deleted_message_returns_none(message_store: MessageStore) -> None:
    (stored,) = await fill(message_store, 1)
    await message_store.tombstone("r1", stored.id, LATER)

    assert await message_store.edit("r1", stored.id, "resurrected", LATER) is None
    current = await message_store.get("r1", stored.id)
    assert current is not None
    assert current.deleted is True
    assert current.text == ""


async def test_tombstone_keeps_seq_and_empties_text(message_store: MessageStore) -> None:
    first, second, third = await fill(message_store, 3)

    deleted = await message_store.tombstone("r1", second.id, LATER)

    assert deleted is not None
    assert (deleted.id, deleted.seq, deleted.deleted, deleted.text) == (second.id, 2, True, "")
    assert await message_store.get("r1", second.id) == deleted
    page = await message_store.history("r1", limit=10)
    assert seqs(page.messages) == [1, 2, 3]
    assert page.messages[1] == deleted
    assert page.messages[0] == first
    assert page.messages[2] == third
    assert await message_store.last_seq("r1") == 3
    following = await message_store.append(new("m4"))
    assert following.message.seq == 4


async def test_tombstone_twice_stays_deleted(message_store: MessageStore) -> None:
    (stored,) = await fill(message_store, 1)
    await message_store.tombstone("r1", stored.id, LATER)

    again = await message_store.tombstone("r1", stored.id, LATER + timedelta(minutes=1))

    assert again is not None
    assert (again.seq, again.deleted, again.text) == (1, True, "")


async def test_tombstone_of_a_missing_message_returns_none(message_store: MessageStore) -> None:
    await fill(message_store, 1)

    assert await message_store.tombstone("r1", "missing", LATER) is None
    assert await message_store.tombstone("r2", "r1-m1", LATER) is None


# --- history --------------------------------------------------------------------------------


async def test_history_of_an_empty_room(message_store: MessageStore) -> None:
    for page in (
        await message_store.history("r1", limit=10),
        await message_store.history("r1", after_seq=0, limit=10),
        await message_store.history("r1", before_seq=5, limit=10),
    ):
        assert page.messages == ()
        assert page.has_more is False


async def test_history_without_bounds_is_the_last_limit_messages(
    message_store: MessageStore,
) -> None:
    await fill(message_store, 10)

    last_three = await message_store.history("r1", limit=3)
    everything = await message_store.history("r1", limit=10)
    more_than_all = await message_store.history("r1", limit=50)

    assert (seqs(last_three.messages), last_three.has_more) == ([8, 9, 10], True)
    assert (seqs(everything.messages), everything.has_more) == (list(range(1, 11)), False)
    assert (seqs(more_than_all.messages), more_than_all.has_more) == (list(range(1, 11)), False)


async def test_history_after_seq_reads_forward(message_store: MessageStore) -> None:
    await fill(message_store, 10)

    cases = {
        0: ([1, 2, 3], True),
        6: ([7, 8, 9], True),
        7: ([8, 9, 10], False),
        8: ([9, 10], False),
        10: ([], False),
        25: ([], False),
    }
    for after, expected in cases.items():
        page = await message_store.history("r1", after_seq=after, limit=3)
        assert (seqs(page.messages), page.has_more) == expected, after


async def test_history_before_seq_reads_backward(message_store: MessageStore) -> None:
    await fill(message_store, 10)

    cases = {
        11: ([8, 9, 10], True),
        50: ([8, 9, 10], True),
        6: ([3, 4, 5], True),
        5: ([2, 3, 4], True),
        4: ([1, 2, 3], False),
        3: ([1, 2], False),
        1: ([], False),
    }
    for before, expected in cases.items():
        page = await message_store.history("r1", before_seq=before, limit=3)
        assert (seqs(page.messages), page.has_more) == expected, before


async def test_history_between_after_and_before(message_store: MessageStore) -> None:
    await fill(message_store, 10)

    cut = await message_store.history("r1", after_seq=2, before_seq=8, limit=3)
    whole = await message_store.history("r1", after_seq=2, before_seq=8, limit=5)
    empty = await message_store.history("r1", after_seq=5, before_seq=6, limit=5)

    assert (seqs(cut.messages), cut.has_more) == ([3, 4, 5], True)
    assert (seqs(whole.messages), whole.has_more) == ([3, 4, 5, 6, 7], False)
    assert (seqs(empty.messages), empty.has_more) == ([], False)


async def test_history_pages_walk_the_whole_room_both_ways(message_store: MessageStore) -> None:
    await fill(message_store, 23)

    forward: list[int] = []
    after = 0
    while True:
        page = await message_store.history("r1", after_seq=after, limit=5)
        forward += seqs(page.messages)
        if not page.has_more:
            break
        after = page.messages[-1].seq
    backward: list[int] = []
    before: int | None = None
    while True:
        page = await message_store.history("r1", before_seq=before, limit=5)
        backward = seqs(page.messages) + backward
        if not page.has_more:
            break
        before = page.messages[0].seq

    assert forward == list(range(1, 24))
    assert backward == list(range(1, 24))


async def test_history_is_per_room(message_store: MessageStore) -> None:
    await fill(message_store, 3, room_id="a")
    await fill(message_store, 2, room_id="b")

    page = await message_store.history("b", limit=10)

    assert [m.room_id for m in page.messages] == ["b", "b"]
    assert seqs(page.messages) == [1, 2]


# --- concurrency ----------------------------------------------------------------------------


async def test_concurrent_appends_get_seqs_exactly_one_to_n(message_store: MessageStore) -> None:
    results = await asyncio.gather(
        *(
            message_store.append(new(f"m{i}", author=f"user{i % 7}", client_msg_id=f"c{i}"))
            for i in range(200)
        )
    )

    assert all(result.created for result in results)
    assert sorted(r.message.seq for r in results) == list(range(1, 201))
    assert len({r.message.id for r in results}) == 200
    assert await message_store.last_seq("r1") == 200
    page = await message_store.history("r1", after_seq=0, limit=500)
    assert seqs(page.messages) == list(range(1, 201))


async def test_concurrent_replays_create_one_message(message_store: MessageStore) -> None:
    results = await asyncio.gather(
        *(message_store.append(new(f"m{i}", client_msg_id="same")) for i in range(20))
    )

    created = [r for r in results if r.created]
    assert len(created) == 1
    assert {r.message.id for r in results} == {created[0].message.id}
    assert {r.message.seq for r in results} == {1}
    assert await message_store.last_seq("r1") == 1

"""NotificationService on the memory store: ownership, unread counts, delivery events, mentions."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.memory import MemoryNotificationStore
from domain.events import NotificationCreated, UnreadCountChanged
from domain.model import ChatMessage
from domain.services.notifications import MENTION_KIND, NotificationService, find_mentions
from tests.support.fakes import EPOCH, FixedClock, RecordingEventPublisher, SequentialIds


def make() -> tuple[NotificationService, RecordingEventPublisher, FixedClock]:
    events = RecordingEventPublisher()
    clock = FixedClock()
    service = NotificationService(MemoryNotificationStore(), events, clock, SequentialIds("n-"))
    return service, events, clock


async def test_notify_stores_one_per_distinct_user_and_announces_each() -> None:
    service, events, _ = make()
    created = await service.notify(["alice", "bob", "alice"], "system", "Hi", "body", {"k": [1]})
    assert [n.user_id for n in created] == ["alice", "bob"]
    assert all(n.read_at is None and n.data == {"k": [1]} for n in created)
    assert [e.notification.user_id for e in events.of_type(NotificationCreated)] == ["alice", "bob"]
    assert [(e.user_id, e.unread_count) for e in events.of_type(UnreadCountChanged)] == [
        ("alice", 1),
        ("bob", 1),
    ]


async def test_notify_nobody_does_nothing() -> None:
    service, events, _ = make()
    assert await service.notify([], "k", "t") == []
    assert events.events == []


async def test_page_is_newest_first_with_cursor_and_unread_only() -> None:
    service, _, clock = make()
    ids = []
    for i in range(5):
        clock.advance(1)
        ids += [n.id for n in await service.notify(["alice"], "k", f"t{i}")]
    await service.mark_read("alice", [ids[3]])
    page = await service.page("alice", limit=2)
    assert [n.id for n in page.notifications] == [ids[4], ids[3]]
    assert page.has_more is True
    assert page.unread_count == 4
    older = await service.page("alice", before=ids[3], limit=10)
    assert [n.id for n in older.notifications] == [ids[2], ids[1], ids[0]]
    assert older.has_more is False
    unread = await service.page("alice", unread_only=True, limit=10)
    assert ids[3] not in [n.id for n in unread.notifications]
    assert len(unread.notifications) == 4


async def test_a_user_never_sees_or_changes_another_users_notifications() -> None:
    service, events, _ = make()
    [mine] = await service.notify(["alice"], "k", "t")
    [theirs] = await service.notify(["bob"], "k", "t")
    assert await service.mark_read("alice", [theirs.id, mine.id]) == 0
    assert await service.unread_count("bob") == 1
    page = await service.page("alice", limit=10)
    assert [n.id for n in page.notifications] == [mine.id]
    # someone else's id as a cursor gives nothing, not their notifications
    assert (await service.page("alice", before=theirs.id, limit=10)).notifications == ()
    assert events.of_type(UnreadCountChanged)[-1].user_id == "alice"


async def test_mark_read_sets_read_at_once_and_mark_all() -> None:
    service, _, clock = make()
    first, second = [n for _ in range(2) for n in await service.notify(["alice"], "k", "t")]
    clock.advance(5)
    assert await service.mark_read("alice", [first.id, first.id]) == 1
    read = (await service.page("alice", limit=10)).notifications
    assert {n.id: n.read_at for n in read}[first.id] == clock.now()
    clock.advance(5)
    await service.mark_read("alice", [first.id])  # already read: read_at unchanged
    again = {n.id: n.read_at for n in (await service.page("alice", limit=10)).notifications}
    assert again[first.id] != clock.now()
    assert await service.mark_all_read("alice") == 0
    assert all(n.read_at is not None for n in (await service.page("alice", limit=10)).notifications)
    assert second.id in again


def message(text: str, author: str = "alice") -> ChatMessage:
    return ChatMessage(
        id="m1",
        room_id="r1",
        seq=7,
        author_id=author,
        text=text,
        client_msg_id="c1",
        created_at=EPOCH,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hi @bob", ["bob"]),
        ("@bob @bob @bob!", ["bob"]),
        ("@bobby is not bob", []),
        ("@bob_ is not bob", []),
        ("@bob1 is not bob", []),
        ("mail bob@bob.example", ["bob"]),  # '@bob' followed by '.', a mention by the rule
        ("@alice talks to herself", []),
        ("@carol and @bob.", ["carol", "bob"]),
        ("@dave is not a member", []),
        ("no mention", []),
        ("@", []),
    ],
)
def test_find_mentions(text: str, expected: list[str]) -> None:
    assert sorted(find_mentions(text, ["alice", "bob", "carol"], exclude="alice")) == sorted(
        expected
    )


async def test_notify_mentions_creates_one_mention_per_member() -> None:
    service, events, _ = make()
    await service.notify_mentions(message("@bob @carol @bob @alice"), ["alice", "bob", "carol"])
    created = [e.notification for e in events.of_type(NotificationCreated)]
    assert sorted(n.user_id for n in created) == ["bob", "carol"]
    assert all(n.kind == MENTION_KIND for n in created)
    assert created[0].data == {"room_id": "r1", "message_id": "m1", "seq": 7}


async def test_a_large_push_yields_to_other_tasks() -> None:
    service, _, _ = make()
    ticks = 0

    async def other_client() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(other_client())
    await asyncio.sleep(0)
    await service.notify([f"u{i}" for i in range(1000)], "k", "t")
    task.cancel()
    assert ticks >= 9  # the other task ran between batches of 100


operation = st.one_of(
    st.tuples(st.just("add"), st.sampled_from(["alice", "bob", "carol"])),
    st.tuples(st.just("read"), st.lists(st.integers(0, 30), max_size=5)),
    st.tuples(st.just("read_all"), st.none()),
)


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(["alice", "bob"]), st.lists(operation, max_size=40))
def test_unread_count_always_equals_unread_notifications(
    user: str, operations: list[tuple[str, object]]
) -> None:
    """For any adds, mark-reads by id (own and others' ids) and mark-alls, the unread count
    equals the number of the user's notifications with no `read_at`."""

    async def scenario() -> None:
        service, _, clock = make()
        all_ids: list[str] = []
        for kind, arg in operations:
            clock.advance(1)
            if kind == "add" and isinstance(arg, str):
                all_ids += [n.id for n in await service.notify([arg], "k", "t")]
            elif kind == "read" and isinstance(arg, list):
                chosen = [all_ids[i % len(all_ids)] for i in arg if all_ids]
                returned = await service.mark_read(user, chosen)
                assert returned == await service.unread_count(user)
            else:
                assert await service.mark_all_read(user) == 0
            for who in ("alice", "bob", "carol"):
                page = await service.page(who, limit=100)
                unread = sum(1 for n in page.notifications if n.read_at is None)
                assert page.unread_count == unread == await service.unread_count(who)
                assert all(n.user_id == who for n in page.notifications)

    asyncio.run(scenario())


async def test_chat_mentions_notify_once_not_on_resend_or_edit() -> None:
    from adapters.memory import (
        MemoryActiveUsersStore,
        MemoryMessageStore,
        MemoryRoomRepository,
    )
    from domain.services import (
        ChatMessageService,
        ChatRoomService,
        ConnectionManager,
        PresenceService,
    )

    events = RecordingEventPublisher()
    clock = FixedClock()
    ids = SequentialIds()
    users, rooms_repo, messages = (
        MemoryActiveUsersStore(),
        MemoryRoomRepository(),
        MemoryMessageStore(),
    )
    presence = PresenceService(ConnectionManager(users, clock, "i"), users, rooms_repo, events)
    rooms = ChatRoomService(rooms_repo, messages, presence, events, clock, ids)
    notifications = NotificationService(MemoryNotificationStore(), events, clock, ids)
    chat = ChatMessageService(messages, rooms, events, clock, ids, notifications)
    room = await rooms.create("alice", "r", members=["bob"])

    sent = await chat.post("alice", room.id, "hey @bob and @bob and @zed", "c1")
    await chat.post("alice", room.id, "hey @bob and @bob and @zed", "c1")  # idempotent resend
    await chat.edit("alice", room.id, sent.id, "still @bob")
    await chat.post("bob", room.id, "@bob talks to himself", "c2")

    mentions = [e.notification for e in events.of_type(NotificationCreated)]
    assert [(n.user_id, n.kind) for n in mentions] == [("bob", MENTION_KIND)]
    assert mentions[0].data == {"room_id": room.id, "message_id": sent.id, "seq": sent.seq}

"""Contract of the `NotificationStore` port: every adapter passes it unchanged."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from domain.model import Notification
from domain.ports import NotificationStore
from tests.support.fakes import EPOCH


def note(notification_id: str, user: str = "alice", minute: int = 0) -> Notification:
    """A new unread notification."""
    return Notification(
        id=notification_id,
        user_id=user,
        kind="system",
        title=f"title {notification_id}",
        body="body",
        data={"n": notification_id, "nested": {"list": [1, None, True]}},
        created_at=EPOCH + timedelta(minutes=minute),
    )


async def test_add_returns_unread_counts_per_user(notification_store: NotificationStore) -> None:
    counts = await notification_store.add([note("n1"), note("n2"), note("n3", user="bob")])
    assert counts == {"alice": 2, "bob": 1}
    assert await notification_store.add([note("n4")]) == {"alice": 3}


async def test_page_is_newest_first_and_round_trips_fields(
    notification_store: NotificationStore,
) -> None:
    originals = [note(f"n{i}", minute=i) for i in range(1, 4)]
    await notification_store.add(originals)
    items, has_more = await notification_store.page(
        "alice", unread_only=False, before=None, limit=10
    )
    assert items == list(reversed(originals))
    assert has_more is False


async def test_page_limit_cursor_and_has_more(notification_store: NotificationStore) -> None:
    await notification_store.add([note(f"n{i:02d}", minute=i) for i in range(10)])
    first, more = await notification_store.page("alice", unread_only=False, before=None, limit=4)
    assert [n.id for n in first] == ["n09", "n08", "n07", "n06"]
    assert more is True
    second, more = await notification_store.page(
        "alice", unread_only=False, before=first[-1].id, limit=4
    )
    assert [n.id for n in second] == ["n05", "n04", "n03", "n02"]
    assert more is True
    last, more = await notification_store.page(
        "alice", unread_only=False, before=second[-1].id, limit=4
    )
    assert [n.id for n in last] == ["n01", "n00"]
    assert more is False


async def test_unknown_or_foreign_cursor_gives_an_empty_page(
    notification_store: NotificationStore,
) -> None:
    await notification_store.add([note("a1"), note("b1", user="bob")])
    for cursor in ("nope", "b1"):
        items, more = await notification_store.page(
            "alice", unread_only=False, before=cursor, limit=10
        )
        assert (items, more) == ([], False)


async def test_unread_only_skips_read_ones(notification_store: NotificationStore) -> None:
    await notification_store.add([note(f"n{i}", minute=i) for i in range(5)])
    await notification_store.mark_read("alice", ["n1", "n3"], EPOCH)
    items, more = await notification_store.page("alice", unread_only=True, before=None, limit=2)
    assert [n.id for n in items] == ["n4", "n2"]
    assert more is True
    rest, more = await notification_store.page("alice", unread_only=True, before="n2", limit=2)
    assert [n.id for n in rest] == ["n0"]
    assert more is False


async def test_mark_read_own_only_sets_read_at_and_counts(
    notification_store: NotificationStore,
) -> None:
    await notification_store.add([note("a1"), note("a2"), note("b1", user="bob")])
    at = EPOCH + timedelta(hours=1)
    assert await notification_store.mark_read("alice", ["a1", "b1", "missing", "a1"], at) == 1
    assert await notification_store.unread_count("bob") == 1
    items, _ = await notification_store.page("alice", unread_only=False, before=None, limit=10)
    assert {n.id: n.read_at for n in items} == {"a1": at, "a2": None}
    later = at + timedelta(hours=1)
    assert await notification_store.mark_read("alice", ["a1"], later) == 1
    items, _ = await notification_store.page("alice", unread_only=False, before=None, limit=10)
    assert {n.id: n.read_at for n in items}["a1"] == at  # the first read time is kept


async def test_mark_all_read(notification_store: NotificationStore) -> None:
    await notification_store.add([note("a1"), note("a2"), note("b1", user="bob")])
    assert await notification_store.mark_all_read("alice", EPOCH) == 0
    assert await notification_store.unread_count("alice") == 0
    assert await notification_store.unread_count("bob") == 1
    items, _ = await notification_store.page("alice", unread_only=False, before=None, limit=10)
    assert all(n.read_at == EPOCH for n in items)
    assert await notification_store.mark_all_read("nobody", EPOCH) == 0
    assert await notification_store.add([note("a3")]) == {"alice": 1}


async def test_unknown_user_is_empty(notification_store: NotificationStore) -> None:
    assert await notification_store.unread_count("ghost") == 0
    assert await notification_store.page("ghost", unread_only=False, before=None, limit=5) == (
        [],
        False,
    )
    assert await notification_store.mark_read("ghost", ["x"], EPOCH) == 0


async def test_concurrent_adds_and_reads_keep_the_count_exact(
    notification_store: NotificationStore,
) -> None:
    await asyncio.gather(*(notification_store.add([note(f"n{i}")]) for i in range(50)))
    await asyncio.gather(
        *(notification_store.mark_read("alice", [f"n{i}"], EPOCH) for i in range(0, 50, 2))
    )
    assert await notification_store.unread_count("alice") == 25

"""The snapshot importer on a real Redis: it writes exactly the keys the Redis adapters write,
the adapters then read the data back, a run that failed half-way finishes when run again, and
a record Redis holds differently is refused, never overwritten."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis
import redis.exceptions
from redis.commands.core import AsyncScript

from adapters.memory import MemoryMessageStore, MemoryNotificationStore, MemoryRoomRepository
from adapters.memory.snapshot import Snapshot, capture
from adapters.redis.base import create_client
from adapters.redis.importer import ImportReport, SnapshotImporter, Tally
from adapters.redis.messages import RedisMessageStore
from adapters.redis.notifications import RedisNotificationStore
from adapters.redis.rooms import RedisRoomRepository
from domain.model import NewMessage, Notification, Room, Visibility
from domain.ports import MessageStore, NotificationStore, RoomRepository

ODD = "a:b{c}%d \udc80"
"""An id with key separators, hash-tag braces, a percent and a lone surrogate."""


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client as the adapters get it (`create_client`)."""
    created = create_client(redis_url)
    try:
        yield created
    finally:
        await created.aclose(close_connection_pool=True)


async def chat_history(
    rooms: RoomRepository, messages: MessageStore, notes: NotificationStore, now: datetime
) -> None:
    """The same operations, whatever the stores: rooms, members, messages (edited, deleted,
    odd ids), notifications (read, unread, all read)."""
    await rooms.create(Room("r1", "general", Visibility.PUBLIC, "alice", now), ["alice", "bob"])
    await rooms.create(
        Room(
            ODD,
            "secret",
            Visibility.PRIVATE,
            "bob",
            now.replace(microsecond=0) + timedelta(seconds=1),
        ),
        ["bob", ODD],
    )
    await rooms.add_member("r1", "carol")
    await rooms.remove_member("r1", "carol")
    for index in range(3):
        await messages.append(
            NewMessage(f"m{index}", "r1", "alice", f"text {index} \u00e9 \udc80", f"c{index}", now)
        )
    await messages.edit("r1", "m1", "edited \u2603", now + timedelta(seconds=5))
    await messages.tombstone("r1", "m2", now + timedelta(seconds=6))
    await messages.append(NewMessage("m-odd", ODD, ODD, "hi", ODD, now))
    await notes.add(
        [
            Notification(f"n{i}", "bob", "mention", f"t{i}", "b", {"x": [1, 2.5, {}]}, now)
            for i in range(3)
        ]
        + [Notification("n-c", "carol", "ci", "t", "b", {"big": 2**60}, now)]
        + [Notification("n-odd", ODD, "ci", "t", "b", {}, now)]
    )
    await notes.mark_read("bob", ["n1"], now + timedelta(seconds=7))
    await notes.mark_all_read("carol", now + timedelta(seconds=8))


async def memory_snapshot(now: datetime) -> Snapshot:
    """The snapshot of the memory stores after `chat_history`."""
    rooms, messages, notes = MemoryRoomRepository(), MemoryMessageStore(), MemoryNotificationStore()
    await chat_history(rooms, messages, notes, now)
    return capture(rooms, messages, notes, now)


async def dump(client: aioredis.Redis, prefix: str) -> dict[bytes, tuple[str, object, bool]]:
    """Every key under the prefix (prefix removed): its type, its value, whether it has a TTL.
    Message JSON is compared decoded: Lua's cjson re-encodes an edited one differently."""
    found: dict[bytes, tuple[str, object, bool]] = {}
    async for key in client.scan_iter(match=prefix.encode() + b"*"):
        raw_kind: object = await client.type(key)
        kind = raw_kind.decode() if isinstance(raw_kind, bytes) else str(raw_kind)
        value: object
        if kind == "string":
            value = await client.get(key)
        elif kind == "hash":
            fields = await client.hgetall(key)
            decode = key.endswith(b":msgs")
            value = {
                f: json_of(v) if decode and isinstance(v, bytes) else v for f, v in fields.items()
            }
        elif kind == "set":
            value = await client.smembers(key)
        else:
            assert kind == "zset", kind
            value = await client.zrange(key, 0, -1, withscores=True)
        ttl = await client.ttl(key)
        found[key[len(prefix.encode()) :]] = (kind, value, ttl > 0)
    return found


def json_of(raw: bytes) -> object:
    """A stored message's JSON, decoded."""
    return json.loads(raw.decode("utf-8", "surrogatepass"))


async def test_the_import_writes_exactly_the_keys_the_adapters_write(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    now = datetime.now(UTC).replace(microsecond=123456)
    by_adapters = redis_prefix + "adapters:"
    await chat_history(
        RedisRoomRepository(client, by_adapters),
        RedisMessageStore(client, by_adapters),
        RedisNotificationStore(client, by_adapters),
        now,
    )
    imported = redis_prefix + "imported:"
    report = await SnapshotImporter(client, imported).run(
        await memory_snapshot(now), now=now, dry_run=False
    )
    assert report.refused == 0, report.conflicts
    expected = await dump(client, by_adapters)
    assert await dump(client, imported) == expected
    assert len(expected) > 20
    idem = [k for k in expected if b":idem:" in k]
    assert len(idem) == 4
    for key in idem:  # 24 h from the message's time, as the adapter sets it at the append
        ttls = [await client.ttl(p.encode() + key) for p in (by_adapters, imported)]
        assert 86390 <= min(ttls) <= max(ttls) <= 86400, ttls


async def test_the_adapters_serve_what_was_imported(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    now = datetime.now(UTC)
    await SnapshotImporter(client, redis_prefix).run(
        await memory_snapshot(now), now=now, dry_run=False
    )
    rooms = RedisRoomRepository(client, redis_prefix)
    messages = RedisMessageStore(client, redis_prefix)
    notes = RedisNotificationStore(client, redis_prefix)
    assert [r.id for r in await rooms.list_visible("bob")] == ["r1", ODD]
    assert [r.id for r in await rooms.list_visible("alice")] == ["r1"]
    assert await rooms.members("r1") == ["alice", "bob"]
    assert await rooms.rooms_of(ODD) == [ODD]
    page = await messages.history("r1", after_seq=0, limit=10)
    assert [(m.seq, m.id, m.text, m.deleted) for m in page.messages] == [
        (1, "m0", "text 0 \u00e9 \udc80", False),
        (2, "m1", "edited \u2603", False),
        (3, "m2", "", True),
    ]
    replay = await messages.append(NewMessage("x", "r1", "alice", "again", "c1", now))
    assert (replay.created, replay.message.id, replay.message.seq) == (False, "m1", 2)
    fresh = await messages.append(NewMessage("m3", "r1", "alice", "new", "c-new", now))
    assert (fresh.created, fresh.message.seq) == (True, 4)
    listed, more = await notes.page("bob", unread_only=False, before=None, limit=10)
    assert ([n.id for n in listed], more) == (["n2", "n1", "n0"], False)
    assert listed[1].read_at == now + timedelta(seconds=7)
    assert listed[0].data == {"x": [1, 2.5, {}]}
    assert (await notes.unread_count("bob"), await notes.unread_count("carol")) == (2, 0)
    assert [
        n.data for n in (await notes.page("carol", unread_only=False, before=None, limit=5))[0]
    ] == [{"big": 2**60}]


async def test_a_second_run_changes_nothing_and_says_so(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    now = datetime.now(UTC)
    snapshot = await memory_snapshot(now)
    first = await SnapshotImporter(client, redis_prefix).run(snapshot, now=now, dry_run=False)
    assert (first.moved, first.already, first.refused) == (19, 0, 0)
    before = await dump(client, redis_prefix)
    second = await SnapshotImporter(client, redis_prefix).run(snapshot, now=now, dry_run=False)
    assert (second.moved, second.already, second.refused) == (0, 19, 0)
    assert second.rooms == Tally(moved=0, already=2, refused=0)
    assert await dump(client, redis_prefix) == before


async def test_a_dry_run_counts_and_writes_nothing(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    now = datetime.now(UTC)
    report = await SnapshotImporter(client, redis_prefix).run(
        await memory_snapshot(now), now=now, dry_run=True
    )
    assert (report.moved, report.refused) == (19, 0)
    assert await dump(client, redis_prefix) == {}


class Flaky:
    """A registered script whose connection "drops" once a shared budget of calls is spent."""

    def __init__(self, script: AsyncScript, budget: list[int]) -> None:
        self.script = script
        self.budget = budget

    async def __call__(self, keys: list[bytes], args: list[bytes | int]) -> object:
        """Run the script, or fail like a lost connection once the budget is spent."""
        if self.budget[0] == 0:
            raise redis.exceptions.ConnectionError("connection lost")
        self.budget[0] -= 1
        result: object = await self.script(keys=keys, args=args)
        return result


def failing_after(client: aioredis.Redis, prefix: str, calls: int) -> SnapshotImporter:
    """An importer (one record per script call) that fails after `calls` script calls."""
    importer = SnapshotImporter(client, prefix, batch=1)
    budget = [calls]
    for name in ("_import_room", "_import_members", "_import_messages", "_import_notifications"):
        setattr(importer, name, Flaky(getattr(importer, name), budget))
    return importer


@pytest.mark.parametrize("calls", [0, 1, 3, 5, 8, 12])
async def test_a_run_that_failed_half_way_finishes_when_run_again(
    client: aioredis.Redis, redis_prefix: str, calls: int
) -> None:
    now = datetime.now(UTC)
    snapshot = await memory_snapshot(now)
    clean = redis_prefix + "clean:"
    await SnapshotImporter(client, clean).run(snapshot, now=now, dry_run=False)
    partial = redis_prefix + "partial:"
    with pytest.raises(redis.exceptions.ConnectionError):
        await failing_after(client, partial, calls).run(snapshot, now=now, dry_run=False)
    report = await SnapshotImporter(client, partial).run(snapshot, now=now, dry_run=False)
    assert report.refused == 0, report.conflicts
    assert report.moved + report.already == 19
    assert report.already > 0 or calls == 0
    assert await dump(client, partial) == await dump(client, clean)


async def test_a_different_room_message_or_history_is_refused_and_left_alone(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    now = datetime.now(UTC)
    rooms = RedisRoomRepository(client, redis_prefix)
    messages = RedisMessageStore(client, redis_prefix)
    notes = RedisNotificationStore(client, redis_prefix)
    await rooms.create(Room("r1", "another", Visibility.PUBLIC, "mallory", now), ["mallory"])
    await messages.append(NewMessage("other", "r1", "mallory", "not ours", "c0", now))
    await notes.add([Notification("live", "bob", "ci", "t", "b", {}, now)])
    before = await dump(client, redis_prefix)

    report = await SnapshotImporter(client, redis_prefix).run(
        await memory_snapshot(now), now=now, dry_run=False
    )
    assert report.rooms == Tally(moved=1, already=0, refused=1)
    assert report.messages == Tally(moved=1, already=0, refused=3)
    assert report.notifications == Tally(moved=2, already=0, refused=3)
    assert any("room 'r1': Redis has a different room" in c for c in report.conflicts)
    assert any(
        "messages of room 'r1': Redis has different messages at seq 1" in c
        for c in report.conflicts
    )
    assert any("notifications of user 'bob'" in c and "order" in c for c in report.conflicts)
    after = await dump(client, redis_prefix)
    for key, value in before.items():  # what was there is untouched
        if key not in (b"{rooms}:public",):
            assert after[key] == value, key
    assert (await messages.get("r1", "other")) is not None
    assert await messages.last_seq("r1") == 1


async def test_idempotency_keys_keep_the_rest_of_their_24_hours(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    now = datetime.now(UTC)
    messages = MemoryMessageStore()
    await messages.append(NewMessage("old", "r", "a", "t", "c-old", now - timedelta(hours=25)))
    await messages.append(NewMessage("mid", "r", "a", "t", "c-mid", now - timedelta(hours=20)))
    await messages.append(NewMessage("new", "r", "a", "t", "c-new", now))
    snapshot = capture(MemoryRoomRepository(), messages, MemoryNotificationStore(), now)
    report = await SnapshotImporter(client, redis_prefix).run(snapshot, now=now, dry_run=False)
    assert report.idempotency_keys == Tally(moved=2, already=0, refused=0)
    assert report.expired_keys == 1
    store = RedisMessageStore(client, redis_prefix)
    key = (redis_prefix + "{r:r}:idem:a:").encode()
    assert await client.exists(key + b"c-old") == 0
    assert 4 * 3600 - 5 <= await client.ttl(key + b"c-mid") <= 4 * 3600
    assert 86400 - 5 <= await client.ttl(key + b"c-new") <= 86400
    replay = await store.append(NewMessage("x", "r", "a", "t", "c-mid", now))
    assert (replay.created, replay.message.id) == (False, "mid")
    again = await store.append(NewMessage("y", "r", "a", "t", "c-old", now))
    assert (again.created, again.message.seq) == (True, 4)  # as after 24 h on Redis


def test_the_report_adds_up() -> None:
    report = ImportReport(dry_run=False)
    report.rooms.moved, report.messages.already, report.notifications.refused = 1, 2, 3
    assert (report.moved, report.already, report.refused) == (1, 2, 3)

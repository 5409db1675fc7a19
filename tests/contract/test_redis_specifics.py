"""What the port contracts cannot see of the Redis adapters: the key schema under the prefix,
hash tags, the idempotency TTL, error translation, exact round trips of awkward values, and
how many round trips a push to many users costs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import timedelta

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection
from redis.crc import key_slot

from adapters.redis.active_users import RedisActiveUsersStore
from adapters.redis.base import Keys, create_client
from adapters.redis.messages import RedisMessageStore
from adapters.redis.notifications import RedisNotificationStore
from adapters.redis.rooms import RedisRoomRepository
from domain.errors import Unavailable
from domain.json_types import JsonObject
from domain.model import CHAT_NAMESPACE as CHAT
from domain.model import NewMessage, Notification, Room, Visibility
from tests.contract.test_active_users_contract import at, conn
from tests.support.fakes import EPOCH
from tests.support.redis_server import free_port

pytestmark = pytest.mark.redis

# Ids with every character the key escaping must handle.
AWKWARD = "a:{b}%c"
AWKWARD_SAFE = "a%3A%7Bb%7D%25c"


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client of the adapters' own factory, its pool closed after the test."""
    client = create_client(redis_url)
    try:
        yield client
    finally:
        await client.aclose(close_connection_pool=True)


async def keys_under(client: aioredis.Redis, pattern: str) -> set[str]:
    """Every key matching the glob pattern, decoded."""
    return {
        key.decode("utf-8", "surrogatepass")
        async for key in client.scan_iter(match=pattern, count=1000)
    }


async def drop(client: aioredis.Redis, prefix: str) -> None:
    """Delete every key under the prefix."""
    async for key in client.scan_iter(match=prefix + "*", count=1000):
        await client.unlink(key)


def message(message_id: str, room_id: str, author: str = "alice") -> NewMessage:
    """A message to append."""
    return NewMessage(
        id=message_id,
        room_id=room_id,
        author_id=author,
        text=f"text of {message_id}",
        client_msg_id=f"c-{message_id}",
        created_at=EPOCH,
    )


def note(notification_id: str, user: str) -> Notification:
    """An unread notification."""
    return Notification(
        id=notification_id,
        user_id=user,
        kind="system",
        title="title",
        body="body",
        data={"n": notification_id},
        created_at=EPOCH,
    )


async def exercise(client: aioredis.Redis, prefix: str, token: str) -> None:
    """Touch every key kind of the three stores, with ids carrying `token`."""
    rooms = RedisRoomRepository(client, prefix)
    messages = RedisMessageStore(client, prefix)
    notifications = RedisNotificationStore(client, prefix)
    room_id, user = f"{AWKWARD}{token}", f"u{token}"
    await rooms.create(
        Room(room_id, "name", Visibility.PUBLIC, user, EPOCH), [user, f"{AWKWARD}{token}"]
    )
    await rooms.create(Room(f"p{token}", "private", Visibility.PRIVATE, user, EPOCH), [user])
    await rooms.add_member(f"p{token}", f"v{token}")
    await rooms.remove_member(f"p{token}", f"v{token}")
    first = await messages.append(message(f"m1{token}", room_id, author=AWKWARD))
    await messages.append(message(f"m2{token}", room_id))
    await messages.edit(room_id, first.message.id, "edited", EPOCH)
    await messages.tombstone(room_id, first.message.id, EPOCH)
    await messages.history(room_id, limit=10)
    await notifications.add([note(f"n1{token}", user), note(f"n2{token}", AWKWARD)])
    await notifications.mark_read(user, [f"n1{token}"], EPOCH)
    await notifications.mark_all_read(AWKWARD, EPOCH)
    await notifications.page(user, unread_only=False, before=None, limit=5)


async def test_every_key_is_under_the_prefix_in_the_documented_schema(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    token = uuid.uuid4().hex[:8]
    before = await keys_under(client, "*")
    try:
        await exercise(client, redis_prefix, token)

        created = await keys_under(client, "*") - before
        mine = await keys_under(client, redis_prefix + "*")
        room, private = f"{AWKWARD_SAFE}{token}", f"p{token}"
        user, escaped_user = f"u{token}", f"{AWKWARD_SAFE}{token}"
        expected = {
            "{rooms}:public",
            f"{{rooms}}:room:{room}",
            f"{{rooms}}:members:{room}",
            f"{{rooms}}:room:{private}",
            f"{{rooms}}:members:{private}",
            f"{{rooms}}:of:{user}",
            f"{{rooms}}:of:{escaped_user}",
            f"{{r:{room}}}:seq",
            f"{{r:{room}}}:msgs",
            f"{{r:{room}}}:ids",
            f"{{r:{room}}}:idem:{AWKWARD_SAFE}:c-m1{token}",
            f"{{r:{room}}}:idem:alice:c-m2{token}",
            *(f"{{u:{user}}}:{name}" for name in ("notes", "read", "order", "counter")),
            *(f"{{u:{AWKWARD_SAFE}}}:{name}" for name in ("notes", "read", "order", "counter")),
        }
        # The unread zsets are gone: every notification of both users has been read.
        assert mine == {redis_prefix + key for key in expected}
        assert created >= mine
        foreign = {key for key in created - mine if token in key or not key.startswith("sbtest:")}
        assert foreign == set()
    finally:
        await drop(client, redis_prefix)


async def test_two_prefixes_share_a_server_without_seeing_each_other(
    client: aioredis.Redis,
) -> None:
    token = uuid.uuid4().hex[:8]
    first, second = f"sbtest:{token}a:", f"sbtest:{token}b:"
    try:
        await exercise(client, first, token)

        assert await keys_under(client, second + "*") == set()
        rooms = RedisRoomRepository(client, second)
        messages = RedisMessageStore(client, second)
        notifications = RedisNotificationStore(client, second)
        assert await rooms.get(f"{AWKWARD}{token}") is None
        assert await rooms.list_visible(f"u{token}") == []
        assert await messages.last_seq(f"{AWKWARD}{token}") == 0
        assert await notifications.page(f"u{token}", unread_only=False, before=None, limit=5) == (
            [],
            False,
        )

        await exercise(client, second, token)

        firsts = {key.removeprefix(first) for key in await keys_under(client, first + "*")}
        seconds = {key.removeprefix(second) for key in await keys_under(client, second + "*")}
        assert firsts == seconds
        assert await RedisMessageStore(client, first).last_seq(f"{AWKWARD}{token}") == 2
    finally:
        await drop(client, first)
        await drop(client, second)


async def test_keys_that_change_together_share_a_cluster_slot(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    token = uuid.uuid4().hex[:8]
    try:
        await exercise(client, redis_prefix, token)

        slots: dict[str, set[int]] = {}
        for key in await keys_under(client, redis_prefix + "*"):
            tag = key[key.index("{") : key.index("}") + 1]
            slots.setdefault(tag, set()).add(key_slot(key.encode()))
        assert set(slots) == {
            "{rooms}",
            f"{{r:{AWKWARD_SAFE}{token}}}",
            f"{{u:u{token}}}",
            f"{{u:{AWKWARD_SAFE}}}",
        }
        assert all(len(found) == 1 for found in slots.values()), slots
    finally:
        await drop(client, redis_prefix)


async def test_idempotency_keys_expire_after_a_day_and_messages_do_not(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    store = RedisMessageStore(client, redis_prefix)
    short = RedisMessageStore(client, redis_prefix, idempotency_ttl_s=60)
    try:
        await store.append(message("m1", "r1"))
        await short.append(message("m2", "r2"))

        (day_key,) = await keys_under(client, redis_prefix + "{r:r1}:idem:*")
        (minute_key,) = await keys_under(client, redis_prefix + "{r:r2}:idem:*")
        assert 86400 - 60 <= await client.ttl(day_key) <= 86400
        assert 0 < await client.ttl(minute_key) <= 60
        for name in ("seq", "msgs", "ids"):
            assert await client.ttl(f"{redis_prefix}{{r:r1}}:{name}") == -1
    finally:
        await drop(client, redis_prefix)


async def test_an_unreachable_redis_raises_unavailable() -> None:
    down = create_client(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2)
    rooms = RedisRoomRepository(down, "sbtest:down:")
    messages = RedisMessageStore(down, "sbtest:down:")
    notifications = RedisNotificationStore(down, "sbtest:down:")
    try:
        with pytest.raises(Unavailable):
            await rooms.get("r1")
        with pytest.raises(Unavailable):
            await rooms.add_member("r1", "alice")
        with pytest.raises(Unavailable):
            await messages.append(message("m1", "r1"))
        with pytest.raises(Unavailable):
            await messages.history("r1", limit=5)
        with pytest.raises(Unavailable):
            await notifications.add([note("n1", "alice"), note("n2", "bob")])
        with pytest.raises(Unavailable):
            await notifications.unread_count("alice")
    finally:
        await down.aclose(close_connection_pool=True)


async def test_awkward_values_round_trip_exactly(client: aioredis.Redis, redis_prefix: str) -> None:
    """Lone surrogates, NULs and non-ASCII text survive Lua's cjson; `data` keeps `[]`,
    `{}`, big integers and floats (cjson would turn `[]` into `{}` and round numbers)."""
    awkward_text = 'lone \ud800 surrogate, café 😀, NUL \x00, quote " and slash /'
    rooms = RedisRoomRepository(client, redis_prefix)
    messages = RedisMessageStore(client, redis_prefix)
    notifications = RedisNotificationStore(client, redis_prefix)
    try:
        later = EPOCH + timedelta(microseconds=123457)
        created = await rooms.create(
            Room(AWKWARD, awkward_text, Visibility.PUBLIC, AWKWARD, later), [AWKWARD]
        )
        assert await rooms.get(AWKWARD) == created
        assert await rooms.is_member(AWKWARD, AWKWARD) is True
        assert await rooms.rooms_of(AWKWARD) == [AWKWARD]

        appended = await messages.append(
            NewMessage(AWKWARD, AWKWARD, AWKWARD, awkward_text, awkward_text, later)
        )
        assert appended.message.text == awkward_text
        assert await messages.get(AWKWARD, AWKWARD) == appended.message
        edited = await messages.edit(AWKWARD, AWKWARD, awkward_text + "!", later)
        assert edited is not None
        assert (edited.text, edited.edited_at, edited.created_at) == (
            awkward_text + "!",
            later,
            later,
        )
        assert (await messages.history(AWKWARD, limit=1)).messages == (edited,)

        data: JsonObject = {
            "empty_list": [],
            "empty_object": {},
            "big": 2**62 + 1,
            "float": 0.1,
            "exp": 1e300,
            "nested": [{"a": [None, True, False, -0.5]}],
            "text": "café 😀",
        }
        stored = Notification(AWKWARD, AWKWARD, "kind", awkward_text, "", data, later, read_at=None)
        await notifications.add([stored])
        items, _ = await notifications.page(AWKWARD, unread_only=True, before=None, limit=5)
        assert items == [stored]
        assert items[0].data == data
        assert await notifications.mark_read(AWKWARD, [AWKWARD], later) == 0
        items, _ = await notifications.page(AWKWARD, unread_only=False, before=AWKWARD, limit=5)
        assert items == []
        items, _ = await notifications.page(AWKWARD, unread_only=False, before=None, limit=5)
        assert items[0].read_at == later
    finally:
        await drop(client, redis_prefix)


class CountingConnection(Connection):
    """A connection that counts each write to the server (one per round trip)."""

    writes = 0

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        """Count, then send."""
        CountingConnection.writes += 1
        await super().send_packed_command(command, check_health)


@pytest.fixture
async def counting(redis_url: str, redis_prefix: str) -> AsyncIterator[aioredis.Redis]:
    """A client whose writes are counted (`CountingConnection.writes`, reset here, after
    the connection handshake); the prefix dropped after the test."""
    pool = aioredis.BlockingConnectionPool.from_url(
        redis_url, connection_class=CountingConnection, max_connections=4
    )
    client = aioredis.Redis(connection_pool=pool)
    try:
        await client.ping()
        CountingConnection.writes = 0
        yield client
    finally:
        await drop(client, redis_prefix)
        await client.aclose(close_connection_pool=True)


async def test_a_push_to_a_thousand_users_is_a_handful_of_round_trips(
    counting: aioredis.Redis, redis_prefix: str
) -> None:
    store = RedisNotificationStore(counting, redis_prefix)
    users = [f"user{i}" for i in range(1000)]

    counts = await store.add([note(f"n-{user}", user) for user in users])
    first_push = CountingConnection.writes
    CountingConnection.writes = 0
    again = await store.add([note(f"m-{user}", user) for user in users])
    second_push = CountingConnection.writes

    # SCRIPT EXISTS, SCRIPT LOAD (first time only), then the one pipeline.
    assert first_push <= 3
    assert second_push <= 2
    assert counts == dict.fromkeys(users, 1)
    assert again == dict.fromkeys(users, 2)
    assert await store.unread_count("user999") == 2


async def script_calls(client: aioredis.Redis) -> int:
    """How many EVAL/EVALSHA calls the server has run so far."""
    stats = await client.info("commandstats")
    return sum(
        int(value["calls"])
        for name, value in stats.items()
        if name in ("cmdstat_evalsha", "cmdstat_eval") and isinstance(value, dict)
    )


async def test_a_steady_heartbeat_runs_no_script_and_reasserts_the_indexes(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    store = RedisActiveUsersStore(client, redis_prefix)
    live = [conn(f"s{i}", f"user{i % 5}") for i in range(20)]
    try:
        for connection in live:
            await store.add_connection(connection, expires_at=at(10))
        # a lost write of a cluster-wide index: the online set is gone
        await client.delete(f"{redis_prefix}online:{Keys.safe(CHAT)}")
        assert await store.online_count(CHAT) == 0
        before = await script_calls(client)

        assert await store.heartbeat(live, at(40)) == []

        assert await script_calls(client) == before  # 4 plain commands per connection
        assert await store.online_count(CHAT) == 5  # healed
        assert await store.next_expiry() == at(40)
        assert await store.sweep_expired(at(30)) == []
        # a connection the store lost takes the script again, and brings its user back
        await store.sweep_expired(at(50))
        changes = await store.heartbeat(live[:1], at(60))
        assert [(c.connection.sid, c.user_online_changed) for c in changes] == [("s0", True)]
        assert await script_calls(client) > before
    finally:
        await drop(client, redis_prefix)


async def test_a_connection_is_registered_in_one_round_trip_even_after_a_script_flush(
    counting: aioredis.Redis, redis_prefix: str
) -> None:
    store = RedisActiveUsersStore(counting, redis_prefix)
    await store.add_connection(conn("s0", "alice"))  # loads the script if needed
    CountingConnection.writes = 0
    first = await store.add_connection(conn("s1", "bob"), expires_at=at(10))
    assert CountingConnection.writes == 1  # no SCRIPT EXISTS before the pipeline
    assert first.user_online_changed

    await counting.script_flush()  # as after a Redis restart: NOSCRIPT, load, run again
    again = await store.add_connection(conn("s2", "bob"), expires_at=at(10))
    assert not again.user_online_changed  # bob's second connection, registered once
    assert {c.sid for c in await store.user_connections("bob")} == {"s1", "s2"}
    assert await store.online_count(CHAT) == 2

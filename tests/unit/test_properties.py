"""Properties of presence, seq and idempotency, over generated interleavings."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import Counter
from collections.abc import Awaitable
from datetime import datetime
from typing import TypeVar

import attrs
import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)

from adapters.redis.active_users import RedisActiveUsersStore
from adapters.redis.base import create_client
from adapters.redis.messages import RedisMessageStore
from adapters.redis.notifications import RedisNotificationStore
from adapters.redis.rooms import RedisRoomRepository
from domain.errors import Conflict
from domain.events import MessagePosted, PresenceChanged
from domain.model import CHAT_NAMESPACE, NOTIFICATIONS_NAMESPACE, ChatMessage, UserId
from tests.support.fakes import Domain, build_domain

T = TypeVar("T")

BACKENDS = ["memory", "redis"]
"""Every property runs on the memory adapters and on the Redis adapters."""

_REDIS: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _redis_for_properties(request: pytest.FixtureRequest) -> None:
    """Tests with a `backend` of "redis" get the session's Redis server."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("backend") == "redis":
        _REDIS["url"] = str(request.getfixturevalue("redis_url"))


class Backend:
    """The domain on one backend's stores; Redis clients are closed by `close`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._client: aioredis.Redis | None = None

    def build(self) -> Domain:
        """A fresh domain: empty memory stores, or Redis stores under a new prefix."""
        if self.name == "memory":
            return build_domain()
        self._client = client = create_client(_REDIS["url"])
        prefix = f"prop:{uuid.uuid4().hex[:10]}:"
        return build_domain(
            active_users=RedisActiveUsersStore(client, prefix),
            room_repository=RedisRoomRepository(client, prefix),
            message_store=RedisMessageStore(client, prefix),
            notification_store=RedisNotificationStore(client, prefix),
        )

    async def close(self) -> None:
        """Close the Redis client (and its pool), if any."""
        if self._client is not None:
            await self._client.aclose(close_connection_pool=True)
            self._client = None


USERS = ("alice", "bob", "carol")
CHAT = CHAT_NAMESPACE
NOTIFS = NOTIFICATIONS_NAMESPACE

Conn = tuple[UserId, str]
"""(user_id, sid) of a connection the machine made."""


# --- presence -------------------------------------------------------------------------------


class PresenceMachine(RuleBasedStateMachine):
    """Users connect and disconnect devices on /chat and /notifications in any order.

    The model is the set of live sids per user and namespace; the system under test is the
    PresenceService / ConnectionManager pair on the memory store.
    """

    chat: Bundle[Conn] = Bundle("chat")
    notifs: Bundle[Conn] = Bundle("notifs")
    gone: Bundle[Conn] = Bundle("gone")

    backend = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.stores = Backend(self.backend)
        self.domain: Domain = self.stores.build()
        self.live: dict[str, set[str]] = {ns: set() for ns in (CHAT, NOTIFS)}
        self.owner: dict[str, UserId] = {}
        self.expected_events: list[tuple[UserId, bool]] = []
        self.last_left: dict[UserId, datetime] = {}
        self.sids = itertools.count()

    def run(self, awaitable: Awaitable[T]) -> T:
        return self.loop.run_until_complete(awaitable)

    def teardown(self) -> None:
        self.run(self.stores.close())
        self.loop.close()
        asyncio.set_event_loop(None)

    def count(self, user_id: UserId, namespace: str) -> int:
        return sum(1 for sid in self.live[namespace] if self.owner[sid] == user_id)

    def new_sid(self, namespace: str) -> str:
        return f"{namespace.strip('/')}-{next(self.sids)}"

    # connects

    @rule(target=chat, user_id=st.sampled_from(USERS))
    def connect_chat(self, user_id: UserId) -> Conn:
        sid = self.new_sid(CHAT)
        first = self.count(user_id, CHAT) == 0
        self.domain.clock.advance(1)
        change, _ = self.run(self.domain.presence.connect(user_id, sid))
        assert change.user_online_changed is first
        self.live[CHAT].add(sid)
        self.owner[sid] = user_id
        if first:
            self.expected_events.append((user_id, True))
        return (user_id, sid)

    @rule(target=notifs, user_id=st.sampled_from(USERS))
    def connect_notifications(self, user_id: UserId) -> Conn:
        sid = self.new_sid(NOTIFS)
        first = self.count(user_id, NOTIFS) == 0
        change = self.run(self.domain.connections.register_connection(user_id, sid, NOTIFS))
        assert change.user_online_changed is first
        self.live[NOTIFS].add(sid)
        self.owner[sid] = user_id
        return (user_id, sid)

    @rule(conn=chat)
    def connect_the_same_sid_again(self, conn: Conn) -> None:
        user_id, sid = conn
        change, _ = self.run(self.domain.presence.connect(user_id, sid))
        assert change.user_online_changed is False

    # disconnects

    def _chat_gone(self, user_id: UserId, sid: str, at: datetime, changed: bool) -> None:
        self.live[CHAT].discard(sid)
        last = self.count(user_id, CHAT) == 0
        assert changed is last
        if last:
            self.expected_events.append((user_id, False))
            self.last_left[user_id] = at

    @rule(target=gone, conn=consumes(chat))
    def disconnect_chat(self, conn: Conn) -> Conn:
        user_id, sid = conn
        at = self.domain.clock.advance(1)
        change = self.run(self.domain.presence.disconnect(user_id, sid))
        assert change is not None
        assert change.connection.sid == sid
        self._chat_gone(user_id, sid, at, change.user_online_changed)
        return conn

    @rule(target=gone, conn=consumes(chat))
    def expire_chat(self, conn: Conn) -> Conn:
        """The connection's instance died: a sweeper removes it, then presence announces."""
        user_id, sid = conn
        at = self.domain.clock.advance(1)
        change = self.run(self.domain.active_users.remove_connection(sid, at))
        assert change is not None
        self.run(self.domain.presence.announce_expired(change))
        self._chat_gone(user_id, sid, at, change.user_online_changed)
        return conn

    @rule(target=gone, conn=consumes(notifs))
    def disconnect_notifications(self, conn: Conn) -> Conn:
        user_id, sid = conn
        change = self.run(self.domain.connections.unregister_connection(user_id, sid))
        assert change is not None
        self.live[NOTIFS].discard(sid)
        assert change.user_online_changed is (self.count(user_id, NOTIFS) == 0)
        return conn

    @rule(target=gone, conn=consumes(notifs))
    def expire_notifications(self, conn: Conn) -> Conn:
        _, sid = conn
        change = self.run(self.domain.active_users.remove_connection(sid, self.domain.clock.now()))
        assert change is not None
        self.run(self.domain.presence.announce_expired(change))  # must not announce anything
        self.live[NOTIFS].discard(sid)
        return conn

    @rule(conn=gone)
    def disconnect_a_closed_connection_again(self, conn: Conn) -> None:
        user_id, sid = conn
        self.domain.clock.advance(1)
        assert self.run(self.domain.presence.disconnect(user_id, sid)) is None

    @rule(user_id=st.sampled_from(USERS), n=st.integers(0, 5))
    def disconnect_an_unknown_sid(self, user_id: UserId, n: int) -> None:
        self.domain.clock.advance(1)
        assert self.run(self.domain.presence.disconnect(user_id, f"ghost-{n}")) is None

    @rule(conn=chat, other=st.sampled_from(USERS))
    def disconnect_someone_elses_sid(self, conn: Conn, other: UserId) -> None:
        owner, sid = conn
        if other == owner:
            return
        assert self.run(self.domain.presence.disconnect(other, sid)) is None

    # invariants

    @invariant()
    def online_iff_a_chat_connection_is_live(self) -> None:
        entries = self.run(self.domain.presence.presence_of(USERS))
        for entry in entries:
            chat_count = self.count(entry.user_id, CHAT)
            online = chat_count > 0
            assert entry.online is online, entry
            assert entry.connections == chat_count
            assert self.run(self.domain.connections.is_user_online(entry.user_id)) is online
            assert entry.last_seen == (None if online else self.last_left.get(entry.user_id))
            notifs_online = self.count(entry.user_id, NOTIFS) > 0
            assert (
                self.run(self.domain.connections.is_user_online(entry.user_id, NOTIFS))
                is notifs_online
            )

    @invariant()
    def registered_connections_match_the_model(self) -> None:
        for user_id in USERS:
            found = self.run(self.domain.connections.get_user_connections(user_id))
            expected = {
                (ns, sid)
                for ns, sids in self.live.items()
                for sid in sids
                if self.owner[sid] == user_id
            }
            assert {(c.namespace, c.sid) for c in found} == expected
            assert len(found) == len(expected)

    @invariant()
    def presence_events_match_the_transitions_and_alternate(self) -> None:
        events = self.domain.events.of_type(PresenceChanged)
        assert [(e.user_id, e.online) for e in events] == self.expected_events
        for user_id in USERS:
            flags = [e.online for e in events if e.user_id == user_id]
            assert flags == [i % 2 == 0 for i in range(len(flags))], (user_id, flags)
        assert len(self.domain.events.events) == len(events)  # nothing else was published


class RedisPresenceMachine(PresenceMachine):
    """The same machine on the Redis connection registry."""

    backend = "redis"


@pytest.mark.parametrize("backend", BACKENDS)
def test_presence_follows_live_chat_connections(backend: str) -> None:
    run_state_machine_as_test(
        PresenceMachine if backend == "memory" else RedisPresenceMachine,
        settings=settings(max_examples=60, stateful_step_count=40, deadline=None),
    )


# --- seq and idempotency --------------------------------------------------------------------

OWNER = "alice"
AUTHORS = (OWNER, "bob", "carol")
CLIENT_IDS = tuple(f"c{i}" for i in range(6))


@attrs.frozen
class Send:
    """Post a message (a repeated `(author, client_msg_id)` is a resend)."""

    author: UserId
    client_msg_id: str
    text: str


@attrs.frozen
class Burst:
    """Post several messages concurrently."""

    sends: tuple[Send, ...]


@attrs.frozen
class Edit:
    """The author edits the `pick`-th stored message."""

    pick: int
    text: str


@attrs.frozen
class Delete:
    """The author or the owner deletes the `pick`-th stored message."""

    pick: int
    by_owner: bool


@attrs.frozen
class Resend:
    """Send the `pick`-th stored message's key again, with another text."""

    pick: int


Op = Send | Burst | Edit | Delete | Resend

texts = st.text(alphabet="abc xyz", min_size=1, max_size=8)
sends = st.builds(
    Send,
    author=st.sampled_from(AUTHORS),
    client_msg_id=st.sampled_from(CLIENT_IDS),
    text=texts,
)
ops: st.SearchStrategy[Op] = st.one_of(
    sends,
    st.builds(Burst, sends=st.lists(sends, min_size=2, max_size=6).map(tuple)),
    st.builds(Edit, pick=st.integers(0, 50), text=texts),
    st.builds(Delete, pick=st.integers(0, 50), by_owner=st.booleans()),
    st.builds(Resend, pick=st.integers(0, 50)),
)

PROPERTY_SETTINGS = settings(
    max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@attrs.define
class Expected:
    """What the model says a stored message must look like."""

    id: str
    seq: int
    text: str
    deleted: bool = False


async def _new_room(domain: Domain) -> str:
    room = await domain.rooms.create(OWNER, "room", members=list(AUTHORS))
    domain.events.clear()
    return room.id


async def _run_ops(domain: Domain, room_id: str, operations: list[Op]) -> dict[str, Expected]:
    """Apply the operations; return the model of every stored message by id."""
    model: dict[str, Expected] = {}
    order: list[str] = []  # message ids, first stored first
    by_key: dict[tuple[UserId, str], str] = {}

    def remember(send: Send, message: ChatMessage) -> None:
        key = (send.author, send.client_msg_id)
        if key in by_key:
            assert message.id == by_key[key]  # a resend returns the stored message
            assert message.seq == model[message.id].seq
            return
        by_key[key] = message.id
        model[message.id] = Expected(message.id, message.seq, message.text)
        order.append(message.id)

    def picked(pick: int) -> Expected | None:
        return model[order[pick % len(order)]] if order else None

    for op in operations:
        if isinstance(op, Send):
            message = await domain.messages.post(op.author, room_id, op.text, op.client_msg_id)
            remember(op, message)
        elif isinstance(op, Burst):
            results = await asyncio.gather(
                *(
                    domain.messages.post(s.author, room_id, s.text, s.client_msg_id)
                    for s in op.sends
                )
            )
            for send, message in zip(op.sends, results, strict=True):
                remember(send, message)
        elif isinstance(op, Resend):
            target = picked(op.pick)
            if target is None:
                continue
            stored = await domain.message_store.get(room_id, target.id)
            assert stored is not None
            again = await domain.messages.post(
                stored.author_id, room_id, target.text + "!", stored.client_msg_id
            )
            assert (again.id, again.seq) == (target.id, target.seq)
        elif isinstance(op, Edit):
            target = picked(op.pick)
            if target is None:
                continue
            stored = await domain.message_store.get(room_id, target.id)
            assert stored is not None
            if target.deleted:
                with pytest.raises(Conflict):
                    await domain.messages.edit(stored.author_id, room_id, target.id, op.text)
            else:
                await domain.messages.edit(stored.author_id, room_id, target.id, op.text)
                target.text = op.text
        else:
            target = picked(op.pick)
            if target is None:
                continue
            stored = await domain.message_store.get(room_id, target.id)
            assert stored is not None
            deleter = OWNER if op.by_owner else stored.author_id
            await domain.messages.delete(deleter, room_id, target.id)
            target.deleted, target.text = True, ""
    return model


@pytest.mark.parametrize("backend", BACKENDS)
@PROPERTY_SETTINGS
@given(operations=st.lists(ops, max_size=25))
def test_history_is_gap_free_whatever_the_operations(backend: str, operations: list[Op]) -> None:
    stores = Backend(backend)

    async def scenario() -> None:
        try:
            await check(stores.build())
        finally:
            await stores.close()

    async def check(domain: Domain) -> None:
        room_id = await _new_room(domain)
        model = await _run_ops(domain, room_id, operations)
        n = len(model)

        everything = await domain.message_store.history(room_id, after_seq=0, limit=n + 10)
        assert [m.seq for m in everything.messages] == list(range(1, n + 1))
        assert everything.has_more is False
        assert await domain.message_store.last_seq(room_id) == n
        for message in everything.messages:
            expected = model[message.id]
            assert (message.seq, message.text, message.deleted) == (
                expected.seq,
                expected.text,
                expected.deleted,
            )
        # paging backward through the service sees the same gap-free sequence
        seen: list[int] = []
        before: int | None = None
        while True:
            page = await domain.messages.history(OWNER, room_id, before_seq=before, limit=7)
            seen = [m.seq for m in page.messages] + seen
            if not page.has_more:
                break
            before = page.messages[0].seq
        assert seen == list(range(1, n + 1))
        posted = domain.events.of_type(MessagePosted)
        assert sorted(e.message.seq for e in posted) == list(range(1, n + 1))

    asyncio.run(scenario())


@pytest.mark.parametrize("backend", BACKENDS)
@PROPERTY_SETTINGS
@given(batches=st.lists(st.lists(sends, min_size=1, max_size=5), min_size=1, max_size=8))
def test_resending_never_duplicates(backend: str, batches: list[list[Send]]) -> None:
    stores = Backend(backend)

    async def scenario() -> None:
        try:
            await check(stores.build())
        finally:
            await stores.close()

    async def check(domain: Domain) -> None:
        room_id = await _new_room(domain)
        returned: dict[tuple[UserId, str], set[tuple[str, int]]] = {}
        first_texts: dict[tuple[UserId, str], set[str]] = {}
        for batch in batches:
            results = await asyncio.gather(
                *(domain.messages.post(s.author, room_id, s.text, s.client_msg_id) for s in batch)
            )
            new_keys = {(s.author, s.client_msg_id) for s in batch} - returned.keys()
            for send, message in zip(batch, results, strict=True):
                key = (send.author, send.client_msg_id)
                returned.setdefault(key, set()).add((message.id, message.seq))
                if key in new_keys:
                    first_texts.setdefault(key, set()).add(send.text)

        keys = returned.keys()
        # each key always came back as one and the same message
        assert all(len(found) == 1 for found in returned.values()), returned
        assert await domain.message_store.last_seq(room_id) == len(keys)
        posted = domain.events.of_type(MessagePosted)
        assert len(posted) == len(keys)
        per_key = Counter((e.message.author_id, e.message.client_msg_id) for e in posted)
        assert per_key == Counter(dict.fromkeys(keys, 1))
        for event in posted:
            key = (event.message.author_id, event.message.client_msg_id)
            assert returned[key] == {(event.message.id, event.message.seq)}
            # a resend never overwrites: the text is the one of the first sending
            assert event.message.text in first_texts[key]
            stored = await domain.message_store.get(room_id, event.message.id)
            assert stored == event.message

    asyncio.run(scenario())

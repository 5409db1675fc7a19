"""`WireEventPublisher`: domain events become wire events to the right channels."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

import attrs
import pytest

from adapters.memory import MemoryActiveUsersStore, MemoryMetrics
from application.contract import wire
from application.json_types import JsonObject
from application.ports import Broadcaster
from application.publisher import WireEventPublisher
from domain.events import (
    MembershipChanged,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    PresenceChanged,
    TypingChanged,
)
from domain.model import CHAT_NAMESPACE, NOTIFICATIONS_NAMESPACE, ChatMessage, Sid, UserId
from domain.services.connections import ConnectionManager
from tests.support.fakes import FixedClock

AT = datetime(2026, 11, 25, 19, 30, 0, 123000, tzinfo=UTC)


@attrs.frozen
class Emitted:
    namespace: str
    channel: str
    event: str
    payload: JsonObject
    skip_sids: tuple[Sid, ...]
    delivered_to: tuple[Sid, ...]


class RecordingBroadcaster:
    """A `Broadcaster` over a real `ConnectionManager` that records every emit.

    Channels hold sids, as Socket.IO rooms do: `add_user_to_channel` puts the user's current
    connections on the namespace into the channel.
    """

    def __init__(self, connections: ConnectionManager) -> None:
        self._connections = connections
        self.channels: defaultdict[tuple[str, str], set[Sid]] = defaultdict(set)
        self.emitted: list[Emitted] = []
        self.direct: list[tuple[str, Sid, str, JsonObject]] = []
        self.channel_ops: list[tuple[str, str, UserId, str]] = []

    async def to_channel(
        self,
        namespace: str,
        channel: str,
        event: str,
        payload: JsonObject,
        skip_sids: Sequence[Sid] = (),
    ) -> None:
        members = self.channels[(namespace, channel)]
        delivered = tuple(sorted(members - set(skip_sids)))
        self.emitted.append(
            Emitted(namespace, channel, event, payload, tuple(skip_sids), delivered)
        )

    async def to_connection(
        self, namespace: str, sid: Sid, event: str, payload: JsonObject
    ) -> None:
        self.direct.append((namespace, sid, event, payload))

    async def add_user_to_channel(self, namespace: str, user_id: UserId, channel: str) -> None:
        self.channel_ops.append(("add", namespace, user_id, channel))
        for connection in await self._connections.get_user_connections(user_id):
            if connection.namespace == namespace:
                self.channels[(namespace, channel)].add(connection.sid)

    async def remove_user_from_channel(self, namespace: str, user_id: UserId, channel: str) -> None:
        self.channel_ops.append(("remove", namespace, user_id, channel))
        for connection in await self._connections.get_user_connections(user_id):
            if connection.namespace == namespace:
                self.channels[(namespace, channel)].discard(connection.sid)

    def of(self, event: str) -> list[Emitted]:
        return [e for e in self.emitted if e.event == event]


@attrs.frozen
class World:
    connections: ConnectionManager
    broadcaster: RecordingBroadcaster
    metrics: MemoryMetrics
    publisher: WireEventPublisher


def build_world(window_s: float = 60.0) -> World:
    connections = ConnectionManager(MemoryActiveUsersStore(), FixedClock(), instance_id="i1")
    broadcaster = RecordingBroadcaster(connections)
    metrics = MemoryMetrics()
    port: Broadcaster = broadcaster
    publisher = WireEventPublisher(port, connections, metrics, window_s)
    return World(connections, broadcaster, metrics, publisher)


@pytest.fixture
def world() -> World:
    return build_world()


def a_message(seq: int = 1, text: str = "hello") -> ChatMessage:
    return ChatMessage(f"m{seq}", "r1", seq, "alice", text, f"c{seq}", AT)


def test_the_fake_is_a_broadcaster(world: World) -> None:
    assert isinstance(world.broadcaster, Broadcaster)


# --- messages ---------------------------------------------------------------------------------


async def test_message_posted(world: World) -> None:
    message = a_message()
    await world.publisher.publish(MessagePosted(message))
    assert world.broadcaster.emitted == [
        Emitted(CHAT_NAMESPACE, "room:r1", "message:new", wire.message_json(message), (), ())
    ]
    assert world.metrics.messages["sent"] == 1
    await world.publisher.publish(MessagePosted(a_message(2)))
    assert world.metrics.messages["sent"] == 2


async def test_message_edited(world: World) -> None:
    message = attrs.evolve(a_message(), text="changed", edited_at=AT)
    await world.publisher.publish(MessageEdited(message))
    [emitted] = world.broadcaster.emitted
    assert (emitted.namespace, emitted.channel, emitted.event) == (
        CHAT_NAMESPACE,
        "room:r1",
        "message:updated",
    )
    assert emitted.payload == wire.message_json(message)
    assert emitted.payload["text"] == "changed"
    assert world.metrics.messages["sent"] == 0


async def test_message_deleted(world: World) -> None:
    await world.publisher.publish(MessageDeleted(room_id="r1", message_id="m7", seq=7))
    [emitted] = world.broadcaster.emitted
    assert (emitted.namespace, emitted.channel, emitted.event) == (
        CHAT_NAMESPACE,
        "room:r1",
        "message:deleted",
    )
    assert emitted.payload == {"room_id": "r1", "message_id": "m7", "seq": 7}
    assert world.metrics.messages["sent"] == 0


async def test_messages_reach_members_connections(world: World) -> None:
    await world.connections.register_connection("bob", "b1", CHAT_NAMESPACE)
    await world.connections.register_connection("bob", "b2", CHAT_NAMESPACE)
    await world.publisher.publish(MembershipChanged("r1", "bob", joined=True))
    await world.publisher.publish(MessagePosted(a_message()))
    [posted] = world.broadcaster.of("message:new")
    assert posted.delivered_to == ("b1", "b2")


# --- membership -------------------------------------------------------------------------------


async def test_join_adds_the_users_chat_connections_to_the_channel(world: World) -> None:
    await world.connections.register_connection("bob", "b1", CHAT_NAMESPACE)
    await world.connections.register_connection("bob", "n1", NOTIFICATIONS_NAMESPACE)
    await world.publisher.publish(MembershipChanged("r1", "bob", joined=True))
    assert world.broadcaster.channel_ops == [("add", CHAT_NAMESPACE, "bob", "room:r1")]
    assert world.broadcaster.channels[(CHAT_NAMESPACE, "room:r1")] == {"b1"}
    assert world.broadcaster.emitted == []  # coalesced, not sent yet
    await world.publisher.coalescer.flush_all()
    [members] = world.broadcaster.of("room:members")
    assert members.channel == "room:r1"
    assert members.namespace == CHAT_NAMESPACE
    assert members.payload == {"room_id": "r1", "joined": ["bob"], "left": []}


async def test_leave_removes_the_users_connections(world: World) -> None:
    await world.connections.register_connection("bob", "b1", CHAT_NAMESPACE)
    await world.publisher.publish(MembershipChanged("r1", "bob", joined=True))
    await world.publisher.coalescer.flush_all()
    await world.publisher.publish(MembershipChanged("r1", "bob", joined=False))
    assert world.broadcaster.channel_ops[-1] == ("remove", CHAT_NAMESPACE, "bob", "room:r1")
    assert world.broadcaster.channels[(CHAT_NAMESPACE, "room:r1")] == set()
    await world.publisher.coalescer.flush_all()
    left = world.broadcaster.of("room:members")[-1]
    assert left.payload == {"room_id": "r1", "joined": [], "left": ["bob"]}


async def test_membership_changes_are_coalesced(world: World) -> None:
    for user in ("a", "b", "c"):
        await world.publisher.publish(MembershipChanged("r1", user, joined=True))
    await world.publisher.publish(MembershipChanged("r1", "b", joined=False))
    await world.publisher.publish(MembershipChanged("r2", "z", joined=True))
    await world.publisher.coalescer.flush_all()
    members = world.broadcaster.of("room:members")
    assert len(members) == 2
    assert {e.channel: e.payload for e in members} == {
        "room:r1": {"room_id": "r1", "joined": ["a", "c"], "left": []},
        "room:r2": {"room_id": "r2", "joined": ["z"], "left": []},
    }


async def test_coalesced_events_go_out_after_the_window() -> None:
    world = build_world(window_s=0.01)
    await world.publisher.publish(MembershipChanged("r1", "bob", joined=True))
    await asyncio.sleep(0.1)
    assert [e.event for e in world.broadcaster.emitted] == ["room:members"]


# --- presence ---------------------------------------------------------------------------------


async def test_presence_changed_coalesces_a_diff_for_each_room(world: World) -> None:
    await world.publisher.publish(PresenceChanged("bob", online=True, room_ids=("r1", "r2")))
    await world.publisher.publish(PresenceChanged("carol", online=False, room_ids=("r2",)))
    assert world.broadcaster.emitted == []
    await world.publisher.coalescer.flush_all()
    diffs = {e.channel: e.payload for e in world.broadcaster.of("presence:diff")}
    assert diffs == {
        "room:r1": {"room_id": "r1", "joins": ["bob"], "leaves": []},
        "room:r2": {"room_id": "r2", "joins": ["bob"], "leaves": ["carol"]},
    }
    assert all(e.namespace == CHAT_NAMESPACE for e in world.broadcaster.emitted)
    assert world.broadcaster.channel_ops == []


async def test_presence_without_rooms_sends_nothing(world: World) -> None:
    await world.publisher.publish(PresenceChanged("bob", online=True, room_ids=()))
    await world.publisher.coalescer.flush_all()
    assert world.broadcaster.emitted == []


async def test_presence_flap_in_one_window_sends_nothing(world: World) -> None:
    await world.publisher.publish(PresenceChanged("bob", online=False, room_ids=("r1",)))
    await world.publisher.publish(PresenceChanged("bob", online=True, room_ids=("r1",)))
    await world.publisher.coalescer.flush_all()
    assert world.broadcaster.emitted == []


# --- typing -----------------------------------------------------------------------------------


async def test_typing_skips_exactly_the_typing_users_chat_sids(world: World) -> None:
    await world.connections.register_connection("alice", "a1", CHAT_NAMESPACE)
    await world.connections.register_connection("alice", "a2", CHAT_NAMESPACE)
    await world.connections.register_connection("alice", "an", NOTIFICATIONS_NAMESPACE)
    await world.connections.register_connection("bob", "b1", CHAT_NAMESPACE)
    for user in ("alice", "bob"):
        await world.publisher.publish(MembershipChanged("r1", user, joined=True))
    await world.publisher.publish(TypingChanged("r1", "alice", typing=True))
    [typing] = world.broadcaster.of("typing")
    assert typing.namespace == CHAT_NAMESPACE
    assert typing.channel == "room:r1"
    assert typing.payload == {"room_id": "r1", "user_id": "alice", "typing": True}
    assert sorted(typing.skip_sids) == ["a1", "a2"]
    assert typing.delivered_to == ("b1",)


async def test_typing_of_a_user_without_connections_skips_nobody(world: World) -> None:
    await world.connections.register_connection("bob", "b1", CHAT_NAMESPACE)
    await world.publisher.publish(MembershipChanged("r1", "bob", joined=True))
    await world.publisher.publish(TypingChanged("r1", "ghost", typing=False))
    [typing] = world.broadcaster.of("typing")
    assert typing.skip_sids == ()
    assert typing.payload == {"room_id": "r1", "user_id": "ghost", "typing": False}
    assert typing.delivered_to == ("b1",)

"""The /notifications namespace over the wire: handshake, `notification:list`,
`notification:mark_read`, `notification:unread_count`; delivery of pushed notifications to
every device of a user (and to nobody else); and `mention` notifications from /chat messages.

"Nothing arrived" is shown with a round trip on the same socket: a server event queued for a
connection before the ack of a later command is delivered before that ack.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

import attrs
import pytest
from dependency_injector import providers

from adapters.auth import issue_token
from application.containers import Container
from application.json_types import JsonObject
from application.ports import Broadcaster
from tests.integration.conftest import JWT_SECRET, Connector, ContainerSetup, RunningServer
from tests.integration.support import (
    CHAT,
    ISO_MS,
    NOTIFICATION_EVENTS,
    NOTIFICATION_KEYS,
    ApiClient,
    ChatClient,
    NotificationsClient,
    create_room,
    integer,
    obj,
    objs,
    send,
    string,
    wait_until,
)


def _ids(data: JsonObject) -> list[str]:
    """The ids of the `notifications` of a `notification:list` ack, in order."""
    return [string(n["id"]) for n in objs(data["notifications"])]


def _field_paths(error: JsonObject) -> set[str]:
    return {string(f["path"]) for f in objs(obj(error["details"])["fields"])}


def _refusal_code(error: JsonObject) -> str:
    data = obj(error["data"])
    assert set(data) == {"code", "message"}, data
    assert string(data["message"])
    return string(data["code"])


async def _unread(client: NotificationsClient) -> int:
    data = await client.ok("notification:unread_count", {})
    assert set(data) == {"unread_count"}, data
    return integer(data["unread_count"])


async def _assert_no_notification_events(client: NotificationsClient) -> None:
    """After a round trip on its own socket, `client` has received no notification event."""
    await client.ok("notification:unread_count", {})
    for event in NOTIFICATION_EVENTS:
        assert client.received(event) == [], f"{client.user_id} got {event}"


# --- handshake ------------------------------------------------------------------------------


async def test_no_token_is_auth_required(connect: Connector) -> None:
    error = await connect.notifications_refused()

    assert _refusal_code(error) == "auth_required"


async def test_bad_tokens_are_auth_invalid(connect: Connector) -> None:
    forged = issue_token("another-secret-" + "y" * 32, "bob")

    assert _refusal_code(await connect.notifications_refused({"token": "garbage"})) == (
        "auth_invalid"
    )
    assert _refusal_code(await connect.notifications_refused({"token": forged})) == ("auth_invalid")


async def test_expired_token_is_auth_expired(connect: Connector) -> None:
    expired = issue_token(JWT_SECRET, "bob", ttl_s=3600, now=datetime.now(UTC) - timedelta(hours=2))

    assert _refusal_code(await connect.notifications_refused({"token": expired})) == (
        "auth_expired"
    )


async def test_refused_handshakes_register_no_connection(
    connect: Connector, server: RunningServer
) -> None:
    await connect.notifications_refused({"token": "garbage"})

    bob = await connect.notifications("bob")

    assert bob.connected
    assert (
        server.container.metrics().value("switchboard_connections", namespace="/notifications") == 1
    )


async def test_a_notifications_connection_does_not_make_the_user_online(
    connect: Connector, api: ApiClient
) -> None:
    await connect.notifications("bob")

    response = await api.request("GET", "/api/v1/presence?user_ids=bob")

    assert response.status == 200
    entry = objs(response.json["presence"])[0]
    assert entry["online"] is False
    assert entry["connections"] == 0


# --- notification:list ----------------------------------------------------------------------


async def test_list_is_newest_first_with_the_full_shape(connect: Connector, api: ApiClient) -> None:
    ids = [(await api.push(["bob"], f"n{i}", body=f"b{i}", data={"i": i}))[0] for i in range(3)]
    bob = await connect.notifications("bob")

    data = await bob.ok("notification:list", {})

    assert set(data) == {"notifications", "unread_count", "has_more"}
    assert _ids(data) == ids[::-1]
    assert data["unread_count"] == 3
    assert data["has_more"] is False
    newest = objs(data["notifications"])[0]
    assert set(newest) == NOTIFICATION_KEYS
    assert newest["user_id"] == "bob"
    assert newest["kind"] == "system"
    assert newest["title"] == "n2"
    assert newest["body"] == "b2"
    assert newest["data"] == {"i": 2}
    assert ISO_MS.match(string(newest["created_at"]))
    assert newest["read_at"] is None


async def test_list_of_a_user_without_notifications_is_empty(connect: Connector) -> None:
    bob = await connect.notifications("bob")

    assert await bob.ok("notification:list", {}) == {
        "notifications": [],
        "unread_count": 0,
        "has_more": False,
    }


async def test_list_pages_with_limit_and_the_before_cursor(
    connect: Connector, api: ApiClient
) -> None:
    ids = [(await api.push(["bob"], f"n{i}"))[0] for i in range(5)]
    bob = await connect.notifications("bob")

    first = await bob.ok("notification:list", {"limit": 2})
    second = await bob.ok("notification:list", {"limit": 2, "before": ids[3]})
    last = await bob.ok("notification:list", {"limit": 2, "before": ids[1]})

    assert (_ids(first), first["has_more"]) == ([ids[4], ids[3]], True)
    assert (_ids(second), second["has_more"]) == ([ids[2], ids[1]], True)
    assert (_ids(last), last["has_more"]) == ([ids[0]], False)
    assert {first["unread_count"], second["unread_count"], last["unread_count"]} == {5}
    # a page that ends exactly at the oldest notification has nothing more
    exact = await bob.ok("notification:list", {"limit": 3, "before": ids[3]})
    assert (_ids(exact), exact["has_more"]) == ([ids[2], ids[1], ids[0]], False)


async def test_list_defaults_to_50(connect: Connector, api: ApiClient) -> None:
    ids = [(await api.push(["bob"], f"n{i}"))[0] for i in range(51)]
    bob = await connect.notifications("bob")

    page = await bob.ok("notification:list", {})
    rest = await bob.ok("notification:list", {"before": ids[1]})

    assert _ids(page) == ids[:0:-1]
    assert page["has_more"] is True
    assert (_ids(rest), rest["has_more"]) == ([ids[0]], False)


async def test_unread_only_skips_read_ones_and_pages_among_unread(
    connect: Connector, api: ApiClient
) -> None:
    ids = [(await api.push(["bob"], f"n{i}"))[0] for i in range(5)]
    bob = await connect.notifications("bob")
    await bob.ok("notification:mark_read", {"ids": [ids[1], ids[3]]})

    unread = await bob.ok("notification:list", {"unread_only": True})
    page = await bob.ok("notification:list", {"unread_only": True, "limit": 2})
    rest = await bob.ok("notification:list", {"unread_only": True, "before": ids[2]})
    everything = await bob.ok("notification:list", {"unread_only": False})

    assert (_ids(unread), unread["unread_count"], unread["has_more"]) == (
        [ids[4], ids[2], ids[0]],
        3,
        False,
    )
    assert (_ids(page), page["has_more"]) == ([ids[4], ids[2]], True)
    assert (_ids(rest), rest["has_more"]) == ([ids[0]], False)
    assert _ids(everything) == ids[::-1]
    read = {string(n["id"]): n["read_at"] for n in objs(everything["notifications"])}
    assert read[ids[0]] is None
    assert read[ids[2]] is None
    assert ISO_MS.match(string(read[ids[1]]))
    assert ISO_MS.match(string(read[ids[3]]))


async def test_before_an_unknown_or_foreign_id_gives_an_empty_page(
    connect: Connector, api: ApiClient
) -> None:
    alice_id = (await api.push(["alice"], "for alice"))[0]
    await api.push(["bob"], "for bob")
    bob = await connect.notifications("bob")

    foreign = await bob.ok("notification:list", {"before": alice_id})
    unknown = await bob.ok("notification:list", {"before": "no-such-id"})

    empty = {"notifications": [], "unread_count": 1, "has_more": False}
    assert foreign == empty
    assert unknown == empty


@pytest.mark.parametrize(
    ("payload", "paths"),
    [
        ({"limit": 0}, {"$.limit"}),
        ({"limit": 101}, {"$.limit"}),
        ({"limit": "5"}, {"$.limit"}),
        ({"limit": True}, {"$.limit"}),
        ({"unread_only": "yes"}, {"$.unread_only"}),
        ({"before": ""}, {"$.before"}),
        ({"before": 5}, {"$.before"}),
        ("list", {"$"}),
        ([1, 2], {"$"}),
    ],
)
async def test_list_validation(connect: Connector, payload: object, paths: set[str]) -> None:
    bob = await connect.notifications("bob")

    error = await bob.fails("notification:list", payload, code="validation_failed")

    assert _field_paths(error) == paths


# --- notification:mark_read and notification:unread_count -----------------------------------


async def test_mark_read_by_ids(connect: Connector, api: ApiClient) -> None:
    ids = [(await api.push(["bob"], f"n{i}"))[0] for i in range(3)]
    bob = await connect.notifications("bob")
    assert await _unread(bob) == 3

    data = await bob.ok("notification:mark_read", {"ids": [ids[0], ids[2]]})

    assert data == {"unread_count": 1}
    assert await _unread(bob) == 1
    assert _ids(await bob.ok("notification:list", {"unread_only": True})) == [ids[1]]
    # marking again (or an unknown id) changes nothing
    again = await bob.ok("notification:mark_read", {"ids": [ids[0], ids[0], "no-such-id"]})
    assert again == {"unread_count": 1}


async def test_mark_read_ignores_the_ids_of_another_user(
    connect: Connector, api: ApiClient
) -> None:
    alice_id = (await api.push(["alice"], "for alice"))[0]
    bob_id = (await api.push(["bob"], "for bob"))[0]
    alice = await connect.notifications("alice")
    bob = await connect.notifications("bob")

    only_foreign = await bob.ok("notification:mark_read", {"ids": [alice_id]})
    mixed = await bob.ok("notification:mark_read", {"ids": [alice_id, bob_id]})

    assert only_foreign == {"unread_count": 1}
    assert mixed == {"unread_count": 0}
    # each call tells bob's devices the count, even when nothing changed
    counts = [p["unread_count"] for p in bob.received("notification:unread_count")]
    assert counts == [1, 0]
    assert await _unread(alice) == 1
    listed = objs((await alice.ok("notification:list", {}))["notifications"])
    assert [(n["id"], n["read_at"]) for n in listed] == [(alice_id, None)]
    # alice heard of no change of her count
    assert alice.received("notification:unread_count") == []


async def test_mark_all_read(connect: Connector, api: ApiClient) -> None:
    for i in range(3):
        await api.push(["bob"], f"n{i}")
    other = (await api.push(["alice"], "for alice"))[0]
    bob = await connect.notifications("bob")
    alice = await connect.notifications("alice")

    data = await bob.ok("notification:mark_read", {"all": True})

    assert data == {"unread_count": 0}
    assert await _unread(bob) == 0
    assert _ids(await bob.ok("notification:list", {"unread_only": True})) == []
    listed = objs((await bob.ok("notification:list", {}))["notifications"])
    assert len(listed) == 3
    assert all(ISO_MS.match(string(n["read_at"])) for n in listed)
    # alice's notifications are untouched, and bob's count counts again from zero
    assert _ids(await alice.ok("notification:list", {"unread_only": True})) == [other]
    await api.push(["bob"], "later")
    assert await _unread(bob) == 1


@pytest.mark.parametrize(
    ("payload", "paths"),
    [
        ({}, {"$"}),
        ({"ids": []}, {"$.ids"}),
        ({"all": False}, {"$"}),
        ({"ids": [f"n{i}" for i in range(101)]}, {"$.ids"}),
        ({"ids": "n1"}, {"$.ids"}),
        ({"ids": [5]}, {"$.ids[0]"}),
        ({"all": "yes"}, {"$.all"}),
        ("all", {"$"}),
    ],
)
async def test_mark_read_validation(
    connect: Connector, api: ApiClient, payload: object, paths: set[str]
) -> None:
    await api.push(["bob"], "n")
    bob = await connect.notifications("bob")

    error = await bob.fails("notification:mark_read", payload, code="validation_failed")

    assert _field_paths(error) == paths
    assert await _unread(bob) == 1


async def test_unread_count(connect: Connector, api: ApiClient) -> None:
    bob = await connect.notifications("bob")
    assert await bob.ok("notification:unread_count", {}) == {"unread_count": 0}

    await api.push(["bob"], "one")
    await api.push(["bob", "alice"], "two")

    assert await bob.ok("notification:unread_count", {}) == {"unread_count": 2}


async def test_unknown_events_are_unknown_event(connect: Connector) -> None:
    bob = await connect.notifications("bob")

    await bob.fails("notification:explode", {}, code="unknown_event")
    # the /chat commands do not exist on /notifications
    await bob.fails("room:list", {}, code="unknown_event")
    assert bob.connected
    assert await _unread(bob) == 0


# --- delivery -------------------------------------------------------------------------------


async def test_a_push_reaches_every_device_of_the_user_and_nobody_else(
    connect: Connector, api: ApiClient
) -> None:
    phone = await connect.notifications("bob")
    laptop = await connect.notifications("bob")
    alice = await connect.notifications("alice")

    ids = await api.push(["bob"], "deploy done", kind="deploy", body="v2", data={"v": 2})

    for device in (phone, laptop):
        notification = await device.wait_for("notification:new")
        assert set(notification) == NOTIFICATION_KEYS
        assert notification["id"] == ids[0]
        assert notification["user_id"] == "bob"
        assert notification["kind"] == "deploy"
        assert notification["title"] == "deploy done"
        assert notification["body"] == "v2"
        assert notification["data"] == {"v": 2}
        assert ISO_MS.match(string(notification["created_at"]))
        assert notification["read_at"] is None
        assert await device.wait_for("notification:unread_count") == {"unread_count": 1}
    assert phone.received("notification:new") == laptop.received("notification:new")
    await _assert_no_notification_events(alice)


async def test_marking_read_on_one_device_updates_the_count_on_all(
    connect: Connector, api: ApiClient
) -> None:
    phone = await connect.notifications("bob")
    laptop = await connect.notifications("bob")
    alice = await connect.notifications("alice")
    ids = await api.push(["bob"], "hello")
    for device in (phone, laptop):
        await device.wait_for("notification:unread_count", lambda p: p["unread_count"] == 1)

    await phone.ok("notification:mark_read", {"ids": ids})

    for device in (phone, laptop):
        await device.wait_for("notification:unread_count", lambda p: p["unread_count"] == 0)
    assert [p["unread_count"] for p in laptop.received("notification:unread_count")] == [1, 0]
    await _assert_no_notification_events(alice)


async def test_mark_all_read_updates_the_count_on_all_devices(
    connect: Connector, api: ApiClient
) -> None:
    phone = await connect.notifications("bob")
    laptop = await connect.notifications("bob")
    await api.push(["bob"], "one")
    await api.push(["bob"], "two")
    await laptop.wait_for("notification:unread_count", lambda p: p["unread_count"] == 2)

    await phone.ok("notification:mark_read", {"all": True})

    await laptop.wait_for("notification:unread_count", lambda p: p["unread_count"] == 0)


async def test_a_push_to_several_users_reaches_each_once(
    connect: Connector, api: ApiClient
) -> None:
    alice = await connect.notifications("alice")
    bob = await connect.notifications("bob")
    carol = await connect.notifications("carol")

    ids = await api.push(["alice", "bob", "alice"], "team")

    assert len(ids) == 2
    assert (await alice.wait_for("notification:new"))["id"] == ids[0]
    assert (await bob.wait_for("notification:new"))["id"] == ids[1]
    await alice.ok("notification:unread_count", {})
    assert len(alice.received("notification:new")) == 1
    await _assert_no_notification_events(carol)


async def test_an_offline_user_finds_the_notification_on_connect(
    connect: Connector, api: ApiClient
) -> None:
    ids = await api.push(["dave"], "while you were away")

    dave = await connect.notifications("dave")

    data = await dave.ok("notification:list", {})
    assert _ids(data) == ids
    assert data["unread_count"] == 1
    assert objs(data["notifications"])[0]["title"] == "while you were away"


async def test_a_user_who_reconnects_gets_new_pushes_again(
    connect: Connector, api: ApiClient
) -> None:
    first = await connect.notifications("bob")
    await first.disconnect()
    second = await connect.notifications("bob")

    ids = await api.push(["bob"], "after reconnect")

    assert (await second.wait_for("notification:new"))["id"] == ids[0]


async def test_a_chat_only_connection_gets_no_notification_events(
    connect: Connector, api: ApiClient
) -> None:
    chat = await connect("bob")
    on_chat: list[str] = []
    for event in NOTIFICATION_EVENTS:
        chat.sio.on(event, _note(on_chat, event), namespace=CHAT)
    device = await connect.notifications("bob")

    await api.push(["bob"], "hello")

    await device.wait_for("notification:unread_count")
    await chat.ok("room:list", {})
    assert on_chat == []


class _Handler(Protocol):
    """A Socket.IO event handler taking any arguments."""

    def __call__(self, *args: object) -> None: ...


def _note(seen: list[str], event: str) -> _Handler:
    def handler(*_: object) -> None:
        seen.append(event)

    return handler


# --- mentions -------------------------------------------------------------------------------


async def _room_of_three(connect: Connector) -> tuple[str, ChatClient, ChatClient, ChatClient]:
    alice = await connect("alice")
    bob = await connect("bob")
    carol = await connect("carol")
    room = await create_room(alice, "general", members=["bob", "carol"])
    return string(room["id"]), alice, bob, carol


async def test_a_mention_notifies_the_member_once(connect: Connector) -> None:
    room_id, alice, _bob, _carol = await _room_of_three(connect)
    n_alice = await connect.notifications("alice")
    n_bob = await connect.notifications("bob")
    n_carol = await connect.notifications("carol")

    message = await send(alice, room_id, "@bob look, @bob again; cc @carol_x and me @alice", "c1")

    mention = await n_bob.wait_for("notification:new")
    assert set(mention) == NOTIFICATION_KEYS
    assert mention["kind"] == "mention"
    assert mention["user_id"] == "bob"
    assert mention["data"] == {
        "room_id": room_id,
        "message_id": message["id"],
        "seq": message["seq"],
    }
    assert mention["read_at"] is None
    assert await n_bob.wait_for("notification:unread_count") == {"unread_count": 1}
    listed = await n_bob.ok("notification:list", {})
    assert _ids(listed) == [mention["id"]]
    assert len(n_bob.received("notification:new")) == 1
    for other in (n_alice, n_carol):
        await _assert_no_notification_events(other)
        assert _ids(await other.ok("notification:list", {})) == []


@pytest.mark.parametrize(
    ("text", "mentioned"),
    [
        ("@bob", True),
        ("hey @bob!", True),
        ("@bob. see above", True),
        ("@bob,@bob;@bob", True),
        ("mail me at x@bob.org", True),
        ("(@bob)", True),
        ("@bobby", False),
        ("@bob_x", False),
        ("@bob1", False),
        ("@bob\u00e9", False),
        ("@bob\u0663", False),
        ("@Bob", False),
        ("@ bob", False),
        ("bob", False),
    ],
)
async def test_what_counts_as_a_mention(connect: Connector, text: str, mentioned: bool) -> None:
    alice = await connect("alice")
    room = await create_room(alice, "general", members=["bob"])
    n_bob = await connect.notifications("bob")

    await send(alice, string(room["id"]), text, "c1")

    # the mention is created before the ack of message:send
    assert await _unread(n_bob) == (1 if mentioned else 0)


async def test_resend_and_edit_create_no_mention(connect: Connector) -> None:
    room_id, alice, _bob, _carol = await _room_of_three(connect)
    n_bob = await connect.notifications("bob")
    n_carol = await connect.notifications("carol")
    message = await send(alice, room_id, "hi @bob", "c1")
    await n_bob.wait_for("notification:new")

    again = await send(alice, room_id, "hi @bob", "c1")
    await alice.ok(
        "message:edit",
        {"room_id": room_id, "message_id": message["id"], "text": "hi @bob and @carol"},
    )

    assert again["id"] == message["id"]
    # the mention is created before the ack, so the stores are final by now
    assert await _unread(n_bob) == 1
    assert len(n_bob.received("notification:new")) == 1
    await _assert_no_notification_events(n_carol)
    assert _ids(await n_carol.ok("notification:list", {})) == []


async def test_a_mention_of_a_non_member_creates_none(connect: Connector) -> None:
    room_id, alice, _bob, _carol = await _room_of_three(connect)
    n_dave = await connect.notifications("dave")
    n_bob = await connect.notifications("bob")

    await send(alice, room_id, "hey @dave, are you there?", "c1")

    await _assert_no_notification_events(n_dave)
    assert _ids(await n_dave.ok("notification:list", {})) == []
    await _assert_no_notification_events(n_bob)


async def test_mentions_follow_membership(connect: Connector) -> None:
    room_id, alice, _bob, carol = await _room_of_three(connect)
    dave = await connect("dave")
    n_carol = await connect.notifications("carol")
    n_dave = await connect.notifications("dave")
    await dave.ok("room:join", {"room_id": room_id})
    await carol.ok("room:leave", {"room_id": room_id})

    await send(alice, room_id, "@dave welcome! @carol left", "c1")

    assert (await n_dave.wait_for("notification:new"))["kind"] == "mention"
    await _assert_no_notification_events(n_carol)


async def test_several_members_mentioned_in_one_message_each_get_one(
    connect: Connector,
) -> None:
    room_id, alice, _bob, _carol = await _room_of_three(connect)
    n_bob = await connect.notifications("bob")
    n_carol = await connect.notifications("carol")

    message = await send(alice, room_id, "@carol, @bob: standup?", "c1")

    for device in (n_bob, n_carol):
        mention = await device.wait_for("notification:new")
        assert mention["user_id"] == device.user_id
        assert obj(mention["data"])["message_id"] == message["id"]
        assert await _unread(device) == 1


async def test_a_system_message_over_the_api_mentions_too(
    connect: Connector, api: ApiClient
) -> None:
    room_id, _alice, _bob, _carol = await _room_of_three(connect)
    n_bob = await connect.notifications("bob")

    response = await api.post(f"/api/v1/rooms/{room_id}/messages", {"text": "@bob deploy done"})

    assert response.status == 201
    message = obj(response.json["message"])
    mention = await n_bob.wait_for("notification:new")
    assert mention["kind"] == "mention"
    assert mention["data"] == {
        "room_id": room_id,
        "message_id": message["id"],
        "seq": message["seq"],
    }


# --- the unread count event under concurrency ----------------------------------------------


@attrs.define(eq=False)
class Gate:
    """Holds the first emit of `event` to `channel` until released (a slow emit: a Redis
    publish, or the yield `NotificationService.notify` makes every 100 notifications)."""

    channel: str
    event: str
    armed: bool = True
    reached: asyncio.Event = attrs.Factory(asyncio.Event)
    release: asyncio.Event = attrs.Factory(asyncio.Event)


class GatedBroadcaster:
    """The server's own broadcaster, but the gated emit waits for `gate.release`."""

    def __init__(self, inner: Broadcaster, gate: Gate) -> None:
        self._inner = inner
        self._gate = gate

    async def to_channel(
        self,
        namespace: str,
        channel: str,
        event: str,
        payload: JsonObject,
        skip_sids: Sequence[str] = (),
    ) -> None:
        gate = self._gate
        if gate.armed and (channel, event) == (gate.channel, gate.event):
            gate.armed = False
            gate.reached.set()
            await gate.release.wait()
        await self._inner.to_channel(namespace, channel, event, payload, skip_sids)

    async def to_connection(
        self, namespace: str, sid: str, event: str, payload: JsonObject
    ) -> None:
        await self._inner.to_connection(namespace, sid, event, payload)

    async def add_user_to_channel(self, namespace: str, user_id: str, channel: str) -> None:
        await self._inner.add_user_to_channel(namespace, user_id, channel)

    async def remove_user_from_channel(self, namespace: str, user_id: str, channel: str) -> None:
        await self._inner.remove_user_from_channel(namespace, user_id, channel)


class TestUnreadCountUnderConcurrency:
    @pytest.fixture
    def gate(self) -> Gate:
        return Gate(channel="user:bob", event="notification:new")

    @pytest.fixture
    def configure_container(self, gate: Gate) -> ContainerSetup:
        def configure(container: Container) -> None:
            gated: Broadcaster = GatedBroadcaster(container.broadcaster(), gate)
            container.broadcaster.override(providers.Object(gated))

        return configure

    async def test_the_gate_is_in_effect(
        self, connect: Connector, api: ApiClient, gate: Gate
    ) -> None:
        bob = await connect.notifications("bob")
        push = asyncio.create_task(api.push(["bob"], "held"))
        await asyncio.wait_for(gate.reached.wait(), timeout=5)
        assert not push.done()

        gate.release.set()

        ids = await asyncio.wait_for(push, timeout=5)
        assert (await bob.wait_for("notification:new"))["id"] == ids[0]

    async def test_the_last_unread_count_event_is_the_current_count(
        self, connect: Connector, api: ApiClient, gate: Gate
    ) -> None:
        phone = await connect.notifications("bob")
        laptop = await connect.notifications("bob")
        push = asyncio.create_task(api.push(["bob"], "breaking news"))
        await asyncio.wait_for(gate.reached.wait(), timeout=5)
        # the notification is stored; its events are not out yet; the phone reads everything
        assert await phone.ok("notification:mark_read", {"all": True}) == {"unread_count": 0}
        gate.release.set()
        await asyncio.wait_for(push, timeout=5)
        await laptop.wait_for("notification:new")
        # the mark_read's count, then the push's own: both must have arrived
        await wait_until(
            lambda: len(laptop.received("notification:unread_count")) >= 2,
            what="two unread counts",
        )

        assert await _unread(laptop) == 0
        counts = [p["unread_count"] for p in laptop.received("notification:unread_count")]
        assert counts[-1] == 0, f"the laptop shows {counts[-1]} unread, the server has 0"

"""Every typed command and event of the SDK against the real server, in process, on loopback.

The unit tests next to this file use fakes; this one checks that the SDK's payloads and
parsers match contract v1 as the server really speaks it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import pytest

from adapters.auth import issue_token
from adapters.client import (
    ClientSettings,
    ConflictError,
    ConnectionState,
    ErrorCategory,
    ForbiddenError,
    MembersChanged,
    Message,
    MessageDeleted,
    NotFoundError,
    Notification,
    PresenceDiff,
    SwitchboardClient,
    Typing,
    ValidationError,
)
from application.settings import Settings
from tests.support.inprocess import serve_in_process

SECRET = "sdk-live-secret-" + "x" * 32
T = TypeVar("T")


@pytest.fixture
async def server_url() -> AsyncIterator[str]:
    settings = Settings(dev=True, jwt_secret=SECRET, api_key="k" * 32, coalesce_window_ms=30)
    async with serve_in_process(settings) as url:
        yield url


def client_for(url: str, user_id: str) -> SwitchboardClient:
    async def token() -> str:
        return issue_token(SECRET, user_id)

    return SwitchboardClient(url, token, ClientSettings(ack_timeout_s=5, connect_timeout_s=5))


def collect(subscribe: Callable[[Callable[[T], None]], Callable[[], None]]) -> list[T]:
    seen: list[T] = []
    subscribe(seen.append)
    return seen


async def until(check: Callable[[], bool], timeout_s: float = 3.0) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            if check():
                return
            await asyncio.sleep(0.01)


async def test_every_command_and_event_round_trips(server_url: str) -> None:
    async with (
        client_for(server_url, "alice") as alice,
        client_for(server_url, "bob") as bob,
    ):
        bob_messages: list[Message] = collect(bob.on_message)
        bob_updates: list[Message] = collect(bob.on_message_updated)
        bob_deletions: list[MessageDeleted] = collect(bob.on_message_deleted)
        bob_notifications: list[Notification] = collect(bob.on_notification)
        bob_counts: list[int] = collect(bob.on_unread_count)
        alice_typing: list[Typing] = collect(alice.on_typing)
        alice_members: list[MembersChanged] = collect(alice.on_members)
        alice_presence: list[PresenceDiff] = collect(alice.on_presence)

        room = await alice.create_room("ops", visibility="private", members=["bob"])
        assert (room.name, room.visibility, room.owner_id, room.member_count) == (
            "ops",
            "private",
            "alice",
            2,
        )
        assert [r.id for r in await bob.list_rooms()] == [room.id]
        joined = await bob.join_room(room.id)
        assert {p.user_id for p in joined.online} == {"alice", "bob"}
        assert joined.online_count == 2
        assert (joined.recent, joined.last_seq) == ((), 0)

        sent = await alice.send(room.id, "hi @bob", client_msg_id="m-1")
        assert (sent.seq, sent.client_msg_id, sent.author_id, sent.deleted) == (
            1,
            "m-1",
            "alice",
            False,
        )
        assert await alice.send(room.id, "hi again @bob", client_msg_id="m-1") == sent
        await until(lambda: bool(bob_messages) and bool(bob_notifications))
        assert bob_messages == [sent]
        mention = bob_notifications[0]
        assert (mention.kind, mention.title, mention.data["seq"]) == (
            "mention",
            "alice mentioned you",
            1,
        )
        await until(lambda: 1 in bob_counts)

        edited = await alice.edit(room.id, sent.id, "hello @bob")
        assert edited.edited_at is not None
        await alice.delete(room.id, sent.id)
        await until(lambda: bool(bob_updates) and bool(bob_deletions))
        assert bob_updates[0].text == "hello @bob"
        assert bob_deletions == [MessageDeleted(room.id, sent.id, 1)]
        with pytest.raises(ConflictError):
            await alice.edit(room.id, sent.id, "too late")
        with pytest.raises(ForbiddenError) as forbidden:
            await bob.edit(room.id, sent.id, "not mine")
        assert forbidden.value.category is ErrorCategory.FORBIDDEN
        assert forbidden.value.correlation_id

        for n in range(2, 6):
            await alice.send(room.id, f"n{n}")
        page = await bob.history(room.id, before_seq=5, limit=2)
        assert ([m.seq for m in page.messages], page.has_more) == ([3, 4], True)
        page = await bob.history(room.id, after_seq=3)
        assert ([m.seq for m in page.messages], page.has_more) == ([4, 5], False)
        assert page.messages[0].text == "n4"
        tombstone = (await bob.history(room.id, limit=1, before_seq=2)).messages[0]
        assert (tombstone.deleted, tombstone.text) == (True, "")

        await bob.set_typing(room.id, True)
        await until(lambda: bool(alice_typing))
        assert alice_typing[0] == Typing(room.id, "bob", True)

        presence = await alice.get_presence(["bob", "zed", "bob"])
        assert [(p.user_id, p.online, p.connections) for p in presence] == [
            ("bob", True, 1),
            ("zed", False, 0),
        ]

        page_n = await bob.list_notifications(unread_only=True, limit=10)
        assert [n.id for n in page_n.notifications] == [mention.id]
        assert (page_n.unread_count, page_n.has_more) == (1, False)
        assert await bob.mark_read([mention.id]) == 0
        assert await bob.mark_read(all=True) == 0
        assert await bob.unread_count() == 0
        older = await bob.list_notifications(before=mention.id)
        assert older.notifications == ()

        await alice.invite(room.id, "carol")
        async with client_for(server_url, "carol") as carol:
            await until(lambda: any("carol" in d.joins for d in alice_presence))
            await until(lambda: any("carol" in c.joined for c in alice_members))
            assert carol.state is ConnectionState.CONNECTED
        await bob.leave_room(room.id)
        assert bob.last_seq(room.id) is None
        await until(lambda: any("bob" in c.left for c in alice_members))

        with pytest.raises(NotFoundError):
            await bob.join_room("no-such-room")
        with pytest.raises(ValidationError) as invalid:
            await alice.send(room.id, "")
        assert invalid.value.fields == [("$.text", "must have 1 to 4000 characters")]
        assert invalid.value.details["client_msg_id"]
        assert alice.metrics.last_rtt_s is not None
    assert alice.state is ConnectionState.CLOSED

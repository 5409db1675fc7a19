"""The embedded server with `SWITCHBOARD_SNAPSHOT_PATH`: what clients created survives a
restart (graceful, or a crash after a periodic save), seqs continue gap-free, idempotent
resends still find their message, and a snapshot that cannot be used stops the start."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import attrs
import pytest

from adapters.memory.snapshot import SnapshotError, read_snapshot
from application.json_types import JsonObject, JsonValue
from application.settings import Settings
from tests.integration.conftest import (
    Connector,
    RunningServer,
    make_settings,
    start_server,
    stop_server,
)
from tests.integration.support import (
    ApiClient,
    create_room,
    integer,
    obj,
    objs,
    send,
    seqs,
    string,
)


def snapshot_settings(path: Path, interval_s: float = 60.0) -> Settings:
    """Memory-store test settings that keep a snapshot at `path`."""
    return attrs.evolve(make_settings(), snapshot_path=str(path), snapshot_interval_s=interval_s)


@attrs.define
class Session:
    """A running server with its connector and an HTTP API client."""

    server: RunningServer
    connect: Connector
    api: ApiClient
    http: aiohttp.ClientSession
    closed: bool = False

    async def close(self) -> None:
        """Disconnect the clients and stop the server (gracefully: the last save runs)."""
        self.closed = True
        await self.connect.close_all()
        await self.http.close()
        await stop_server(self.server)


async def open_session(settings: Settings) -> Session:
    """Start a server and its clients' factory."""
    server = await start_server(settings)
    http = aiohttp.ClientSession()
    return Session(
        server=server,
        connect=Connector(server),
        api=ApiClient(http, server.url, server.settings.api_key),
        http=http,
    )


@pytest.fixture
async def sessions() -> AsyncIterator[list[Session]]:
    """Sessions a test opens; any still open are closed after it."""
    opened: list[Session] = []
    try:
        yield opened
    finally:
        for session in opened:
            if not session.closed:
                await session.close()


@attrs.frozen
class Seen:
    """What clients saw of the state, to compare before and after a restart."""

    rooms: dict[str, JsonValue]
    history: dict[str, JsonValue]
    notifications: dict[str, JsonValue]
    unread: dict[str, int]


async def observe(session: Session, room_ids: list[str]) -> Seen:
    """Every user's room list, every room's history, every user's notifications."""
    rooms: dict[str, JsonValue] = {}
    history: dict[str, JsonValue] = {}
    notifications: dict[str, JsonValue] = {}
    unread: dict[str, int] = {}
    for user in ("alice", "bob", "carol"):
        chat = await session.connect(user)
        rooms[user] = (await chat.ok("room:list", {}))["rooms"]
        for room_id in room_ids:
            ack = await chat.call("message:history", {"room_id": room_id, "limit": 100})
            if ack["ok"] is True:
                history[room_id] = obj(ack["data"])["messages"]
        await chat.disconnect()
        notes = await session.connect.notifications(user)
        listed = await notes.ok("notification:list", {"limit": 100})
        notifications[user] = listed["notifications"]
        unread[user] = integer(listed["unread_count"])
        await notes.disconnect()
    return Seen(rooms=rooms, history=history, notifications=notifications, unread=unread)


async def chat_a_while(session: Session) -> tuple[str, str, JsonObject]:
    """Rooms, members, messages (edited, deleted, a mention), pushed notifications, some read.
    Returns the public room, the private room, and alice's first message."""
    alice = await session.connect("alice")
    bob = await session.connect("bob")
    carol = await session.connect("carol")
    public = string((await create_room(alice, "general"))["id"])
    private = string(
        (await create_room(alice, "secret", visibility="private", members=["bob"]))["id"]
    )
    await bob.ok("room:join", {"room_id": public})
    await carol.ok("room:join", {"room_id": public})
    first = await send(alice, public, "hello @bob", "c-1")  # a mention notification for bob
    second = await send(bob, public, "hi alice", "c-2")
    await send(alice, public, "typo", "c-3")
    third = await send(bob, public, "to be edited", "c-4")
    await bob.ok("message:edit", {"room_id": public, "message_id": third["id"], "text": "edited"})
    await alice.ok("message:delete", {"room_id": public, "message_id": second["id"]})
    await send(bob, private, "just us", "p-1")
    await carol.ok("room:leave", {"room_id": public})
    pushed = await session.api.push(["bob", "carol"], "deploy done", kind="ci", data={"n": [1.5]})
    await session.api.push(["carol"], "second")
    notes = await session.connect.notifications("bob")
    await notes.ok("notification:mark_read", {"ids": [pushed[0]]})
    return public, private, first


async def test_everything_survives_a_graceful_restart(
    tmp_path: Path, sessions: list[Session]
) -> None:
    path = tmp_path / "snapshot.json"
    first = await open_session(snapshot_settings(path))
    sessions.append(first)
    public, private, hello = await chat_a_while(first)
    before = await observe(first, [public, private])
    await first.close()
    assert path.exists(), "the graceful stop did not save the snapshot"

    second = await open_session(snapshot_settings(path))
    sessions.append(second)
    after = await observe(second, [public, private])
    assert after == before
    assert seqs(before.history[public]) == [1, 2, 3, 4]
    assert before.unread == {"alice": 0, "bob": 1, "carol": 2}
    assert [obj(m)["deleted"] for m in objs(before.history[public])] == [False, True, False, False]

    alice = await second.connect("alice")
    replay = await send(alice, public, "hello @bob", "c-1")  # the same client_msg_id
    assert replay == hello
    fresh = await send(alice, public, "after the restart", "c-5")
    assert fresh["seq"] == 5  # gap-free after the restored log
    bob = await second.connect("bob")
    joined = await bob.ok("room:join", {"room_id": public, "since_seq": 3})
    assert seqs(joined["missed"]) == [4, 5]
    assert (await send(bob, private, "still private", "p-2"))["seq"] == 2
    carol = await second.connect("carol")
    await carol.fails("message:history", {"room_id": private}, code="forbidden")


async def test_a_crash_after_a_periodic_save_loses_nothing_saved(
    tmp_path: Path, sessions: list[Session]
) -> None:
    path = tmp_path / "snapshot.json"
    first = await open_session(snapshot_settings(path, interval_s=0.1))
    sessions.append(first)
    alice = await first.connect("alice")
    room = string((await create_room(alice, "general"))["id"])
    for index in range(3):
        await send(alice, room, f"m{index}", f"c{index}")
    deadline = time.monotonic() + 5
    while not (path.exists() and read_snapshot(path).counts().messages == 3):
        assert time.monotonic() < deadline, "no periodic save within 5 s"
        await asyncio.sleep(0.05)
    crashed = tmp_path / "as-left-by-a-crash.json"
    shutil.copyfile(path, crashed)  # what a kill -9 would leave: the last periodic save

    second = await open_session(snapshot_settings(crashed))
    sessions.append(second)
    alice_again = await second.connect("alice")
    history = await alice_again.ok("message:history", {"room_id": room})
    assert seqs(history["messages"]) == [1, 2, 3]
    assert (await send(alice_again, room, "next", "c-next"))["seq"] == 4


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"format": "switchboard-snapshot", "version": 1, "rooms": [', "not valid JSON"),
        ('{"format": "switchboard-snapshot", "version": 9}', "unsupported snapshot version 9"),
    ],
)
async def test_a_snapshot_that_cannot_be_used_stops_the_start(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "snapshot.json"
    path.write_text(content)
    with pytest.raises(SnapshotError, match=message):
        await start_server(snapshot_settings(path))
    assert path.read_text() == content  # never overwritten with an empty store


async def test_with_redis_the_snapshot_path_is_ignored(
    tmp_path: Path, redis_url: str, redis_prefix: str, sessions: list[Session]
) -> None:
    path = tmp_path / "snapshot.json"
    settings = attrs.evolve(
        snapshot_settings(path, interval_s=0.1),
        store="redis",
        redis_url=redis_url,
        redis_prefix=redis_prefix,
    )
    session = await open_session(settings)
    sessions.append(session)
    assert session.server.container.snapshot_keeper() is None
    alice = await session.connect("alice")
    await create_room(alice, "general")
    await asyncio.sleep(0.3)
    await session.close()
    assert not path.exists()

"""The fast broadcast path: frames written straight to WebSockets keep their order."""

from __future__ import annotations

import asyncio
import functools

import attrs
import pytest

from adapters.socketio.delivery import STATS
from adapters.socketio.frames import websocket_close_frame, websocket_frame
from application.settings import Settings
from tests.integration.conftest import Connector, make_settings
from tests.integration.support import ChatClient, create_room, integer, string, wait_until


@pytest.fixture
def server_settings() -> Settings:
    """A burst faster than the default message:send limit."""
    return attrs.evolve(make_settings(), rate_message_send="100000 per second")


def _has(reader: ChatClient, count: int) -> bool:
    return len(reader.received("message:new")) >= count


def test_websocket_frame_lengths_and_opcodes() -> None:
    assert websocket_frame("hi") == b"\x81\x02hi"
    assert websocket_frame("é") == b"\x81\x02\xc3\xa9"  # the length counts UTF-8 bytes
    medium = websocket_frame("x" * 200)
    assert medium[:4] == b"\x81\x7e\x00\xc8"
    assert len(medium) == 204
    large = websocket_frame(b"y" * 70_000)
    assert large[:2] == b"\x82\x7f"  # bytes: a binary frame
    assert int.from_bytes(large[2:10], "big") == 70_000
    assert len(large) == 70_010
    assert websocket_close_frame(1000) == b"\x88\x02\x03\xe8"


async def test_a_burst_arrives_complete_and_in_order_through_both_paths(
    connect: Connector,
) -> None:
    alice = await connect("alice")
    readers = [await connect(f"reader{i}") for i in range(3)]
    room_id = string((await create_room(alice, members=[f"reader{i}" for i in range(3)]))["id"])
    direct_before, queued_before = STATS.direct, STATS.queued

    async def send(i: int) -> None:
        await alice.ok(
            "message:send", {"room_id": room_id, "text": f"m{i}", "client_msg_id": f"c{i}"}
        )

    await asyncio.gather(*(send(i) for i in range(150)))

    for reader in readers:
        await wait_until(functools.partial(_has, reader, 150), what="150 messages")
        seqs = [integer(m["seq"]) for m in reader.received("message:new")]
        assert seqs == list(range(1, 151))  # complete, no duplicate, in order
    assert STATS.direct > direct_before  # WebSocket connections were written directly
    assert STATS.direct + STATS.queued - direct_before - queued_before >= 4 * 150

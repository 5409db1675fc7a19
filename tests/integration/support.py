"""Helpers of the integration tests: a typed wrapper over `socketio.AsyncClient`, narrowing
of untyped wire values to JSON types, and bounded waiting."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import cast

import attrs
import socketio

from application.json_types import JsonObject, JsonValue

CHAT = "/chat"

SERVER_EVENTS = (
    "message:new",
    "message:updated",
    "message:deleted",
    "room:members",
    "presence:diff",
    "typing",
)
"""The /chat server events every test client records."""

ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
"""Times on the wire: ISO 8601 UTC with milliseconds."""

DEFAULT_WAIT_S = 3.0


# --- narrowing ------------------------------------------------------------------------------


def obj(value: object) -> JsonObject:
    """`value` as a JSON object (fails the test otherwise)."""
    assert isinstance(value, dict), f"expected a JSON object, got {value!r}"
    return cast("JsonObject", value)


def arr(value: object) -> list[JsonValue]:
    """`value` as a JSON array."""
    assert isinstance(value, list), f"expected a JSON array, got {value!r}"
    return cast("list[JsonValue]", value)


def objs(value: object) -> list[JsonObject]:
    """`value` as a JSON array of objects."""
    return [obj(item) for item in arr(value)]


def string(value: object) -> str:
    """`value` as a string."""
    assert isinstance(value, str), f"expected a string, got {value!r}"
    return value


def integer(value: object) -> int:
    """`value` as an integer (not a bool)."""
    assert isinstance(value, int), f"expected an integer, got {value!r}"
    assert not isinstance(value, bool), f"expected an integer, got {value!r}"
    return value


def strings(value: object) -> list[str]:
    """`value` as a JSON array of strings."""
    return [string(item) for item in arr(value)]


def seqs(messages: object) -> list[int]:
    """The `seq` of each message of a JSON array of messages."""
    return [integer(m["seq"]) for m in objs(messages)]


# --- waiting --------------------------------------------------------------------------------


async def wait_until(
    predicate: Callable[[], bool], *, within: float = DEFAULT_WAIT_S, what: str = "condition"
) -> None:
    """Poll `predicate` every 10 ms until it holds; fail the test after `within` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(0.01)


# --- the client -----------------------------------------------------------------------------


@attrs.define(eq=False)
class ChatClient:
    """One connected /chat client of one user, recording every server event it receives."""

    user_id: str
    sio: socketio.AsyncClient
    events: dict[str, list[JsonObject]] = attrs.Factory(dict)

    def record(self, event: str, *args: object) -> None:
        """Keep one received server event (its single JSON object argument)."""
        payload: JsonObject
        if len(args) == 1 and isinstance(args[0], dict):
            payload = obj(args[0])
        else:  # e.g. `disconnect`, which carries a reason string (or nothing)
            payload = {"args": [repr(a) for a in args]}
        self.events.setdefault(event, []).append(payload)

    def received(self, event: str) -> list[JsonObject]:
        """The payloads of `event` received so far, in order."""
        return list(self.events.get(event, []))

    @property
    def connected(self) -> bool:
        """Whether the client is still connected."""
        return bool(self.sio.connected)

    async def call(self, event: str, payload: object = None, *, ack_s: float = 5) -> JsonObject:
        """Send a command with an ack callback; the ack envelope."""
        raw: object = await self.sio.call(event, payload, namespace=CHAT, timeout=ack_s)
        return obj(raw)

    async def ok(self, event: str, payload: object = None) -> JsonObject:
        """Send a command that must succeed; the ack's `data`."""
        ack = await self.call(event, payload)
        assert ack.get("ok") is True, f"{event} {payload!r} failed: {ack!r}"
        assert set(ack) == {"ok", "data"}, ack
        return obj(ack["data"])

    async def fails(self, event: str, payload: object = None, *, code: str) -> JsonObject:
        """Send a command that must fail with `code`; the ack's error object."""
        ack = await self.call(event, payload)
        assert ack.get("ok") is False, f"{event} {payload!r} should fail with {code}: {ack!r}"
        error = obj(ack["error"])
        assert error.get("code") == code, f"{event}: expected {code}, got {error!r}"
        assert string(error["message"])
        assert string(error["correlation_id"])
        return error

    async def wait_for(
        self,
        event: str,
        predicate: Callable[[JsonObject], bool] = lambda _: True,
        *,
        within: float = DEFAULT_WAIT_S,
    ) -> JsonObject:
        """The first received `event` matching `predicate`, waiting for it if need be."""
        found: list[JsonObject] = []

        def check() -> bool:
            found[:] = [p for p in self.events.get(event, []) if predicate(p)][:1]
            return bool(found)

        await wait_until(check, within=within, what=f"{event} at {self.user_id}")
        return found[0]

    async def disconnect(self) -> None:
        """Close the connection (idempotent)."""
        if self.sio.connected:
            await self.sio.disconnect()


def new_sio() -> socketio.AsyncClient:
    """A python-socketio client that never reconnects on its own."""
    return socketio.AsyncClient(reconnection=False, logger=False, engineio_logger=False)


# --- common commands ------------------------------------------------------------------------


async def create_room(
    client: ChatClient,
    name: str = "general",
    *,
    visibility: str = "public",
    members: list[str] | None = None,
) -> JsonObject:
    """Create a room through `client`; the room resource."""
    payload: JsonObject = {"name": name, "visibility": visibility}
    if members is not None:
        payload["members"] = list[JsonValue](members)
    return obj((await client.ok("room:create", payload))["room"])


async def send(client: ChatClient, room_id: str, text: str, client_msg_id: str) -> JsonObject:
    """Send a message through `client`; the stored message."""
    data = await client.ok(
        "message:send", {"room_id": room_id, "text": text, "client_msg_id": client_msg_id}
    )
    return obj(data["message"])

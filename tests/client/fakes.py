"""Small hand-written fakes for the SDK's unit tests: a fake server behind a fake transport.

`FakeServer` keeps rooms and messages in dicts and answers the few commands the SDK's
recovery needs; `FakeTransport` connects the client to it without any network.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import attrs

from adapters.client.errors import CONNECT_FAILED, NetworkError, error_for
from adapters.client.json_types import JsonObject, JsonValue
from adapters.client.transport import (
    Transport,
    TransportFactory,
    TransportListener,
    disconnected,
)


def message_json(room_id: str, seq: int, text: str = "", cid: str = "") -> JsonObject:
    """A message resource as the server sends it."""
    return {
        "id": f"{room_id}-m{seq}",
        "room_id": room_id,
        "seq": seq,
        "author_id": "alice",
        "text": text or f"text {seq}",
        "client_msg_id": cid or f"c{seq}",
        "created_at": "2026-11-28T20:08:02.061Z",
        "edited_at": None,
        "deleted": False,
    }


def room_json(room_id: str) -> JsonObject:
    """A room resource."""
    return {
        "id": room_id,
        "name": room_id,
        "visibility": "public",
        "owner_id": "alice",
        "created_at": "2026-11-28T20:08:02.057Z",
        "member_count": 1,
    }


def ok(data: JsonObject) -> JsonObject:
    """A success ack."""
    return {"ok": True, "data": data}


def fail(code: str, message: str = "no") -> JsonObject:
    """A failure ack."""
    return {"ok": False, "error": {"code": code, "message": message, "correlation_id": "cid-1"}}


@attrs.define
class FakeServer:
    """Rooms, messages and a list of connected transports; every call is recorded."""

    up: bool = True
    refuse_code: str | None = None
    fail_connects: int = 0
    missed_cap: int = 500
    rooms: dict[str, list[JsonObject]] = attrs.Factory(dict)
    transports: list[FakeTransport] = attrs.Factory(list)
    tokens: list[str] = attrs.Factory(list)
    calls: list[tuple[str, JsonObject]] = attrs.Factory(list)
    unread: int = 0
    ack_gate: asyncio.Event | None = None
    drop_on: str | None = None
    """Drop the connection when this event is received (before handling it)."""

    def post(self, room_id: str, text: str = "", *, cid: str = "", live: bool = True) -> JsonObject:
        """Store a message; broadcast `message:new` unless `live` is False (a lost event)."""
        messages = self.rooms.setdefault(room_id, [])
        for stored in messages:
            if cid and stored["client_msg_id"] == cid:
                return stored
        message = message_json(room_id, len(messages) + 1, text, cid)
        messages.append(message)
        if live:
            for transport in list(self.transports):
                transport.push("/chat", "message:new", message)
        return message

    def crash(self) -> None:
        """The server dies: every connection drops, new ones fail."""
        self.up = False
        for transport in list(self.transports):
            transport.drop()

    def handle(self, event: str, payload: JsonObject) -> JsonObject:
        """Answer one command."""
        self.calls.append((event, payload))
        room_id = str(payload.get("room_id", ""))
        if event == "room:create":
            room_id = f"r{len(self.rooms) + 1}"
            self.rooms[room_id] = []
            return ok({"room": room_json(room_id)})
        if event in ("room:join", "message:history") and room_id not in self.rooms:
            return fail("not_found")
        messages = self.rooms.get(room_id, [])
        if event == "room:join":
            since = payload.get("since_seq")
            missed = [m for m in messages if isinstance(since, int) and _seq(m) > since]
            return ok(
                {
                    "room": room_json(room_id),
                    "online": [],
                    "online_count": 0,
                    "missed": list[JsonValue](missed[: self.missed_cap]),
                    "has_more": len(missed) > self.missed_cap,
                }
            )
        if event == "message:history":
            return ok(self._history(messages, payload))
        if event == "message:send":
            message = self.post(room_id, str(payload["text"]), cid=str(payload["client_msg_id"]))
            return ok({"message": message})
        if event == "notification:unread_count":
            return ok({"unread_count": self.unread})
        if event == "room:list":
            return ok({"rooms": [room_json(r) for r in self.rooms]})
        return fail("unknown_event")

    def _history(self, messages: list[JsonObject], payload: JsonObject) -> JsonObject:
        limit = payload.get("limit", 50)
        assert isinstance(limit, int)
        after, before = payload.get("after_seq"), payload.get("before_seq")
        if isinstance(after, int):
            page = [m for m in messages if _seq(m) > after][:limit]
            more = len([m for m in messages if _seq(m) > after]) > limit
        else:
            older = [m for m in messages if not isinstance(before, int) or _seq(m) < before]
            page, more = older[-limit:], len(older) > limit
        return {"messages": list[JsonValue](page), "has_more": more}


def _seq(message: JsonObject) -> int:
    seq = message["seq"]
    assert isinstance(seq, int)
    return seq


@attrs.define(eq=False)
class FakeTransport:
    """A `Transport` wired straight to a `FakeServer`."""

    listener: TransportListener
    server: FakeServer
    live: bool = False
    closed_by_client: bool = False

    async def connect(
        self, url: str, token: str, namespaces: Sequence[str], timeout_s: float
    ) -> None:
        await asyncio.sleep(0)
        self.server.tokens.append(token)
        if not self.server.up:
            raise NetworkError(CONNECT_FAILED, "connection refused")
        if self.server.fail_connects > 0:
            self.server.fail_connects -= 1
            raise NetworkError(CONNECT_FAILED, "connection refused")
        if self.server.refuse_code is not None:
            raise error_for(self.server.refuse_code, "refused")
        self.live = True
        self.server.transports.append(self)

    async def call(
        self, namespace: str, event: str, payload: JsonObject, timeout_s: float
    ) -> object:
        if not self.live:
            raise disconnected("not connected")
        if self.server.drop_on == event:
            self.server.drop_on = None
            self.server.crash()
            raise disconnected()
        answer = self.server.handle(event, payload)
        if self.server.ack_gate is not None:
            await self.server.ack_gate.wait()
        await asyncio.sleep(0)
        if not self.live:
            raise disconnected()
        return answer

    async def disconnect(self) -> None:
        self.closed_by_client = True
        self.live = False
        if self in self.server.transports:
            self.server.transports.remove(self)

    def push(self, namespace: str, event: str, payload: JsonObject) -> None:
        """A server event to this connection."""
        if self.live:
            self.listener.on_event(namespace, event, payload)

    def drop(self) -> None:
        """The connection breaks."""
        if self.live:
            self.live = False
            if self in self.server.transports:
                self.server.transports.remove(self)
            self.listener.on_disconnect("transport close")


def fake_transport_factory(server: FakeServer) -> TransportFactory:
    """Build a transport factory bound to `server`."""

    def build(listener: TransportListener) -> Transport:
        return FakeTransport(listener, server)

    return build


@attrs.define
class FakeSleep:
    """Records each requested delay; sleeps a millisecond instead."""

    delays: list[float] = attrs.Factory(list)

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0.001)


@attrs.define
class ScriptedRandom:
    """Returns the given fractions in turn (then the last one forever)."""

    values: list[float]
    index: int = 0

    def __call__(self) -> float:
        value = self.values[min(self.index, len(self.values) - 1)]
        self.index += 1
        return value

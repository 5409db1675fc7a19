"""Helpers of the integration tests: a typed wrapper over `socketio.AsyncClient`, narrowing
of untyped wire values to JSON types, and bounded waiting."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from typing import cast

import aiohttp
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

DEFAULT_WAIT_S = 6.0
"""How long a test waits for something that must happen (it returns as soon as it does): long
enough for a loaded CI machine; nothing relies on it running out."""


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


# --- /notifications -------------------------------------------------------------------------

NOTIFICATIONS = "/notifications"

NOTIFICATION_EVENTS = ("notification:new", "notification:unread_count")
"""The /notifications server events every notifications test client records."""

NOTIFICATION_KEYS = {"id", "user_id", "kind", "title", "body", "data", "created_at", "read_at"}
"""The keys of a notification resource."""


@attrs.define(eq=False)
class NotificationsClient(ChatClient):
    """One connected /notifications client of one user, recording the notification events.

    Same helpers as `ChatClient` (`ok`, `fails`, `wait_for`, `received`), but its commands go
    to the /notifications namespace.
    """

    async def call(self, event: str, payload: object = None, *, ack_s: float = 5) -> JsonObject:
        """Send a /notifications command with an ack callback; the ack envelope."""
        raw: object = await self.sio.call(event, payload, namespace=NOTIFICATIONS, timeout=ack_s)
        return obj(raw)


# --- the HTTP API ---------------------------------------------------------------------------


@attrs.frozen
class ApiResponse:
    """A response of the HTTP API: status, decoded JSON body (None if not JSON), headers."""

    status: int
    body: JsonObject | None
    content_type: str
    headers: dict[str, str]

    @property
    def json(self) -> JsonObject:
        """The JSON object body (fails the test if there is none)."""
        assert self.body is not None, f"expected a JSON body, status {self.status}"
        return self.body

    def error(self, status: int, code: str) -> JsonObject:
        """Check that this is the contract's `{"error": {...}}` with `status` and `code`; the
        error object."""
        assert self.status == status, f"expected {status}, got {self.status}: {self.body!r}"
        assert self.content_type == "application/json", self.content_type
        assert set(self.json) == {"error"}, self.json
        error = obj(self.json["error"])
        assert {"code", "message", "correlation_id"} <= set(error), error
        assert set(error) <= {"code", "message", "correlation_id", "details"}, error
        assert error["code"] == code, f"expected {code}, got {error!r}"
        assert string(error["message"])
        assert string(error["correlation_id"])
        return error

    def field_paths(self, status: int = 400) -> set[str]:
        """The paths of `details.fields` of a `validation_failed` error."""
        error = self.error(status, "validation_failed")
        return {string(f["path"]) for f in objs(obj(error["details"])["fields"])}


class ApiClient:
    """The server HTTP API over one `aiohttp.ClientSession`, with the API key by default."""

    def __init__(self, session: aiohttp.ClientSession, url: str, api_key: str) -> None:
        self.session = session
        self.url = url
        self.api_key = api_key

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        data: bytes | None = None,
        authorization: str | None = None,
        with_key: bool = True,
    ) -> ApiResponse:
        """Send a request: `body` as JSON, or `data` as raw bytes; the `Authorization` header
        is `Bearer <api key>` unless `authorization` is given or `with_key` is False."""
        headers: dict[str, str] = {}
        if authorization is not None:
            headers["Authorization"] = authorization
        elif with_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = "application/json"
        async with self.session.request(
            method, self.url + path, data=data, headers=headers
        ) as response:
            raw = await response.read()
            decoded: JsonObject | None = None
            if response.content_type == "application/json":
                decoded = obj(json.loads(raw))
            return ApiResponse(
                status=response.status,
                body=decoded,
                content_type=response.content_type,
                headers=dict(response.headers),
            )

    async def post(self, path: str, body: object) -> ApiResponse:
        """POST `body` as JSON with the API key."""
        return await self.request("POST", path, body=body)

    async def push(
        self, user_ids: list[str], title: str = "hello", *, kind: str = "system", **extra: object
    ) -> list[str]:
        """`POST /api/v1/notifications` that must answer 202; the ids."""
        body: dict[str, object] = {"user_ids": user_ids, "kind": kind, "title": title, **extra}
        response = await self.request("POST", "/api/v1/notifications", body=body)
        assert response.status == 202, f"push failed: {response.status} {response.body!r}"
        assert set(response.json) == {"ids"}, response.json
        return strings(response.json["ids"])

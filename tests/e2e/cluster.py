"""Shared helpers of the cluster e2e tests: `switchboard serve` processes on one Redis,
Socket.IO clients that record every event with its arrival time, and HTTP probes.

Everything here is bounded: each wait has a deadline, and `Cluster.close()` SIGKILLs every
process it started, whatever happened in the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import aiohttp
import attrs
import socketio

from adapters.auth import issue_token
from application.json_types import JsonObject, JsonValue
from tests.support.redis_server import free_port

SWITCHBOARD = Path(sys.executable).parent / "switchboard"
SECRET = "cluster-e2e-jwt-secret-" + "s" * 32
API_KEY = "cluster-e2e-api-key-" + "k" * 16
CHAT = "/chat"
NOTIFICATIONS = "/notifications"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
ACK_TIMEOUT_S = 10.0


# --- narrowing of untyped wire values ------------------------------------------------------


def obj(value: object) -> JsonObject:
    """`value` as a JSON object (fails the test otherwise)."""
    assert isinstance(value, dict), f"expected a JSON object, got {value!r}"
    assert all(isinstance(key, str) for key in value), value
    return cast("JsonObject", value)


def objs(value: object) -> list[JsonObject]:
    """`value` as a JSON array of objects."""
    assert isinstance(value, list), f"expected a JSON array, got {value!r}"
    return [obj(item) for item in value]


def string(value: object) -> str:
    """`value` as a string."""
    assert isinstance(value, str), f"expected a string, got {value!r}"
    return value


def strings(value: object) -> list[str]:
    """`value` as a JSON array of strings."""
    assert isinstance(value, list), f"expected a JSON array, got {value!r}"
    return [string(item) for item in value]


def integer(value: object) -> int:
    """`value` as an integer (not a bool)."""
    assert isinstance(value, int), f"expected an integer, got {value!r}"
    assert not isinstance(value, bool), f"expected an integer, got {value!r}"
    return value


def seqs(messages: Iterable[JsonObject]) -> list[int]:
    """The `seq` of each message."""
    return [integer(m["seq"]) for m in messages]


def wire_time(value: object) -> datetime:
    """A wire time (`2026-11-25T19:30:00.123Z`) as an aware datetime."""
    text = string(value)
    assert text.endswith("Z"), f"not a UTC time: {text!r}"
    assert len(text) == 24, f"not an ISO time with milliseconds: {text!r}"
    return datetime.fromisoformat(text[:-1] + "+00:00")


def unique(prefix: str) -> str:
    """A fresh id with a readable prefix."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# --- waiting --------------------------------------------------------------------------------


async def wait_until(
    predicate: Callable[[], bool], *, within: float, what: str, step: float = 0.01
) -> float:
    """Poll until `predicate` holds; the monotonic time it first held. Fails after `within`."""
    deadline = time.monotonic() + within
    while True:
        if predicate():
            return time.monotonic()
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(step)


# --- server processes ----------------------------------------------------------------------


def _clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SWITCHBOARD_") and k not in ("REDIS_URL", "REDIS_FALLBACK")
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env


@attrs.define
class ServerProcess:
    """One `switchboard serve` process on its own port; killable, never left running."""

    name: str
    port: int
    redis_url: str
    prefix: str
    log: Path
    heartbeat_s: float
    ttl_s: float
    coalesce_ms: int
    extra_env: dict[str, str] = attrs.Factory(dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`."""
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> None:
        """Start the process (does not wait; see `Cluster.start`)."""
        env = _clean_env()
        env.update(
            REDIS_URL=self.redis_url,
            SWITCHBOARD_JWT_SECRET=SECRET,
            SWITCHBOARD_API_KEY=API_KEY,
            SWITCHBOARD_INSTANCE_ID=self.name,
            SWITCHBOARD_PRESENCE_HEARTBEAT_S=str(self.heartbeat_s),
            SWITCHBOARD_PRESENCE_TTL_S=str(self.ttl_s),
            SWITCHBOARD_COALESCE_WINDOW_MS=str(self.coalesce_ms),
            SWITCHBOARD_REDIS_PREFIX=self.prefix,
            SWITCHBOARD_LOG_LEVEL="info",
        )
        env.update(self.extra_env)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(SWITCHBOARD), "serve", "--port", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    @property
    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no drain, no goodbye (idempotent)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def send_sigterm(self) -> None:
        """Ask the process to drain and stop."""
        assert self.process is not None, "never started"
        assert self.process.poll() is None, "not running"
        self.process.send_signal(signal.SIGTERM)

    async def wait_exit(self, within: float) -> int:
        """Its exit code, waiting at most `within` seconds (fails the test otherwise)."""
        process = self.process
        assert process is not None
        try:
            await wait_until(
                lambda: process.poll() is not None,
                within=within,
                what=f"instance {self.name} to exit",
                step=0.02,
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log_tail()}") from None
        code = process.returncode
        assert isinstance(code, int)
        return code

    def log_text(self) -> str:
        """Everything the process wrote."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the process output (for failure messages)."""
        return f"--- log of instance {self.name} ---\n{self.log_text()[-chars:]}"


@attrs.define
class Cluster:
    """The instances of one test, all on one Redis and one key prefix."""

    redis_url: str
    directory: Path
    session: aiohttp.ClientSession
    prefix: str = attrs.Factory(lambda: f"e2e{uuid.uuid4().hex[:8]}:")
    servers: list[ServerProcess] = attrs.Factory(list)
    clients: list[Peer] = attrs.Factory(list)

    async def start(
        self,
        *names: str,
        heartbeat_s: float = 1.0,
        ttl_s: float = 3.0,
        coalesce_ms: int = 50,
        env: dict[str, str] | None = None,
    ) -> list[ServerProcess]:
        """Start one instance per name, in parallel, and wait until each is ready; `env`
        adds settings (e.g. higher rate limits)."""
        started = [
            ServerProcess(
                name=name,
                port=free_port(),
                redis_url=self.redis_url,
                prefix=self.prefix,
                log=self.directory / f"server-{name}.log",
                heartbeat_s=heartbeat_s,
                ttl_s=ttl_s,
                coalesce_ms=coalesce_ms,
                extra_env=dict(env or {}),
            )
            for name in names
        ]
        self.servers.extend(started)
        for server in started:
            server.launch()
        await asyncio.gather(*(self.wait_ready(server) for server in started))
        return started

    async def wait_ready(self, server: ServerProcess, within: float = START_TIMEOUT_S) -> float:
        """Wait until `/readyz` answers 200 (the process must stay up); when it did."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            assert server.alive, f"instance {server.name} exited early\n{server.log_tail()}"
            if await http_status(self.session, server.url, "/readyz") == 200:
                return time.monotonic()
            await asyncio.sleep(0.05)
        raise AssertionError(
            f"instance {server.name} not ready within {within} s\n{server.log_tail()}"
        )

    async def connect(self, server: ServerProcess, user_id: str, namespace: str = CHAT) -> Peer:
        """A client of `user_id` connected to `server` on `namespace` (closed at the end)."""
        peer = await connect(server.url, user_id, namespace)
        self.clients.append(peer)
        return peer

    async def close(self) -> None:
        """Disconnect every client and kill every process (always called)."""
        for peer in self.clients:
            await peer.close()
        for server in self.servers:
            server.kill()


@contextlib.asynccontextmanager
async def open_cluster(redis_url: str, directory: Path) -> AsyncIterator[Cluster]:
    """A `Cluster` on this Redis; every process it started is killed on the way out."""
    async with aiohttp.ClientSession() as session:
        cluster = Cluster(redis_url, directory, session)
        try:
            yield cluster
        finally:
            await cluster.close()


# --- clients --------------------------------------------------------------------------------


@attrs.frozen
class Received:
    """One server event as a client got it, with its monotonic arrival time."""

    event: str
    payload: JsonObject
    at: float


@attrs.define(eq=False)
class Peer:
    """One python-socketio client of one user on one namespace, recording what it receives."""

    user_id: str
    namespace: str
    sio: socketio.AsyncClient
    events: list[Received] = attrs.Factory(list)
    disconnected_at: list[float] = attrs.Factory(list)

    def record(self, event: object, *args: object) -> None:
        """The catch-all handler: keep one server event (its single JSON object)."""
        payload: JsonObject = obj(args[0]) if len(args) == 1 else {"args": [repr(a) for a in args]}
        self.events.append(Received(string(event), payload, time.monotonic()))

    def on_disconnect(self, *_: object) -> None:
        """Remember when the server (or the transport) closed the connection."""
        self.disconnected_at.append(time.monotonic())

    def received(
        self, event: str, predicate: Callable[[JsonObject], bool] = lambda _: True
    ) -> list[Received]:
        """The events named `event` matching `predicate`, in arrival order."""
        return [r for r in self.events if r.event == event and predicate(r.payload)]

    def payloads(self, event: str) -> list[JsonObject]:
        """The payloads of the events named `event`."""
        return [r.payload for r in self.received(event)]

    async def wait_for(
        self,
        event: str,
        predicate: Callable[[JsonObject], bool] = lambda _: True,
        *,
        within: float = 5.0,
    ) -> Received:
        """The first `event` matching `predicate`, waiting (bounded) if need be."""
        await wait_until(
            lambda: bool(self.received(event, predicate)),
            within=within,
            what=f"{event} at {self.user_id} on {self.namespace}",
        )
        return self.received(event, predicate)[0]

    @property
    def connected(self) -> bool:
        """Whether the client is connected."""
        return bool(self.sio.connected)

    async def call(
        self, event: str, payload: JsonObject, ack_s: float = ACK_TIMEOUT_S
    ) -> JsonObject:
        """Send a command with an ack (python-socketio's `TimeoutError` after `ack_s`); the
        ack envelope."""
        raw: object = await self.sio.call(event, payload, namespace=self.namespace, timeout=ack_s)
        return obj(raw)

    async def ok(self, event: str, payload: JsonObject) -> JsonObject:
        """Send a command that must succeed; the ack's `data`."""
        ack = await self.call(event, payload)
        assert ack.get("ok") is True, f"{event} {payload!r} by {self.user_id} failed: {ack!r}"
        return obj(ack["data"])

    async def close(self) -> None:
        """Disconnect (idempotent; never raises)."""
        if self.sio.connected:
            with contextlib.suppress(TimeoutError, OSError, socketio.exceptions.SocketIOError):
                await asyncio.wait_for(self.sio.disconnect(), timeout=5)


def new_client() -> socketio.AsyncClient:
    """A WebSocket-only python-socketio client that never reconnects by itself."""
    return socketio.AsyncClient(reconnection=False, logger=False, engineio_logger=False)


async def connect(url: str, user_id: str, namespace: str = CHAT) -> Peer:
    """Connect one client of `user_id` (a token signed with the cluster secret)."""
    sio = new_client()
    peer = Peer(user_id=user_id, namespace=namespace, sio=sio)
    sio.on("*", peer.record, namespace=namespace)
    sio.on("disconnect", peer.on_disconnect, namespace=namespace)
    await sio.connect(
        url,
        namespaces=[namespace],
        auth={"token": issue_token(SECRET, user_id)},
        transports=["websocket"],
        wait_timeout=10,
    )
    return peer


# --- a raw Socket.IO client ------------------------------------------------------------------


class Refused(Exception):
    """The server refused a raw handshake (`connect_error`); `code` is the contract's code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@attrs.define(eq=False)
class RawSocket:
    """A minimal Socket.IO v5 client on one WebSocket (Engine.IO v4 framing), one namespace.

    Much lighter than `socketio.AsyncClient` (no session, no tasks but one reader), so a
    test can hold thousands. Like socket.io-client 4's WebSocket transport, it ignores
    Engine.IO CLOSE packets: it learns that the server is gone only when the WebSocket
    itself closes (`closed_at`), or from a Socket.IO DISCONNECT of its namespace
    (`kicked_at`).
    """

    user_id: str
    namespace: str
    ws: aiohttp.ClientWebSocketResponse
    events: list[Received] = attrs.Factory(list)
    acks: dict[int, asyncio.Future[object]] = attrs.Factory(dict)
    next_ack: int = 0
    reader: asyncio.Task[None] | None = None
    closed_at: float | None = None
    kicked_at: float | None = None

    def start(self) -> None:
        """Start the reader task."""
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        prefix = "4"  # Engine.IO MESSAGE, then the Socket.IO packet
        ns = self.namespace + ","
        try:
            async for message in self.ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    continue
                data = string(message.data)
                if data == "2":  # Engine.IO PING
                    await self.ws.send_str("3")
                elif data.startswith(prefix + "2" + ns):
                    event, *args = json.loads(data[len(prefix + "2" + ns) :])
                    payload: JsonObject = obj(args[0]) if args else {}
                    self.events.append(Received(string(event), payload, time.monotonic()))
                elif data.startswith(prefix + "3" + ns):
                    body = data[len(prefix + "3" + ns) :]
                    digits = len(body) - len(body.lstrip("0123456789"))
                    future = self.acks.pop(int(body[:digits]), None)
                    if future is not None and not future.done():
                        decoded: object = json.loads(body[digits:])
                        future.set_result(decoded)
                elif data.startswith(prefix + "1" + ns) and self.kicked_at is None:
                    self.kicked_at = time.monotonic()
        finally:
            self.closed_at = time.monotonic()
            for future in self.acks.values():
                if not future.done():
                    future.set_exception(ConnectionError("the WebSocket closed"))

    def received(self, event: str) -> list[Received]:
        """The events named `event`, in arrival order."""
        return [r for r in self.events if r.event == event]

    async def call(
        self, event: str, payload: JsonObject, ack_s: float = ACK_TIMEOUT_S
    ) -> JsonObject:
        """Send a command with an ack id; the ack envelope."""
        self.next_ack += 1
        ack_id = self.next_ack
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self.acks[ack_id] = future
        await self.ws.send_str(f"42{self.namespace},{ack_id}" + json.dumps([event, payload]))
        async with asyncio.timeout(ack_s):
            reply = await future
        assert isinstance(reply, list), reply
        assert len(reply) == 1, reply
        return obj(reply[0])

    async def close(self) -> None:
        """Close the WebSocket and wait for the reader (idempotent)."""
        if not self.ws.closed:
            with contextlib.suppress(OSError, aiohttp.ClientError, TimeoutError):
                await asyncio.wait_for(self.ws.close(), timeout=5)
        if self.reader is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self.reader, timeout=5)


async def raw_connect(
    session: aiohttp.ClientSession,
    url: str,
    user_id: str,
    namespace: str = CHAT,
    connect_s: float = 10.0,
) -> RawSocket:
    """Open a WebSocket and connect `namespace` as `user_id`; raises `Refused` on a
    `connect_error` (the WebSocket is closed then)."""
    ws_url = url.replace("http://", "ws://", 1) + "/socket.io/?EIO=4&transport=websocket"
    async with asyncio.timeout(connect_s):
        ws = await session.ws_connect(ws_url, autoping=True, max_msg_size=0)
        try:
            opened = string((await ws.receive()).data)
            assert opened.startswith("0{"), f"not an Engine.IO OPEN packet: {opened!r}"
            token = issue_token(SECRET, user_id)
            await ws.send_str(f"40{namespace}," + json.dumps({"token": token}))
            while True:
                reply = string((await ws.receive()).data)
                if reply == "2":
                    await ws.send_str("3")
                    continue
                break
            if reply.startswith(f"44{namespace},"):
                error = obj(json.loads(reply[len(namespace) + 3 :]))
                data = obj(error.get("data") or {})
                raise Refused(string(data.get("code", "?")), string(error.get("message", "")))
            assert reply.startswith(f"40{namespace},"), f"unexpected reply {reply!r}"
        except BaseException:
            await ws.close()
            raise
    socket = RawSocket(user_id=user_id, namespace=namespace, ws=ws)
    socket.start()
    return socket


# --- chat helpers ---------------------------------------------------------------------------


async def create_room(peer: Peer, name: str, members: list[str] | None = None) -> str:
    """Create a public room (with these members); its id."""
    payload: JsonObject = {"name": name}
    if members:
        payload["members"] = list[JsonValue](members)
    data = await peer.ok("room:create", payload)
    return string(obj(data["room"])["id"])


async def send(peer: Peer, room_id: str, text: str, client_msg_id: str | None = None) -> JsonObject:
    """Send a message that must be stored; the message."""
    data = await peer.ok(
        "message:send",
        {"room_id": room_id, "text": text, "client_msg_id": client_msg_id or unique("m")},
    )
    return obj(data["message"])


async def presence(peer: Peer, user_ids: list[str]) -> dict[str, JsonObject]:
    """`presence:get` through `peer`: user id -> presence entry."""
    data = await peer.ok("presence:get", {"user_ids": list[JsonValue](user_ids)})
    return {string(e["user_id"]): e for e in objs(data["presence"])}


async def full_history(peer: Peer, room_id: str) -> list[JsonObject]:
    """Every message of the room, paging forwards with `after_seq`."""
    messages: list[JsonObject] = []
    after = 0
    for _ in range(10_000):
        data = await peer.ok(
            "message:history", {"room_id": room_id, "after_seq": after, "limit": 100}
        )
        page = objs(data["messages"])
        messages.extend(page)
        if not page or data["has_more"] is not True:
            return messages
        after = integer(page[-1]["seq"])
    raise AssertionError("history did not end")


def diff_has(key: str, user_id: str, room_id: str) -> Callable[[JsonObject], bool]:
    """A predicate on `presence:diff`: `user_id` is in its `key` list for `room_id`."""

    def check(payload: JsonObject) -> bool:
        return payload.get("room_id") == room_id and user_id in strings(payload.get(key, []))

    return check


def now_utc() -> datetime:
    """The wall-clock time, aware."""
    return datetime.now(UTC)


# --- HTTP -------------------------------------------------------------------------------------


async def http_status(
    session: aiohttp.ClientSession, url: str, path: str, limit_s: float = 3.0
) -> int | None:
    """The status of `GET url+path`, or None if nothing answered in time."""
    try:
        async with session.get(
            url + path, timeout=aiohttp.ClientTimeout(total=limit_s)
        ) as response:
            await response.read()
            return response.status
    except (aiohttp.ClientError, TimeoutError, OSError):
        return None


async def push_notification(
    session: aiohttp.ClientSession, url: str, user_ids: list[str], title: str
) -> list[str]:
    """`POST /api/v1/notifications` that must answer 202; the new notification ids."""
    async with session.post(
        url + "/api/v1/notifications",
        json={"user_ids": user_ids, "kind": "system", "title": title, "body": "from the test"},
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=aiohttp.ClientTimeout(total=10),
    ) as response:
        body: object = await response.json()
        assert response.status == 202, f"push answered {response.status}: {body!r}"
        return strings(obj(body)["ids"])

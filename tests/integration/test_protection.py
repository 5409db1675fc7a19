"""Protection of the server from its clients: the frame bound (`SWITCHBOARD_MAX_PAYLOAD_BYTES`
over WebSocket, long-polling and HTTP), the slow-consumer bound
(`SWITCHBOARD_SLOW_CONSUMER_MAX_BUFFERED_BYTES`) against a raw client that stops reading, and the
origins allowed to open Socket.IO connections (`SWITCHBOARD_CORS_ORIGINS`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Callable

import aiohappyeyeballs
import aiohttp
import attrs
import pytest
import socketio

from adapters.auth import issue_token
from application.json_types import JsonObject
from application.settings import Settings
from tests.integration.conftest import (
    JWT_SECRET,
    Connector,
    RunningServer,
    make_settings,
    start_server,
    stop_server,
)
from tests.integration.support import (
    CHAT,
    ApiClient,
    ChatClient,
    create_room,
    new_sio,
    obj,
    objs,
    string,
    wait_until,
)

SMALL_BOUND = 2048


def chat_gauge(server: RunningServer) -> float:
    return server.container.metrics().value("switchboard_connections", namespace=CHAT)


POLLING = "/socket.io/?EIO=4&transport=polling"


async def open_polling_session(
    session: aiohttp.ClientSession, server: RunningServer, headers: dict[str, str] | None = None
) -> tuple[int, str, str | None]:
    """An Engine.IO long-polling handshake; its status, body and allowed origin. An opened
    session is closed again at once (a client `close` packet), as a leaving client does."""
    async with session.get(server.url + POLLING, headers=headers or {}) as response:
        body = await response.text()
        allowed = response.headers.get("Access-Control-Allow-Origin")
    if response.status == 200:
        assert body.startswith("0{"), body
        sid = json.loads(body[1:])["sid"]
        async with session.post(f"{server.url}{POLLING}&sid={sid}", data="1") as closed:
            assert closed.status == 200
    return response.status, body, allowed


# --- the frame bound over WebSocket ---------------------------------------------------------


class TestFrameBound:
    @pytest.fixture
    def server_settings(self) -> Settings:
        return attrs.evolve(make_settings(), max_payload_bytes=SMALL_BOUND)

    async def test_the_bound_is_advertised_in_the_engineio_handshake(
        self, server: RunningServer
    ) -> None:
        async with aiohttp.ClientSession() as session:
            status, body, _ = await open_polling_session(session, server)

        assert status == 200
        assert json.loads(body[1:])["maxPayload"] == SMALL_BOUND

    async def test_a_frame_under_the_bound_is_answered(self, connect: Connector) -> None:
        alice = await connect("alice")
        room_id = string((await create_room(alice))["id"])

        data = await alice.ok(
            "message:send", {"room_id": room_id, "text": "x" * 1500, "client_msg_id": "m1"}
        )

        assert obj(data["message"])["seq"] == 1
        assert alice.connected

    async def test_a_frame_over_the_bound_closes_that_connection_only(
        self, connect: Connector, server: RunningServer
    ) -> None:
        alice = await connect("alice")
        bob = await connect("bob")
        room_id = string((await create_room(alice, members=["bob"]))["id"])

        await alice.sio.emit(
            "message:send",
            {"room_id": room_id, "text": "x" * 3000, "client_msg_id": "big"},
            namespace=CHAT,
        )

        await wait_until(lambda: not alice.connected, what="alice's connection to close")
        await alice.wait_for("disconnect")
        await wait_until(lambda: chat_gauge(server) == 1, what="the gauge to drop")
        # the server goes on serving everyone else, and nothing of the frame was handled
        assert bob.connected
        history = await bob.ok("message:history", {"room_id": room_id})
        assert history["messages"] == []
        presence = await bob.ok("presence:get", {"user_ids": ["alice"]})
        assert objs(presence["presence"])[0]["online"] is False
        assert (
            server.container.metrics().value(
                "switchboard_commands_total",
                namespace=CHAT,
                event="message:send",
                outcome="ok",
            )
            == 0
        )
        # and alice may come back
        again = await connect("alice")
        await again.ok("room:list", {})

    async def test_an_oversized_polling_post_is_refused_and_ends_the_session(
        self, server: RunningServer, connect: Connector
    ) -> None:
        """Long-polling, as socket.io-client does it: a GET is always pending while the
        client POSTs. A POST over the bound is refused, the pending GET ends with the
        Engine.IO close packet, and the session is gone."""
        base = server.url + POLLING
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(base) as response:
                sid = json.loads((await response.text())[1:])["sid"]
            url = f"{base}&sid={sid}"
            token = issue_token(JWT_SECRET, "alice", ttl_s=3600)
            async with session.post(url, data=f"40{CHAT}," + json.dumps({"token": token})) as r:
                assert r.status == 200
            async with session.get(url) as response:
                assert (await response.text()).startswith(f"40{CHAT},")
            assert chat_gauge(server) == 1

            async def long_poll() -> str:
                async with session.get(url) as response:
                    return await response.text()

            pending = asyncio.ensure_future(long_poll())
            await asyncio.sleep(0.1)  # the GET is parked on the server
            big = f'42{CHAT},["room:list",{{"filler":"{"y" * 3000}"}}]'
            async with session.post(url, data=big) as refused:
                assert refused.status == 400
            closing = await asyncio.wait_for(pending, timeout=5)
            async with session.get(url) as after:
                after_status = after.status

        assert closing.endswith("1"), closing  # the Engine.IO close packet
        assert after_status == 400
        await wait_until(lambda: chat_gauge(server) == 0, what="the gauge to drop")
        bob = await connect("bob")
        await bob.ok("room:list", {})


async def test_an_idle_long_polling_session_does_not_hold_up_the_shutdown() -> None:
    """A long-polling client that is between two polls (or went away without a word) when
    the server stops: the drain must still finish promptly (the contract: SIGTERM exits
    within 10 s)."""
    server = await start_server(make_settings())
    async with aiohttp.ClientSession() as session:
        async with session.get(server.url + POLLING) as response:
            assert (await response.text()).startswith("0{")
        # the client now does nothing: no GET is pending on the server
        stopping = asyncio.ensure_future(stop_server(server))
        done, _ = await asyncio.wait({stopping}, timeout=5)
        try:
            assert stopping in done, (
                "the shutdown is still waiting for an idle long-polling session after 5 s"
            )
        finally:
            if not stopping.done():
                # unblock the drain for the rest of the suite: empty what it waits on
                for eio_socket in list(server.container.sio().eio.sockets.values()):
                    while not eio_socket.queue.empty():
                        eio_socket.queue.get_nowait()
                        eio_socket.queue.task_done()
                await asyncio.wait_for(stopping, timeout=10)


class TestHttpBodyBound:
    @pytest.fixture
    def server_settings(self) -> Settings:
        return attrs.evolve(make_settings(), max_payload_bytes=SMALL_BOUND)

    async def test_a_body_over_the_configured_bound_is_413(self, api: ApiClient) -> None:
        body = {"user_ids": ["alice"], "kind": "system", "title": "t", "body": "b" * 3000}

        refused = await api.request("POST", "/api/v1/notifications", body=body)

        refused.error(413, "payload_too_large")

    async def test_a_body_under_the_configured_bound_is_served(self, api: ApiClient) -> None:
        ids = await api.push(["alice"], body="b" * 1500)

        assert len(ids) == 1


# --- the slow-consumer bound ----------------------------------------------------------------

MAX_QUEUED = 50
MAX_BUFFERED = 64 * 1024  # on WebSocket the unsent output waits in the transport's buffer
FLOOD_BATCH = 10
FLOOD_TEXT = "f" * 4000


def small_receive_buffer(addr_info: aiohappyeyeballs.AddrInfoType) -> socket.socket:
    """A client socket with a small receive buffer, so that a client that stops reading
    fills the server's socket buffers (and then the transport's write buffer) sooner."""
    family, kind, proto, _, _ = addr_info
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return sock


@attrs.define
class RawClient:
    """Socket.IO v5 over a raw WebSocket: it reads only when the test says so."""

    ws: aiohttp.ClientWebSocketResponse

    async def send(self, packet: str) -> None:
        await self.ws.send_str(packet)

    async def until(self, prefix: str, *, within: float = 5.0) -> str:
        """Read packets (answering pings) until one starts with `prefix`; that packet."""
        deadline = time.monotonic() + within
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no packet starting with {prefix!r} within {within} s"
            packet = await self.ws.receive_str(timeout=remaining)
            if packet == "2":
                await self.send("3")
            elif packet.startswith(prefix):
                return packet

    async def call(self, event: str, payload: JsonObject, ack_id: int) -> JsonObject:
        """Send a command on /chat with an ack id; its ack envelope."""
        await self.send(f"42{CHAT},{ack_id}" + json.dumps([event, payload]))
        packet = await self.until(f"43{CHAT},{ack_id}[")
        return obj(json.loads(packet[len(f"43{CHAT},{ack_id}") :])[0])

    async def closed_within(self, seconds: float) -> str | None:
        """Resume reading: how the server closed the connection (the Engine.IO close packet,
        a Socket.IO disconnect or the WebSocket closing) within `seconds`, else None."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                message = await self.ws.receive(timeout=remaining)
            except TimeoutError:
                return None
            if message.type != aiohttp.WSMsgType.TEXT:
                return message.type.name
            if message.data == "1" or message.data.startswith(f"41{CHAT}"):
                return str(message.data)
        return None


@pytest.fixture
async def raw_session() -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(socket_factory=small_receive_buffer)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


async def raw_connect(
    session: aiohttp.ClientSession, server: RunningServer, user: str
) -> RawClient:
    url = server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    ws = await session.ws_connect(url, autoping=False)
    client = RawClient(ws)
    assert (await ws.receive_str(timeout=5)).startswith("0{")
    await client.send(f"40{CHAT}," + json.dumps({"token": issue_token(JWT_SECRET, user)}))
    await client.until(f"40{CHAT},")
    return client


def has_received(reader: ChatClient, count: int) -> Callable[[], bool]:
    """Whether `reader` has received `count` messages so far."""
    return lambda: len(reader.received("message:new")) == count


async def flood_until_the_guard_fires(
    server: RunningServer, api: ApiClient, room_id: str, reader: ChatClient
) -> int:
    """Post big messages to the room through the HTTP API, a batch at a time, until the guard
    disconnects someone (bounded); how many were posted. After each batch the flood waits
    for `reader` to have it all: a client that keeps up never holds more than a batch."""
    metrics = server.container.metrics()
    posted = 0
    deadline = time.monotonic() + 30
    while metrics.value("switchboard_slow_consumer_disconnects_total") == 0:
        assert time.monotonic() < deadline, f"the guard did not fire after {posted} messages"
        responses = await asyncio.gather(
            *(
                api.post(f"/api/v1/rooms/{room_id}/messages", {"text": FLOOD_TEXT})
                for _ in range(FLOOD_BATCH)
            )
        )
        assert {r.status for r in responses} == {201}
        posted += len(responses)
        await wait_until(
            has_received(reader, posted),
            within=5,
            what=f"the reader to receive {posted} messages",
        )
    return posted


@attrs.frozen
class Stalled:
    """A raw client of `slow` that stopped reading and was flooded until the guard fired."""

    client: RawClient
    room_id: str
    posted: int
    reader: ChatClient


class TestSlowConsumer:
    @pytest.fixture
    def server_settings(self) -> Settings:
        return attrs.evolve(
            make_settings(),
            slow_consumer_max_queued=MAX_QUEUED,
            slow_consumer_max_buffered_bytes=MAX_BUFFERED,
        )

    @pytest.fixture
    async def stalled(
        self,
        server: RunningServer,
        api: ApiClient,
        raw_session: aiohttp.ClientSession,
        connect: Connector,
    ) -> Stalled:
        slow = await raw_connect(raw_session, server, "slow")
        created = await slow.call("room:create", {"name": "flooded", "members": ["reader"]}, 1)
        room_id = string(obj(obj(created["data"])["room"])["id"])
        reader = await connect("reader")  # reads everything, as a healthy client does
        # from here on the raw client reads nothing
        posted = await flood_until_the_guard_fires(server, api, room_id, reader)
        return Stalled(slow, room_id, posted, reader)

    async def test_a_client_that_stops_reading_is_disconnected_and_counted(
        self, stalled: Stalled, server: RunningServer, connect: Connector, api: ApiClient
    ) -> None:
        metrics = server.container.metrics()

        assert stalled.posted * len(FLOOD_TEXT) > MAX_BUFFERED
        await wait_until(
            lambda: chat_gauge(server) == 1,
            what=f"the slow connection to go (gauge {chat_gauge(server)}, "
            f"slow {metrics.value('switchboard_slow_consumer_disconnects_total')})",
        )
        assert metrics.value("switchboard_slow_consumer_disconnects_total") == 1
        assert metrics.value("switchboard_connections_closed_total", namespace=CHAT) == 1
        # the healthy reader of the same flood got all of it and is still connected
        reader = stalled.reader
        assert len(reader.received("message:new")) == stalled.posted
        assert reader.connected
        # the slow one left presence like any closed connection
        presence = await reader.ok("presence:get", {"user_ids": ["slow"]})
        assert objs(presence["presence"])[0]["online"] is False
        # and the server serves the others
        more = await api.post(f"/api/v1/rooms/{stalled.room_id}/messages", {"text": "after"})
        assert more.status == 201
        await reader.wait_for("message:new", lambda m: m["text"] == "after")
        newcomer = await connect("newcomer")
        await newcomer.ok("room:join", {"room_id": stalled.room_id})
        assert metrics.value("switchboard_slow_consumer_disconnects_total") == 1
        async with (
            aiohttp.ClientSession() as session,
            session.get(server.url + "/metrics") as response,
        ):
            scraped = await response.text()
        assert "\nswitchboard_slow_consumer_disconnects_total 1.0\n" in scraped

    async def test_the_slow_clients_connection_is_closed_by_the_server(
        self, stalled: Stalled
    ) -> None:
        """When the client reads again it must find the end of its connection, not a socket
        that stays open: until the server closes it, the stalled writer and everything queued
        for it stay in memory, and the client only notices by its own ping timeout."""
        how = await stalled.client.closed_within(5.0)

        assert how is not None, (
            "the server never closed the slow consumer's WebSocket: it still delivers what it "
            "had queued, then stays open without a close packet"
        )


# --- CORS -----------------------------------------------------------------------------------


async def polling_handshake(server: RunningServer, origin: str | None) -> tuple[int, str | None]:
    """An Engine.IO long-polling handshake with this `Origin`; the status and the
    `Access-Control-Allow-Origin` of the answer."""
    headers = {} if origin is None else {"Origin": origin}
    async with aiohttp.ClientSession() as session:
        status, _, allowed = await open_polling_session(session, server, headers)
    return status, allowed


async def websocket_accepted(server: RunningServer, origin: str) -> bool:
    sio = new_sio()
    try:
        await sio.connect(
            server.url,
            auth={"token": issue_token(JWT_SECRET, "alice")},
            headers={"Origin": origin},
            transports=["websocket"],
            namespaces=[CHAT],
            wait_timeout=5,
        )
    except socketio.exceptions.ConnectionError:
        return False
    with contextlib.suppress(Exception):
        await sio.disconnect()
    return True


APP = "https://app.example.com"
EVIL = "https://evil.example.com"


class TestCorsList:
    @pytest.fixture
    def server_settings(self) -> Settings:
        return attrs.evolve(make_settings(), cors_origins=(APP, "http://localhost:3000"))

    async def test_a_listed_origin_is_accepted_and_echoed(self, server: RunningServer) -> None:
        assert await polling_handshake(server, APP) == (200, APP)
        assert await polling_handshake(server, "http://localhost:3000") == (
            200,
            "http://localhost:3000",
        )

    async def test_an_origin_not_listed_is_refused(self, server: RunningServer) -> None:
        assert (await polling_handshake(server, EVIL))[0] == 400
        assert (await polling_handshake(server, APP + ":8443"))[0] == 400
        assert not await websocket_accepted(server, EVIL)
        assert await websocket_accepted(server, APP)

    async def test_the_servers_own_origin_is_not_added_to_the_list(
        self, server: RunningServer
    ) -> None:
        assert (await polling_handshake(server, server.url))[0] == 400

    async def test_no_origin_header_is_not_a_browser_and_is_accepted(
        self, server: RunningServer
    ) -> None:
        assert (await polling_handshake(server, None))[0] == 200


class TestCorsDefault:
    async def test_only_the_same_origin_is_accepted(self, server: RunningServer) -> None:
        assert (await polling_handshake(server, server.url))[0] == 200
        assert (await polling_handshake(server, EVIL))[0] == 400
        other_port = server.url.rsplit(":", 1)[0] + ":1"
        assert (await polling_handshake(server, other_port))[0] == 400
        assert not await websocket_accepted(server, EVIL)
        assert await websocket_accepted(server, server.url)

    async def test_no_origin_header_is_accepted(self, server: RunningServer) -> None:
        assert (await polling_handshake(server, None))[0] == 200


class TestCorsAnyOrigin:
    @pytest.fixture
    def server_settings(self) -> Settings:
        return attrs.evolve(make_settings(), cors_origins=("*",))

    async def test_any_origin_is_accepted(self, server: RunningServer) -> None:
        assert await polling_handshake(server, EVIL) == (200, EVIL)
        assert await websocket_accepted(server, EVIL)

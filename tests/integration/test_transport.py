"""The lean Engine.IO WebSocket transport (`adapters/socketio/transport.py`) over the real
server: WebSocket connections are written directly, hold no send queue and no task of
python-engineio's, pings run on timers and still find silent clients, a server-side close
ends the connection, and long-polling clients upgrade (or fail to) as before."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import attrs
import pytest

from adapters.auth import issue_token
from adapters.socketio.transport import SPENT_QUEUE, LeanSocket, PingSchedule, SpentQueue
from application.settings import Settings
from tests.integration.conftest import JWT_SECRET, Connector, RunningServer, make_settings
from tests.integration.support import CHAT, create_room, integer, obj, objs, string, wait_until


def lean_sockets(server: RunningServer) -> list[LeanSocket]:
    sockets = list(server.container.sio().eio.sockets.values())
    assert all(isinstance(socket, LeanSocket) for socket in sockets), sockets
    return sockets


def engineio_tasks() -> list[str]:
    """Tasks running python-engineio's per-socket coroutines (writer, reads, pings) or its
    monitor task (replaced by the PingSchedule's deadlines)."""
    names = [getattr(task.get_coro(), "__qualname__", "") for task in asyncio.all_tasks()]
    return [
        name
        for name in names
        if name.startswith("AsyncSocket.") or name == "AsyncServer._service_task"
    ]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


async def raw_chat(
    session: aiohttp.ClientSession, server: RunningServer, user: str
) -> aiohttp.ClientWebSocketResponse:
    """A raw WebSocket connected to /chat as `user`; it answers nothing by itself."""
    url = server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    ws = await session.ws_connect(url, autoping=False)
    assert (await ws.receive_str(timeout=5)).startswith("0{")
    await ws.send_str(f"40{CHAT}," + json.dumps({"token": issue_token(JWT_SECRET, user)}))
    assert (await ws.receive_str(timeout=5)).startswith(f"40{CHAT},")
    return ws


async def next_packet(ws: aiohttp.ClientWebSocketResponse, within: float = 5.0) -> str | None:
    """The next text packet, or None when the connection closed."""
    message = await ws.receive(timeout=within)
    return str(message.data) if message.type == aiohttp.WSMsgType.TEXT else None


async def closed_within(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> bool:
    """Read (ignoring packets) until the connection closes; whether it did in time."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            if await next_packet(ws, within=remaining) is None:
                return True
        except TimeoutError:
            return False
    return False


async def test_websocket_connections_are_written_directly_without_engineio_tasks(
    connect: Connector, server: RunningServer
) -> None:
    clients = [await connect(f"user{i}") for i in range(5)]
    room_id = string((await create_room(clients[0], members=[f"user{i}" for i in range(5)]))["id"])

    sockets = lean_sockets(server)
    assert len(sockets) == 5
    for socket in sockets:
        assert socket.sink is not None  # frames go straight to the transport
        assert socket.queue is SPENT_QUEUE  # no asyncio.Queue kept per connection
    assert engineio_tasks() == []
    # the next pings are entries in the server's one schedule, not a task or timer each
    assert server.container.sio().eio.ping_schedule.pending() == 5
    # and they work: a message reaches all five, acks come back
    await clients[1].ok("message:send", {"room_id": room_id, "text": "hi", "client_msg_id": "1"})
    for client in clients:
        await client.wait_for("message:new", lambda m: m["text"] == "hi")


async def test_a_client_that_starts_on_polling_upgrades_and_misses_nothing(
    connect: Connector, server: RunningServer
) -> None:
    alice = await connect("alice")
    room_id = string((await create_room(alice, members=["bob"]))["id"])

    bob = await connect("bob", transports=("polling", "websocket"))

    assert bob.sio.eio.current_transport == "websocket"
    await wait_until(
        lambda: all(socket.sink is not None for socket in lean_sockets(server)),
        what="bob's socket to write directly after the upgrade",
    )
    for i in range(30):
        await alice.ok(
            "message:send", {"room_id": room_id, "text": f"m{i}", "client_msg_id": f"c{i}"}
        )
    await wait_until(lambda: len(bob.received("message:new")) >= 30, what="30 messages")
    assert [integer(m["seq"]) for m in bob.received("message:new")] == list(range(1, 31))
    history = await bob.ok("message:history", {"room_id": room_id, "limit": 5})
    assert [m["text"] for m in objs(history["messages"])] == [f"m{i}" for i in range(25, 30)]


async def polling_session(session: aiohttp.ClientSession, server: RunningServer) -> str:
    """A long-polling Engine.IO session (no namespace yet); its sid."""
    base = server.url + "/socket.io/?EIO=4&transport=polling"
    async with session.get(base) as response:
        opened = await response.text()
    return string(obj(json.loads(opened[1:]))["sid"])


async def test_a_failed_upgrade_probe_leaves_the_client_on_polling(
    session: aiohttp.ClientSession, server: RunningServer
) -> None:
    base = server.url + "/socket.io/?EIO=4&transport=polling"
    async with session.get(base) as response:
        opened = await response.text()
    sid = string(obj(json.loads(opened[1:]))["sid"])
    polling = f"{base}&sid={sid}"

    ws_url = server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    ws = await session.ws_connect(f"{ws_url}&sid={sid}")
    await ws.send_str("2not-a-probe")
    assert await closed_within(ws, 5.0), "the failed upgrade must end its WebSocket"

    token = issue_token(JWT_SECRET, "dora")
    async with session.post(polling, data=f"40{CHAT}," + json.dumps({"token": token})) as posted:
        assert posted.status == 200
    async with session.get(polling) as response:
        answer = await response.text()
    assert answer.startswith(f"40{CHAT},"), answer  # the session goes on over long-polling
    socket = lean_sockets(server)[0]
    assert socket.sink is None
    assert not socket.upgraded


async def test_pings_run_on_timers_and_a_client_that_stops_answering_is_closed(
    connect: Connector, server: RunningServer, session: aiohttp.ClientSession
) -> None:
    eio = server.container.sio().eio
    eio.ping_interval, eio.ping_timeout = 0.2, 0.4  # read when a connection opens
    alice = await connect("alice")
    carol = await raw_chat(session, server, "carol")

    for _ in range(3):  # pings come every interval while they are answered
        assert await next_packet(carol, within=2.0) == "2"
        await carol.send_str("3")
    assert engineio_tasks() == []
    # then carol goes silent: the server closes her connection after a ping cycle
    started = time.monotonic()
    assert await closed_within(carol, 5.0), "a client that stopped answering pings stays open"
    assert time.monotonic() - started < 3.0

    async def carol_offline() -> bool:
        presence = await alice.ok("presence:get", {"user_ids": ["carol"]})
        return objs(presence["presence"])[0]["online"] is False

    deadline = time.monotonic() + 5
    while not await carol_offline():
        assert time.monotonic() < deadline, "carol's connection was never unregistered"
        await asyncio.sleep(0.1)


async def test_a_silent_long_polling_session_is_closed_and_forgotten(
    server: RunningServer, session: aiohttp.ClientSession
) -> None:
    eio = server.container.sio().eio
    eio.ping_interval, eio.ping_timeout = 0.2, 0.4
    sid = await polling_session(session, server)
    assert sid in eio.sockets

    # the client never polls again: its ping waits unanswered, and its deadline closes it
    await wait_until(lambda: sid not in eio.sockets, within=5, what="the session to go")
    assert engineio_tasks() == []


async def test_a_server_side_engineio_close_ends_the_websocket(
    server: RunningServer, session: aiohttp.ClientSession
) -> None:
    ws = await raw_chat(session, server, "erin")
    (eio_sid,) = server.container.sio().eio.sockets

    await server.container.sio().eio.disconnect(eio_sid)

    packets: list[str] = []
    while (packet := await next_packet(ws, within=5.0)) is not None:
        packets.append(packet)
    assert "1" in packets  # the Engine.IO CLOSE packet, then the connection ends
    assert ws.close_code == 1000  # with a WebSocket close frame: a normal closure
    assert server.container.sio().eio.sockets == {}


async def negotiated_deflate(session: aiohttp.ClientSession, server: RunningServer) -> bool:
    """Whether the server accepts permessage-deflate offered by a client; and that a
    command and a broadcast work over such a connection (frames written directly are
    uncompressed, which RFC 7692 allows on a deflate connection)."""
    url = server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    async with session.ws_connect(url, compress=15) as ws:
        extensions = ws._response.headers.get("Sec-WebSocket-Extensions", "")
        assert (await ws.receive_str(timeout=5)).startswith("0{")
        await ws.send_str(f"40{CHAT}," + json.dumps({"token": issue_token(JWT_SECRET, "zed")}))
        assert (await ws.receive_str(timeout=5)).startswith(f"40{CHAT},")
        await ws.send_str(f"42{CHAT},1" + json.dumps(["room:create", {"name": "z"}]))
        while not (packet := await ws.receive_str(timeout=5)).startswith(f"43{CHAT},1"):
            pass
        room_id = obj(obj(obj(json.loads(packet[len(f"43{CHAT},1") :])[0])["data"])["room"])
        payload = {"room_id": room_id["id"], "text": "squeezed", "client_msg_id": "z1"}
        await ws.send_str(f"42{CHAT},2" + json.dumps(["message:send", payload]))
        seen: set[str] = set()
        while seen != {"ack", "message"}:
            packet = await ws.receive_str(timeout=5)
            if packet.startswith(f"43{CHAT},2"):
                seen.add("ack")
            elif packet.startswith(f'42{CHAT},["message:new"') and "squeezed" in packet:
                seen.add("message")
    return "permessage-deflate" in extensions


async def test_without_compression_deflate_is_not_negotiated(
    server: RunningServer, session: aiohttp.ClientSession
) -> None:
    assert not await negotiated_deflate(session, server)


class TestCompression:
    @pytest.fixture
    def server_settings(self) -> Settings:
        return attrs.evolve(make_settings(), websocket_compression=True)

    async def test_with_compression_deflate_is_negotiated_and_frames_flow(
        self, server: RunningServer, session: aiohttp.ClientSession
    ) -> None:
        assert await negotiated_deflate(session, server)


async def test_a_websocket_whose_client_sent_close_is_not_held_open_forever(
    server: RunningServer, session: aiohttp.ClientSession
) -> None:
    """python-engineio bounds every WebSocket read by ping_interval + ping_timeout, so a
    client that sends Engine.IO CLOSE ("1") and then keeps the TCP connection open is cut
    after one ping cycle. The lean transport reads with no timeout and its socket, closed,
    leaves eio.sockets (no pings, no ping-timeout check, not in close_all): the connection
    is held for as long as the client likes."""
    eio = server.container.sio().eio
    eio.ping_interval, eio.ping_timeout = 0.2, 0.4
    ws = await raw_chat(session, server, "mallory")
    try:
        await ws.send_str("1")  # Engine.IO CLOSE, then silence (the TCP stays open)
        await asyncio.sleep(0.3)
        assert eio.sockets == {} or all(s.closed for s in eio.sockets.values())
        assert await closed_within(ws, 3.0), (
            "the server never closes a WebSocket whose Engine.IO socket is closed"
        )
    finally:
        await ws.close()


async def test_pending_poll_is_ended_when_upgrade_packet_is_pipelined(
    server: RunningServer, session: aiohttp.ClientSession
) -> None:
    """A poll pending when the upgrade completes must be answered (NOOP), as
    python-engineio does; here the client pipelines "2probe" and "5" (the UPGRADE frame is
    already read when the NOOP is queued). `_go_direct` takes the NOOP off the queue (and
    writes it to the WebSocket) before the pending poll's woken getter runs, then swaps the
    queue: the poll waits on a dead queue for ping_interval + ping_timeout, answers 400, and
    `handle_get_request`'s QueueEmpty path closes the (healthy, upgraded) session with
    TRANSPORT_ERROR."""
    eio = server.container.sio().eio
    # no ping before the upgrade is done (a slow machine included); a stuck poll would give
    # up after 3 s, which the 1 s wait below does not reach
    eio.ping_interval, eio.ping_timeout = 2.0, 1.0
    sid = await polling_session(session, server)
    polling = server.url + f"/socket.io/?EIO=4&transport=polling&sid={sid}"

    async def poll() -> str:
        async with session.get(polling) as response:
            return f"{response.status} {await response.text()}"

    pending = asyncio.ensure_future(poll())
    await asyncio.sleep(0.2)
    assert not pending.done()
    ws_url = server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    ws_url += f"&sid={sid}"
    ws = await session.ws_connect(ws_url)
    try:
        await ws.send_str("2probe")
        await ws.send_str("5")
        assert await next_packet(ws) == "3probe"
        done, _ = await asyncio.wait([pending], timeout=1)
        assert done, "the poll pending at the upgrade is not answered"
        assert pending.result() == "200 6"  # its NOOP; the session goes on over WebSocket
        # and it does: pings come over the WebSocket, and answered they keep it alive
        pings = 0
        while pings < 2:
            packet = await next_packet(ws, within=5.0)
            assert packet in ("2", "6"), packet  # pings, and the NOOP flushed at the upgrade
            if packet == "2":
                pings += 1
                await ws.send_str("3")
        assert not eio.sockets[sid].closed
    finally:
        pending.cancel()
        await ws.close()


async def test_a_socket_closed_by_the_server_during_the_upgrade_does_not_keep_its_websocket(
    server: RunningServer, session: aiohttp.ClientSession
) -> None:
    """Same root cause as the CLOSE-packet case: `LeanSocket.close` cuts only the sink it
    saw when it started, and the sink is None while upgrading; the upgrade then completes
    (`_go_direct` on a closed socket) and the read loop waits, unbounded, on a WebSocket
    whose socket is closed and gone from eio.sockets."""
    eio = server.container.sio().eio
    eio.ping_interval, eio.ping_timeout = 5.0, 5.0  # the close below is the test's own
    sid = await polling_session(session, server)
    ws_url = server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    ws_url += f"&sid={sid}"
    ws = await session.ws_connect(ws_url, autoping=False)
    try:
        await ws.send_str("2probe")
        assert await next_packet(ws) == "3probe"
        socket = eio.sockets[sid]
        assert socket.upgrading
        await socket.close(wait=False, reason=eio.reason.SERVER_DISCONNECT)
        await ws.send_str("5")
        assert await closed_within(ws, 3.0), "the WebSocket outlives its closed socket"
    finally:
        await ws.close()


async def test_a_malformed_probe_leaves_the_client_on_polling(
    server: RunningServer, session: aiohttp.ClientSession
) -> None:
    sid = await polling_session(session, server)
    ws_url = server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    ws = await session.ws_connect(f"{ws_url}&sid={sid}")
    await ws.send_str("x")  # not an Engine.IO packet at all
    assert await closed_within(ws, 5.0)

    socket = server.container.sio().eio.sockets[sid]
    assert not socket.upgrading  # else every poll would get an empty answer
    assert not socket.upgraded
    polling = server.url + f"/socket.io/?EIO=4&transport=polling&sid={sid}"
    token = issue_token(JWT_SECRET, "fay")
    async with session.post(polling, data=f"40{CHAT}," + json.dumps({"token": token})) as posted:
        assert posted.status == 200
    async with session.get(polling) as response:
        assert (await response.text()).startswith(f"40{CHAT},")


class RecordingSocket(LeanSocket):
    """A socket that only records when its ping is sent."""

    def __init__(self, name: str, pinged: list[tuple[str, float]]) -> None:
        self.sid = name
        self._pinged = pinged

    def ping_now(self) -> None:
        self._pinged.append((self.sid, asyncio.get_running_loop().time()))


async def test_the_ping_schedule_pings_each_socket_once_when_due_in_order() -> None:
    schedule = PingSchedule(resolution_s=0.02)
    pinged: list[tuple[str, float]] = []
    started = asyncio.get_running_loop().time()
    for name, delay in [("c", 0.3), ("a", 0.1), ("b", 0.2), ("a2", 0.1)]:
        schedule.add(RecordingSocket(name, pinged), delay)
    assert schedule.pending() == 4

    await wait_until(lambda: len(pinged) == 4, within=3, what="four pings")
    await asyncio.sleep(0.1)

    assert [name for name, _ in pinged] == ["a", "a2", "b", "c"]  # each once, by due time
    delays = {name: at - started for name, at in pinged}
    for name, delay in [("a", 0.1), ("b", 0.2), ("c", 0.3)]:
        assert delay - 0.02 <= delays[name] <= delay + 1.0, (name, delays[name])
    assert schedule.pending() == 0


async def test_the_spent_queue_holds_nothing() -> None:
    queue = SpentQueue()
    queue.put_nowait("dropped")
    await queue.put("dropped")
    assert queue.empty()
    assert queue.qsize() == 0
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()
    with pytest.raises(asyncio.QueueEmpty):
        await queue.get()
    queue.task_done()
    await asyncio.wait_for(queue.join(), timeout=1)

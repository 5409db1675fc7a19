"""A lean Engine.IO WebSocket transport on aiohttp, inside python-engineio.

python-engineio's WebSocket transport costs every idle connection five asyncio tasks and
their coroutine frames: a writer task draining the socket's send queue (waiting in
`asyncio.wait_for`, itself a second task), a task per read (`ensure_future` of the read, also
under `wait_for`) and a ping task sleeping between pings. Measured with `tracemalloc`, that is
most of the 7.7 KB that asyncio held per connection (docs/performance.md, "Memory").

`LeanSocket` replaces that machinery once a connection is on WebSocket, and only there
(long-polling and the polling-to-WebSocket upgrade keep python-engineio's queue):

- a packet is written to the transport at once, as one WebSocket frame, in the task that
  sends it; writes are synchronous, so frames keep the order in which they were sent, and a
  broadcast can write one pre-built frame to every recipient (`delivery.fast_local_emit`);
- the connection's own aiohttp handler task reads (aiohttp's `receive()`, no timer);
- pings, and the deadlines of their answers, are due times in one `PingSchedule` per
  server (one timer for every socket), not a sleeping task per socket; they replace
  python-engineio's monitor task (`monitor_clients=False`), which visited every socket once
  per ping timeout with a task per visit (1.8% of a core for 10,000 idle connections).

Unsent output now waits in the transport's write buffer instead of the socket's queue; the
slow-consumer guard bounds both (`adapters/socketio/slow_consumers.py`).

Each object and coroutine frame that lives as long as a connection is paid for on every
connection, so the WebSocket is served in one frame (`LeanSocket.handle_get_request`), the
environ is trimmed, and the spent queue is dropped. Together with the absence of an aiohttp
middleware (`adapters/http/api.py`, `json_error_bodies`), this took a held connection from
33 to about 20 KB of RSS (docs/performance.md).

Why by hand: python-engineio has no option for this, and its WebSocket handler is one
function; `LeanSocket` overrides the socket's `send`, `schedule_ping`, `close` and
`handle_get_request` (for WebSocket requests only) and keeps everything else (packet
codec, ping timeout, events, long-polling). Sockets become `LeanSocket`s when Engine.IO
reports the connection (`LeanServer`), before the first ping is scheduled.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import time

import socketio
from aiohttp import WSMsgType, web
from engineio import async_socket
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet

from adapters.socketio.frames import FrameSink, websocket_close_frame, websocket_frame
from application.logging import get_logger

log = get_logger("switchboard.transport")


KEPT_ENVIRON = (
    "aiohttp.request",
    "wsgi.url_scheme",
    "HTTP_X_FORWARDED_PROTO",
    "REQUEST_METHOD",
    "PATH_INFO",
    "QUERY_STRING",
    "REMOTE_ADDR",
    "HTTP_USER_AGENT",
    "HTTP_ORIGIN",
    "HTTP_X_FORWARDED_FOR",
)
"""What a WebSocket connection's WSGI-style environ keeps for its lifetime: the aiohttp
request (which has every header, for the handshake) and what the Admin UI shows."""


def _asks_for_websocket(environ: dict[str, object]) -> bool:
    """Whether a GET asks to switch to WebSocket (python-engineio's own test)."""
    connection = environ.get("HTTP_CONNECTION", "")
    upgrade = environ.get("HTTP_UPGRADE", "")
    if not isinstance(connection, str) or not isinstance(upgrade, str):
        return False
    tokens = [token.strip() for token in connection.lower().split(",")]
    return "upgrade" in tokens and upgrade.lower() == "websocket"


def trim_environ(environ: dict[str, object]) -> None:
    """Drop the rest of python-engineio's environ in place (it copies every request header
    under a new `HTTP_*` key; about 1 KB a connection, kept as long as the connection)."""
    kept = {key: environ[key] for key in KEPT_ENVIRON if key in environ}
    environ.clear()
    environ.update(kept)


class SpentQueue:
    """What stands in for a `LeanSocket`'s send queue once it writes straight to its
    WebSocket: nothing is queued any more, and a packet that could not be written (the
    connection is closing) is dropped, as python-engineio drops what is left in the queue of
    a closed socket. Stateless, so one instance serves every socket; it frees the four
    deques of an `asyncio.Queue` (about 3 KB) per connection."""

    def empty(self) -> bool:
        return True

    def qsize(self) -> int:
        return 0

    def put_nowait(self, item: object) -> None:
        """Drop the packet."""

    async def put(self, item: object) -> None:
        """Drop the packet."""

    def get_nowait(self) -> object:
        raise asyncio.QueueEmpty

    async def get(self) -> object:
        raise asyncio.QueueEmpty

    def task_done(self) -> None:
        """Nothing was queued."""

    async def join(self) -> None:
        """Nothing is queued."""


SPENT_QUEUE = SpentQueue()


def _decoded(data: str | bytes | None) -> eio_packet.Packet | None:
    """The Engine.IO packet in a frame, or None (no frame, or not a packet)."""
    if data is None:
        return None
    try:
        return eio_packet.Packet(encoded_packet=data)
    except Exception:
        return None


_CLOSING: set[asyncio.Future[None]] = set()
"""Closes started by ping deadlines (held until done)."""

CLOSE_FLUSH_MAX_BYTES = 64 * 1024
"""A server-side close flushes at most this much unsent output; more is dropped (abort)."""

WEBSOCKET_CLOSE_NORMAL = websocket_close_frame(1000)


class PingSchedule:
    """When each socket's next ping is due, and when the answer to its last ping is, in
    slots of `resolution_s`, with one timer for all of them (a `loop.call_later` per socket
    costs about 0.5 KB while it waits, with its context copy; python-engineio's monitor
    task, which this replaces, visits every socket once per ping timeout with a task per
    visit). A ping or a deadline may come up to one slot late."""

    def __init__(self, resolution_s: float = 0.1) -> None:
        self._resolution_s = resolution_s
        # (socket, None): ping it; (socket, t): close it unless the ping sent at t was answered
        self._slots: dict[int, list[tuple[LeanSocket, float | None]]] = {}
        self._order: list[int] = []  # a heap of the slots in use
        self._timer: asyncio.TimerHandle | None = None

    def add(self, socket: LeanSocket, delay_s: float) -> None:
        """Ping `socket` in `delay_s` (or up to one slot later)."""
        self._put((socket, None), delay_s)

    def add_deadline(self, socket: LeanSocket, delay_s: float, sent: float) -> None:
        """In `delay_s`, close `socket` if the ping it was sent at `sent` is unanswered."""
        self._put((socket, sent), delay_s)

    def _put(self, entry: tuple[LeanSocket, float | None], delay_s: float) -> None:
        loop = asyncio.get_running_loop()
        slot = math.ceil((loop.time() + delay_s) / self._resolution_s)
        due = self._slots.get(slot)
        if due is None:
            self._slots[slot] = [entry]
            heapq.heappush(self._order, slot)
            if self._order[0] == slot:
                self._arm(loop)
        else:
            due.append(entry)

    def pending(self) -> int:
        """How many pings are scheduled (deadlines not counted)."""
        return sum(1 for due in self._slots.values() for _, sent in due if sent is None)

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(self._order[0] * self._resolution_s, self._fire)

    def _fire(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        # half a slot of slack: the loop may run a timer a little before its time
        now = loop.time() / self._resolution_s + 0.5
        while self._order and self._order[0] <= now:
            for socket, sent in self._slots.pop(heapq.heappop(self._order)):
                try:
                    if sent is None:
                        socket.ping_now()
                    else:
                        socket.check_pong(sent)
                except Exception:
                    log.exception("ping_failed", sid=socket.sid)
        if self._order:
            self._arm(loop)


class LeanSocket(async_socket.AsyncSocket):  # type: ignore[misc]  # untyped library
    """An Engine.IO socket that writes straight to its WebSocket (see the module doc)."""

    # python-engineio's attributes that this class reads (the library is untyped)
    last_ping: float | None
    connected: bool
    upgrading: bool
    upgraded: bool
    closing: bool
    closed: bool
    queue: asyncio.Queue[eio_packet.Packet | None] | SpentQueue

    sink: FrameSink | None = None
    """The transport while the connection is on WebSocket and not upgrading; else None."""

    def writable(self) -> FrameSink | None:
        """Where a frame for this socket goes now, or None to use the queue."""
        sink = self.sink
        if sink is None or self.upgrading or self.closed:
            return None
        return sink

    def write(self, pkt: eio_packet.Packet) -> None:
        """Write one packet as one frame (dropped if the transport is closing)."""
        sink = self.sink
        if sink is not None and not sink.is_closing():
            sink.write(websocket_frame(pkt.encode()))

    async def send(self, pkt: eio_packet.Packet) -> None:
        """Send a packet: written at once on WebSocket, else queued."""
        if self.writable() is None:
            await super().send(pkt)
            return
        if await self.check_ping_timeout():
            self.write(pkt)

    def schedule_ping(self) -> None:
        """Ping after the interval (once the previous ping was answered), on the server's
        `PingSchedule`."""
        if self.last_ping:
            self.last_ping = None
            self._schedule().add(self, self.server.ping_interval)

    def _schedule(self) -> PingSchedule:
        schedule = getattr(self.server, "ping_schedule", None)
        if not isinstance(schedule, PingSchedule):
            raise TypeError("a LeanSocket needs a server with a PingSchedule")
        return schedule

    def ping_now(self) -> None:
        """Send the ping that is due (unless the socket is closing), and set its deadline."""
        if self.closing or self.closed:
            return
        sent = self.last_ping = time.time()
        ping = eio_packet.Packet(eio_packet.PING)
        if self.writable() is None:
            self.queue.put_nowait(ping)
        else:
            self.write(ping)
        self._schedule().add_deadline(self, self.server.ping_timeout, sent)

    def check_pong(self, sent: float) -> None:
        """The deadline of the ping sent at `sent`: close the socket if it is unanswered
        (an answer clears `last_ping`, and a later ping sets a newer one)."""
        if self.closing or self.closed or self.last_ping != sent:
            return
        closing = asyncio.ensure_future(
            self.close(wait=False, abort=False, reason=self.server.reason.PING_TIMEOUT)
        )
        _CLOSING.add(closing)
        closing.add_done_callback(_CLOSING.discard)

    async def close(self, wait: bool = True, abort: bool = False, reason: object = None) -> None:
        """Close the socket; on WebSocket, the connection too once the CLOSE packet is out.
        (A ping still scheduled finds the socket closed and does nothing; the read loop
        stops at its next frame, see `handle_get_request`.)"""
        sink = self.sink
        await super().close(wait=wait, abort=abort, reason=reason)
        if self.server.sockets.get(self.sid) is self:  # (the monitor task did this)
            del self.server.sockets[self.sid]
        sink = self.sink or sink  # an upgrade may have gone direct meanwhile
        if sink is None or abort or sink.is_closing():
            return
        if (
            reason == self.server.reason.PING_TIMEOUT
            or sink.get_write_buffer_size() > CLOSE_FLUSH_MAX_BYTES
        ):
            sink.abort()  # a client that does not read would hold the buffer for ever
            return
        sink.write(WEBSOCKET_CLOSE_NORMAL)
        sink.close()  # flushes what is written (CLOSE packet, close frame), then closes

    async def handle_get_request(self, environ: dict[str, object]) -> object:
        """A long-polling GET as python-engineio answers it; a WebSocket request (a new
        connection, or an upgrade) is served right here until the connection ends. In this
        one frame on purpose: every object and coroutine frame that lives as long as the
        connection costs memory on each of them."""
        request = environ.get("aiohttp.request")
        if not isinstance(request, web.Request) or not _asks_for_websocket(environ):
            return await super().handle_get_request(environ)
        if self.upgraded:
            raise OSError("Socket has been upgraded already")
        server = self.server
        response = web.WebSocketResponse(
            max_msg_size=server.max_http_buffer_size,
            compress=getattr(server, "websocket_compression", False) is True,
        )
        await response.prepare(request)
        trim_environ(environ)
        transport = request.transport
        if transport is None:  # the connection is already gone
            await self.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)
            return response
        if self.connected:  # already connected over long-polling: this is an upgrade
            if not await self._upgrade(response):
                return response
        else:
            self.connected = True
            self.upgraded = True
        self._go_direct(transport)
        try:
            while not self.closed:  # a closed socket's connection is not served any more
                try:
                    message = await response.receive()  # no timer: see PingSchedule
                except (OSError, RuntimeError):
                    break
                data = message.data
                if (
                    message.type not in (WSMsgType.TEXT, WSMsgType.BINARY)
                    or not isinstance(data, str | bytes)
                    or len(data) > server.max_http_buffer_size
                ):
                    break
                try:
                    await self.receive(eio_packet.Packet(encoded_packet=data))
                except eio_exceptions.UnknownPacketError:
                    pass
                except eio_exceptions.SocketIsClosedError:
                    break
                except Exception:
                    log.exception("engineio_receive_failed", sid=self.sid)
        finally:
            self.sink = None
            await self.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)
            await response.close()
        return response

    def _go_direct(self, transport: FrameSink) -> None:
        """From now on frames go straight to `transport`: first what was queued, in order.
        (A method of its own so that no frame keeps the old queue alive.)"""
        self.sink = transport
        queue, self.queue = self.queue, SPENT_QUEUE
        while not queue.empty():
            queued = queue.get_nowait()
            queue.task_done()
            if queued is not None:
                self.write(queued)
        # a long-poll still waiting on the old queue (a client that sent the UPGRADE packet
        # before its poll ended) gets its NOOP, as with python-engineio's shared queue
        queue.put_nowait(eio_packet.Packet(eio_packet.NOOP))
        self.upgrading = False

    async def _upgrade(self, response: web.WebSocketResponse) -> bool:
        """The probe exchange of a polling-to-WebSocket upgrade; whether it succeeded. On
        any failure (a wrong or malformed packet, the connection gone, cancellation) the
        socket goes on over long-polling."""
        self.upgrading = True  # packets sent meanwhile wait in the queue
        upgraded = False
        try:
            probe = _decoded(await self._read(response))
            if probe is None or probe.packet_type != eio_packet.PING or probe.data != "probe":
                return False
            await response.send_str(eio_packet.Packet(eio_packet.PONG, data="probe").encode())
            await self.queue.put(eio_packet.Packet(eio_packet.NOOP))  # ends the pending poll
            upgrade = _decoded(await self._read(response))
            upgraded = upgrade is not None and upgrade.packet_type == eio_packet.UPGRADE
            return upgraded
        finally:
            self.upgraded = upgraded
            if not upgraded:
                self.upgrading = False

    async def _read(self, response: web.WebSocketResponse) -> str | bytes | None:
        """The next frame of an upgrade's probe exchange, or None once the connection is
        closed, silent for a ping cycle, or sends a frame over the size bound. (The main
        loop of `handle_get_request` reads with no timer, which would cost memory on every
        connection: a client that stops answering pings is closed by its ping deadline.)"""
        server = self.server
        try:
            message = await response.receive(timeout=server.ping_interval + server.ping_timeout)
        except (TimeoutError, OSError, RuntimeError):
            return None
        if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            return None
        data = message.data
        if not isinstance(data, str | bytes) or len(data) > server.max_http_buffer_size:
            return None
        return data


class LeanServer(socketio.AsyncServer):  # type: ignore[misc]  # untyped library
    """python-socketio's server whose Engine.IO sockets are `LeanSocket`s (`compress`:
    offer permessage-deflate on WebSockets; off by default, as deflating every small frame
    costs more CPU than it saves)."""

    def __init__(self, *, compress: bool = False, **options: object) -> None:
        # ping deadlines and the removal of closed sockets are LeanSocket's (PingSchedule)
        super().__init__(monitor_clients=False, **options)
        self.eio.ping_schedule = PingSchedule()
        self.eio.websocket_compression = compress

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, object]) -> object:
        """Engine.IO reports a new connection: make its socket lean (before the first ping
        is scheduled), then python-socketio's handling."""
        socket = self.eio.sockets.get(eio_sid)
        if type(socket) is async_socket.AsyncSocket:
            socket.__class__ = LeanSocket
        return await super()._handle_eio_connect(eio_sid, environ)

"""Local delivery of broadcasts: one encoding, no task per recipient, and a count.

python-socketio's `AsyncManager.emit` encodes a broadcast once but then starts one asyncio
task per recipient (each awaiting `socket.send`, which re-checks the ping timeout and logs)
and waits for all of them. For a room of 2,000 that is 2,000 tasks per message. Here the
pre-encoded Engine.IO packet is put straight on each recipient's send queue (python-engineio's
own per-socket writer drains it), which is what `socket.send` ends up doing anyway.

It also counts chat messages handed to sockets (`switchboard_messages_total{direction=
"delivered"}`); each instance counts its own sockets, so the sum over instances is the
cluster's deliveries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from typing import Protocol

import socketio
from aiohttp import web
from engineio import packet as eio_packet
from engineio.async_drivers import aiohttp as aiohttp_driver
from socketio import packet as sio_packet

COUNTED_EVENT = "message:new"

Count = Callable[[int], None]


class PreEncodedPacket(eio_packet.Packet):  # type: ignore[misc]  # untyped library
    """An Engine.IO MESSAGE packet encoded once and sent as is to every recipient."""

    def __init__(self, encoded: str | bytes) -> None:
        super().__init__(eio_packet.MESSAGE, encoded)
        self._encoded = super().encode()

    def encode(self, b64: bool = False) -> str | bytes:
        """The encoding computed at construction (base64 requests fall back)."""
        if b64:
            return super().encode(b64=True)  # type: ignore[no-any-return]
        return self._encoded  # type: ignore[no-any-return]


def _skipped(skip: object) -> Collection[object]:
    if isinstance(skip, list | tuple | set):
        return skip
    return [skip] if skip else []


def fast_local_emit(
    manager: socketio.AsyncManager,
    event: str,
    data: object,
    namespace: str | None,
    room: object,
    skip_sid: object,
) -> int:
    """Deliver an event without ack to this instance's sockets in `room`; how many got it."""
    namespace = namespace or "/"
    if namespace not in manager.rooms:
        return 0
    if isinstance(data, tuple):
        args = list(data)
    elif data is not None:
        args = [data]
    else:
        args = []
    encoded = manager.server.packet_class(
        sio_packet.EVENT, namespace=namespace, data=[event, *args]
    ).encode()
    parts = encoded if isinstance(encoded, list) else [encoded]
    if len(parts) != 1:  # binary attachments: rare, leave them to python-socketio's path
        return -1
    packet = PreEncodedPacket(parts[0])
    frame: bytes | None = None
    skipped = _skipped(skip_sid)
    sockets = manager.server.eio.sockets
    delivered = 0
    for sid, eio_sid in manager.get_participants(namespace, room):
        if sid in skipped:
            continue
        socket = sockets.get(eio_sid)
        if socket is None or socket.closed:
            continue
        transport = _idle_websocket(socket)
        if transport is None:
            socket.queue.put_nowait(packet)
            STATS.queued += 1
        else:
            if frame is None:
                frame = websocket_text_frame(packet.encode())
            transport.write(frame)
            STATS.direct += 1
        delivered += 1
    return delivered


class DeliveryStats:
    """How broadcasts reached sockets in this process: written directly or queued."""

    def __init__(self) -> None:
        self.direct = 0
        self.queued = 0


STATS = DeliveryStats()


DIRECT_MAX_BUFFERED = 256 * 1024
"""Past this many unsent bytes a socket goes back to its queue (and the slow-consumer
guard's watch)."""


class FrameSink(Protocol):
    """What a direct write needs of a transport (asyncio's, or uvloop's, which is no
    `asyncio.WriteTransport` subclass)."""

    def write(self, data: bytes) -> None: ...

    def is_closing(self) -> bool: ...

    def get_write_buffer_size(self) -> int: ...


def _idle_websocket(socket: object) -> FrameSink | None:
    """The transport of a WebSocket connection whose engine.io writer is idle (its queue is
    empty and it waits on it), so a frame written now keeps its order; else None."""
    transport = getattr(socket, "switchboard_transport", None)
    queue = getattr(socket, "queue", None)
    if (
        transport is None  # duck-typed: uvloop's transports are no asyncio.WriteTransport
        or not isinstance(queue, asyncio.Queue)
        or getattr(socket, "upgrading", True)
        or not queue.empty()
        or not getattr(queue, "_getters", None)  # no writer waiting: it holds a batch
        or transport.is_closing()
        or transport.get_write_buffer_size() > DIRECT_MAX_BUFFERED
    ):
        return None
    sink: FrameSink = transport
    return sink


def websocket_text_frame(text: str | bytes) -> bytes:
    """One unmasked, uncompressed, final WebSocket text frame (server to client)."""
    payload = text.encode() if isinstance(text, str) else text
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 65536:
        header = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return header + payload


class DirectWebSocket(aiohttp_driver.WebSocket):  # type: ignore[misc]  # untyped library
    """engine.io's aiohttp WebSocket, remembering its transport on the engine.io socket (so
    broadcasts can write one pre-built frame per recipient) and with compression a choice
    (off by default: deflating every small frame costs more CPU than it saves)."""

    compress = False

    async def __call__(self, environ: dict[str, object]) -> web.WebSocketResponse:
        """Serve one WebSocket connection."""
        request = environ["aiohttp.request"]
        if not isinstance(request, web.Request):
            raise TypeError("engine.io passed no aiohttp request")
        self._sock = web.WebSocketResponse(
            max_msg_size=self.server.max_http_buffer_size, compress=self.compress
        )
        await self._sock.prepare(request)
        self.environ = environ
        owner = getattr(self.handler, "__self__", None)
        if owner is not None:
            owner.switchboard_transport = request.transport
        try:
            await self.handler(self)
        finally:
            if owner is not None:
                owner.switchboard_transport = None
        return self._sock


def install_direct_websocket(sio: socketio.AsyncServer, *, compress: bool) -> None:
    """Serve this server's WebSockets through `DirectWebSocket`."""
    websocket = type("SwitchboardWebSocket", (DirectWebSocket,), {"compress": compress})
    sio.eio._async = {**sio.eio._async, "websocket": websocket}


class FastManager(socketio.AsyncManager):  # type: ignore[misc]  # untyped library
    """The single-instance manager with the fast broadcast path and the delivery count."""

    def __init__(self, count: Count, *, fast: bool = True) -> None:
        super().__init__()
        self._count = count
        self.fast = fast

    async def emit(
        self,
        event: str,
        data: object,
        namespace: str | None,
        room: object = None,
        skip_sid: object = None,
        callback: object = None,
        to: object = None,
        **kwargs: object,
    ) -> None:
        """Deliver like python-socketio (faster when no ack is asked), then count."""
        target = to if to is not None else room
        delivered = -1
        if self.fast and callback is None and target is not None:
            delivered = fast_local_emit(self, event, data, namespace, target, skip_sid)
        if delivered < 0:
            await super().emit(
                event, data, namespace, room=target, skip_sid=skip_sid, callback=callback, **kwargs
            )
            delivered = local_recipients(self, namespace, target, skip_sid)
        if event == COUNTED_EVENT:
            self._count(delivered)


def local_recipients(
    manager: socketio.AsyncManager, namespace: str | None, room: object, skip: object
) -> int:
    """How many local sockets an emit to `room` reaches (minus the skipped sids)."""
    if not isinstance(room, str):
        return 0
    members = manager.rooms.get(namespace or "/", {}).get(room)
    if not members:
        return 0
    return len(members) - sum(1 for sid in _skipped(skip) if sid in members)

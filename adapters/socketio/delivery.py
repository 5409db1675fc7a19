"""Local delivery of broadcasts: one encoding, no task per recipient, and a count.

python-socketio's `AsyncManager.emit` encodes a broadcast once but then starts one asyncio
task per recipient (each awaiting `socket.send`, which re-checks the ping timeout and logs)
and waits for all of them. For a room of 2,000 that is 2,000 tasks per message. Here the
event is encoded once, as one WebSocket frame, and written to the transport of every
recipient on WebSocket (`transport.LeanSocket`); a recipient on long-polling or in the middle
of an upgrade gets the pre-encoded packet on its python-engineio queue.

It also counts chat messages handed to sockets (`switchboard_messages_total{direction=
"delivered"}`); each instance counts its own sockets, so the sum over instances is the
cluster's deliveries.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from adapters.socketio.frames import websocket_frame
from adapters.socketio.transport import LeanSocket

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
        sink = socket.writable() if isinstance(socket, LeanSocket) else None
        if sink is None:  # long-polling, or upgrading: python-engineio's queue
            socket.queue.put_nowait(packet)
            STATS.queued += 1
        else:
            if frame is None:
                frame = websocket_frame(packet.encode())
            if not sink.is_closing():
                sink.write(frame)
            STATS.direct += 1
        delivered += 1
    return delivered


class DeliveryStats:
    """How broadcasts reached sockets in this process: written directly or queued."""

    def __init__(self) -> None:
        self.direct = 0
        self.queued = 0


STATS = DeliveryStats()


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

"""Disconnects connections whose unsent output grows past a bound.

Unsent output waits in python-engineio's send queue (long-polling, upgrades) or, on
WebSocket, in the transport's write buffer (Switchboard writes frames straight to it, see
`transport.py`). Both are unbounded, so a client that stops reading (a stalled mobile, a
debugger at a breakpoint) makes the server's memory grow with every broadcast. Every
`interval_s` this guard looks at each socket and closes those holding more than
`max_queued` packets or `max_buffered_bytes` unsent bytes at two checks in a row; their
disconnect handlers then run as for any closed connection (presence, registry).
"""

from __future__ import annotations

import asyncio

import socketio

from adapters.socketio.closing import close_connection
from adapters.socketio.transport import LeanSocket
from application.logging import get_logger
from domain.ports import MetricsCollector

log = get_logger("switchboard.slow_consumers")

REASON = "slow consumer: too much unsent output"


def _unsent(socket: object) -> tuple[int, int]:
    """Packets in the socket's queue, bytes in its WebSocket transport's write buffer."""
    queue = getattr(socket, "queue", None)
    queued = queue.qsize() if isinstance(queue, asyncio.Queue) else 0
    sink = socket.sink if isinstance(socket, LeanSocket) else None
    buffered = sink.get_write_buffer_size() if sink is not None else 0
    return queued, buffered


class SlowConsumerGuard:
    """A background check of every socket's send queue."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        metrics: MetricsCollector,
        *,
        max_queued: int,
        max_buffered_bytes: int = 1_048_576,
        interval_s: float = 1.0,
    ) -> None:
        self._sio = sio
        self._metrics = metrics
        self._max_queued = max_queued
        self._max_buffered_bytes = max_buffered_bytes
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self._over: set[str] = set()  # over the bound at the previous check

    async def check(self) -> int:
        """Close every socket over the bound at this check and the previous one (a healthy
        client that gets one burst larger than the bound catches up and is spared);
        returns how many were closed."""
        closed = 0
        over_now: set[str] = set()
        for eio_sid, socket in list(self._sio.eio.sockets.items()):
            if socket.closed:
                continue
            queued, buffered = _unsent(socket)
            if queued <= self._max_queued and buffered <= self._max_buffered_bytes:
                continue
            over_now.add(eio_sid)
            if eio_sid in self._over:
                log.warning(
                    "slow_consumer_disconnected", eio_sid=eio_sid, queued=queued, buffered=buffered
                )
                self._metrics.record_slow_consumer_disconnect()
                await close_connection(self._sio, eio_sid, REASON, abort=True)
                over_now.discard(eio_sid)
                closed += 1
        self._over = over_now
        return closed

    def start(self) -> None:
        """Run `check` every interval until stopped."""
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="slow-consumers")

    async def stop(self) -> None:
        """Stop the background check."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.check()
            except Exception as exc:
                log.warning("slow_consumer_check_failed", error=type(exc).__name__)

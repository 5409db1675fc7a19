"""Closing connections from the server side without waiting on the client.

python-engineio's `AsyncSocket.close` only marks the socket closed and queues a CLOSE
packet; the WebSocket (or a long-poll) stays open until the client acts, and
`AsyncServer.disconnect()` waits for each queue to drain, which an idle long-polling client
never does. These helpers close the Engine.IO socket (running the disconnect handlers) and
then the HTTP connection under it.
"""

from __future__ import annotations

import asyncio
import contextlib

import socketio
from aiohttp import web

from adapters.socketio.frames import FrameSink
from adapters.socketio.transport import LeanSocket


def _transport_of(sio: socketio.AsyncServer, eio_sid: str) -> FrameSink | None:
    """The connection under an Engine.IO session: its WebSocket's (which, after an upgrade
    from long-polling, is not the first request's), else that of the request that opened it."""
    socket = sio.eio.sockets.get(eio_sid)
    if isinstance(socket, LeanSocket) and socket.sink is not None:
        return socket.sink
    environ = sio.environ.get(eio_sid)
    request = environ.get("aiohttp.request") if isinstance(environ, dict) else None
    return request.transport if isinstance(request, web.BaseRequest) else None


def _cut(transport: FrameSink | None, *, abort: bool) -> None:
    if transport is not None and not transport.is_closing():
        if abort:
            transport.abort()
        else:
            transport.close()  # flushes what is already written, then closes


async def close_connection(
    sio: socketio.AsyncServer, eio_sid: str, reason: str, *, abort: bool
) -> None:
    """Close one connection now: its handlers run, its transport is cut (`abort`: at once,
    dropping unsent output; else after what is written is flushed)."""
    socket = sio.eio.sockets.get(eio_sid)
    transport = _transport_of(sio, eio_sid)
    if socket is not None:
        with contextlib.suppress(Exception):
            await socket.close(wait=False, abort=abort, reason=reason)
        if abort:
            while not socket.queue.empty():
                socket.queue.get_nowait()
                socket.queue.task_done()
        sio.eio.sockets.pop(eio_sid, None)
    _cut(transport, abort=abort)


async def close_all(sio: socketio.AsyncServer, reason: str, *, flush_s: float) -> int:
    """Tell every client to go (engine.io CLOSE), give it `flush_s`, then close the
    connections; returns how many there were."""
    eio_sids = list(sio.eio.sockets)
    transports = [_transport_of(sio, eio_sid) for eio_sid in eio_sids]
    for eio_sid in eio_sids:
        socket = sio.eio.sockets.get(eio_sid)
        if socket is not None:
            with contextlib.suppress(Exception):
                await socket.close(wait=False, abort=False, reason=reason)
    await asyncio.sleep(flush_s)
    for eio_sid, transport in zip(eio_sids, transports, strict=True):
        sio.eio.sockets.pop(eio_sid, None)
        _cut(transport, abort=False)
    return len(eio_sids)

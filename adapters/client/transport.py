"""The wire under the SDK: a small port, and its python-socketio `AsyncClient` adapter.

The SDK does its own reconnection, so each connection attempt builds a fresh
`AsyncClient(reconnection=False)`; a dropped connection is reported once through
`TransportListener.on_disconnect` and the transport is thrown away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

import socketio

from adapters.client.errors import (
    ACK_TIMEOUT,
    CONNECT_FAILED,
    DISCONNECTED,
    NetworkError,
    SwitchboardError,
)
from adapters.client.json_types import JsonObject
from adapters.client.parsing import refusal_error

log = logging.getLogger("switchboard.client")


class TransportListener(Protocol):
    """What a transport tells the client."""

    def on_event(self, namespace: str, event: str, payload: object, /) -> None:
        """A server event arrived."""

    def on_disconnect(self, reason: str, /) -> None:
        """The connection is gone (reported once, never for `disconnect()` itself)."""


class Transport(Protocol):
    """One connection to the server, on one or more namespaces."""

    async def connect(
        self, url: str, token: str, namespaces: Sequence[str], timeout_s: float
    ) -> None:
        """Connect every namespace or raise a typed `SwitchboardError`."""

    async def call(
        self, namespace: str, event: str, payload: JsonObject, timeout_s: float
    ) -> object:
        """Emit with an ack and return the raw ack value.

        Raises `NetworkError(disconnected)` when the connection is (or goes) away and
        `NetworkError(ack_timeout)` when no ack comes in time.
        """

    async def disconnect(self) -> None:
        """Close; no `on_disconnect` follows."""


TransportFactory = Callable[[TransportListener], Transport]


def disconnected(reason: str = "the connection to the server was lost") -> NetworkError:
    """The error of a command cut off by a lost connection."""
    return NetworkError(DISCONNECTED, reason)


class SocketIOTransport:
    """`Transport` over python-socketio's `AsyncClient` (reconnection switched off)."""

    def __init__(
        self, listener: TransportListener, transports: Sequence[str] = ("websocket",)
    ) -> None:
        self._listener = listener
        self._transports = list(transports)
        self._sio: socketio.AsyncClient | None = None
        self._pending: set[asyncio.Future[object]] = set()
        self._refusals: dict[str, SwitchboardError] = {}
        self._live = False
        self._closing = False
        self._cleanup: asyncio.Task[None] | None = None

    async def connect(
        self, url: str, token: str, namespaces: Sequence[str], timeout_s: float
    ) -> None:
        """Connect every namespace or raise a typed `SwitchboardError`."""
        sio = socketio.AsyncClient(
            reconnection=False,
            handle_sigint=False,
            logger=False,
            engineio_logger=False,
            request_timeout=timeout_s,
        )
        for namespace in namespaces:
            self._register(sio, namespace)
        self._sio = sio
        try:
            await asyncio.wait_for(
                sio.connect(
                    url,
                    auth={"token": token},
                    namespaces=list(namespaces),
                    transports=self._transports,
                    wait_timeout=timeout_s,
                ),
                timeout_s * 2,
            )
        except (socketio.exceptions.ConnectionError, TimeoutError, OSError, ValueError) as exc:
            await self._abandon(sio)
            refusal = next(iter(self._refusals.values()), None)
            if refusal is not None:
                raise refusal from None
            raise NetworkError(CONNECT_FAILED, f"could not connect to {url}: {exc}") from None
        self._live = True

    def _register(self, sio: socketio.AsyncClient, namespace: str) -> None:
        def on_connect_error(data: object = None) -> None:
            error = refusal_error(data)
            if error is not None:
                self._refusals[namespace] = error

        def on_disconnect(reason: object = None) -> None:
            self._lost(f"{namespace}: {reason}")

        def on_any(event: object, *args: object) -> None:
            payload = args[0] if args else None
            if isinstance(event, str):
                self._listener.on_event(namespace, event, payload)

        sio.on("connect_error", on_connect_error, namespace=namespace)
        sio.on("disconnect", on_disconnect, namespace=namespace)
        sio.on("*", on_any, namespace=namespace)

    def _lost(self, reason: str) -> None:
        if not self._live or self._closing:
            return
        self._live = False
        self._fail_pending(disconnected())
        self._listener.on_disconnect(reason)
        sio = self._sio
        if sio is not None:  # one namespace may still be up: close it all
            self._cleanup = asyncio.get_running_loop().create_task(self._abandon(sio))

    def _fail_pending(self, error: NetworkError) -> None:
        for future in list(self._pending):
            if not future.done():
                future.set_exception(error)
        self._pending.clear()

    async def call(
        self, namespace: str, event: str, payload: JsonObject, timeout_s: float
    ) -> object:
        """Emit with an ack and return the raw ack value (see `Transport.call`)."""
        sio = self._sio
        if sio is None or not self._live:
            raise disconnected("not connected")
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()

        def on_ack(*args: object) -> None:
            if not future.done():
                future.set_result(args[0] if args else None)

        self._pending.add(future)
        try:
            try:
                await sio.emit(event, payload, namespace=namespace, callback=on_ack)
            except socketio.exceptions.SocketIOError as exc:
                raise disconnected(str(exc)) from None
            try:
                return await asyncio.wait_for(asyncio.shield(future), timeout_s)
            except TimeoutError:
                raise NetworkError(
                    ACK_TIMEOUT, f"no answer to {event} within {timeout_s:g} s"
                ) from None
        finally:
            self._pending.discard(future)
            if not future.done():
                future.cancel()

    async def disconnect(self) -> None:
        """Close; no `on_disconnect` follows."""
        self._closing = True
        self._live = False
        self._fail_pending(disconnected("the client closed the connection"))
        if self._sio is not None:
            await self._abandon(self._sio)

    async def _abandon(self, sio: socketio.AsyncClient) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(sio.disconnect(), 5)
        # a failed connect can leave the Engine.IO client's HTTP session open
        with contextlib.suppress(Exception):
            session = sio.eio.http
            if session is not None and not session.closed:
                await session.close()

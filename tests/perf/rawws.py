"""A minimal WebSocket client as an asyncio `Protocol`, for the load generator only.

aiohttp's WebSocket client costs about 28 us of CPU per received frame on the benchmark
machine (a reader task woken through a queue for every frame): as much as the servers spend
per delivery, which would make the generator the bottleneck. Here every frame is handled
synchronously in `data_received`, with no task and no decoding for the frames that matter:
a `message:new` is recognised by its byte prefix and only its timestamp is read.

What it supports is what the benchmark needs: the HTTP/1.1 upgrade, unmasked server frames
(text, close, ping, continuation), masked client text frames (with an all-zero key, which
RFC 6455 servers accept: the key is not checked), and optionally permessage-deflate
(inflating compressed server frames; the client itself sends uncompressed frames).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import zlib
from collections.abc import Callable
from typing import cast

from tests.perf import wire

OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
ZERO_MASK = b"\x00\x00\x00\x00"
DEFLATE_TAIL = b"\x00\x00\xff\xff"

MESSAGE_NEW = wire.MESSAGE_NEW.encode()
STAMP_MARK = wire.TIMESTAMP_MARK.encode()
STAMP_END = len(STAMP_MARK) + wire.TIMESTAMP_DIGITS
ACK = wire.ACK.encode()
PING = wire.PING.encode()


class Receipts:
    """Counters shared by every connection of a worker (reset before a send phase)."""

    __slots__ = ("last_us", "latencies", "other", "received")

    def __init__(self) -> None:
        self.received = 0
        self.other = 0
        self.last_us = 0
        self.latencies: list[int] = []

    def reset(self) -> None:
        """Start counting afresh."""
        self.received, self.other, self.last_us = 0, 0, 0
        self.latencies = []


class HandshakeFailed(Exception):
    """The upgrade or the namespace connect did not succeed."""


def text_frame(payload: bytes) -> bytes:
    """A masked (all-zero key) FIN text frame."""
    size = len(payload)
    if size < 126:
        header = bytes((0x81, 0x80 | size))
    elif size < 65536:
        header = bytes((0x81, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 0x80 | 127)) + size.to_bytes(8, "big")
    return header + ZERO_MASK + payload


def control_frame(opcode: int, payload: bytes = b"") -> bytes:
    """A masked control frame (payload under 126 bytes)."""
    return bytes((0x80 | opcode, 0x80 | len(payload))) + ZERO_MASK + payload


class SocketIOConnection(asyncio.Protocol):
    """One WebSocket connection speaking Engine.IO v4 / Socket.IO v5 on `/chat`."""

    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        receipts: Receipts,
        on_ack: Callable[[int, bytes], None],
        *,
        compress: bool,
    ) -> None:
        loop = asyncio.get_running_loop()
        self._request = self._upgrade_request(host, port, path, compress)
        self._receipts = receipts
        self._on_ack = on_ack
        self._buffer = b""
        self._fragments: list[bytes] = []
        self._fragment_compressed = False
        self._inflater: zlib._Decompress | None = None
        self._upgraded = False
        self.handshaking = True  # until the namespace is open: other packets go to `handshake`
        self.transport: asyncio.Transport | None = None
        self.handshake: asyncio.Future[bytes] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    @staticmethod
    def _upgrade_request(host: str, port: int, path: str, compress: bool) -> bytes:
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if compress:
            lines.append("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.handshaking and not self.handshake.done():
            self.handshake.set_exception(HandshakeFailed(f"connection lost: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        if not self._upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self._buffer = buffer
                return
            self._upgrade_answered(buffer[:end])
            buffer = buffer[end + 4 :]
        position, size = 0, len(buffer)
        while size - position >= 2:
            first, second = buffer[position], buffer[position + 1]
            length, header = second & 0x7F, 2
            if length == 126:
                if size - position < 4:
                    break
                length, header = int.from_bytes(buffer[position + 2 : position + 4], "big"), 4
            elif length == 127:
                if size - position < 10:
                    break
                length, header = int.from_bytes(buffer[position + 2 : position + 10], "big"), 10
            end = position + header + length
            if end > size:
                break
            self._frame(first, buffer[position + header : end])
            position = end
        self._buffer = buffer[position:] if position < size else b""

    # frames

    def _upgrade_answered(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/1.1 101"):
            self._fail(f"upgrade refused: {lines[0][:80]}")
            return
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-extensions" and "permessage-deflate" in value:
                self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self._upgraded = True

    def _frame(self, first: int, payload: bytes) -> None:
        opcode = first & 0x0F
        final = first & 0x80
        if opcode == OP_TEXT and final and not first & 0x40:
            self._packet(payload)
        elif opcode in (OP_TEXT, OP_BINARY, OP_CONTINUATION):
            if opcode != OP_CONTINUATION:
                self._fragments, self._fragment_compressed = [], bool(first & 0x40)
            self._fragments.append(payload)
            if final:
                whole = b"".join(self._fragments)
                self._fragments = []
                if self._fragment_compressed and self._inflater is not None:
                    whole = self._inflater.decompress(whole + DEFLATE_TAIL)
                if opcode != OP_BINARY:
                    self._packet(whole)
        elif opcode == OP_PING:
            self._write(control_frame(OP_PONG, payload))
        elif opcode == OP_CLOSE:
            self._write(control_frame(OP_CLOSE, payload[:2]))
            if self.transport is not None:
                self.transport.close()

    def _packet(self, data: bytes) -> None:
        """One Engine.IO packet (the text of one frame)."""
        if data.startswith(MESSAGE_NEW):
            at = data.find(STAMP_MARK, len(MESSAGE_NEW))
            if at > 0:
                receipts = self._receipts
                now = wire.now_us()
                receipts.latencies.append(now - int(data[at + len(STAMP_MARK) : at + STAMP_END]))
                receipts.received += 1
                receipts.last_us = now
                return
        if data == PING:
            self.send(b"3")
        elif data.startswith(ACK):
            end = data.find(b"[", len(ACK))
            digits = data[len(ACK) : end]
            if end > 0 and digits.isdigit():
                self._on_ack(int(digits), data)
        elif self.handshaking and not self.handshake.done():
            self.handshake.set_result(data)
        else:
            self._receipts.other += 1

    def _fail(self, reason: str) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(HandshakeFailed(reason))
        if self.transport is not None:
            self.transport.abort()

    def _write(self, frame: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame)

    # API

    @property
    def is_open(self) -> bool:
        """Connected and not closing."""
        return self.transport is not None and not self.transport.is_closing()

    def send(self, text: bytes) -> None:
        """Send one Engine.IO packet."""
        self._write(text_frame(text))

    async def next_handshake_packet(self, timeout_s: float) -> bytes:
        """The next packet that is not an event, ack or ping (during the handshake)."""
        packet = await asyncio.wait_for(self.handshake, timeout_s)
        self.handshake = asyncio.get_running_loop().create_future()
        return packet

    async def close(self, timeout_s: float) -> None:
        """Send a close frame and wait for the server to close (then abort)."""
        if self.is_open:
            self._write(control_frame(OP_CLOSE, (1000).to_bytes(2, "big")))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.closed), timeout_s)
        if self.transport is not None:
            self.transport.abort()


async def open_connection(
    host: str,
    port: int,
    path: str,
    token: str,
    receipts: Receipts,
    on_ack: Callable[[int, bytes], None],
    *,
    compress: bool,
    timeout_s: float,
) -> SocketIOConnection:
    """Connect, upgrade, read the Engine.IO open packet, open `/chat` with the token."""
    loop = asyncio.get_running_loop()
    _, connection = await asyncio.wait_for(
        loop.create_connection(
            lambda: SocketIOConnection(host, port, path, receipts, on_ack, compress=compress),
            host,
            port,
        ),
        timeout_s,
    )
    try:
        opened = await connection.next_handshake_packet(timeout_s)
        if not opened.startswith(b"0"):
            raise HandshakeFailed(f"no open packet: {opened[:80]!r}")
        connection.send(wire.connect_frame(token).encode())
        answer = await connection.next_handshake_packet(timeout_s)
        if not answer.startswith(wire.CONNECT_OK.encode()):
            raise HandshakeFailed(f"refused: {answer[:120]!r}")
        connection.handshaking = False
    except BaseException:
        if connection.transport is not None:
            connection.transport.abort()
        raise
    return connection

"""Server-to-client WebSocket frames built by hand, and what writing them needs.

Switchboard writes Engine.IO packets to a connection's transport itself (see
`transport.py`), so that a broadcast encodes one frame and writes it to every recipient.
A server frame is a two-to-ten-byte header and the payload: unmasked, final, uncompressed
(RFC 6455 section 5.2; an uncompressed frame is valid on a connection that negotiated
permessage-deflate, RFC 7692 section 6).
"""

from __future__ import annotations

from typing import Protocol

TEXT = 0x81  # FIN + text opcode
BINARY = 0x82  # FIN + binary opcode


class FrameSink(Protocol):
    """What a direct write needs of a transport (asyncio's, or uvloop's, which is no
    `asyncio.WriteTransport` subclass)."""

    def write(self, data: bytes) -> None: ...

    def is_closing(self) -> bool: ...

    def get_write_buffer_size(self) -> int: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


def websocket_frame(payload: str | bytes) -> bytes:
    """One frame holding `payload`: a text frame for `str`, a binary frame for `bytes`."""
    if isinstance(payload, str):
        first, data = TEXT, payload.encode()
    else:
        first, data = BINARY, payload
    size = len(data)
    if size < 126:
        header = bytes((first, size))
    elif size < 65536:
        header = bytes((first, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((first, 127)) + size.to_bytes(8, "big")
    return header + data


def websocket_close_frame(code: int) -> bytes:
    """A close frame with this status code and no reason (1000: normal closure)."""
    return bytes((0x88, 2)) + code.to_bytes(2, "big")

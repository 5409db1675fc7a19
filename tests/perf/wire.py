"""Engine.IO v4 / Socket.IO v5 text framing, as much as the load generator needs.

Only what a WebSocket-only client of one namespace sends and reads: the open packet
(`0{...}`), ping/pong (`2` -> `3`), the namespace connect (`40/chat,{"token":...}` ->
`40/chat,{"sid":...}` or `44/chat,{...}`), events with an ack id
(`42/chat,<id>["name",{...}]`) and their acks (`43/chat,<id>[...]`).
"""

from __future__ import annotations

import json
import time

NAMESPACE = "/chat"
PING = "2"
PONG = "3"
CONNECT_OK = f"40{NAMESPACE},"
CONNECT_ERROR = f"44{NAMESPACE},"
ACK = f"43{NAMESPACE},"
EVENT = f"42{NAMESPACE},"
MESSAGE_NEW = f'{EVENT}["message:new",'

TIMESTAMP_MARK = "~ts:"
TIMESTAMP_DIGITS = 16  # microseconds since the epoch: 16 digits until the year 2286
FILLER = " hello from the benchmark, a chat line of an ordinary length"


def now_us() -> int:
    """Wall-clock microseconds (the same clock in every process of this machine)."""
    return time.time_ns() // 1000


def stamped_text(sent_at_us: int) -> str:
    """A chat text carrying its send time where a receiver finds it without parsing JSON."""
    return f"{TIMESTAMP_MARK}{sent_at_us:0{TIMESTAMP_DIGITS}d}{FILLER}"


def stamp_of(frame: str) -> int:
    """The send time carried by a `message:new` frame, or -1 when it has none."""
    at = frame.find(TIMESTAMP_MARK, len(MESSAGE_NEW))
    if at < 0:
        return -1
    start = at + len(TIMESTAMP_MARK)
    digits = frame[start : start + TIMESTAMP_DIGITS]
    return int(digits) if digits.isdigit() else -1


def connect_frame(token: str) -> str:
    """The namespace connect packet with the handshake auth."""
    return CONNECT_OK + json.dumps({"token": token}, separators=(",", ":"))


def event_frame(ack_id: int, name: str, payload: dict[str, str]) -> str:
    """An event asking for an ack."""
    return f"{EVENT}{ack_id}" + json.dumps([name, payload], separators=(",", ":"))


def ack_id_of(frame: str) -> int:
    """The ack id of a `43/chat,<id>[...]` frame (-1 if malformed)."""
    end = frame.find("[", len(ACK))
    digits = frame[len(ACK) : end] if end > 0 else ""
    return int(digits) if digits.isdigit() else -1


def ack_body(frame: str) -> object:
    """The first argument of an ack frame, decoded (None if absent or malformed)."""
    end = frame.find("[", len(ACK))
    if end < 0:
        return None
    try:
        args: object = json.loads(frame[end:])
    except ValueError:
        return None
    return args[0] if isinstance(args, list) and args else None


def ack_ok(body: object) -> bool:
    """Whether an ack body is the success envelope `{"ok": true, ...}`."""
    return isinstance(body, dict) and body.get("ok") is True

"""Messages on Redis: per room, under the hash tag `{r:<room>}`, a seq counter, the messages by
seq, an id -> seq index and expiring idempotency keys. The key schema is in docs/redis.md.

A message is stored as JSON with ISO-8601 UTC times, written with `surrogatepass` so that any
Python string round-trips (Lua's cjson rejects the `\\udXXX` escape of a lone surrogate but
passes raw bytes through). Only strings, booleans and null are in it, so the cjson
decode/encode of edit and tombstone changes nothing else.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import redis.asyncio as aioredis

from adapters.redis.base import Keys, translate_errors
from domain.model import AppendResult, ChatMessage, HistoryPage, MessageId, NewMessage, RoomId

# KEYS: seq counter, messages hash, id index, idempotency key.
# ARGV: message id, message JSON, idempotency TTL in seconds.
# Returns {created (0|1), seq, JSON}.
_APPEND = """
local known = redis.call('GET', KEYS[4])
if known then
  local stored = redis.call('HGET', KEYS[2], known)
  if stored then return {0, tonumber(known), stored} end
end
local seq = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[2], seq, ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], seq)
redis.call('SET', KEYS[4], seq, 'EX', ARGV[3])
return {1, seq, ARGV[2]}
"""

# KEYS: id index, messages hash. ARGV: message id. Returns {seq, JSON} or nil.
_GET = """
local seq = redis.call('HGET', KEYS[1], ARGV[1])
if not seq then return false end
local stored = redis.call('HGET', KEYS[2], seq)
if not stored then return false end
return {tonumber(seq), stored}
"""

# KEYS: id index, messages hash. ARGV: message id, new text, edited_at.
# Returns {seq, JSON} or nil when missing or deleted.
_EDIT = """
local seq = redis.call('HGET', KEYS[1], ARGV[1])
if not seq then return false end
local stored = redis.call('HGET', KEYS[2], seq)
if not stored then return false end
local message = cjson.decode(stored)
if message.deleted then return false end
message.text = ARGV[2]
message.edited_at = ARGV[3]
local updated = cjson.encode(message)
redis.call('HSET', KEYS[2], seq, updated)
return {tonumber(seq), updated}
"""

# KEYS: id index, messages hash. ARGV: message id, deleted_at.
# Returns {seq, JSON} (unchanged when already deleted) or nil when missing.
_TOMBSTONE = """
local seq = redis.call('HGET', KEYS[1], ARGV[1])
if not seq then return false end
local stored = redis.call('HGET', KEYS[2], seq)
if not stored then return false end
local message = cjson.decode(stored)
if message.deleted then return {tonumber(seq), stored} end
message.text = ''
message.deleted = true
message.edited_at = ARGV[2]
local updated = cjson.encode(message)
redis.call('HSET', KEYS[2], seq, updated)
return {tonumber(seq), updated}
"""


class RedisMessageStore:
    """Per-room logs with gap-free seqs; appends, edits and tombstones are Lua scripts."""

    def __init__(
        self, client: aioredis.Redis, prefix: str, *, idempotency_ttl_s: int = 86400
    ) -> None:
        self._client = client
        self._keys = Keys(prefix)
        self._idempotency_ttl_s = idempotency_ttl_s
        self._append = client.register_script(_APPEND)
        self._get = client.register_script(_GET)
        self._edit = client.register_script(_EDIT)
        self._tombstone = client.register_script(_TOMBSTONE)

    def _key(self, room_id: RoomId, *parts: str) -> bytes:
        return _encode(self._keys.key(Keys.tag("r", room_id), *parts))

    def _seq_key(self, room_id: RoomId) -> bytes:
        return self._key(room_id, "seq")

    def _messages_key(self, room_id: RoomId) -> bytes:
        return self._key(room_id, "msgs")

    def _ids_key(self, room_id: RoomId) -> bytes:
        return self._key(room_id, "ids")

    def _idempotency_key(self, room_id: RoomId, author_id: str, client_msg_id: str) -> bytes:
        return self._key(room_id, "idem", Keys.safe(author_id), Keys.safe(client_msg_id))

    @translate_errors
    async def append(self, new: NewMessage) -> AppendResult:
        """Store with the next seq, or return the message of the same idempotency key."""
        body = _dump(
            {
                "id": new.id,
                "author_id": new.author_id,
                "text": new.text,
                "client_msg_id": new.client_msg_id,
                "created_at": _iso(new.created_at),
                "edited_at": None,
                "deleted": False,
            }
        )
        reply: object = await self._append(
            keys=[
                self._seq_key(new.room_id),
                self._messages_key(new.room_id),
                self._ids_key(new.room_id),
                self._idempotency_key(new.room_id, new.author_id, new.client_msg_id),
            ],
            args=[_encode(new.id), body, self._idempotency_ttl_s],
        )
        if not isinstance(reply, list) or len(reply) != 3:
            raise TypeError("unexpected reply of the append script")
        created, seq, stored = reply
        return AppendResult(
            message=_message(new.room_id, seq, stored), created=_as_int(created) == 1
        )

    @translate_errors
    async def get(self, room_id: RoomId, message_id: MessageId) -> ChatMessage | None:
        """One message (one Lua call), or None."""
        reply: object = await self._get(
            keys=[self._ids_key(room_id), self._messages_key(room_id)],
            args=[_encode(message_id)],
        )
        return _found(room_id, reply)

    @translate_errors
    async def edit(
        self, room_id: RoomId, message_id: MessageId, text: str, at: datetime
    ) -> ChatMessage | None:
        """Replace the text and set `edited_at` atomically; None if missing or deleted."""
        reply: object = await self._edit(
            keys=[self._ids_key(room_id), self._messages_key(room_id)],
            args=[_encode(message_id), _encode(text), _encode(_iso(at))],
        )
        return _found(room_id, reply)

    @translate_errors
    async def tombstone(
        self, room_id: RoomId, message_id: MessageId, at: datetime
    ) -> ChatMessage | None:
        """Empty the text and mark deleted atomically (seq kept); None if missing."""
        reply: object = await self._tombstone(
            keys=[self._ids_key(room_id), self._messages_key(room_id)],
            args=[_encode(message_id), _encode(_iso(at))],
        )
        return _found(room_id, reply)

    @translate_errors
    async def history(
        self,
        room_id: RoomId,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int,
    ) -> HistoryPage:
        """Ascending page after `after_seq`, else the last `limit` before `before_seq`."""
        limit = max(limit, 0)
        if after_seq is not None:
            # Seqs are gap-free, so the first missing one is past the end: read one more
            # than asked (never at or past `before_seq`) without knowing the last seq.
            start = max(after_seq, 0)
            stop = start + limit + 1
            if before_seq is not None:
                stop = min(stop, max(before_seq - 1, 0))
            found = await self._read(room_id, range(start + 1, stop + 1))
            return HistoryPage(messages=tuple(found[:limit]), has_more=len(found) > limit)
        last = await self.last_seq(room_id)
        end = last if before_seq is None else min(last, max(before_seq - 1, 0))
        start = max(end - limit, 0)
        found = await self._read(room_id, range(start + 1, end + 1))
        return HistoryPage(messages=tuple(found), has_more=start > 0)

    async def _read(self, room_id: RoomId, seqs: range) -> list[ChatMessage]:
        """The messages of these seqs, up to the first one missing (one HMGET)."""
        if not seqs:
            return []
        stored: object = await self._client.hmget(self._messages_key(room_id), list(seqs))
        if not isinstance(stored, list):
            raise TypeError("unexpected reply of HMGET")
        messages: list[ChatMessage] = []
        for seq, raw in zip(seqs, stored, strict=True):
            if raw is None:
                break
            messages.append(_message(room_id, seq, raw))
        return messages

    @translate_errors
    async def last_seq(self, room_id: RoomId) -> int:
        """The highest seq, 0 for an empty room."""
        value: object = await self._client.get(self._seq_key(room_id))
        return 0 if value is None else _as_int(value)


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _dump(fields: dict[str, str | bool | None]) -> bytes:
    return _encode(json.dumps(fields, ensure_ascii=False, separators=(",", ":")))


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("message times must be timezone-aware")
    return moment.astimezone(UTC).isoformat()


def _as_int(value: object) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, bytes | str):
        return int(value)
    raise TypeError(f"expected a Redis integer, got {type(value).__name__}")


def _found(room_id: RoomId, reply: object) -> ChatMessage | None:
    """The message of a `{seq, JSON}` script reply, or None for a nil reply."""
    if reply is None:
        return None
    if not isinstance(reply, list) or len(reply) != 2:
        raise TypeError("unexpected reply of a message script")
    seq, stored = reply
    return _message(room_id, seq, stored)


def _message(room_id: RoomId, seq: object, stored: object) -> ChatMessage:
    if not isinstance(stored, bytes):
        raise TypeError("expected a stored message")
    parsed: object = json.loads(stored.decode("utf-8", "surrogatepass"))
    if not isinstance(parsed, dict):
        raise TypeError("a stored message is not a JSON object")
    fields: dict[str, object] = {str(key): value for key, value in parsed.items()}
    edited_at = fields.get("edited_at")
    return ChatMessage(
        id=_text(fields, "id"),
        room_id=room_id,
        seq=_as_int(seq),
        author_id=_text(fields, "author_id"),
        text=_text(fields, "text"),
        client_msg_id=_text(fields, "client_msg_id"),
        created_at=datetime.fromisoformat(_text(fields, "created_at")),
        edited_at=None if edited_at is None else datetime.fromisoformat(_text(fields, "edited_at")),
        deleted=fields.get("deleted") is True,
    )


def _text(fields: dict[str, object], name: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str):
        raise TypeError(f"the stored message has no string {name!r}")
    return value

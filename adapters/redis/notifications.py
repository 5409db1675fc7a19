"""Notifications on Redis: per user, under the hash tag `{u:<user>}`, the notifications by id,
their order and the unread ones (zsets scored by a per-user counter) and the read times.

`read_at` lives in its own hash, not in the notification's JSON, so that no Lua script ever
decodes and re-encodes the JSON: cjson would turn `[]` into `{}` and round numbers to 14
digits, and `data` must round-trip exactly. The key schema is in docs/redis.md.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import redis.asyncio as aioredis

from adapters.redis.base import Keys, translate_errors
from domain.json_types import JsonObject, JsonValue
from domain.model import Notification, UserId

# KEYS: notes hash, read hash, order zset, unread zset, counter.
# ARGV: triples (id, JSON, read_at or '' while unread). Returns the unread count after.
_ADD = """
for i = 1, #ARGV, 3 do
  local id = ARGV[i]
  local score = redis.call('INCR', KEYS[5])
  redis.call('HSET', KEYS[1], id, ARGV[i + 1])
  redis.call('ZADD', KEYS[3], score, id)
  if ARGV[i + 2] == '' then
    redis.call('HDEL', KEYS[2], id)
    redis.call('ZADD', KEYS[4], score, id)
  else
    redis.call('HSET', KEYS[2], id, ARGV[i + 2])
    redis.call('ZREM', KEYS[4], id)
  end
end
return redis.call('ZCARD', KEYS[4])
"""

# KEYS: notes hash, read hash, order zset, the zset to page (order or unread).
# ARGV: the cursor id or '', how many to return.
# Returns {0} for an unknown cursor, else {1, id, JSON, read_at or '', id, ...}, newest first.
_PAGE = """
local max = '+inf'
if ARGV[1] ~= '' then
  local score = redis.call('ZSCORE', KEYS[3], ARGV[1])
  if not score then return {0} end
  max = '(' .. score
end
local ids = redis.call('ZRANGE', KEYS[4], max, '-inf', 'BYSCORE', 'REV',
                       'LIMIT', 0, tonumber(ARGV[2]))
local out = {1}
for _, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[1], id) or ''
  out[#out + 1] = redis.call('HGET', KEYS[2], id) or ''
end
return out
"""

# KEYS: unread zset, read hash. ARGV: read_at, ids... Returns the unread count after.
_MARK_READ = """
for i = 2, #ARGV do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[1])
  end
end
return redis.call('ZCARD', KEYS[1])
"""

# KEYS: unread zset, read hash. ARGV: read_at. Returns 0.
_MARK_ALL_READ = """
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, id in ipairs(ids) do
  redis.call('HSET', KEYS[2], id, ARGV[1])
end
redis.call('DEL', KEYS[1])
return 0
"""


class RedisNotificationStore:
    """Per-user notifications; each user's change is one Lua script, many users one pipeline."""

    def __init__(self, client: aioredis.Redis, prefix: str, *, batch_users: int = 1000) -> None:
        self._client = client
        self._keys = Keys(prefix)
        self._batch_users = max(batch_users, 1)
        self._add = client.register_script(_ADD)
        self._page = client.register_script(_PAGE)
        self._mark_read = client.register_script(_MARK_READ)
        self._mark_all_read = client.register_script(_MARK_ALL_READ)

    def _key(self, user_id: UserId, name: str) -> bytes:
        return _encode(self._keys.key(Keys.tag("u", user_id), name))

    @translate_errors
    async def add(self, notifications: Sequence[Notification]) -> dict[UserId, int]:
        """Store them: one Lua call per user, `batch_users` users per pipeline round trip."""
        by_user: dict[UserId, list[Notification]] = {}
        for notification in notifications:
            by_user.setdefault(notification.user_id, []).append(notification)
        users = list(by_user)
        counts: dict[UserId, int] = {}
        for first in range(0, len(users), self._batch_users):
            batch = users[first : first + self._batch_users]
            async with self._client.pipeline(transaction=False) as pipe:
                for user_id in batch:
                    args: list[bytes] = []
                    for notification in by_user[user_id]:
                        args += [
                            _encode(notification.id),
                            _dump(notification),
                            b"" if notification.read_at is None else _iso(notification.read_at),
                        ]
                    await self._add(
                        keys=[
                            self._key(user_id, "notes"),
                            self._key(user_id, "read"),
                            self._key(user_id, "order"),
                            self._key(user_id, "unread"),
                            self._key(user_id, "counter"),
                        ],
                        args=args,
                        client=pipe,
                    )
                replies: list[object] = await pipe.execute()
            counts.update(zip(batch, (_as_int(reply) for reply in replies), strict=True))
        return counts

    @translate_errors
    async def page(
        self, user_id: UserId, *, unread_only: bool, before: str | None, limit: int
    ) -> tuple[list[Notification], bool]:
        """Newest first, older than `before`; an unknown or foreign `before` gives nothing."""
        limit = max(limit, 0)
        reply: object = await self._page(
            keys=[
                self._key(user_id, "notes"),
                self._key(user_id, "read"),
                self._key(user_id, "order"),
                self._key(user_id, "unread" if unread_only else "order"),
            ],
            args=[b"" if before is None else _encode(before), limit + 1],
        )
        if not isinstance(reply, list) or not reply or (len(reply) - 1) % 3:
            raise TypeError("unexpected reply of the page script")
        if _as_int(reply[0]) == 0:
            return [], False
        items = [
            _notification(user_id, reply[index + 1], reply[index + 2])
            for index in range(1, len(reply), 3)
        ]
        return items[:limit], len(items) > limit

    @translate_errors
    async def mark_read(self, user_id: UserId, ids: Sequence[str], at: datetime) -> int:
        """Mark the user's own unread ones among `ids` read (one Lua call); the count after."""
        count = await self._mark_read(
            keys=[self._key(user_id, "unread"), self._key(user_id, "read")],
            args=[_iso(at), *(_encode(notification_id) for notification_id in ids)],
        )
        return _as_int(count)

    @translate_errors
    async def mark_all_read(self, user_id: UserId, at: datetime) -> int:
        """Mark every unread one of the user read (one Lua call); returns 0."""
        count = await self._mark_all_read(
            keys=[self._key(user_id, "unread"), self._key(user_id, "read")],
            args=[_iso(at)],
        )
        return _as_int(count)

    @translate_errors
    async def unread_count(self, user_id: UserId) -> int:
        """The user's unread count: the size of the unread zset."""
        count: object = await self._client.zcard(self._key(user_id, "unread"))
        return _as_int(count)


def _encode(text: str) -> bytes:
    """UTF-8 that lets lone surrogates through (ids come from clients)."""
    return text.encode("utf-8", "surrogatepass")


def _iso(moment: datetime) -> bytes:
    if moment.tzinfo is None:
        raise ValueError("notification times must be timezone-aware")
    return moment.astimezone(UTC).isoformat().encode()


def _dump(notification: Notification) -> bytes:
    """The JSON of a notification, without `user_id` (the key says it) and `read_at`."""
    fields: JsonObject = {
        "id": notification.id,
        "kind": notification.kind,
        "title": notification.title,
        "body": notification.body,
        "data": notification.data,
        "created_at": _iso(notification.created_at).decode(),
    }
    return json.dumps(fields, separators=(",", ":")).encode()


def _as_int(value: object) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, bytes | str):
        return int(value)
    raise TypeError(f"expected a Redis integer, got {type(value).__name__}")


def _notification(user_id: UserId, stored: object, read_at: object) -> Notification:
    if not isinstance(stored, bytes) or not isinstance(read_at, bytes):
        raise TypeError("unexpected notification reply")
    fields = _json_object(json.loads(stored))
    data = fields.get("data")
    if not isinstance(data, dict):
        raise TypeError("the stored notification has no data object")
    return Notification(
        id=_text(fields, "id"),
        user_id=user_id,
        kind=_text(fields, "kind"),
        title=_text(fields, "title"),
        body=_text(fields, "body"),
        data=data,
        created_at=datetime.fromisoformat(_text(fields, "created_at")),
        read_at=datetime.fromisoformat(read_at.decode()) if read_at else None,
    )


def _text(fields: JsonObject, name: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str):
        raise TypeError(f"the stored notification has no string {name!r}")
    return value


def _json_value(value: object) -> JsonValue:
    """`value` (from `json.loads`) checked to be JSON, so it gets a precise JSON type."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return _json_object(value)
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _json_object(value: object) -> JsonObject:
    if not isinstance(value, dict):
        raise TypeError("not a JSON object")
    return {str(key): _json_value(item) for key, item in value.items()}

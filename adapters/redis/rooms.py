"""Rooms and membership on Redis, every key under the one hash tag `{rooms}`.

Membership links a room and a user, so the room's member set and the user's room set must
change together. Keeping every room and membership key in one slot lets one Lua script do
each change atomically (and a Redis Cluster still run it), at the price of putting all
membership on one node. The key schema is in docs/redis.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis

from adapters.redis.base import Keys, translate_errors
from domain.model import Room, RoomId, UserId, Visibility

_TAG = "{rooms}"
_FIELDS = ("name", "visibility", "owner_id", "created_at")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# KEYS: room hash, member set, public zset, then one "rooms of" set per member (aligned with
# the members in ARGV[7..]). ARGV: id, name, visibility, owner, created_at, score, members...
_CREATE = """
redis.call('HSET', KEYS[1], 'name', ARGV[2], 'visibility', ARGV[3],
           'owner_id', ARGV[4], 'created_at', ARGV[5])
if ARGV[3] == 'public' then
  redis.call('ZADD', KEYS[3], ARGV[6], ARGV[1])
else
  redis.call('ZREM', KEYS[3], ARGV[1])
end
for i = 7, #ARGV do
  redis.call('SADD', KEYS[2], ARGV[i])
  redis.call('SADD', KEYS[i - 3], ARGV[1])
end
return redis.call('SCARD', KEYS[2])
"""

# KEYS: room hash, member set, the user's room set. ARGV: room id, user id.
_ADD_MEMBER = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('SADD', KEYS[2], ARGV[2]) == 0 then return 0 end
redis.call('SADD', KEYS[3], ARGV[1])
return 1
"""

# KEYS: member set, the user's room set. ARGV: room id, user id.
_REMOVE_MEMBER = """
if redis.call('SREM', KEYS[1], ARGV[2]) == 0 then return 0 end
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"""


def _encode(text: str) -> bytes:
    """UTF-8 that lets lone surrogates through (they are valid in a Python str)."""
    return text.encode("utf-8", "surrogatepass")


def _decode(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogatepass")
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a Redis string, got {type(value).__name__}")


def _as_int(value: object) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, bytes | str):
        return int(value)
    raise TypeError(f"expected a Redis integer, got {type(value).__name__}")


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("room times must be timezone-aware")
    return moment.astimezone(UTC).isoformat()


def _score(moment: datetime) -> int:
    """Epoch microseconds: exact as a zset score (below 2**53 until the year 2255)."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


class RedisRoomRepository:
    """Rooms as hashes, membership as two sets per link, public rooms in a zset."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._client = client
        self._keys = Keys(prefix)
        self._create = client.register_script(_CREATE)
        self._add_member = client.register_script(_ADD_MEMBER)
        self._remove_member = client.register_script(_REMOVE_MEMBER)

    def _room_key(self, room_id: RoomId) -> bytes:
        return _encode(self._keys.key(_TAG, "room", Keys.safe(room_id)))

    def _members_key(self, room_id: RoomId) -> bytes:
        return _encode(self._keys.key(_TAG, "members", Keys.safe(room_id)))

    def _rooms_of_key(self, user_id: UserId) -> bytes:
        return _encode(self._keys.key(_TAG, "of", Keys.safe(user_id)))

    def _public_key(self) -> bytes:
        return _encode(self._keys.key(_TAG, "public"))

    @translate_errors
    async def create(self, room: Room, members: Iterable[UserId]) -> Room:
        """Store a new room with its first members (one Lua script); returns it counted."""
        unique = list(dict.fromkeys(members))
        keys: list[bytes] = [
            self._room_key(room.id),
            self._members_key(room.id),
            self._public_key(),
            *(self._rooms_of_key(user_id) for user_id in unique),
        ]
        args: list[bytes | int] = [
            _encode(room.id),
            _encode(room.name),
            _encode(room.visibility.value),
            _encode(room.owner_id),
            _encode(_iso(room.created_at)),
            _score(room.created_at),
            *(_encode(user_id) for user_id in unique),
        ]
        count = _as_int(await self._create(keys=keys, args=args))
        return Room(
            id=room.id,
            name=room.name,
            visibility=room.visibility,
            owner_id=room.owner_id,
            created_at=room.created_at,
            member_count=count,
        )

    @translate_errors
    async def get(self, room_id: RoomId) -> Room | None:
        """The room with its member count (one MULTI), or None."""
        (room,) = await self._load([room_id])
        return room

    @translate_errors
    async def list_visible(self, user_id: UserId) -> list[Room]:
        """Public rooms and the user's private rooms, oldest first (two round trips)."""
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.smembers(self._rooms_of_key(user_id))
            pipe.zrange(self._public_key(), 0, -1)
            mine, public = await pipe.execute()
        room_ids = sorted({*_strings(mine), *_strings(public)})
        if not room_ids:
            return []
        rooms = [room for room in await self._load(room_ids) if room is not None]
        mine_ids = set(_strings(mine))
        visible = [r for r in rooms if r.visibility is Visibility.PUBLIC or r.id in mine_ids]
        visible.sort(key=lambda r: (r.created_at, r.id))
        return visible

    async def _load(self, room_ids: Sequence[RoomId]) -> list[Room | None]:
        async with self._client.pipeline(transaction=True) as pipe:
            for room_id in room_ids:
                pipe.hmget(self._room_key(room_id), list(_FIELDS))
                pipe.scard(self._members_key(room_id))
            replies: list[object] = await pipe.execute()
        return [
            _room(room_id, replies[2 * index], replies[2 * index + 1])
            for index, room_id in enumerate(room_ids)
        ]

    @translate_errors
    async def add_member(self, room_id: RoomId, user_id: UserId) -> bool:
        """Make the user a member (one Lua script); False if already one or no such room."""
        added = await self._add_member(
            keys=[
                self._room_key(room_id),
                self._members_key(room_id),
                self._rooms_of_key(user_id),
            ],
            args=[_encode(room_id), _encode(user_id)],
        )
        return _as_int(added) == 1

    @translate_errors
    async def remove_member(self, room_id: RoomId, user_id: UserId) -> bool:
        """End a membership (one Lua script); False if there was none."""
        removed = await self._remove_member(
            keys=[self._members_key(room_id), self._rooms_of_key(user_id)],
            args=[_encode(room_id), _encode(user_id)],
        )
        return _as_int(removed) == 1

    @translate_errors
    async def is_member(self, room_id: RoomId, user_id: UserId) -> bool:
        """Whether the user is a member."""
        # `sismember` is typed for `str` values; members are stored as `_encode`d bytes.
        (found,) = await self._client.smismember(self._members_key(room_id), [_encode(user_id)])
        return found == 1

    @translate_errors
    async def members(self, room_id: RoomId) -> list[UserId]:
        """The room's members, sorted."""
        return sorted(_strings(await self._client.smembers(self._members_key(room_id))))

    @translate_errors
    async def rooms_of(self, user_id: UserId) -> list[RoomId]:
        """The user's rooms, sorted."""
        return sorted(_strings(await self._client.smembers(self._rooms_of_key(user_id))))


def _strings(reply: object) -> list[str]:
    """The members of a set or list reply, decoded."""
    if not isinstance(reply, set | list | tuple):
        raise TypeError(f"expected a Redis set or list, got {type(reply).__name__}")
    return [_decode(item) for item in reply]


def _room(room_id: RoomId, fields: object, count: object) -> Room | None:
    if not isinstance(fields, list) or len(fields) != len(_FIELDS):
        raise TypeError("expected the room's fields")
    if any(value is None for value in fields):
        return None
    name, visibility, owner_id, created_at = (_decode(value) for value in fields)
    return Room(
        id=room_id,
        name=name,
        visibility=Visibility(visibility),
        owner_id=owner_id,
        created_at=datetime.fromisoformat(created_at),
        member_count=_as_int(count),
    )

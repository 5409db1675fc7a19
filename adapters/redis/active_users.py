"""The connection registry (ActiveUsersStore) on Redis, with per-connection expiry.

Per user, under the hash tag `{u:<user>}` (so one Lua script changes them atomically):
    <p>{u:<user>}:conns        HASH  sid -> connection JSON (every namespace)
    <p>{u:<user>}:ns:<ns>      ZSET  sid -> expiry in ms (+inf: never expires)
    <p>{u:<user>}:seen         HASH  namespace -> last_seen (ms)
Cluster-wide secondary indexes, each in its own slot, written right after the user's
script (and re-asserted by every heartbeat, so they heal if a write was lost):
    <p>sids                    HASH  sid -> [user, namespace] JSON
    <p>expiry                  ZSET  sid -> expiry in ms (the sweeper's index)
    <p>online:<ns>             SET   users online on the namespace
The "first connection appears / last one goes" decision is taken inside the user's script,
so presence transitions are right with any number of instances.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime

import redis.asyncio as aioredis

from adapters.redis.base import Keys, queue_script, run_pipeline_with_script, translate_errors
from domain.model import Connection, ConnectionChange, PresenceEntry, Sid, UserId

_ADD = """
local previous = redis.call('HGET', KEYS[1], ARGV[1])
local before = redis.call('ZCARD', KEYS[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
if previous then
  return {0, previous}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if before == 0 then return {1, ARGV[2]} end
return {0, ARGV[2]}
"""

_REMOVE = """
local connection = redis.call('HGET', KEYS[1], ARGV[1])
if not connection then return false end
if ARGV[4] ~= '' then
  local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
  if score and tonumber(score) > tonumber(ARGV[4]) then return false end
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('ZCARD', KEYS[2]) == 0 then
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
  return {1, connection}
end
return {0, connection}
"""

SWEEP_BATCH = 500


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _from_ms(value: float) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise TypeError(f"unexpected reply {value!r}")


def _encode(connection: Connection) -> str:
    return json.dumps(
        {
            "sid": connection.sid,
            "user_id": connection.user_id,
            "namespace": connection.namespace,
            "instance_id": connection.instance_id,
            "connected_at": connection.connected_at.isoformat(),
        }
    )


def _decode(raw: object) -> Connection:
    data = json.loads(_text(raw))
    if not isinstance(data, dict):
        raise TypeError("connection record is not an object")
    return Connection(
        sid=str(data["sid"]),
        user_id=str(data["user_id"]),
        namespace=str(data["namespace"]),
        instance_id=str(data["instance_id"]),
        connected_at=datetime.fromisoformat(str(data["connected_at"])),
    )


def _change(reply: object) -> ConnectionChange | None:
    if not isinstance(reply, list) or len(reply) != 2:
        return None
    return ConnectionChange(connection=_decode(reply[1]), user_online_changed=reply[0] == 1)


class RedisActiveUsersStore:
    """Live connections of every instance in Redis; expiry renewed by each instance."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._redis = client
        self._keys = Keys(prefix)
        self._add = client.register_script(_ADD)
        self._remove = client.register_script(_REMOVE)

    def _user(self, user_id: UserId, *parts: str) -> str:
        return self._keys.key(Keys.tag("u", user_id), *parts)

    def _ns_key(self, user_id: UserId, namespace: str) -> str:
        return self._user(user_id, "ns", Keys.safe(namespace))

    @property
    def _sids(self) -> str:
        return self._keys.key("sids")

    @property
    def _expiry(self) -> str:
        return self._keys.key("expiry")

    def _online(self, namespace: str) -> str:
        return self._keys.key("online", Keys.safe(namespace))

    def _add_call(
        self, connection: Connection, expires_at: datetime | None, pipe: aioredis.client.Pipeline
    ) -> None:
        score = "+inf" if expires_at is None else str(_ms(expires_at))
        queue_script(
            pipe,
            self._add,
            [
                self._user(connection.user_id, "conns"),
                self._ns_key(connection.user_id, connection.namespace),
            ],
            [connection.sid, _encode(connection), score],
        )

    def _index(
        self, connection: Connection, expires_at: datetime | None, pipe: aioredis.client.Pipeline
    ) -> None:
        pipe.hset(
            self._sids, connection.sid, json.dumps([connection.user_id, connection.namespace])
        )
        pipe.sadd(self._online(connection.namespace), connection.user_id)
        if expires_at is not None:
            pipe.zadd(self._expiry, {connection.sid: _ms(expires_at)})

    @translate_errors
    async def add_connection(
        self, connection: Connection, expires_at: datetime | None = None
    ) -> ConnectionChange:
        """Register a connection; the user's script decides whether it is their first.
        One round trip: the script, then the index writes (idempotent, see
        `run_pipeline_with_script`)."""

        def fill(pipe: aioredis.client.Pipeline) -> None:
            self._add_call(connection, expires_at, pipe)
            self._index(connection, expires_at, pipe)

        replies = await run_pipeline_with_script(self._redis, self._add, fill)
        change = _change(replies[0])
        if change is None:
            raise TypeError("unexpected reply to the add script")
        return change

    async def _locate(self, sid: Sid) -> tuple[UserId, str] | None:
        raw = await self._redis.hget(self._sids, sid)
        if raw is None:
            return None
        user_id, namespace = json.loads(_text(raw))
        return str(user_id), str(namespace)

    async def _remove_one(
        self, sid: Sid, at: datetime, expired_by: datetime | None
    ) -> ConnectionChange | None:
        located = await self._locate(sid)
        if located is None:
            await self._redis.zrem(self._expiry, sid)
            return None
        user_id, namespace = located
        reply = await self._remove(
            keys=[
                self._user(user_id, "conns"),
                self._ns_key(user_id, namespace),
                self._user(user_id, "seen"),
            ],
            args=[sid, namespace, str(_ms(at)), "" if expired_by is None else str(_ms(expired_by))],
        )
        change = _change(reply)
        if change is None and expired_by is not None:
            # renewed meanwhile: still alive, leave it in the sweeper's index
            return None
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hdel(self._sids, sid)
            pipe.zrem(self._expiry, sid)
            if change is not None and change.user_online_changed:
                pipe.srem(self._online(namespace), user_id)
            await pipe.execute()
        return change

    @translate_errors
    async def remove_connection(self, sid: Sid, at: datetime) -> ConnectionChange | None:
        """Remove a connection; the user's last on the namespace records last_seen."""
        return await self._remove_one(sid, at, None)

    @translate_errors
    async def user_connections(self, user_id: UserId) -> list[Connection]:
        """Every live connection of the user, on every namespace and instance."""
        raw = await self._redis.hgetall(self._user(user_id, "conns"))
        connections = [_decode(value) for value in raw.values()]
        return sorted(connections, key=lambda c: (c.namespace, c.sid))

    @translate_errors
    async def all_connections(self) -> list[Connection]:
        """Every live connection (an admin scan; not for hot paths)."""
        users: set[UserId] = set()
        async for _, value in self._redis.hscan_iter(self._sids):
            user_id, _namespace = json.loads(_text(value))
            users.add(str(user_id))
        found: list[Connection] = []
        for user_id in sorted(users):
            found.extend(await self.user_connections(user_id))
        return found

    @translate_errors
    async def is_online(self, user_id: UserId, namespace: str) -> bool:
        """Whether the user has a live connection on the namespace."""
        return int(await self._redis.zcard(self._ns_key(user_id, namespace))) > 0

    @translate_errors
    async def presence(self, user_ids: Sequence[UserId], namespace: str) -> list[PresenceEntry]:
        """Presence entries in the order asked, in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                pipe.zcard(self._ns_key(user_id, namespace))
                pipe.hget(self._user(user_id, "seen"), namespace)
            replies = await pipe.execute()
        entries = []
        for index, user_id in enumerate(user_ids):
            count = int(replies[2 * index])
            seen = replies[2 * index + 1]
            entries.append(
                PresenceEntry(
                    user_id=user_id,
                    online=count > 0,
                    last_seen=None if count or seen is None else _from_ms(float(_text(seen))),
                    connections=count,
                )
            )
        return entries

    @translate_errors
    async def online_users(self, namespace: str) -> list[UserId]:
        """Users online on the namespace (from the cluster-wide index)."""
        members = await self._redis.smembers(self._online(namespace))
        return sorted(_text(m) for m in members)

    @translate_errors
    async def online_among(self, user_ids: Sequence[UserId], namespace: str) -> list[UserId]:
        """Those of these users in the online index, in the order given (one SMISMEMBER)."""
        if not user_ids:
            return []
        flags = await self._redis.smismember(self._online(namespace), list(user_ids))
        return [user for user, flag in zip(user_ids, flags, strict=True) if flag]

    @translate_errors
    async def online_count(self, namespace: str) -> int:
        """How many users are online on the namespace."""
        return int(await self._redis.scard(self._online(namespace)))

    @translate_errors
    async def heartbeat(
        self, connections: Sequence[Connection], expires_at: datetime
    ) -> list[ConnectionChange]:
        """Renew these connections in one pipelined round trip: per connection a `ZADD XX`
        of the new expiry (which says whether the store still had it) and the re-assertion
        of the three cluster-wide indexes, 4 commands. Only the connections the store lost
        (it restarted empty, or swept them during an outage) take the registration script
        again, in a second round trip; those that bring their user back online are returned."""
        if not connections:
            return []
        score = _ms(expires_at)
        async with self._redis.pipeline(transaction=False) as pipe:
            for connection in connections:
                pipe.zadd(
                    self._ns_key(connection.user_id, connection.namespace),
                    {connection.sid: score},
                    xx=True,
                    ch=True,
                )
            for connection in connections:
                self._index(connection, expires_at, pipe)
            replies = await pipe.execute()
        # 0: not renewed, the store had lost it (or it already had this very expiry, and
        # then the script below changes nothing and announces nothing)
        lost = [c for c, renewed in zip(connections, replies, strict=False) if not renewed]
        if not lost:
            return []

        def fill(pipe: aioredis.client.Pipeline) -> None:
            for connection in lost:
                self._add_call(connection, expires_at, pipe)

        replies = await run_pipeline_with_script(self._redis, self._add, fill)
        changes = []
        for reply in replies:
            change = _change(reply)
            if change is not None and change.user_online_changed:
                changes.append(change)
        return changes

    @translate_errors
    async def sweep_expired(self, now: datetime) -> list[ConnectionChange]:
        """Remove connections past their expiry; the user's script removes each only once."""
        changes: list[ConnectionChange] = []
        while True:
            due = await self._redis.zrangebyscore(
                self._expiry, "-inf", _ms(now), start=0, num=SWEEP_BATCH
            )
            if not due:
                return changes
            for raw_sid in due:
                change = await self._remove_one(_text(raw_sid), now, now)
                if change is not None:
                    changes.append(change)
            if len(due) < SWEEP_BATCH:
                return changes

    @translate_errors
    async def next_expiry(self) -> datetime | None:
        """The earliest expiry in the sweeper's index, or None."""
        first = await self._redis.zrange(self._expiry, 0, 0, withscores=True)
        if not first:
            return None
        score = float(first[0][1])
        return None if math.isinf(score) else _from_ms(score)

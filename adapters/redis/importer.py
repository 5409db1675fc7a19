"""Loads a snapshot of the memory stores into Redis, in the key schema of docs/redis.md.

The import only ever adds: a record that is already in Redis is counted and left alone, and a
record that Redis holds differently is a conflict, reported and never overwritten. So running
it twice changes nothing the second time, and a run that stopped half-way can be run again.

- Rooms keep their ids and fields; memberships are added to both sets of each link.
- Messages keep their ids and seqs (`since_seq` of clients stays valid); the room's seq
  counter is raised to the highest seq imported. A room whose log in Redis has a different
  message at one of those seqs (or one of its ids at another seq) is refused as a whole.
- Idempotency keys point at the same seqs and expire when they would have, had the message
  been posted on Redis: `idempotency_ttl_s` after the message's `created_at`. Older ones are
  not imported (Redis would have dropped them already).
- Notifications are added oldest first, so the per-user counter gives the same newest-first
  order, with their read state; unread counts follow. A user whose notifications in Redis
  are not an in-order prefix of the snapshot's is refused (adding would misorder them).

Every write is a Lua script over keys of one hash tag, and each one leaves a consistent state
(a room's log is always gap-free from seq 1, a user's notifications always in order).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import attrs
import redis.asyncio as aioredis

from adapters.memory.snapshot import Snapshot
from adapters.redis.base import Keys
from domain.json_types import JsonValue
from domain.model import ChatMessage, Notification, Room, RoomId, UserId

T = TypeVar("T")

IDEMPOTENCY_TTL_S = 86400
"""The TTL of idempotency keys, as `RedisMessageStore` sets it (24 h)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ROOM_FIELDS = ("name", "visibility", "owner_id", "created_at")

# KEYS: room hash, public zset. ARGV: id, name, visibility, owner, created_at, score.
# Writes the room only if its hash does not exist; returns 1 if written.
_IMPORT_ROOM = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'name', ARGV[2], 'visibility', ARGV[3],
           'owner_id', ARGV[4], 'created_at', ARGV[5])
if ARGV[3] == 'public' then
  redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1])
else
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return 1
"""

# KEYS: member set, then the "rooms of" set of each user (KEYS[i] belongs to ARGV[i]).
# ARGV: room id, user ids... Returns how many users were not members yet.
_IMPORT_MEMBERS = """
local added = 0
for i = 2, #ARGV do
  added = added + redis.call('SADD', KEYS[1], ARGV[i])
  redis.call('SADD', KEYS[i], ARGV[1])
end
return added
"""

# KEYS: seq counter, messages hash, id index. ARGV: the seq to raise the counter to, then
# triples (seq, id, JSON). Writes each message whose seq is free, then raises the counter
# (never lowers it). Returns how many were written.
_IMPORT_MESSAGES = """
local written = 0
for i = 2, #ARGV, 3 do
  if redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 2]) == 1 then
    redis.call('HSET', KEYS[3], ARGV[i + 1], ARGV[i])
    written = written + 1
  end
end
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return written
"""

# KEYS: notes hash, read hash, order zset, unread zset, counter.
# ARGV: triples (id, JSON, read_at or '' while unread), oldest first.
# Appends each notification whose id is not there yet, as `add` does; returns how many.
_IMPORT_NOTIFICATIONS = """
local added = 0
for i = 1, #ARGV, 3 do
  local id = ARGV[i]
  if redis.call('HEXISTS', KEYS[1], id) == 0 then
    local score = redis.call('INCR', KEYS[5])
    redis.call('HSET', KEYS[1], id, ARGV[i + 1])
    redis.call('ZADD', KEYS[3], score, id)
    if ARGV[i + 2] == '' then
      redis.call('ZADD', KEYS[4], score, id)
    else
      redis.call('HSET', KEYS[2], id, ARGV[i + 2])
    end
    added = added + 1
  end
end
return added
"""


@attrs.define
class Tally:
    """What happened to the records of one kind."""

    moved: int = 0
    already: int = 0
    refused: int = 0


@attrs.define
class ImportReport:
    """What an import moved, found already there, and refused (with the reasons)."""

    dry_run: bool
    rooms: Tally = attrs.Factory(Tally)
    memberships: Tally = attrs.Factory(Tally)
    messages: Tally = attrs.Factory(Tally)
    idempotency_keys: Tally = attrs.Factory(Tally)
    notifications: Tally = attrs.Factory(Tally)
    expired_keys: int = 0
    unread: int = 0
    conflicts: list[str] = attrs.Factory(list)

    def tallies(self) -> list[tuple[str, Tally]]:
        """Each kind with its tally, in report order."""
        return [
            ("rooms", self.rooms),
            ("memberships", self.memberships),
            ("messages", self.messages),
            ("idempotency keys", self.idempotency_keys),
            ("notifications", self.notifications),
        ]

    @property
    def moved(self) -> int:
        """Records written (or, in a dry run, that would be)."""
        return sum(tally.moved for _, tally in self.tallies())

    @property
    def already(self) -> int:
        """Records that were already in Redis, identical."""
        return sum(tally.already for _, tally in self.tallies())

    @property
    def refused(self) -> int:
        """Records not written because of a conflict."""
        return sum(tally.refused for _, tally in self.tallies())


class SnapshotImporter:
    """Writes a snapshot into Redis under `prefix`, adding what is missing and nothing else."""

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str,
        *,
        idempotency_ttl_s: int = IDEMPOTENCY_TTL_S,
        batch: int = 500,
    ) -> None:
        self._client = client
        self._keys = Keys(prefix)
        self._idempotency_ttl_s = idempotency_ttl_s
        self._batch = max(batch, 1)
        self._import_room = client.register_script(_IMPORT_ROOM)
        self._import_members = client.register_script(_IMPORT_MEMBERS)
        self._import_messages = client.register_script(_IMPORT_MESSAGES)
        self._import_notifications = client.register_script(_IMPORT_NOTIFICATIONS)

    async def run(self, snapshot: Snapshot, *, now: datetime, dry_run: bool) -> ImportReport:
        """Import everything (or, with `dry_run`, only read and count); the report."""
        report = ImportReport(dry_run=dry_run)
        await self._rooms(snapshot, report)
        await self._messages(snapshot, report, now)
        await self._notifications(snapshot, report)
        return report

    # --- keys (docs/redis.md) ---------------------------------------------------------------

    def _rooms_key(self, *parts: str) -> bytes:
        return _encode(self._keys.key("{rooms}", *parts))

    def _room_key(self, room_id: RoomId, *parts: str) -> bytes:
        return _encode(self._keys.key(Keys.tag("r", room_id), *parts))

    def _user_key(self, user_id: UserId, name: str) -> bytes:
        return _encode(self._keys.key(Keys.tag("u", user_id), name))

    # --- rooms and memberships ----------------------------------------------------------------

    async def _rooms(self, snapshot: Snapshot, report: ImportReport) -> None:
        members_of = snapshot.rooms.members
        for batch in _chunks(snapshot.rooms.rooms, self._batch):
            async with self._client.pipeline(transaction=False) as pipe:
                for room in batch:
                    pipe.hmget(self._rooms_key("room", Keys.safe(room.id)), list(_ROOM_FIELDS))
                    pipe.smembers(self._rooms_key("members", Keys.safe(room.id)))
                replies: list[object] = await pipe.execute()
            for index, room in enumerate(batch):
                wanted = sorted(members_of.get(room.id, frozenset()))
                stored = _optional_texts(replies[2 * index])
                if all(value is None for value in stored):
                    fresh = True
                elif stored == _room_fields(room):
                    fresh = False
                else:
                    report.rooms.refused += 1
                    report.memberships.refused += len(wanted)
                    report.conflicts.append(
                        f"room {room.id!r}: Redis has a different room under this id "
                        f"({_describe(stored)}); the room and its memberships were not imported"
                    )
                    continue
                present = set(_texts(replies[2 * index + 1]))
                missing = [user_id for user_id in wanted if user_id not in present]
                report.memberships.already += len(wanted) - len(missing)
                if fresh and not report.dry_run and not await self._write_room(room):
                    report.rooms.refused += 1
                    report.memberships.refused += len(missing)
                    report.conflicts.append(
                        f"room {room.id!r}: appeared in Redis during the import; run it again"
                    )
                    continue
                if fresh:
                    report.rooms.moved += 1
                else:
                    report.rooms.already += 1
                if not report.dry_run:
                    await self._write_members(room.id, missing)
                report.memberships.moved += len(missing)

    async def _write_room(self, room: Room) -> bool:
        written = await self._import_room(
            keys=[self._rooms_key("room", Keys.safe(room.id)), self._rooms_key("public")],
            args=[
                _encode(room.id),
                _encode(room.name),
                _encode(room.visibility.value),
                _encode(room.owner_id),
                _encode(_iso(room.created_at)),
                _score(room.created_at),
            ],
        )
        return _as_int(written) == 1

    async def _write_members(self, room_id: RoomId, users: Sequence[UserId]) -> None:
        for batch in _chunks(users, self._batch):
            await self._import_members(
                keys=[
                    self._rooms_key("members", Keys.safe(room_id)),
                    *(self._rooms_key("of", Keys.safe(user_id)) for user_id in batch),
                ],
                args=[_encode(room_id), *(_encode(user_id) for user_id in batch)],
            )

    # --- messages and idempotency keys ----------------------------------------------------------

    async def _messages(self, snapshot: Snapshot, report: ImportReport, now: datetime) -> None:
        keys_by_room: dict[RoomId, list[tuple[UserId, str, int]]] = {}
        for (room_id, author_id, client_msg_id), seq in snapshot.messages.idempotency.items():
            keys_by_room.setdefault(room_id, []).append((author_id, client_msg_id, seq))
        rooms = sorted(set(snapshot.messages.logs) | set(keys_by_room))
        for room_id in rooms:
            log = snapshot.messages.logs.get(room_id, ())
            keys = sorted(keys_by_room.get(room_id, []), key=lambda key: key[2])
            await self._room_messages(room_id, log, keys, report, now)

    async def _room_messages(
        self,
        room_id: RoomId,
        log: Sequence[ChatMessage],
        keys: Sequence[tuple[UserId, str, int]],
        report: ImportReport,
        now: datetime,
    ) -> None:
        """Check the whole room first (refused as a whole on any conflict), then write."""
        counter: object = await self._client.get(self._room_key(room_id, "seq"))
        last_seq = 0 if counter is None else _as_int(counter)
        missing: list[ChatMessage] = []
        differing: list[int] = []
        for batch in _chunks(log, self._batch):
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.hmget(self._room_key(room_id, "msgs"), [m.seq for m in batch])
                pipe.hmget(self._room_key(room_id, "ids"), [_encode(m.id) for m in batch])
                stored, seqs_of_ids = await pipe.execute()
            for message, raw, seq_of_id in zip(
                batch, _list(stored), _list(seqs_of_ids), strict=True
            ):
                if seq_of_id is not None and _as_int(seq_of_id) != message.seq:
                    differing.append(message.seq)
                elif raw is None:
                    missing.append(message)
                elif _stored_message(room_id, message.seq, raw) != message:
                    differing.append(message.seq)
        new_keys: list[tuple[bytes, int, int]] = []
        already_keys = 0
        differing_keys = 0
        expired = 0
        for batch_keys in _chunks(keys, self._batch):
            names = [self._idempotency_key(room_id, a, c) for a, c, _ in batch_keys]
            values = _list(await self._client.mget(names))
            for name, (_, _, seq), value in zip(names, batch_keys, values, strict=True):
                if value is not None:
                    if _as_int(value) == seq:
                        already_keys += 1
                    else:
                        differing_keys += 1
                    continue
                ttl = self._remaining_ttl(log[seq - 1].created_at, now)
                if ttl <= 0:
                    expired += 1
                else:
                    new_keys.append((name, seq, ttl))
        if differing or differing_keys:
            report.messages.refused += len(log)
            report.idempotency_keys.refused += len(keys) - expired
            report.expired_keys += expired
            report.conflicts.append(_room_conflict(room_id, differing, differing_keys))
            return
        report.messages.already += len(log) - len(missing)
        report.messages.moved += len(missing)
        report.idempotency_keys.already += already_keys
        report.idempotency_keys.moved += len(new_keys)
        report.expired_keys += expired
        if report.dry_run:
            return
        written = 0
        for batch in _chunks(missing, self._batch):
            args: list[bytes | int] = [batch[-1].seq]
            for message in batch:
                args += [message.seq, _encode(message.id), _message_json(message)]
            written += await self._write_messages(room_id, args)
        if written != len(missing):
            report.messages.moved -= len(missing) - written
            report.messages.refused += len(missing) - written
            report.conflicts.append(
                f"room {room_id!r}: {len(missing) - written} messages were written by someone "
                "else during the import; stop every server and run it again"
            )
        if last_seq < len(log) and not missing:  # every message there, but not the counter
            await self._write_messages(room_id, [len(log)])
        for batch_new in _chunks(new_keys, self._batch):
            async with self._client.pipeline(transaction=False) as pipe:
                for name, seq, ttl in batch_new:
                    pipe.set(name, seq, ex=ttl, nx=True)
                await pipe.execute()

    async def _write_messages(self, room_id: RoomId, args: list[bytes | int]) -> int:
        written = await self._import_messages(
            keys=[
                self._room_key(room_id, "seq"),
                self._room_key(room_id, "msgs"),
                self._room_key(room_id, "ids"),
            ],
            args=args,
        )
        return _as_int(written)

    def _idempotency_key(self, room_id: RoomId, author_id: UserId, client_msg_id: str) -> bytes:
        return self._room_key(room_id, "idem", Keys.safe(author_id), Keys.safe(client_msg_id))

    def _remaining_ttl(self, created_at: datetime, now: datetime) -> int:
        """Whole seconds left of the key's TTL, counted from the message's creation."""
        age_s = (now - created_at).total_seconds()
        return min(self._idempotency_ttl_s, int(self._idempotency_ttl_s - age_s))

    # --- notifications --------------------------------------------------------------------------

    async def _notifications(self, snapshot: Snapshot, report: ImportReport) -> None:
        for user_id, log in sorted(snapshot.notifications.logs.items()):
            await self._user_notifications(user_id, log, report)

    async def _user_notifications(
        self, user_id: UserId, log: Sequence[Notification], report: ImportReport
    ) -> None:
        present: list[bool] = []
        differing: list[str] = []
        for batch in _chunks(log, self._batch):
            ids = [_encode(n.id) for n in batch]
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.hmget(self._user_key(user_id, "notes"), ids)
                pipe.hmget(self._user_key(user_id, "read"), ids)
                stored, read = await pipe.execute()
            for notification, raw, read_at in zip(batch, _list(stored), _list(read), strict=True):
                present.append(raw is not None)
                if raw is not None and not _same_notification(notification, raw, read_at):
                    differing.append(notification.id)
        count: object = await self._client.zcard(self._user_key(user_id, "order"))
        already = sum(present)
        missing = len(log) - already
        problem = None
        if differing:
            problem = f"{len(differing)} notifications differ in Redis (first {differing[0]!r})"
        elif missing and (already != _as_int(count) or not _is_prefix(present)):
            problem = (
                "Redis holds notifications of this user that are not an in-order start of the "
                "snapshot's, so adding the others would change their order"
            )
        if problem is not None:
            report.notifications.refused += len(log)
            report.conflicts.append(f"notifications of user {user_id!r}: {problem}; not imported")
            return
        report.notifications.already += already
        report.notifications.moved += missing
        report.unread += sum(1 for n in log if n.read_at is None)
        if report.dry_run or not missing:
            return
        pending = [n for n, there in zip(log, present, strict=True) if not there]
        for batch in _chunks(pending, self._batch):
            args: list[bytes] = []
            for notification in batch:
                args += [
                    _encode(notification.id),
                    _notification_json(notification),
                    b"" if notification.read_at is None else _iso(notification.read_at).encode(),
                ]
            await self._import_notifications(
                keys=[
                    self._user_key(user_id, "notes"),
                    self._user_key(user_id, "read"),
                    self._user_key(user_id, "order"),
                    self._user_key(user_id, "unread"),
                    self._user_key(user_id, "counter"),
                ],
                args=args,
            )


# --- encoding, exactly as the adapters write it ---------------------------------------------


def _encode(text: str) -> bytes:
    """UTF-8 that lets lone surrogates through, as every Redis adapter writes."""
    return text.encode("utf-8", "surrogatepass")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _score(moment: datetime) -> int:
    """A public room's score: `created_at` in epoch microseconds (as `RedisRoomRepository`)."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _room_fields(room: Room) -> list[str | None]:
    return [room.name, room.visibility.value, room.owner_id, _iso(room.created_at)]


def _message_json(message: ChatMessage) -> bytes:
    """The JSON of `RedisMessageStore`: no room id (the key says it), no seq (the field)."""
    fields: dict[str, str | bool | None] = {
        "id": message.id,
        "author_id": message.author_id,
        "text": message.text,
        "client_msg_id": message.client_msg_id,
        "created_at": _iso(message.created_at),
        "edited_at": None if message.edited_at is None else _iso(message.edited_at),
        "deleted": message.deleted,
    }
    return _encode(json.dumps(fields, ensure_ascii=False, separators=(",", ":")))


def _notification_json(notification: Notification) -> bytes:
    """The JSON of `RedisNotificationStore`: no user id (the key), no read_at (its own hash)."""
    fields: dict[str, JsonValue] = {
        "id": notification.id,
        "kind": notification.kind,
        "title": notification.title,
        "body": notification.body,
        "data": notification.data,
        "created_at": _iso(notification.created_at),
    }
    return json.dumps(fields, separators=(",", ":")).encode()


# --- decoding what is already there ---------------------------------------------------------


def _stored_message(room_id: RoomId, seq: int, raw: object) -> ChatMessage | None:
    """The message stored at `seq` (None if it cannot be read: then it differs)."""
    fields = _json_fields(raw)
    if fields is None:
        return None
    text_fields = [fields.get(name) for name in ("id", "author_id", "text", "client_msg_id")]
    created_at = _parse_time(fields.get("created_at"))
    edited = fields.get("edited_at")
    edited_at = None if edited is None else _parse_time(edited)
    deleted = fields.get("deleted")
    if (
        not all(isinstance(value, str) for value in text_fields)
        or created_at is None
        or (edited is not None and edited_at is None)
        or not isinstance(deleted, bool)
    ):
        return None
    message_id, author_id, text, client_msg_id = (str(value) for value in text_fields)
    return ChatMessage(
        id=message_id,
        room_id=room_id,
        seq=seq,
        author_id=author_id,
        text=text,
        client_msg_id=client_msg_id,
        created_at=created_at,
        edited_at=edited_at,
        deleted=deleted,
    )


def _same_notification(notification: Notification, raw: object, read_at: object) -> bool:
    fields = _json_fields(raw)
    if fields is None:
        return False
    stored_read = None if read_at is None else _parse_time(_decode(read_at))
    if (read_at is None) != (notification.read_at is None) or stored_read != notification.read_at:
        return False
    return (
        fields.get("id") == notification.id
        and fields.get("kind") == notification.kind
        and fields.get("title") == notification.title
        and fields.get("body") == notification.body
        and _canonical(fields.get("data")) == _canonical(notification.data)
        and _parse_time(fields.get("created_at")) == notification.created_at
    )


def _json_fields(raw: object) -> dict[str, object] | None:
    if not isinstance(raw, bytes):
        return None
    try:
        parsed: object = json.loads(raw.decode("utf-8", "surrogatepass"))
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    return {str(key): value for key, value in parsed.items()}


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _room_conflict(room_id: RoomId, differing: Sequence[int], differing_keys: int) -> str:
    parts: list[str] = []
    if differing:
        shown = ", ".join(str(seq) for seq in differing[:5])
        more = f" and {len(differing) - 5} more" if len(differing) > 5 else ""
        parts.append(f"Redis has different messages at seq {shown}{more}")
    if differing_keys:
        parts.append(f"{differing_keys} idempotency keys point at other seqs")
    return f"messages of room {room_id!r}: {'; '.join(parts)}; nothing of this room was imported"


def _describe(stored: Sequence[str | None]) -> str:
    name, visibility, owner_id, _ = stored
    return f"name {name!r}, {visibility}, owner {owner_id!r}"


def _is_prefix(present: Sequence[bool]) -> bool:
    """Whether every True comes before every False."""
    return all(present[: sum(present)])


# --- Redis replies --------------------------------------------------------------------------


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _decode(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogatepass")
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a Redis string, got {type(value).__name__}")


def _list(reply: object) -> list[object]:
    if not isinstance(reply, list):
        raise TypeError(f"expected a Redis array, got {type(reply).__name__}")
    return reply


def _texts(reply: object) -> list[str]:
    if not isinstance(reply, set | list):
        raise TypeError(f"expected a Redis set, got {type(reply).__name__}")
    return [_decode(item) for item in reply]


def _optional_texts(reply: object) -> list[str | None]:
    return [None if item is None else _decode(item) for item in _list(reply)]


def _as_int(value: object) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, bytes | str):
        return int(value)
    raise TypeError(f"expected a Redis integer, got {type(value).__name__}")

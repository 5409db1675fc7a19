"""Snapshots of the memory stores: a versioned JSON file, written atomically, read strictly.

Format `switchboard-snapshot`, version 1 (docs/migration.md shows an example):

```
{"format": "switchboard-snapshot", "version": 1, "written_at": "<time>",
"rooms": [{"id", "name", "visibility", "owner_id", "created_at"}, ...],
"memberships": [{"room_id", "members": [user_id, ...]}, ...],
"messages": [{"room_id", "messages": [{"id", "seq", "author_id", "text", "client_msg_id",
                                       "created_at", "edited_at", "deleted"}, ...]}, ...],
"idempotency": [{"room_id", "keys": [{"author_id", "client_msg_id", "seq"}, ...]}, ...],
"notifications": [{"user_id", "notifications": [{"id", "kind", "title", "body", "data",
                                                 "created_at", "read_at"}, ...]}, ...]}
```

Times are ISO-8601 UTC with microseconds. Messages are listed by seq from 1 with no gap,
notifications oldest first (the order the store shows them in, reversed). The file is ASCII
(`\\uXXXX` escapes), so ids with lone surrogates round-trip. Connections and presence are live
state and are not in it. A reader refuses anything else: another format or version, a
missing or unknown key, a wrong type, a gap in seqs, a duplicate id, an idempotency key that
does not name its message.

Writing happens in two steps so that a big store does not stall the event loop: `capture`
copies the stores' state on the loop (no await, so it is one consistent cut across the three
stores, and only references are copied: the records are immutable), then `write_snapshot`
turns it into JSON record by record and writes it in a worker thread (`asyncio.to_thread`).
Each record is a small `json.dumps` (no long C call such as one big dumps or a sort of every
key, which would hold the GIL throughout), and the writer yields the GIL every 256 pieces:
measured, the loop's stalls stay at a few milliseconds (docs/migration.md). The file is
written to a temporary file in the same directory, fsynced, renamed over the old one and the
directory fsynced: a crash leaves either the old or the new file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import attrs

from adapters.memory.messages import MemoryMessageStore, MessagesState
from adapters.memory.notifications import MemoryNotificationStore, NotificationsState
from adapters.memory.rooms import MemoryRoomRepository, RoomsState
from domain.json_types import JsonObject, JsonValue
from domain.model import ChatMessage, Notification, Room, RoomId, UserId, Visibility

SNAPSHOT_FORMAT = "switchboard-snapshot"
SNAPSHOT_VERSION = 1

_TOP_KEYS = frozenset(
    {
        "format",
        "version",
        "written_at",
        "rooms",
        "memberships",
        "messages",
        "idempotency",
        "notifications",
    }
)
_ROOM_KEYS = frozenset({"id", "name", "visibility", "owner_id", "created_at"})
_MESSAGE_KEYS = frozenset(
    {"id", "seq", "author_id", "text", "client_msg_id", "created_at", "edited_at", "deleted"}
)
_IDEMPOTENCY_KEYS = frozenset({"author_id", "client_msg_id", "seq"})
_NOTIFICATION_KEYS = frozenset({"id", "kind", "title", "body", "data", "created_at", "read_at"})


class SnapshotError(Exception):
    """A snapshot file cannot be used: unreadable, corrupt, or of an unknown format/version."""


class SnapshotSaveError(Exception):
    """A snapshot could not be written (the previous file, if any, is left as it was)."""


@attrs.frozen
class SnapshotCounts:
    """How many records of each kind a snapshot holds."""

    rooms: int
    memberships: int
    messages: int
    idempotency_keys: int
    notifications: int
    unread: int


@attrs.frozen
class Snapshot:
    """The state of the three memory stores at one moment."""

    rooms: RoomsState
    messages: MessagesState
    notifications: NotificationsState
    written_at: datetime

    def counts(self) -> SnapshotCounts:
        """How many records of each kind it holds."""
        return SnapshotCounts(
            rooms=len(self.rooms.rooms),
            memberships=sum(len(members) for members in self.rooms.members.values()),
            messages=sum(len(log) for log in self.messages.logs.values()),
            idempotency_keys=len(self.messages.idempotency),
            notifications=sum(len(log) for log in self.notifications.logs.values()),
            unread=sum(
                1 for log in self.notifications.logs.values() for n in log if n.read_at is None
            ),
        )


def capture(
    rooms: MemoryRoomRepository,
    messages: MemoryMessageStore,
    notifications: MemoryNotificationStore,
    at: datetime,
) -> Snapshot:
    """Copy the stores' state (call on the event loop: no await, so one consistent cut)."""
    return Snapshot(
        rooms=rooms.export_state(),
        messages=messages.export_state(),
        notifications=notifications.export_state(),
        written_at=at,
    )


def restore(
    snapshot: Snapshot,
    rooms: MemoryRoomRepository,
    messages: MemoryMessageStore,
    notifications: MemoryNotificationStore,
) -> None:
    """Replace the stores' whole state with the snapshot's."""
    rooms.import_state(snapshot.rooms)
    messages.import_state(snapshot.messages)
    notifications.import_state(snapshot.notifications)


# --- writing --------------------------------------------------------------------------------


def write_snapshot(path: Path, snapshot: Snapshot) -> int:
    """Write atomically (temporary file, fsync, rename, fsync of the directory); the size.

    Blocking: run it in a worker thread. Raises `SnapshotSaveError`.
    """
    directory = path.parent
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise SnapshotSaveError(f"cannot create a file in {directory}: {exc}") from exc
    try:
        size = 0
        with os.fdopen(fd, "w", encoding="ascii", newline="\n", buffering=1 << 20) as out:
            for index, chunk in enumerate(encode_snapshot(snapshot)):
                size += out.write(chunk)  # ASCII: characters are bytes
                if index % 256 == 0:
                    time.sleep(0)  # let the event loop's thread take the GIL now
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(exc, OSError | ValueError):
            raise SnapshotSaveError(f"cannot write {path}: {exc}") from exc
        raise
    _fsync_directory(directory)
    return size


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (not possible on every platform, hence best effort)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def encode_snapshot(snapshot: Snapshot) -> Iterator[str]:
    """The snapshot's JSON in pieces, one record per line (each piece is a small dumps)."""
    yield (
        f'{{"format": {_dumps(SNAPSHOT_FORMAT)}, "version": {SNAPSHOT_VERSION}, '
        f'"written_at": {_dumps(_iso(snapshot.written_at))},\n"rooms": ['
    )
    rooms = sorted(snapshot.rooms.rooms, key=lambda room: (room.created_at, room.id))
    yield from _lines(_room_json(room) for room in rooms)
    yield '],\n"memberships": ['
    yield from _lines(
        {"room_id": room_id, "members": list[JsonValue](sorted(members))}
        for room_id, members in sorted(snapshot.rooms.members.items())
    )
    yield '],\n"messages": ['
    for index, (room_id, log) in enumerate(sorted(snapshot.messages.logs.items())):
        yield f'{"," if index else ""}\n{{"room_id": {_dumps(room_id)}, "messages": ['
        yield from _lines(_message_json(message) for message in log)
        yield "]}"
    yield '],\n"idempotency": ['
    # No global sort here: sorting many keys is one long C call that holds the GIL. The store
    # records keys as messages are appended, so each room's keys are already in seq order.
    by_room: dict[RoomId, list[tuple[UserId, str, int]]] = {}
    for (room_id, author_id, client_msg_id), seq in snapshot.messages.idempotency.items():
        by_room.setdefault(room_id, []).append((author_id, client_msg_id, seq))
    for index, room_id in enumerate(sorted(by_room)):
        yield f'{"," if index else ""}\n{{"room_id": {_dumps(room_id)}, "keys": ['
        yield from _lines(
            {"author_id": author_id, "client_msg_id": client_msg_id, "seq": seq}
            for author_id, client_msg_id, seq in by_room[room_id]
        )
        yield "]}"
    yield '],\n"notifications": ['
    for index, (user_id, notes) in enumerate(sorted(snapshot.notifications.logs.items())):
        yield f'{"," if index else ""}\n{{"user_id": {_dumps(user_id)}, "notifications": ['
        yield from _lines(_notification_json(notification) for notification in notes)
        yield "]}"
    yield "]}\n"


def _lines(records: Iterable[JsonValue]) -> Iterator[str]:
    first = True
    for record in records:
        yield ("\n" if first else ",\n") + _dumps(record)
        first = False


def _dumps(value: JsonValue) -> str:
    return json.dumps(value, ensure_ascii=True)


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("snapshot times must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _iso_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else _iso(moment)


def _room_json(room: Room) -> JsonObject:
    return {
        "id": room.id,
        "name": room.name,
        "visibility": room.visibility.value,
        "owner_id": room.owner_id,
        "created_at": _iso(room.created_at),
    }


def _message_json(message: ChatMessage) -> JsonObject:
    return {
        "id": message.id,
        "seq": message.seq,
        "author_id": message.author_id,
        "text": message.text,
        "client_msg_id": message.client_msg_id,
        "created_at": _iso(message.created_at),
        "edited_at": _iso_or_none(message.edited_at),
        "deleted": message.deleted,
    }


def _notification_json(notification: Notification) -> JsonObject:
    return {
        "id": notification.id,
        "kind": notification.kind,
        "title": notification.title,
        "body": notification.body,
        "data": notification.data,
        "created_at": _iso(notification.created_at),
        "read_at": _iso_or_none(notification.read_at),
    }


# --- reading --------------------------------------------------------------------------------


def read_snapshot(path: Path) -> Snapshot:
    """Read and check a snapshot file (blocking); raises `SnapshotError` saying what is wrong."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SnapshotError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        document: object = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SnapshotError(f"{path} is not valid JSON (corrupt or truncated?): {exc}") from exc
    except RecursionError as exc:
        raise SnapshotError(f"{path} is not a snapshot (nested too deeply)") from exc
    try:
        return decode_snapshot(document)
    except SnapshotError as exc:
        raise SnapshotError(f"{path}: {exc}") from exc


def decode_snapshot(document: object) -> Snapshot:
    """The snapshot in a parsed JSON document; raises `SnapshotError` saying what is wrong."""
    if not isinstance(document, dict) or document.get("format") != SNAPSHOT_FORMAT:
        raise SnapshotError(f'not a Switchboard snapshot (no "format": {SNAPSHOT_FORMAT!r})')
    version = document.get("version")
    if version != SNAPSHOT_VERSION or isinstance(version, bool):
        raise SnapshotError(
            f"unsupported snapshot version {version!r}: this Switchboard reads version "
            f"{SNAPSHOT_VERSION} only"
        )
    top = _record(document, "the snapshot", _TOP_KEYS)
    written_at = _time(top, "written_at", "the snapshot")
    rooms = _rooms(_array(top["rooms"], "rooms"))
    known_rooms = {room.id for room in rooms}
    members = _memberships(_array(top["memberships"], "memberships"), known_rooms)
    logs = _message_logs(_array(top["messages"], "messages"))
    idempotency = _idempotency(_array(top["idempotency"], "idempotency"), logs)
    notifications = _notification_logs(_array(top["notifications"], "notifications"))
    return Snapshot(
        rooms=RoomsState(rooms=tuple(rooms), members=members),
        messages=MessagesState(logs=logs, idempotency=idempotency),
        notifications=NotificationsState(logs=notifications),
        written_at=written_at,
    )


def _rooms(items: list[object]) -> list[Room]:
    rooms: list[Room] = []
    seen: set[RoomId] = set()
    for index, item in enumerate(items):
        where = f"rooms[{index}]"
        fields = _record(item, where, _ROOM_KEYS)
        room_id = _text(fields, "id", where)
        if room_id in seen:
            raise SnapshotError(f"{where}: room {room_id!r} is listed twice")
        seen.add(room_id)
        visibility = _text(fields, "visibility", where)
        if visibility not in ("public", "private"):
            raise SnapshotError(f"{where}.visibility: expected public or private")
        rooms.append(
            Room(
                id=room_id,
                name=_text(fields, "name", where),
                visibility=Visibility(visibility),
                owner_id=_text(fields, "owner_id", where),
                created_at=_time(fields, "created_at", where),
            )
        )
    return rooms


def _memberships(items: list[object], known_rooms: set[RoomId]) -> dict[RoomId, frozenset[UserId]]:
    members: dict[RoomId, frozenset[UserId]] = {}
    for index, item in enumerate(items):
        where = f"memberships[{index}]"
        fields = _record(item, where, frozenset({"room_id", "members"}))
        room_id = _text(fields, "room_id", where)
        if room_id not in known_rooms:
            raise SnapshotError(f"{where}: members of room {room_id!r}, which is not in rooms")
        if room_id in members:
            raise SnapshotError(f"{where}: room {room_id!r} is listed twice")
        users = _texts(fields["members"], f"{where}.members")
        unique = frozenset(users)
        if len(unique) != len(users):
            raise SnapshotError(f"{where}.members: a user is listed twice")
        members[room_id] = unique
    return members


def _message_logs(items: list[object]) -> dict[RoomId, tuple[ChatMessage, ...]]:
    logs: dict[RoomId, tuple[ChatMessage, ...]] = {}
    for index, item in enumerate(items):
        where = f"messages[{index}]"
        fields = _record(item, where, frozenset({"room_id", "messages"}))
        room_id = _text(fields, "room_id", where)
        if room_id in logs:
            raise SnapshotError(f"{where}: room {room_id!r} is listed twice")
        log: list[ChatMessage] = []
        ids: set[str] = set()
        for position, entry in enumerate(_array(fields["messages"], f"{where}.messages")):
            at = f"{where}.messages[{position}]"
            message = _message(room_id, entry, at)
            if message.seq != position + 1:
                raise SnapshotError(
                    f"{at}: seq {message.seq} where {position + 1} was expected "
                    "(seqs start at 1 and have no gaps)"
                )
            if message.id in ids:
                raise SnapshotError(f"{at}: message id {message.id!r} is listed twice")
            ids.add(message.id)
            log.append(message)
        logs[room_id] = tuple(log)
    return logs


def _message(room_id: RoomId, entry: object, where: str) -> ChatMessage:
    fields = _record(entry, where, _MESSAGE_KEYS)
    return ChatMessage(
        id=_text(fields, "id", where),
        room_id=room_id,
        seq=_integer(fields, "seq", where),
        author_id=_text(fields, "author_id", where),
        text=_text(fields, "text", where),
        client_msg_id=_text(fields, "client_msg_id", where),
        created_at=_time(fields, "created_at", where),
        edited_at=_optional_time(fields, "edited_at", where),
        deleted=_boolean(fields, "deleted", where),
    )


def _idempotency(
    items: list[object], logs: Mapping[RoomId, tuple[ChatMessage, ...]]
) -> dict[tuple[RoomId, UserId, str], int]:
    keys: dict[tuple[RoomId, UserId, str], int] = {}
    rooms: set[RoomId] = set()
    for index, item in enumerate(items):
        where = f"idempotency[{index}]"
        fields = _record(item, where, frozenset({"room_id", "keys"}))
        room_id = _text(fields, "room_id", where)
        if room_id in rooms:
            raise SnapshotError(f"{where}: room {room_id!r} is listed twice")
        rooms.add(room_id)
        log = logs.get(room_id, ())
        for position, entry in enumerate(_array(fields["keys"], f"{where}.keys")):
            at = f"{where}.keys[{position}]"
            key_fields = _record(entry, at, _IDEMPOTENCY_KEYS)
            author_id = _text(key_fields, "author_id", at)
            client_msg_id = _text(key_fields, "client_msg_id", at)
            seq = _integer(key_fields, "seq", at)
            if not 1 <= seq <= len(log):
                raise SnapshotError(f"{at}: seq {seq} is not a message of room {room_id!r}")
            message = log[seq - 1]
            if (message.author_id, message.client_msg_id) != (author_id, client_msg_id):
                raise SnapshotError(
                    f"{at}: the message at seq {seq} has another author or client_msg_id"
                )
            key = (room_id, author_id, client_msg_id)
            if key in keys:
                raise SnapshotError(f"{at}: this key is listed twice")
            keys[key] = seq
    return keys


def _notification_logs(items: list[object]) -> dict[UserId, tuple[Notification, ...]]:
    logs: dict[UserId, tuple[Notification, ...]] = {}
    for index, item in enumerate(items):
        where = f"notifications[{index}]"
        fields = _record(item, where, frozenset({"user_id", "notifications"}))
        user_id = _text(fields, "user_id", where)
        if user_id in logs:
            raise SnapshotError(f"{where}: user {user_id!r} is listed twice")
        log: list[Notification] = []
        ids: set[str] = set()
        for position, entry in enumerate(_array(fields["notifications"], f"{where}.notifications")):
            at = f"{where}.notifications[{position}]"
            notification = _notification(user_id, entry, at)
            if notification.id in ids:
                raise SnapshotError(f"{at}: notification id {notification.id!r} is listed twice")
            ids.add(notification.id)
            log.append(notification)
        logs[user_id] = tuple(log)
    return logs


def _notification(user_id: UserId, entry: object, where: str) -> Notification:
    fields = _record(entry, where, _NOTIFICATION_KEYS)
    data = fields["data"]
    if not isinstance(data, dict):
        raise SnapshotError(f"{where}.data: expected an object")
    return Notification(
        id=_text(fields, "id", where),
        user_id=user_id,
        kind=_text(fields, "kind", where),
        title=_text(fields, "title", where),
        body=_text(fields, "body", where),
        data=_json_object(data),
        created_at=_time(fields, "created_at", where),
        read_at=_optional_time(fields, "read_at", where),
    )


# --- typed access to parsed JSON --------------------------------------------------------------


def _record(value: object, where: str, keys: frozenset[str]) -> dict[str, object]:
    """`value` as a JSON object with exactly these keys."""
    if not isinstance(value, dict):
        raise SnapshotError(f"{where}: expected an object")
    if value.keys() != keys:
        missing = sorted(keys - value.keys())
        unknown = sorted(str(key) for key in value.keys() - keys)
        problems = [f"missing {', '.join(missing)}"] if missing else []
        problems += [f"unknown {', '.join(unknown)}"] if unknown else []
        raise SnapshotError(f"{where}: {'; '.join(problems)}")
    return value


def _array(value: object, where: str) -> list[object]:
    if not isinstance(value, list):
        raise SnapshotError(f"{where}: expected an array")
    return value


def _text(fields: dict[str, object], name: str, where: str) -> str:
    value = fields[name]
    if not isinstance(value, str):
        raise SnapshotError(f"{where}.{name}: expected a string")
    return value


def _texts(value: object, where: str) -> list[str]:
    items = _array(value, where)
    for item in items:
        if not isinstance(item, str):
            raise SnapshotError(f"{where}: expected strings")
    return [str(item) for item in items]


def _integer(fields: dict[str, object], name: str, where: str) -> int:
    value = fields[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise SnapshotError(f"{where}.{name}: expected an integer")
    return value


def _boolean(fields: dict[str, object], name: str, where: str) -> bool:
    value = fields[name]
    if not isinstance(value, bool):
        raise SnapshotError(f"{where}.{name}: expected true or false")
    return value


def _time(fields: dict[str, object], name: str, where: str) -> datetime:
    value = fields[name]
    if not isinstance(value, str):
        raise SnapshotError(f"{where}.{name}: expected a time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise SnapshotError(f"{where}.{name}: {value!r} is not an ISO-8601 time") from None
    if moment.tzinfo is None:
        raise SnapshotError(f"{where}.{name}: {value!r} has no timezone")
    return moment


def _optional_time(fields: dict[str, object], name: str, where: str) -> datetime | None:
    return None if fields[name] is None else _time(fields, name, where)


def _json_value(value: object) -> JsonValue:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return _json_object(value)
    raise SnapshotError(f"not a JSON value: {type(value).__name__}")  # pragma: no cover


def _json_object(value: dict[object, object]) -> JsonObject:
    return {str(key): _json_value(item) for key, item in value.items()}

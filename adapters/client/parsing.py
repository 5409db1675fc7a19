"""Narrow the untyped values python-socketio hands over into the SDK's attrs types.

Every function takes `object` and either returns a typed value or raises `ServerError`
with code `bad_response` (the server answered off-contract).
"""

from __future__ import annotations

from datetime import datetime

from adapters.client.errors import BAD_RESPONSE, ServerError, SwitchboardError, error_for
from adapters.client.json_types import JsonObject, JsonValue
from adapters.client.models import (
    HistoryPage,
    JoinedRoom,
    MembersChanged,
    Message,
    MessageDeleted,
    Notification,
    NotificationPage,
    PresenceDiff,
    PresenceEntry,
    Room,
    Typing,
)


def bad(what: str) -> ServerError:
    """The error for an answer that does not have the contract's shape."""
    return ServerError(BAD_RESPONSE, f"unexpected answer from the server: {what}")


def json_value(value: object, path: str = "$") -> JsonValue:
    """A JSON value, checked all the way down."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [json_value(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        return json_object(value, path)
    raise bad(f"{path} is not JSON")


def json_object(value: object, path: str = "$") -> JsonObject:
    """A JSON object (string keys), checked all the way down."""
    if not isinstance(value, dict):
        raise bad(f"{path} is not an object")
    result: JsonObject = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise bad(f"{path} has a non-string key")
        result[key] = json_value(item, f"{path}.{key}")
    return result


def _string(data: JsonObject, key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise bad(f"{key} is not a string")
    return value


def _optional_string(data: JsonObject, key: str) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    raise bad(f"{key} is not a string or null")


def _integer(data: JsonObject, key: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad(f"{key} is not an integer")
    return value


def _boolean(data: JsonObject, key: str) -> bool:
    value = data.get(key)
    if not isinstance(value, bool):
        raise bad(f"{key} is not a boolean")
    return value


def _list(data: JsonObject, key: str) -> list[JsonValue]:
    value = data.get(key)
    if not isinstance(value, list):
        raise bad(f"{key} is not a list")
    return value


def _strings(data: JsonObject, key: str) -> tuple[str, ...]:
    items = _list(data, key)
    if not all(isinstance(item, str) for item in items):
        raise bad(f"{key} is not a list of strings")
    return tuple(str(item) for item in items)


def _object(data: JsonObject, key: str) -> JsonObject:
    value = data.get(key)
    if not isinstance(value, dict):
        raise bad(f"{key} is not an object")
    return value


def parse_time(value: str) -> datetime:
    """An ISO 8601 UTC time such as `2026-11-25T19:30:00.123Z`."""
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise bad(f"{value!r} is not an ISO 8601 time") from None


def _time(data: JsonObject, key: str) -> datetime:
    return parse_time(_string(data, key))


def _optional_time(data: JsonObject, key: str) -> datetime | None:
    value = _optional_string(data, key)
    return None if value is None else parse_time(value)


def parse_room(value: object) -> Room:
    """A room resource."""
    data = json_object(value)
    visibility = _string(data, "visibility")
    if visibility not in ("public", "private"):
        raise bad("visibility is not public or private")
    return Room(
        id=_string(data, "id"),
        name=_string(data, "name"),
        visibility="public" if visibility == "public" else "private",
        owner_id=_string(data, "owner_id"),
        created_at=_time(data, "created_at"),
        member_count=_integer(data, "member_count"),
    )


def parse_message(value: object) -> Message:
    """A message resource."""
    data = json_object(value)
    return Message(
        id=_string(data, "id"),
        room_id=_string(data, "room_id"),
        seq=_integer(data, "seq"),
        author_id=_string(data, "author_id"),
        text=_string(data, "text"),
        client_msg_id=_string(data, "client_msg_id"),
        created_at=_time(data, "created_at"),
        edited_at=_optional_time(data, "edited_at"),
        deleted=_boolean(data, "deleted"),
    )


def parse_notification(value: object) -> Notification:
    """A notification resource."""
    data = json_object(value)
    return Notification(
        id=_string(data, "id"),
        user_id=_string(data, "user_id"),
        kind=_string(data, "kind"),
        title=_string(data, "title"),
        body=_string(data, "body"),
        data=_object(data, "data"),
        created_at=_time(data, "created_at"),
        read_at=_optional_time(data, "read_at"),
    )


def parse_presence(value: object) -> PresenceEntry:
    """A presence entry."""
    data = json_object(value)
    return PresenceEntry(
        user_id=_string(data, "user_id"),
        online=_boolean(data, "online"),
        last_seen=_optional_time(data, "last_seen"),
        connections=_integer(data, "connections"),
    )


def parse_messages(data: JsonObject, key: str) -> tuple[Message, ...]:
    """A list of messages under `key`."""
    return tuple(parse_message(item) for item in _list(data, key))


def parse_join(data: JsonObject) -> JoinedRoom:
    """The `room:join` ack data."""
    return JoinedRoom(
        room=parse_room(data.get("room")),
        online=tuple(parse_presence(item) for item in _list(data, "online")),
        online_count=_integer(data, "online_count"),
        missed=parse_messages(data, "missed"),
        has_more=_boolean(data, "has_more"),
    )


def parse_history(data: JsonObject) -> HistoryPage:
    """The `message:history` ack data."""
    return HistoryPage(
        messages=parse_messages(data, "messages"), has_more=_boolean(data, "has_more")
    )


def parse_rooms(data: JsonObject) -> list[Room]:
    """The `room:list` ack data."""
    return [parse_room(item) for item in _list(data, "rooms")]


def parse_presence_list(data: JsonObject) -> list[PresenceEntry]:
    """The `presence:get` ack data."""
    return [parse_presence(item) for item in _list(data, "presence")]


def parse_notification_page(data: JsonObject) -> NotificationPage:
    """The `notification:list` ack data."""
    return NotificationPage(
        notifications=tuple(parse_notification(item) for item in _list(data, "notifications")),
        unread_count=_integer(data, "unread_count"),
        has_more=_boolean(data, "has_more"),
    )


def parse_unread_count(value: object) -> int:
    """`{unread_count}`, from an ack or the `notification:unread_count` event."""
    return _integer(json_object(value), "unread_count")


def parse_message_deleted(value: object) -> MessageDeleted:
    """The `message:deleted` event."""
    data = json_object(value)
    return MessageDeleted(
        room_id=_string(data, "room_id"),
        message_id=_string(data, "message_id"),
        seq=_integer(data, "seq"),
    )


def parse_members_changed(value: object) -> MembersChanged:
    """The `room:members` event."""
    data = json_object(value)
    return MembersChanged(
        room_id=_string(data, "room_id"),
        joined=_strings(data, "joined"),
        left=_strings(data, "left"),
    )


def parse_presence_diff(value: object) -> PresenceDiff:
    """The `presence:diff` event."""
    data = json_object(value)
    return PresenceDiff(
        room_id=_string(data, "room_id"),
        joins=_strings(data, "joins"),
        leaves=_strings(data, "leaves"),
    )


def parse_typing(value: object) -> Typing:
    """The `typing` event."""
    data = json_object(value)
    return Typing(
        room_id=_string(data, "room_id"),
        user_id=_string(data, "user_id"),
        typing=_boolean(data, "typing"),
    )


def ack_data(envelope: object) -> JsonObject:
    """The `data` of a success ack; a failure ack raises its typed `SwitchboardError`."""
    if not isinstance(envelope, dict):
        raise bad("the ack is not an object")
    ok = envelope.get("ok")
    if ok is True:
        data = envelope.get("data", {})
        return json_object(data, "$.data")
    if ok is False:
        raise ack_error(envelope.get("error"))
    raise bad("the ack has no ok field")


def ack_error(error: object) -> SwitchboardError:
    """The typed error of a failure ack's `error` object."""
    if not isinstance(error, dict):
        return bad("the failure ack has no error object")
    data = json_object(error, "$.error")
    code = data.get("code")
    message = data.get("message")
    correlation_id = data.get("correlation_id")
    details = data.get("details")
    return error_for(
        code if isinstance(code, str) else "internal",
        message if isinstance(message, str) else "",
        correlation_id=correlation_id if isinstance(correlation_id, str) else None,
        details=details if isinstance(details, dict) else None,
    )


def refusal_error(data: object) -> SwitchboardError | None:
    """The typed error of a refused handshake (`connect_error` data), if it carries a code.

    python-socketio hands over `{"message", "data": {"code", "message"}}`; the bare
    `{"code", "message"}` is accepted too.
    """
    if not isinstance(data, dict):
        return None
    inner = data.get("data")
    source = inner if isinstance(inner, dict) else data
    code = source.get("code")
    if not isinstance(code, str):
        return None
    message = source.get("message")
    return error_for(code, message if isinstance(message, str) else "connection refused")

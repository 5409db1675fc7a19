"""Outbound shapes of contract v1: resources, ack envelopes, error objects, channel names."""

from __future__ import annotations

from datetime import UTC, datetime

from application.json_types import JsonObject, JsonValue
from domain.errors import DomainError
from domain.model import (
    ChatMessage,
    JoinResult,
    Notification,
    NotificationPage,
    PresenceEntry,
    Room,
    RoomId,
    UserId,
)


def iso_time(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds: `2026-11-25T19:30:00.123Z`."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def optional_time(moment: datetime | None) -> str | None:
    """`iso_time` or None."""
    return None if moment is None else iso_time(moment)


def room_json(room: Room) -> JsonObject:
    """A room resource."""
    return {
        "id": room.id,
        "name": room.name,
        "visibility": room.visibility.value,
        "owner_id": room.owner_id,
        "created_at": iso_time(room.created_at),
        "member_count": room.member_count,
    }


def message_json(message: ChatMessage) -> JsonObject:
    """A message resource."""
    return {
        "id": message.id,
        "room_id": message.room_id,
        "seq": message.seq,
        "author_id": message.author_id,
        "text": message.text,
        "client_msg_id": message.client_msg_id,
        "created_at": iso_time(message.created_at),
        "edited_at": optional_time(message.edited_at),
        "deleted": message.deleted,
    }


def presence_json(entry: PresenceEntry) -> JsonObject:
    """A presence entry."""
    return {
        "user_id": entry.user_id,
        "online": entry.online,
        "last_seen": optional_time(entry.last_seen),
        "connections": entry.connections,
    }


def join_json(result: JoinResult) -> JsonObject:
    """The ack data of `room:join`."""
    return {
        "room": room_json(result.room),
        "online": [presence_json(e) for e in result.online],
        "online_count": result.online_count,
        "missed": [message_json(m) for m in result.missed],
        "has_more": result.has_more,
    }


def notification_json(notification: Notification) -> JsonObject:
    """A notification resource."""
    return {
        "id": notification.id,
        "user_id": notification.user_id,
        "kind": notification.kind,
        "title": notification.title,
        "body": notification.body,
        "data": notification.data,
        "created_at": iso_time(notification.created_at),
        "read_at": optional_time(notification.read_at),
    }


def notification_page_json(page: NotificationPage) -> JsonObject:
    """The ack data of `notification:list`."""
    return {
        "notifications": [notification_json(n) for n in page.notifications],
        "unread_count": page.unread_count,
        "has_more": page.has_more,
    }


def ok(data: JsonObject) -> JsonObject:
    """A success ack."""
    return {"ok": True, "data": data}


def error_object(
    code: str, message: str, correlation_id: str, details: dict[str, object] | None = None
) -> JsonObject:
    """The error object shared by acks and HTTP responses."""
    error: JsonObject = {"code": code, "message": message, "correlation_id": correlation_id}
    if details:
        error["details"] = to_json(details)
    return error


def failure(error: DomainError, correlation_id: str) -> JsonObject:
    """A failure ack for a domain error."""
    return {
        "ok": False,
        "error": error_object(error.code, error.message, correlation_id, error.details),
    }


def to_json(value: object) -> JsonValue:
    """Narrow a value built from JSON-compatible parts to `JsonValue` (checked, recursive)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    return str(value)


def to_json_object(value: dict[str, object]) -> JsonObject:
    """Narrow a decoded JSON object to `JsonObject`."""
    return {str(k): to_json(v) for k, v in value.items()}


def room_channel(room_id: RoomId) -> str:
    """The transport room of a chat room."""
    return f"room:{room_id}"


def user_channel(user_id: UserId) -> str:
    """The transport room holding every connection of a user on a namespace."""
    return f"user:{user_id}"

"""Values and records of the core: rooms, messages, connections, presence, identities."""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from domain.json_types import JsonObject

UserId = str
RoomId = str
MessageId = str
Sid = str

CHAT_NAMESPACE = "/chat"
NOTIFICATIONS_NAMESPACE = "/notifications"


class Visibility(enum.Enum):
    """Who can see and join a room."""

    PUBLIC = "public"
    PRIVATE = "private"


@attrs.frozen
class Identity:
    """Who a verified token says the caller is."""

    user_id: UserId
    name: str | None = None
    expires_at: datetime | None = None


@attrs.frozen
class Room:
    """A chat room as clients see it; `member_count` is read from the membership."""

    id: RoomId
    name: str
    visibility: Visibility
    owner_id: UserId
    created_at: datetime
    member_count: int = 0


@attrs.frozen
class ChatMessage:
    """A stored chat message; `seq` is gap-free and strictly increasing per room."""

    id: MessageId
    room_id: RoomId
    seq: int
    author_id: UserId
    text: str
    client_msg_id: str
    created_at: datetime
    edited_at: datetime | None = None
    deleted: bool = False


@attrs.frozen
class NewMessage:
    """What `MessageStore.append` needs to store a message; the store assigns `seq`."""

    id: MessageId
    room_id: RoomId
    author_id: UserId
    text: str
    client_msg_id: str
    created_at: datetime


@attrs.frozen
class AppendResult:
    """The stored message and whether this call created it (False: an idempotent replay)."""

    message: ChatMessage
    created: bool


@attrs.frozen
class HistoryPage:
    """Messages in ascending seq and whether more exist in the direction read."""

    messages: tuple[ChatMessage, ...]
    has_more: bool


@attrs.frozen
class Connection:
    """One Socket.IO connection of a user on a namespace, served by one instance."""

    sid: Sid
    user_id: UserId
    namespace: str
    instance_id: str
    connected_at: datetime


@attrs.frozen
class ConnectionChange:
    """The outcome of registering or removing a connection.

    `user_online_changed` is True when this was the user's first connection on the namespace
    (register) or the last one to go (unregister): the user-level presence transition.
    """

    connection: Connection
    user_online_changed: bool


@attrs.frozen
class PresenceEntry:
    """A user's presence as clients see it."""

    user_id: UserId
    online: bool
    last_seen: datetime | None
    connections: int


@attrs.frozen
class JoinResult:
    """What a client learns when it joins a room."""

    room: Room
    online: tuple[PresenceEntry, ...]
    online_count: int
    missed: tuple[ChatMessage, ...]
    has_more: bool


@attrs.frozen
class Notification:
    """A notification of one user; `read_at` is None while unread."""

    id: str
    user_id: UserId
    kind: str
    title: str
    body: str
    data: JsonObject
    created_at: datetime
    read_at: datetime | None = None


@attrs.frozen
class NotificationPage:
    """Notifications newest first, the user's unread count, and whether older ones exist."""

    notifications: tuple[Notification, ...]
    unread_count: int
    has_more: bool

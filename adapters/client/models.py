"""Typed results of the SDK: attrs classes mirroring contract v1's resource shapes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal

import attrs

from adapters.client.json_types import JsonValue

Visibility = Literal["public", "private"]


@attrs.frozen
class Room:
    """A room: `{id, name, visibility, owner_id, created_at, member_count}`."""

    id: str
    name: str
    visibility: Visibility
    owner_id: str
    created_at: datetime
    member_count: int


@attrs.frozen
class Message:
    """A chat message; `seq` is gap-free per room and starts at 1."""

    id: str
    room_id: str
    seq: int
    author_id: str
    text: str
    client_msg_id: str
    created_at: datetime
    edited_at: datetime | None
    deleted: bool


@attrs.frozen
class Notification:
    """A stored notification of the connected user."""

    id: str
    user_id: str
    kind: str
    title: str
    body: str
    data: Mapping[str, JsonValue]
    created_at: datetime
    read_at: datetime | None


@attrs.frozen
class PresenceEntry:
    """Whether a user is online, since when they are gone, how many `/chat` connections."""

    user_id: str
    online: bool
    last_seen: datetime | None
    connections: int


@attrs.frozen
class JoinedRoom:
    """The `room:join` ack, plus what the SDK added.

    `missed` are the server's missed messages (also delivered to the message handlers);
    `recent` is the last page of history fetched when joining without `since_seq`;
    `last_seq` is the seq from which the message handlers continue without gaps.
    """

    room: Room
    online: tuple[PresenceEntry, ...]
    online_count: int
    missed: tuple[Message, ...]
    has_more: bool
    recent: tuple[Message, ...] = ()
    last_seq: int = 0


@attrs.frozen
class HistoryPage:
    """A `message:history` page, ascending seq."""

    messages: tuple[Message, ...]
    has_more: bool


@attrs.frozen
class NotificationPage:
    """A `notification:list` page, newest first, with the total unread count."""

    notifications: tuple[Notification, ...]
    unread_count: int
    has_more: bool


@attrs.frozen
class MessageDeleted:
    """The `message:deleted` event."""

    room_id: str
    message_id: str
    seq: int


@attrs.frozen
class MembersChanged:
    """The `room:members` event: membership changes of a room (coalesced)."""

    room_id: str
    joined: tuple[str, ...]
    left: tuple[str, ...]


@attrs.frozen
class PresenceDiff:
    """The `presence:diff` event: users of a room coming online or going offline."""

    room_id: str
    joins: tuple[str, ...]
    leaves: tuple[str, ...]


@attrs.frozen
class Typing:
    """The `typing` event."""

    room_id: str
    user_id: str
    typing: bool

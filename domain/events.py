"""Domain events: what happened, published through the `EventPublisher` port.

The application layer turns each into wire events with targets; the core never knows
event names, rooms of the transport or payload shapes.
"""

from __future__ import annotations

import attrs

from domain.model import ChatMessage, MessageId, Notification, RoomId, UserId


@attrs.frozen
class MessagePosted:
    """A new message was stored in a room."""

    message: ChatMessage


@attrs.frozen
class MessageEdited:
    """A message's text was changed by its author."""

    message: ChatMessage


@attrs.frozen
class MessageDeleted:
    """A message became a tombstone."""

    room_id: RoomId
    message_id: MessageId
    seq: int


@attrs.frozen
class MembershipChanged:
    """A user became (`joined`) or stopped being a member of a room."""

    room_id: RoomId
    user_id: UserId
    joined: bool


@attrs.frozen
class PresenceChanged:
    """A user's first chat connection appeared (`online`) or the last one went."""

    user_id: UserId
    online: bool
    room_ids: tuple[RoomId, ...]


@attrs.frozen
class TypingChanged:
    """A member started or stopped typing in a room; not stored, not echoed to the user."""

    room_id: RoomId
    user_id: UserId
    typing: bool


@attrs.frozen
class NotificationCreated:
    """A notification was stored for a user."""

    notification: Notification


@attrs.frozen
class UnreadCountChanged:
    """A user's unread notification count may have changed."""

    user_id: UserId
    unread_count: int


DomainEvent = (
    MessagePosted
    | MessageEdited
    | MessageDeleted
    | MembershipChanged
    | PresenceChanged
    | TypingChanged
    | NotificationCreated
    | UnreadCountChanged
)

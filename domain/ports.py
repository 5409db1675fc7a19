"""Ports: the interfaces the core needs from the outside world, one capability each.

Adapters in `adapters/` implement them (memory, Redis, socket.io, JWT, Prometheus).
Every store port has one contract suite in `tests/contract/` that each adapter passes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from domain.events import DomainEvent
from domain.model import (
    AppendResult,
    ChatMessage,
    Connection,
    ConnectionChange,
    HistoryPage,
    Identity,
    MessageId,
    NewMessage,
    Notification,
    PresenceEntry,
    Room,
    RoomId,
    Sid,
    UserId,
)


@runtime_checkable
class Clock(Protocol):
    """Tells the current time, timezone-aware UTC."""

    def now(self) -> datetime: ...


@runtime_checkable
class IdGenerator(Protocol):
    """Makes new opaque, unique ids that sort by creation time."""

    def new_id(self) -> str: ...


@runtime_checkable
class ActiveUsersStore(Protocol):
    """The connection registry (the seed plan's ActiveUsersStore).

    Holds every live connection of every user on every namespace, decides the user-level
    transitions (first connection appears, last one goes) atomically, and remembers when a
    user was last seen. The user-level view (`is_online`, `presence`, `online_users`) is the
    seed's add/remove/get/get_all/is_online.
    """

    async def add_connection(
        self, connection: Connection, expires_at: datetime | None = None
    ) -> ConnectionChange:
        """Register a connection; `user_online_changed` if it is the user's first there.

        With `expires_at`, the connection goes away at that time unless a heartbeat renews it
        (its instance died); without, it lives until removed."""
        ...

    async def remove_connection(self, sid: Sid, at: datetime) -> ConnectionChange | None:
        """Remove a connection (None if unknown); records last_seen when the last one goes."""
        ...

    async def user_connections(self, user_id: UserId) -> list[Connection]:
        """Every live connection of a user, on every namespace and instance."""
        ...

    async def all_connections(self) -> list[Connection]:
        """Every live connection."""
        ...

    async def is_online(self, user_id: UserId, namespace: str) -> bool:
        """Whether the user has at least one live connection on the namespace."""
        ...

    async def presence(self, user_ids: Sequence[UserId], namespace: str) -> list[PresenceEntry]:
        """Presence entries of these users on the namespace, in the order asked."""
        ...

    async def online_users(self, namespace: str) -> list[UserId]:
        """Users with at least one live connection on the namespace."""
        ...

    async def online_among(self, user_ids: Sequence[UserId], namespace: str) -> list[UserId]:
        """Those of these users who are online on the namespace, in the order given
        (one cheap query however many are asked: a room's online members)."""
        ...

    async def online_count(self, namespace: str) -> int:
        """How many users have at least one live connection on the namespace."""
        ...

    async def heartbeat(
        self, connections: Sequence[Connection], expires_at: datetime
    ) -> list[ConnectionChange]:
        """Renew these live connections until `expires_at`; any that the store lost (it
        restarted empty, or swept them) is registered again, and the changes of those
        re-registrations are returned (so presence heals without clients reconnecting)."""
        ...

    async def sweep_expired(self, now: datetime) -> list[ConnectionChange]:
        """Remove every connection whose expiry has passed; each removal is returned once,
        to one caller, however many instances sweep at the same time."""
        ...

    async def next_expiry(self) -> datetime | None:
        """The earliest expiry of any connection, or None."""
        ...


@runtime_checkable
class RoomRepository(Protocol):
    """Rooms and their stored membership."""

    async def create(self, room: Room, members: Iterable[UserId]) -> Room:
        """Store a new room with its first members; returns it with `member_count`."""
        ...

    async def get(self, room_id: RoomId) -> Room | None:
        """The room, or None."""
        ...

    async def list_visible(self, user_id: UserId) -> list[Room]:
        """Public rooms and the private rooms the user is a member of, oldest first."""
        ...

    async def add_member(self, room_id: RoomId, user_id: UserId) -> bool:
        """Make the user a member; False if they already were."""
        ...

    async def remove_member(self, room_id: RoomId, user_id: UserId) -> bool:
        """End a membership; False if there was none."""
        ...

    async def is_member(self, room_id: RoomId, user_id: UserId) -> bool:
        """Whether the user is a member of the room."""
        ...

    async def members(self, room_id: RoomId) -> list[UserId]:
        """The room's members."""
        ...

    async def rooms_of(self, user_id: UserId) -> list[RoomId]:
        """The rooms the user is a member of."""
        ...


@runtime_checkable
class MessageStore(Protocol):
    """Messages per room with gap-free seq, idempotent appends and tombstones."""

    async def append(self, new: NewMessage) -> AppendResult:
        """Store with the room's next seq, or return the message already stored under
        `(room_id, author_id, client_msg_id)` with `created=False`; atomic either way."""
        ...

    async def get(self, room_id: RoomId, message_id: MessageId) -> ChatMessage | None:
        """One message, or None."""
        ...

    async def edit(
        self, room_id: RoomId, message_id: MessageId, text: str, at: datetime
    ) -> ChatMessage | None:
        """Replace the text and set `edited_at`; None if missing or deleted."""
        ...

    async def tombstone(
        self, room_id: RoomId, message_id: MessageId, at: datetime
    ) -> ChatMessage | None:
        """Empty the text and mark deleted (seq is kept); None if missing."""
        ...

    async def history(
        self,
        room_id: RoomId,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int,
    ) -> HistoryPage:
        """Ascending messages: the first `limit` after `after_seq`, else the last `limit`
        before `before_seq` (or the end)."""
        ...

    async def last_seq(self, room_id: RoomId) -> int:
        """The room's highest seq, 0 for an empty room."""
        ...


@runtime_checkable
class NotificationStore(Protocol):
    """Notifications per user, newest first, with read state and an unread count."""

    async def add(self, notifications: Sequence[Notification]) -> dict[UserId, int]:
        """Store new notifications; returns each affected user's unread count after."""
        ...

    async def page(
        self, user_id: UserId, *, unread_only: bool, before: str | None, limit: int
    ) -> tuple[list[Notification], bool]:
        """The user's notifications newest first, older than `before` (an id of theirs),
        and whether more exist; an unknown `before` gives an empty page."""
        ...

    async def mark_read(self, user_id: UserId, ids: Sequence[str], at: datetime) -> int:
        """Mark these of the user's notifications read (others' ids are ignored);
        returns the unread count after."""
        ...

    async def mark_all_read(self, user_id: UserId, at: datetime) -> int:
        """Mark every notification of the user read; returns the unread count (0)."""
        ...

    async def unread_count(self, user_id: UserId) -> int:
        """How many of the user's notifications are unread."""
        ...


@runtime_checkable
class MentionNotifier(Protocol):
    """Told of each new chat message, to notify the members it mentions."""

    async def notify_mentions(self, message: ChatMessage, members: Sequence[UserId]) -> None: ...


@runtime_checkable
class EventPublisher(Protocol):
    """Delivers domain events to whoever must hear of them (clients, other instances)."""

    async def publish(self, event: DomainEvent) -> None: ...


@runtime_checkable
class TokenVerifier(Protocol):
    """Verifies a client token; raises `AuthRefused` subclasses."""

    async def verify(self, token: str) -> Identity: ...


@runtime_checkable
class MetricsCollector(Protocol):
    """Counts what operators watch (the seed plan's MetricsCollector)."""

    def increment_connections(self, namespace: str, delta: int) -> None:
        """Add `delta` (+1 or -1) to the live connections of a namespace."""
        ...

    def increment_messages(self, direction: str, count: int = 1) -> None:
        """Count chat messages `sent` (stored) or `delivered` (to sockets)."""
        ...

    def record_response_time(self, namespace: str, event: str, seconds: float) -> None:
        """Observe how long one command took."""
        ...

    def record_command(self, namespace: str, event: str, outcome: str) -> None:
        """Count one command with its outcome (`ok` or an error code)."""
        ...

    def record_error(self, code: str) -> None:
        """Count one error by its wire code."""
        ...

    def record_rate_limited(self, event: str) -> None:
        """Count one command refused by a rate limit."""
        ...

    def record_slow_consumer_disconnect(self) -> None:
        """Count one connection closed because its unsent output grew past the bound."""
        ...

    def set_online_users(self, count: int) -> None:
        """Set the number of users online in the whole cluster."""
        ...


@runtime_checkable
class RateLimiter(Protocol):
    """Decides whether one more hit of a key fits its limit."""

    async def hit(self, limit_name: str, key: str) -> int | None:
        """Record one hit; None if allowed, else milliseconds until a retry may succeed."""
        ...

"""Test doubles with state: a recording publisher, a settable clock, sequential ids, and
`build_domain`, which wires the memory adapters to the domain services."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import attrs

from adapters.memory import (
    MemoryActiveUsersStore,
    MemoryMessageStore,
    MemoryNotificationStore,
    MemoryRoomRepository,
)
from domain.events import DomainEvent, PresenceChanged
from domain.model import UserId
from domain.ports import (
    ActiveUsersStore,
    Clock,
    IdGenerator,
    MessageStore,
    NotificationStore,
    RoomRepository,
)
from domain.services import (
    ChatMessageService,
    ChatRoomService,
    ConnectionManager,
    NotificationService,
    PresenceService,
)

E = TypeVar("E")

EPOCH = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
"""Where every `FixedClock` starts unless told otherwise."""


@attrs.define
class RecordingEventPublisher:
    """An `EventPublisher` that keeps every event it is given, in order."""

    events: list[DomainEvent] = attrs.Factory(list)

    async def publish(self, event: DomainEvent) -> None:
        """Record the event."""
        self.events.append(event)

    def of_type(self, cls: type[E]) -> list[E]:
        """The recorded events of one class, in order."""
        return [event for event in self.events if isinstance(event, cls)]

    def presence_of(self, user_id: UserId) -> list[PresenceChanged]:
        """The `PresenceChanged` events of one user, in order."""
        return [e for e in self.of_type(PresenceChanged) if e.user_id == user_id]

    def clear(self) -> None:
        """Forget what was recorded so far."""
        self.events.clear()


def _require_aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() != timedelta(0):
        raise ValueError(f"the clock tells aware UTC times only, not {value!r}")
    return value


@attrs.define
class FixedClock:
    """A `Clock` that stands still until a test sets or advances it (aware UTC)."""

    current: datetime = attrs.field(default=EPOCH, converter=_require_aware_utc)

    def now(self) -> datetime:
        """The time the test set."""
        return self.current

    def set(self, value: datetime) -> None:
        """Move to this (aware UTC) time."""
        self.current = _require_aware_utc(value)

    def advance(self, seconds: float = 1.0) -> datetime:
        """Move forward by `seconds` and return the new time."""
        self.current = self.current + timedelta(seconds=seconds)
        return self.current


@attrs.define
class SequentialIds:
    """An `IdGenerator` of `prefix` + a zero-padded counter: unique and creation-ordered."""

    prefix: str = "id-"
    _counter: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1))

    def new_id(self) -> str:
        """The next id."""
        return f"{self.prefix}{next(self._counter):08d}"


@attrs.frozen
class Domain:
    """The domain services wired on one set of stores, with the fakes they were given."""

    clock: FixedClock
    ids: IdGenerator
    events: RecordingEventPublisher
    active_users: ActiveUsersStore
    room_repository: RoomRepository
    message_store: MessageStore
    notification_store: NotificationStore
    connections: ConnectionManager
    presence: PresenceService
    rooms: ChatRoomService
    notifications: NotificationService
    messages: ChatMessageService


def build_domain(
    *,
    clock: FixedClock | None = None,
    ids: IdGenerator | None = None,
    active_users: ActiveUsersStore | None = None,
    room_repository: RoomRepository | None = None,
    message_store: MessageStore | None = None,
    notification_store: NotificationStore | None = None,
    instance_id: str = "instance-a",
) -> Domain:
    """Wire the services as the composition root does (mentions go to the notification
    service), on memory stores unless given others."""
    the_clock = clock if clock is not None else FixedClock()
    the_ids: IdGenerator = ids if ids is not None else SequentialIds()
    events = RecordingEventPublisher()
    store: ActiveUsersStore = active_users if active_users is not None else MemoryActiveUsersStore()
    rooms_repo: RoomRepository = (
        room_repository if room_repository is not None else MemoryRoomRepository()
    )
    messages_store: MessageStore = (
        message_store if message_store is not None else MemoryMessageStore()
    )
    notes_store: NotificationStore = (
        notification_store if notification_store is not None else MemoryNotificationStore()
    )
    clock_port: Clock = the_clock
    connections = ConnectionManager(store, clock_port, instance_id=instance_id)
    presence = PresenceService(connections, store, rooms_repo, events)
    rooms = ChatRoomService(rooms_repo, messages_store, presence, events, clock_port, the_ids)
    notifications = NotificationService(notes_store, events, clock_port, the_ids)
    messages = ChatMessageService(
        messages_store, rooms, events, clock_port, the_ids, mentions=notifications
    )
    return Domain(
        clock=the_clock,
        ids=the_ids,
        events=events,
        active_users=store,
        room_repository=rooms_repo,
        message_store=messages_store,
        notification_store=notes_store,
        connections=connections,
        presence=presence,
        rooms=rooms,
        notifications=notifications,
        messages=messages,
    )

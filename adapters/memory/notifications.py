"""Notifications in process memory: a list per user (oldest first) and an unread count."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime

import attrs

from domain.model import Notification, UserId


@attrs.frozen
class NotificationsState:
    """A copy of a `MemoryNotificationStore`: each user's notifications, oldest first."""

    logs: Mapping[UserId, tuple[Notification, ...]]


class MemoryNotificationStore:
    """Per-user logs with an id index; the unread count is kept, not recounted."""

    def __init__(self) -> None:
        self._logs: dict[UserId, list[Notification]] = defaultdict(list)
        self._position: dict[str, tuple[UserId, int]] = {}
        self._unread: dict[UserId, int] = defaultdict(int)

    async def add(self, notifications: Sequence[Notification]) -> dict[UserId, int]:
        """Append each to its user's log; returns the unread counts after."""
        for notification in notifications:
            log = self._logs[notification.user_id]
            self._position[notification.id] = (notification.user_id, len(log))
            log.append(notification)
            if notification.read_at is None:
                self._unread[notification.user_id] += 1
        return {n.user_id: self._unread[n.user_id] for n in notifications}

    async def page(
        self, user_id: UserId, *, unread_only: bool, before: str | None, limit: int
    ) -> tuple[list[Notification], bool]:
        """Newest first, older than `before`; an unknown or foreign `before` gives nothing."""
        log = self._logs.get(user_id, [])
        end = len(log)
        if before is not None:
            owner, index = self._position.get(before, ("", -1))
            if owner != user_id:
                return [], False
            end = index
        items: list[Notification] = []
        for index in range(end - 1, -1, -1):
            notification = log[index]
            if unread_only and notification.read_at is not None:
                continue
            if len(items) == limit:
                return items, True
            items.append(notification)
        return items, False

    async def mark_read(self, user_id: UserId, ids: Sequence[str], at: datetime) -> int:
        """Mark the user's own notifications among `ids` read."""
        log = self._logs.get(user_id, [])
        for notification_id in ids:
            owner, index = self._position.get(notification_id, ("", -1))
            if owner == user_id and log[index].read_at is None:
                log[index] = attrs.evolve(log[index], read_at=at)
                self._unread[user_id] -= 1
        return self._unread.get(user_id, 0)

    async def mark_all_read(self, user_id: UserId, at: datetime) -> int:
        """Mark all of the user's notifications read."""
        log = self._logs.get(user_id, [])
        for index, notification in enumerate(log):
            if notification.read_at is None:
                log[index] = attrs.evolve(notification, read_at=at)
        if user_id in self._unread:
            self._unread[user_id] = 0
        return 0

    async def unread_count(self, user_id: UserId) -> int:
        """The user's unread count."""
        return self._unread.get(user_id, 0)

    def export_state(self) -> NotificationsState:
        """A copy of every user's non-empty log (taken without awaiting: a consistent cut)."""
        return NotificationsState(
            logs={user_id: tuple(log) for user_id, log in self._logs.items() if log}
        )

    def import_state(self, state: NotificationsState) -> None:
        """Replace every notification with `state`; positions and unread counts are rebuilt."""
        self._logs = defaultdict(list)
        self._position = {}
        self._unread = defaultdict(int)
        for user_id, log in state.logs.items():
            self._logs[user_id] = list(log)
            for index, notification in enumerate(log):
                self._position[notification.id] = (user_id, index)
            self._unread[user_id] = sum(1 for n in log if n.read_at is None)

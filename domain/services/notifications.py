"""Notifications: stored per user, delivered to every device, read state and unread count."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from domain.events import NotificationCreated, UnreadCountChanged
from domain.json_types import JsonObject
from domain.model import ChatMessage, Notification, NotificationPage, UserId
from domain.ports import Clock, EventPublisher, IdGenerator, NotificationStore

MENTION_KIND = "mention"
_YIELD_EVERY = 100


class NotificationService:
    """Creates, lists and marks notifications; a user only ever sees their own."""

    def __init__(
        self, store: NotificationStore, events: EventPublisher, clock: Clock, ids: IdGenerator
    ) -> None:
        self._store = store
        self._events = events
        self._clock = clock
        self._ids = ids

    async def notify(
        self,
        user_ids: Sequence[UserId],
        kind: str,
        title: str,
        body: str = "",
        data: JsonObject | None = None,
    ) -> list[Notification]:
        """Store one notification per distinct user, then deliver each to every device."""
        now = self._clock.now()
        created = [
            Notification(
                id=self._ids.new_id(),
                user_id=user_id,
                kind=kind,
                title=title,
                body=body,
                data=dict(data or {}),
                created_at=now,
            )
            for user_id in dict.fromkeys(user_ids)
        ]
        if not created:
            return []
        await self._store.add(created)
        for index, notification in enumerate(created, start=1):
            await self._events.publish(NotificationCreated(notification=notification))
            # read the count right before announcing it: a mark_read that landed while
            # earlier events went out must not be overwritten by a stale count
            count = await self._store.unread_count(notification.user_id)
            await self._events.publish(
                UnreadCountChanged(user_id=notification.user_id, unread_count=count)
            )
            if index % _YIELD_EVERY == 0:
                await asyncio.sleep(0)  # a large push must not stall other clients
        return created

    async def notify_mentions(self, message: ChatMessage, members: Sequence[UserId]) -> None:
        """One `mention` notification per member mentioned in a new message (not the author)."""
        mentioned = find_mentions(message.text, members, exclude=message.author_id)
        if mentioned:
            await self.notify(
                mentioned,
                MENTION_KIND,
                f"{message.author_id} mentioned you",
                message.text[:280],
                {"room_id": message.room_id, "message_id": message.id, "seq": message.seq},
            )

    async def page(
        self,
        user_id: UserId,
        *,
        unread_only: bool = False,
        before: str | None = None,
        limit: int = 50,
    ) -> NotificationPage:
        """The user's notifications, newest first, with their unread count."""
        items, has_more = await self._store.page(
            user_id, unread_only=unread_only, before=before, limit=limit
        )
        unread = await self._store.unread_count(user_id)
        return NotificationPage(notifications=tuple(items), unread_count=unread, has_more=has_more)

    async def mark_read(self, user_id: UserId, ids: Sequence[str]) -> int:
        """Mark some of the user's notifications read; ids of others' are ignored."""
        count = await self._store.mark_read(user_id, ids, self._clock.now())
        await self._events.publish(UnreadCountChanged(user_id=user_id, unread_count=count))
        return count

    async def mark_all_read(self, user_id: UserId) -> int:
        """Mark all of the user's notifications read."""
        count = await self._store.mark_all_read(user_id, self._clock.now())
        await self._events.publish(UnreadCountChanged(user_id=user_id, unread_count=count))
        return count

    async def unread_count(self, user_id: UserId) -> int:
        """The user's unread count."""
        return await self._store.unread_count(user_id)


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


def find_mentions(
    text: str, members: Sequence[UserId], exclude: UserId | None = None
) -> list[UserId]:
    """Members named as `@<user_id>` not followed by a letter, digit or `_`, once each."""
    if "@" not in text:
        return []
    found: list[UserId] = []
    candidates = [m for m in members if m and m != exclude]
    at = text.find("@")
    while at != -1 and candidates:
        for member in candidates:
            end = at + 1 + len(member)
            if text.startswith(member, at + 1) and (end == len(text) or not _is_word(text[end])):
                found.append(member)
        candidates = [m for m in candidates if m not in found]
        at = text.find("@", at + 1)
    return found

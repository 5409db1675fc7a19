"""Chat messages: send with gap-free seq and idempotency, edit, delete, history, typing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from domain.errors import Conflict, Forbidden, NotFound
from domain.events import MessageDeleted, MessageEdited, MessagePosted, TypingChanged
from domain.model import ChatMessage, HistoryPage, MessageId, NewMessage, RoomId, UserId
from domain.ports import Clock, EventPublisher, IdGenerator, MentionNotifier, MessageStore
from domain.services.rooms import ChatRoomService

DEFAULT_HISTORY_LIMIT = 50


class KeyedLocks:
    """One asyncio lock per key, existing only while someone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold the key's lock for the duration of the block."""
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class ChatMessageService:
    """Rules of messages in rooms; only members post, only authors edit."""

    def __init__(
        self,
        messages: MessageStore,
        rooms: ChatRoomService,
        events: EventPublisher,
        clock: Clock,
        ids: IdGenerator,
        mentions: MentionNotifier | None = None,
    ) -> None:
        self._messages = messages
        self._mentions = mentions
        self._room_order = KeyedLocks()
        self._rooms = rooms
        self._events = events
        self._clock = clock
        self._ids = ids

    async def post(
        self, author_id: UserId, room_id: RoomId, text: str, client_msg_id: str
    ) -> ChatMessage:
        """Store a message (once per `client_msg_id`) and broadcast it if it is new."""
        await self._rooms.require_member(room_id, author_id)
        return await self.post_unchecked(author_id, room_id, text, client_msg_id)

    async def post_unchecked(
        self, author_id: UserId, room_id: RoomId, text: str, client_msg_id: str
    ) -> ChatMessage:
        """Store and broadcast without the membership rule (system and bot messages)."""
        async with self._room_order.hold(room_id):
            # one room's messages are stored and announced one after the other, so this
            # instance broadcasts them in seq order even when the store answers out of order
            result = await self._messages.append(
                NewMessage(
                    id=self._ids.new_id(),
                    room_id=room_id,
                    author_id=author_id,
                    text=text,
                    client_msg_id=client_msg_id,
                    created_at=self._clock.now(),
                )
            )
            if result.created:
                await self._events.publish(MessagePosted(message=result.message))
        if result.created and self._mentions is not None and "@" in text:
            members = await self._rooms.members(room_id)
            await self._mentions.notify_mentions(result.message, members)
        return result.message

    async def edit(
        self, author_id: UserId, room_id: RoomId, message_id: MessageId, text: str
    ) -> ChatMessage:
        """Change the text of one's own message."""
        await self._rooms.require_member(room_id, author_id)
        message = await self._find(room_id, message_id)
        if message.author_id != author_id:
            raise Forbidden("only the author may edit a message")
        if message.deleted:
            raise Conflict("the message was deleted")
        edited = await self._messages.edit(room_id, message_id, text, self._clock.now())
        if edited is None:
            raise Conflict("the message was deleted")
        await self._events.publish(MessageEdited(message=edited))
        return edited

    async def delete(self, user_id: UserId, room_id: RoomId, message_id: MessageId) -> None:
        """Tombstone a message: its author or the room's owner may; seq stays gap-free."""
        room = await self._rooms.get_visible(room_id, user_id)
        if user_id != room.owner_id:
            await self._rooms.require_member(room_id, user_id)
        message = await self._find(room_id, message_id)
        if user_id not in (message.author_id, room.owner_id):
            raise Forbidden("only the author or the room owner may delete a message")
        if message.deleted:
            return
        deleted = await self._messages.tombstone(room_id, message_id, self._clock.now())
        if deleted is None:
            raise NotFound("message does not exist")
        await self._events.publish(
            MessageDeleted(room_id=room_id, message_id=message_id, seq=deleted.seq)
        )

    async def history(
        self,
        user_id: UserId,
        room_id: RoomId,
        *,
        before_seq: int | None = None,
        after_seq: int | None = None,
        limit: int = DEFAULT_HISTORY_LIMIT,
    ) -> HistoryPage:
        """A page of a room's messages in ascending seq; members only."""
        await self._rooms.require_member(room_id, user_id)
        return await self._messages.history(
            room_id, after_seq=after_seq, before_seq=before_seq, limit=limit
        )

    async def typing(self, user_id: UserId, room_id: RoomId, typing: bool) -> None:
        """Tell the room's other members that the user is (not) typing."""
        await self._rooms.require_member(room_id, user_id)
        await self._events.publish(TypingChanged(room_id=room_id, user_id=user_id, typing=typing))

    async def _find(self, room_id: RoomId, message_id: MessageId) -> ChatMessage:
        message = await self._messages.get(room_id, message_id)
        if message is None:
            raise NotFound(f"message {message_id!r} does not exist in this room")
        return message

"""User-level presence: who is online in chat, and when they were last seen."""

from __future__ import annotations

from collections.abc import Sequence

from domain.events import PresenceChanged
from domain.model import CHAT_NAMESPACE, ConnectionChange, PresenceEntry, RoomId, Sid, UserId
from domain.ports import ActiveUsersStore, EventPublisher, RoomRepository
from domain.services.connections import ConnectionManager


class PresenceService:
    """Turns chat connections into user-level joins and leaves (first appears, last goes)."""

    def __init__(
        self,
        connections: ConnectionManager,
        store: ActiveUsersStore,
        rooms: RoomRepository,
        events: EventPublisher,
    ) -> None:
        self._connections = connections
        self._store = store
        self._rooms = rooms
        self._events = events

    async def connect(self, user_id: UserId, sid: Sid) -> ConnectionChange:
        """Register a chat connection; announces the user online if it is their first."""
        change = await self._connections.register_connection(user_id, sid, CHAT_NAMESPACE)
        if change.user_online_changed:
            await self._announce(user_id, online=True)
        return change

    async def disconnect(self, user_id: UserId, sid: Sid) -> ConnectionChange | None:
        """Forget a chat connection; announces the user offline if it was their last."""
        change = await self._connections.unregister_connection(user_id, sid)
        if change is not None:
            await self.announce_expired(change)
        return change

    async def announce_expired(self, change: ConnectionChange) -> None:
        """Announce a leave if a removed (closed or expired) chat connection was the user's last."""
        if change.user_online_changed and change.connection.namespace == CHAT_NAMESPACE:
            await self._announce(change.connection.user_id, online=False)

    async def announce_reasserted(self, change: ConnectionChange) -> None:
        """Announce a join for a connection a heartbeat re-registered (the store had lost it)."""
        if change.user_online_changed and change.connection.namespace == CHAT_NAMESPACE:
            await self._announce(change.connection.user_id, online=True)

    async def presence_of(self, user_ids: Sequence[UserId]) -> list[PresenceEntry]:
        """Presence entries of these users, in the order asked (duplicates collapsed)."""
        unique = list(dict.fromkeys(user_ids))
        return await self._store.presence(unique, CHAT_NAMESPACE)

    async def online_members(
        self, room_id: RoomId, limit: int = 100
    ) -> tuple[list[PresenceEntry], int]:
        """Presence entries of the room's online members (at most `limit`) and their count."""
        members = await self._rooms.members(room_id)
        entries = [e for e in await self._store.presence(members, CHAT_NAMESPACE) if e.online]
        return entries[:limit], len(entries)

    async def _announce(self, user_id: UserId, *, online: bool) -> None:
        room_ids = tuple(await self._rooms.rooms_of(user_id))
        await self._events.publish(
            PresenceChanged(user_id=user_id, online=online, room_ids=room_ids)
        )

"""User-level presence: who is online in chat, and when they were last seen."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from domain.events import PresenceChanged
from domain.model import CHAT_NAMESPACE, ConnectionChange, PresenceEntry, RoomId, Sid, UserId
from domain.ports import ActiveUsersStore, EventPublisher, RoomRepository
from domain.services.connections import ConnectionManager

_OnlineMembers = tuple[list[PresenceEntry], int]


class PresenceService:
    """Turns chat connections into user-level joins and leaves (first appears, last goes)."""

    def __init__(
        self,
        connections: ConnectionManager,
        store: ActiveUsersStore,
        rooms: RoomRepository,
        events: EventPublisher,
        online_cache_s: float = 0.0,
    ) -> None:
        self._connections = connections
        self._store = store
        self._rooms = rooms
        self._events = events
        self._online_cache_s = online_cache_s
        self._online_cache: dict[RoomId, tuple[float, asyncio.Future[_OnlineMembers]]] = {}

    async def connect(
        self, user_id: UserId, sid: Sid
    ) -> tuple[ConnectionChange, tuple[RoomId, ...]]:
        """Register a chat connection, then read the user's rooms once: the user is announced
        online in them if this is their first connection, and they are the room channels the
        connection enters. Read after registering, so a membership that changes meanwhile is
        never missed: either it is stored before the read, or it finds this connection in
        the registry. (One store read for both: a round trip per handshake with Redis.)"""
        change = await self._connections.register_connection(user_id, sid, CHAT_NAMESPACE)
        room_ids = tuple(await self._rooms.rooms_of(user_id))
        if change.user_online_changed:
            await self._events.publish(
                PresenceChanged(user_id=user_id, online=True, room_ids=room_ids)
            )
        return change, room_ids

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
        """Presence entries of the room's online members (at most `limit`) and their count.

        With `online_cache_s`, one lookup per room serves every join within that time (a
        join storm into a big room costs one lookup per window, not one per join); the list
        is then at most that old, like the coalesced `presence:diff` that corrects it."""
        if self._online_cache_s <= 0:
            return await self._online_members(room_id, limit)
        now = time.monotonic()
        cached = self._online_cache.get(room_id)
        if cached is None or cached[0] <= now or cached[1].cancelled():
            future: asyncio.Future[_OnlineMembers] = asyncio.get_running_loop().create_future()
            self._online_cache[room_id] = (now + self._online_cache_s, future)
            if len(self._online_cache) > 10_000:
                self._online_cache = {k: v for k, v in self._online_cache.items() if v[0] > now}
            try:
                future.set_result(await self._online_members(room_id, limit))
            except BaseException as exc:
                self._online_cache.pop(room_id, None)
                future.set_exception(exc)
                future.exception()  # retrieved: waiters re-raise it, nobody else must
                raise
            return future.result()
        return await asyncio.shield(cached[1])

    async def _online_members(self, room_id: RoomId, limit: int) -> _OnlineMembers:
        members = await self._rooms.members(room_id)
        online = await self._store.online_among(members, CHAT_NAMESPACE)
        entries = await self._store.presence(online[:limit], CHAT_NAMESPACE)
        return [e for e in entries if e.online], len(online)

    async def _announce(self, user_id: UserId, *, online: bool) -> None:
        room_ids = tuple(await self._rooms.rooms_of(user_id))
        await self._events.publish(
            PresenceChanged(user_id=user_id, online=online, room_ids=room_ids)
        )

"""The `Broadcaster` port on python-socketio rooms (local, or every instance via its manager)."""

from __future__ import annotations

from collections.abc import Sequence

import socketio

from application.json_types import JsonObject
from domain.model import Sid, UserId
from domain.services.connections import ConnectionManager


class SocketIOBroadcaster:
    """Emits through an `AsyncServer`; always to a channel or a sid, never namespace-wide."""

    def __init__(self, sio: socketio.AsyncServer, connections: ConnectionManager) -> None:
        self._sio = sio
        self._connections = connections

    async def to_channel(
        self,
        namespace: str,
        channel: str,
        event: str,
        payload: JsonObject,
        skip_sids: Sequence[Sid] = (),
    ) -> None:
        """Emit to a room of the transport."""
        await self._sio.emit(
            event, payload, to=channel, namespace=namespace, skip_sid=list(skip_sids) or None
        )

    async def to_connection(
        self, namespace: str, sid: Sid, event: str, payload: JsonObject
    ) -> None:
        """Emit to one connection."""
        await self._sio.emit(event, payload, to=sid, namespace=namespace)

    async def _sids(self, namespace: str, user_id: UserId) -> list[Sid]:
        connections = await self._connections.get_user_connections(user_id)
        return [c.sid for c in connections if c.namespace == namespace]

    async def add_user_to_channel(self, namespace: str, user_id: UserId, channel: str) -> None:
        """Every connection of the user, on every instance, enters the channel (python-socketio
        forwards `enter_room` of a sid served elsewhere through its Redis manager)."""
        for sid in await self._sids(namespace, user_id):
            await self._sio.enter_room(sid, channel, namespace=namespace)

    async def remove_user_from_channel(self, namespace: str, user_id: UserId, channel: str) -> None:
        """Every connection of the user, on every instance, leaves the channel."""
        for sid in await self._sids(namespace, user_id):
            await self._sio.leave_room(sid, channel, namespace=namespace)

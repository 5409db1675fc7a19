"""The `Broadcaster` port on python-socketio rooms (local, or every instance via its manager)."""

from __future__ import annotations

from collections.abc import Sequence

import socketio

from application.contract import wire
from application.json_types import JsonObject
from domain.model import Sid, UserId


class SocketIOBroadcaster:
    """Emits through an `AsyncServer`; always to a channel or a sid, never namespace-wide."""

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self._sio = sio

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

    def _local_sids(self, namespace: str, user_id: UserId) -> list[Sid]:
        participants = self._sio.manager.get_participants(namespace, wire.user_channel(user_id))
        return [str(sid) for sid, _ in participants]

    async def add_user_to_channel(self, namespace: str, user_id: UserId, channel: str) -> None:
        """Every local connection of the user enters the channel."""
        for sid in self._local_sids(namespace, user_id):
            await self._sio.enter_room(sid, channel, namespace=namespace)

    async def remove_user_from_channel(self, namespace: str, user_id: UserId, channel: str) -> None:
        """Every local connection of the user leaves the channel."""
        for sid in self._local_sids(namespace, user_id):
            await self._sio.leave_room(sid, channel, namespace=namespace)

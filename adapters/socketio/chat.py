"""The /chat namespace: presence on connect and disconnect, room channels, chat commands."""

from __future__ import annotations

from adapters.socketio.base import BaseNamespace
from application.contract import wire
from application.handshake import HandshakeGuard
from application.pipeline import CommandPipeline
from domain.model import CHAT_NAMESPACE, Identity, Sid, UserId
from domain.ports import MetricsCollector, TokenVerifier
from domain.services import ConnectionManager, PresenceService


class ChatNamespace(BaseNamespace):
    """/chat: a connection enters its user's room channels and counts for presence."""

    def __init__(
        self,
        *,
        verifier: TokenVerifier,
        connections: ConnectionManager,
        pipeline: CommandPipeline,
        metrics: MetricsCollector,
        presence: PresenceService,
        guard: HandshakeGuard | None = None,
    ) -> None:
        super().__init__(
            CHAT_NAMESPACE,
            verifier=verifier,
            connections=connections,
            pipeline=pipeline,
            metrics=metrics,
            guard=guard,
        )
        self.presence = presence

    async def register(self, sid: Sid, identity: Identity) -> None:
        """Count the connection for presence, then enter the user's room channels (read
        after registering: see `PresenceService.connect`)."""
        _, room_ids = await self.presence.connect(identity.user_id, sid)
        for room_id in room_ids:
            await self.enter_room(sid, wire.room_channel(room_id))

    async def unregister(self, sid: Sid, user_id: UserId) -> bool:
        """Stop counting the connection; the user's last one announces the leave."""
        return await self.presence.disconnect(user_id, sid) is not None

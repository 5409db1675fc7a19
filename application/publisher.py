"""Turns domain events into wire events of contract v1 and sends them out."""

from __future__ import annotations

from application.coalescer import RoomDiffCoalescer
from application.contract import wire
from application.json_types import JsonObject
from application.ports import Broadcaster
from domain.events import (
    DomainEvent,
    MembershipChanged,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    NotificationCreated,
    PresenceChanged,
    TypingChanged,
    UnreadCountChanged,
)
from domain.model import CHAT_NAMESPACE, NOTIFICATIONS_NAMESPACE, RoomId, UserId
from domain.ports import MetricsCollector
from domain.services.connections import ConnectionManager


class WireEventPublisher:
    """The `EventPublisher` of the running server: domain events -> Socket.IO events."""

    def __init__(
        self,
        broadcaster: Broadcaster,
        connections: ConnectionManager,
        metrics: MetricsCollector,
        coalesce_window_s: float,
    ) -> None:
        self._broadcaster = broadcaster
        self._connections = connections
        self._metrics = metrics
        self.coalescer = RoomDiffCoalescer(coalesce_window_s, self._to_room)

    async def publish(self, event: DomainEvent) -> None:
        """Deliver one domain event to the clients that must hear of it."""
        match event:
            case MessagePosted(message=message):
                await self._to_room(message.room_id, "message:new", wire.message_json(message))
                self._metrics.increment_messages("sent")
            case MessageEdited(message=message):
                await self._to_room(message.room_id, "message:updated", wire.message_json(message))
            case MessageDeleted(room_id=room_id, message_id=message_id, seq=seq):
                payload: JsonObject = {"room_id": room_id, "message_id": message_id, "seq": seq}
                await self._to_room(room_id, "message:deleted", payload)
            case MembershipChanged(room_id=room_id, user_id=user_id, joined=joined):
                channel = wire.room_channel(room_id)
                if joined:
                    await self._broadcaster.add_user_to_channel(CHAT_NAMESPACE, user_id, channel)
                else:
                    await self._broadcaster.remove_user_from_channel(
                        CHAT_NAMESPACE, user_id, channel
                    )
                self.coalescer.membership(room_id, user_id, joined)
                if await self._connections.is_user_online(user_id, CHAT_NAMESPACE):
                    # an online user entering (leaving) a room appears in (vanishes from) the
                    # room's presence too, so every member's online list stays right
                    self.coalescer.presence(room_id, user_id, joined)
            case PresenceChanged(user_id=user_id, online=online, room_ids=room_ids):
                for room_id in room_ids:
                    self.coalescer.presence(room_id, user_id, online)
            case TypingChanged(room_id=room_id, user_id=user_id, typing=typing):
                own = [
                    c.sid
                    for c in await self._connections.get_user_connections(user_id)
                    if c.namespace == CHAT_NAMESPACE
                ]
                payload = {"room_id": room_id, "user_id": user_id, "typing": typing}
                await self._broadcaster.to_channel(
                    CHAT_NAMESPACE, wire.room_channel(room_id), "typing", payload, skip_sids=own
                )

            case NotificationCreated(notification=notification):
                await self._to_user(
                    notification.user_id, "notification:new", wire.notification_json(notification)
                )
            case UnreadCountChanged(user_id=user_id, unread_count=count):
                await self._to_user(user_id, "notification:unread_count", {"unread_count": count})

    async def _to_user(self, user_id: UserId, event: str, payload: JsonObject) -> None:
        await self._broadcaster.to_channel(
            NOTIFICATIONS_NAMESPACE, wire.user_channel(user_id), event, payload
        )

    async def _to_room(self, room_id: RoomId, event: str, payload: JsonObject) -> None:
        await self._broadcaster.to_channel(
            CHAT_NAMESPACE, wire.room_channel(room_id), event, payload
        )

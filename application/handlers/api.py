"""The server HTTP API of contract v1, transport-neutral: validated payload in, JSON out."""

from __future__ import annotations

from application.contract import notifications as payloads
from application.contract import wire
from application.contract.validation import parse
from application.json_types import JsonObject
from domain.errors import NotFound, ValidationFailed
from domain.ports import IdGenerator, RoomRepository
from domain.services import ChatMessageService, NotificationService, PresenceService

MAX_PRESENCE_USERS = 100


class ServerApi:
    """What backends may do with an API key: push notifications, post messages, read presence."""

    def __init__(
        self,
        notifications: NotificationService,
        messages: ChatMessageService,
        presence: PresenceService,
        rooms: RoomRepository,
        ids: IdGenerator,
    ) -> None:
        self._notifications = notifications
        self._messages = messages
        self._presence = presence
        self._rooms = rooms
        self._ids = ids

    async def push_notifications(self, body: object) -> JsonObject:
        """Store and deliver one notification per listed user; returns their ids."""
        p = parse(payloads.NotificationPush, body)
        created = await self._notifications.notify(
            p.user_ids, p.kind, p.title, p.body, wire.to_json_object(p.data)
        )
        return {"ids": [n.id for n in created]}

    async def post_room_message(self, room_id: str, body: object) -> JsonObject:
        """Post a system or bot message to a room, broadcast like any message."""
        p = parse(payloads.SystemMessage, body)
        if await self._rooms.get(room_id) is None:
            raise NotFound(f"room {room_id!r} does not exist")
        client_msg_id = p.client_msg_id or f"api-{self._ids.new_id()}"
        message = await self._messages.post_unchecked(p.author_id, room_id, p.text, client_msg_id)
        return {"message": wire.message_json(message)}

    async def presence(self, user_ids_param: str) -> JsonObject:
        """Presence entries of a comma-separated list of user ids."""
        user_ids = [u for u in (s.strip() for s in user_ids_param.split(",")) if u]
        if not 1 <= len(user_ids) <= MAX_PRESENCE_USERS:
            raise ValidationFailed(
                "user_ids must list 1 to 100 comma-separated ids",
                details={"fields": [{"path": "$.user_ids", "message": "must have 1 to 100 ids"}]},
            )
        too_long = [i for i, u in enumerate(user_ids) if len(u) > 128]
        if too_long:
            raise ValidationFailed(
                "user ids have at most 128 characters",
                details={
                    "fields": [
                        {"path": f"$.user_ids[{i}]", "message": "must have 1 to 128 characters"}
                        for i in too_long
                    ]
                },
            )
        entries = await self._presence.presence_of(user_ids)
        return {"presence": [wire.presence_json(e) for e in entries]}

"""Handlers of the /chat commands of contract v1."""

from __future__ import annotations

from application.contract import chat as payloads
from application.contract import wire
from application.json_types import JsonObject
from application.pipeline import CommandContext, Handler, route
from domain.services import ChatMessageService, ChatRoomService, PresenceService


class ChatCommands:
    """One method per /chat command; each returns the ack's `data`."""

    def __init__(
        self, rooms: ChatRoomService, messages: ChatMessageService, presence: PresenceService
    ) -> None:
        self._rooms = rooms
        self._messages = messages
        self._presence = presence

    def routes(self) -> dict[str, Handler]:
        """Event name -> validated handler."""
        return {
            "room:create": route(payloads.RoomCreate, self.room_create),
            "room:list": route(payloads.RoomList, self.room_list),
            "room:join": route(payloads.RoomJoin, self.room_join),
            "room:leave": route(payloads.RoomLeave, self.room_leave),
            "room:invite": route(payloads.RoomInvite, self.room_invite),
            "message:send": route(payloads.MessageSend, self.message_send),
            "message:edit": route(payloads.MessageEdit, self.message_edit),
            "message:delete": route(payloads.MessageDelete, self.message_delete),
            "message:history": route(payloads.MessageHistory, self.message_history),
            "typing": route(payloads.Typing, self.typing),
            "presence:get": route(payloads.PresenceGet, self.presence_get),
        }

    async def room_create(self, ctx: CommandContext, p: payloads.RoomCreate) -> JsonObject:
        """Create a room owned by the caller."""
        room = await self._rooms.create(ctx.user_id, p.name, p.visibility, p.members)
        return {"room": wire.room_json(room)}

    async def room_list(self, ctx: CommandContext, p: payloads.RoomList) -> JsonObject:
        """Rooms the caller can see."""
        rooms = await self._rooms.list_rooms(ctx.user_id)
        return {"rooms": [wire.room_json(r) for r in rooms]}

    async def room_join(self, ctx: CommandContext, p: payloads.RoomJoin) -> JsonObject:
        """Join a room and catch up on what was missed."""
        return wire.join_json(await self._rooms.join(ctx.user_id, p.room_id, p.since_seq))

    async def room_leave(self, ctx: CommandContext, p: payloads.RoomLeave) -> JsonObject:
        """Leave a room."""
        await self._rooms.leave(ctx.user_id, p.room_id)
        return {}

    async def room_invite(self, ctx: CommandContext, p: payloads.RoomInvite) -> JsonObject:
        """Make another user a member."""
        await self._rooms.invite(ctx.user_id, p.room_id, p.user_id)
        return {}

    async def message_send(self, ctx: CommandContext, p: payloads.MessageSend) -> JsonObject:
        """Post a message (idempotent on client_msg_id)."""
        message = await self._messages.post(ctx.user_id, p.room_id, p.text, p.client_msg_id)
        return {"message": wire.message_json(message)}

    async def message_edit(self, ctx: CommandContext, p: payloads.MessageEdit) -> JsonObject:
        """Edit one's own message."""
        message = await self._messages.edit(ctx.user_id, p.room_id, p.message_id, p.text)
        return {"message": wire.message_json(message)}

    async def message_delete(self, ctx: CommandContext, p: payloads.MessageDelete) -> JsonObject:
        """Delete a message, leaving a tombstone."""
        await self._messages.delete(ctx.user_id, p.room_id, p.message_id)
        return {}

    async def message_history(self, ctx: CommandContext, p: payloads.MessageHistory) -> JsonObject:
        """A page of history."""
        page = await self._messages.history(
            ctx.user_id, p.room_id, before_seq=p.before_seq, after_seq=p.after_seq, limit=p.limit
        )
        return {
            "messages": [wire.message_json(m) for m in page.messages],
            "has_more": page.has_more,
        }

    async def typing(self, ctx: CommandContext, p: payloads.Typing) -> JsonObject:
        """Tell the room's other members about typing."""
        await self._messages.typing(ctx.user_id, p.room_id, p.typing)
        return {}

    async def presence_get(self, ctx: CommandContext, p: payloads.PresenceGet) -> JsonObject:
        """Presence entries of the listed users."""
        entries = await self._presence.presence_of(p.user_ids)
        return {"presence": [wire.presence_json(e) for e in entries]}

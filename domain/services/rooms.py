"""Chat rooms: create, list, join, leave, invite; membership is stored per user."""

from __future__ import annotations

from collections.abc import Sequence

from domain.errors import Forbidden, NotFound
from domain.events import MembershipChanged
from domain.model import ChatMessage, JoinResult, Room, RoomId, UserId, Visibility
from domain.ports import Clock, EventPublisher, IdGenerator, MessageStore, RoomRepository
from domain.services.presence import PresenceService

MAX_MISSED = 500
MAX_ONLINE = 100


class ChatRoomService:
    """Rules of rooms and membership; a member stays one until they leave."""

    def __init__(
        self,
        rooms: RoomRepository,
        messages: MessageStore,
        presence: PresenceService,
        events: EventPublisher,
        clock: Clock,
        ids: IdGenerator,
    ) -> None:
        self._rooms = rooms
        self._messages = messages
        self._presence = presence
        self._events = events
        self._clock = clock
        self._ids = ids

    async def create(
        self,
        owner_id: UserId,
        name: str,
        visibility: Visibility = Visibility.PUBLIC,
        members: Sequence[UserId] = (),
    ) -> Room:
        """Create a room; the creator is its owner and a member, with the listed members."""
        room = Room(
            id=self._ids.new_id(),
            name=name,
            visibility=visibility,
            owner_id=owner_id,
            created_at=self._clock.now(),
        )
        everyone = list(dict.fromkeys([owner_id, *members]))
        created = await self._rooms.create(room, everyone)
        for user_id in everyone:
            await self._events.publish(
                MembershipChanged(room_id=room.id, user_id=user_id, joined=True)
            )
        return created

    async def list_rooms(self, user_id: UserId) -> list[Room]:
        """Public rooms and the private rooms the user is a member of."""
        return await self._rooms.list_visible(user_id)

    async def get_visible(self, room_id: RoomId, user_id: UserId) -> Room:
        """The room if it exists (`not_found`) and the user may see it (`forbidden`)."""
        room = await self._rooms.get(room_id)
        if room is None:
            raise NotFound(f"room {room_id!r} does not exist")
        if room.visibility is Visibility.PRIVATE and not await self._rooms.is_member(
            room_id, user_id
        ):
            raise Forbidden("this private room is for its members only")
        return room

    async def require_member(self, room_id: RoomId, user_id: UserId) -> Room:
        """The room if the user is a member; `not_found` or `forbidden` otherwise."""
        room = await self._rooms.get(room_id)
        if room is None:
            raise NotFound(f"room {room_id!r} does not exist")
        if not await self._rooms.is_member(room_id, user_id):
            raise Forbidden("only members of the room may do this")
        return room

    async def members(self, room_id: RoomId) -> list[UserId]:
        """The room's members."""
        return await self._rooms.members(room_id)

    async def join(
        self, user_id: UserId, room_id: RoomId, since_seq: int | None = None
    ) -> JoinResult:
        """Become a member (private rooms: members and invited users only) and catch up."""
        await self.get_visible(room_id, user_id)
        if await self._rooms.add_member(room_id, user_id):
            await self._events.publish(
                MembershipChanged(room_id=room_id, user_id=user_id, joined=True)
            )
        room = await self._rooms.get(room_id)
        if room is None:  # deleted meanwhile
            raise NotFound(f"room {room_id!r} does not exist")
        online, online_count = await self._presence.online_members(room_id, MAX_ONLINE)
        missed: tuple[ChatMessage, ...] = ()
        has_more = False
        if since_seq is not None:
            page = await self._messages.history(room_id, after_seq=since_seq, limit=MAX_MISSED)
            missed, has_more = page.messages, page.has_more
        return JoinResult(
            room=room,
            online=tuple(online),
            online_count=online_count,
            missed=missed,
            has_more=has_more,
        )

    async def leave(self, user_id: UserId, room_id: RoomId) -> None:
        """End the user's membership (a no-op if they were not a member)."""
        if await self._rooms.get(room_id) is None:
            raise NotFound(f"room {room_id!r} does not exist")
        if await self._rooms.remove_member(room_id, user_id):
            await self._events.publish(
                MembershipChanged(room_id=room_id, user_id=user_id, joined=False)
            )

    async def invite(self, inviter_id: UserId, room_id: RoomId, invitee_id: UserId) -> None:
        """A member makes another user a member of the room."""
        await self.require_member(room_id, inviter_id)
        if await self._rooms.add_member(room_id, invitee_id):
            await self._events.publish(
                MembershipChanged(room_id=room_id, user_id=invitee_id, joined=True)
            )

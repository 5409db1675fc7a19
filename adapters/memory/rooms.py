"""Rooms and membership in process memory."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

import attrs

from domain.model import Room, RoomId, UserId, Visibility


@attrs.frozen
class RoomsState:
    """A copy of a `MemoryRoomRepository`: its rooms and each room's non-empty member set."""

    rooms: tuple[Room, ...]
    members: Mapping[RoomId, frozenset[UserId]]


class MemoryRoomRepository:
    """Rooms by id with a member set per room and a room set per user."""

    def __init__(self) -> None:
        self._rooms: dict[RoomId, Room] = {}
        self._members: dict[RoomId, set[UserId]] = defaultdict(set)
        self._rooms_of: dict[UserId, set[RoomId]] = defaultdict(set)

    def _counted(self, room: Room) -> Room:
        return attrs.evolve(room, member_count=len(self._members.get(room.id, ())))

    async def create(self, room: Room, members: Iterable[UserId]) -> Room:
        """Store a new room with its first members."""
        self._rooms[room.id] = room
        for user_id in members:
            self._members[room.id].add(user_id)
            self._rooms_of[user_id].add(room.id)
        return self._counted(room)

    async def get(self, room_id: RoomId) -> Room | None:
        """The room, or None."""
        room = self._rooms.get(room_id)
        return None if room is None else self._counted(room)

    async def list_visible(self, user_id: UserId) -> list[Room]:
        """Public rooms and the user's private rooms, oldest first."""
        mine = self._rooms_of.get(user_id, set())
        visible = [
            room
            for room in self._rooms.values()
            if room.visibility is Visibility.PUBLIC or room.id in mine
        ]
        visible.sort(key=lambda r: (r.created_at, r.id))
        return [self._counted(room) for room in visible]

    async def add_member(self, room_id: RoomId, user_id: UserId) -> bool:
        """Make the user a member; False if already one or the room is gone."""
        if room_id not in self._rooms or user_id in self._members[room_id]:
            return False
        self._members[room_id].add(user_id)
        self._rooms_of[user_id].add(room_id)
        return True

    async def remove_member(self, room_id: RoomId, user_id: UserId) -> bool:
        """End a membership; False if there was none."""
        members = self._members.get(room_id)
        if members is None or user_id not in members:
            return False
        members.discard(user_id)
        self._rooms_of[user_id].discard(room_id)
        return True

    async def is_member(self, room_id: RoomId, user_id: UserId) -> bool:
        """Whether the user is a member."""
        return user_id in self._members.get(room_id, ())

    async def members(self, room_id: RoomId) -> list[UserId]:
        """The room's members, sorted."""
        return sorted(self._members.get(room_id, ()))

    async def rooms_of(self, user_id: UserId) -> list[RoomId]:
        """The user's rooms, sorted."""
        return sorted(self._rooms_of.get(user_id, ()))

    def export_state(self) -> RoomsState:
        """A copy of every room and membership (taken without awaiting: a consistent cut)."""
        return RoomsState(
            rooms=tuple(self._rooms.values()),
            members={room_id: frozenset(m) for room_id, m in self._members.items() if m},
        )

    def import_state(self, state: RoomsState) -> None:
        """Replace every room and membership with `state`."""
        self._rooms = {room.id: room for room in state.rooms}
        self._members = defaultdict(set)
        self._rooms_of = defaultdict(set)
        for room_id, members in state.members.items():
            self._members[room_id] = set(members)
            for user_id in members:
                self._rooms_of[user_id].add(room_id)

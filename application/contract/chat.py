"""Inbound payloads of the /chat namespace (contract v1), validated by cattrs."""

from __future__ import annotations

from typing import Annotated

import attrs

from application.contract.validation import Bounds, Length
from domain.model import Visibility

UserIdField = Annotated[str, Length(1, 128)]
IdField = Annotated[str, Length(1, 128)]
Seq = Annotated[int, Bounds(min=0)]


@attrs.frozen
class RoomCreate:
    """`room:create`: a new room; the creator becomes its owner."""

    name: Annotated[str, Length(1, 100)]
    visibility: Visibility = Visibility.PUBLIC
    members: Annotated[list[UserIdField], Length(0, 100)] = attrs.Factory(list)


@attrs.frozen
class RoomList:
    """`room:list`: no fields."""


@attrs.frozen
class RoomJoin:
    """`room:join`: become a member, optionally catching up after `since_seq`."""

    room_id: IdField
    since_seq: Seq | None = None


@attrs.frozen
class RoomLeave:
    """`room:leave`: end one's membership."""

    room_id: IdField


@attrs.frozen
class RoomInvite:
    """`room:invite`: make another user a member."""

    room_id: IdField
    user_id: UserIdField


@attrs.frozen
class MessageSend:
    """`message:send`: post a message; `client_msg_id` makes retries safe."""

    room_id: IdField
    text: Annotated[str, Length(1, 4000)]
    client_msg_id: Annotated[str, Length(1, 64)]


@attrs.frozen
class MessageEdit:
    """`message:edit`: change the text of one's own message."""

    room_id: IdField
    message_id: IdField
    text: Annotated[str, Length(1, 4000)]


@attrs.frozen
class MessageDelete:
    """`message:delete`: tombstone a message."""

    room_id: IdField
    message_id: IdField


@attrs.frozen
class MessageHistory:
    """`message:history`: a page of messages around a seq."""

    room_id: IdField
    before_seq: Seq | None = None
    after_seq: Seq | None = None
    limit: Annotated[int, Bounds(min=1, max=100)] = 50


@attrs.frozen
class Typing:
    """`typing`: tell the room's other members whether one is typing."""

    room_id: IdField
    typing: bool


@attrs.frozen
class PresenceGet:
    """`presence:get`: presence entries of up to 100 users."""

    user_ids: Annotated[list[UserIdField], Length(1, 100)]

"""Inbound payloads of the /notifications namespace and of the HTTP API (contract v1)."""

from __future__ import annotations

from typing import Annotated

import attrs

from application.contract.chat import IdField, UserIdField
from application.contract.validation import Bounds, Length


@attrs.frozen
class NotificationList:
    """`notification:list`: newest first, optionally unread only, before a cursor id."""

    unread_only: bool = False
    before: IdField | None = None
    limit: Annotated[int, Bounds(min=1, max=100)] = 50


@attrs.frozen
class NotificationMarkRead:
    """`notification:mark_read`: `{ids: [...]}` or `{all: true}`."""

    ids: Annotated[list[IdField], Length(1, 100)] | None = None
    all: bool = False


@attrs.frozen
class NotificationUnreadCount:
    """`notification:unread_count`: no fields."""


@attrs.frozen
class NotificationPush:
    """`POST /api/v1/notifications`: a backend pushes one notification to many users."""

    user_ids: Annotated[list[UserIdField], Length(1, 1000)]
    kind: Annotated[str, Length(1, 64)]
    title: Annotated[str, Length(1, 200)]
    body: Annotated[str, Length(0, 4000)] = ""
    data: dict[str, object] = attrs.Factory(dict)


@attrs.frozen
class SystemMessage:
    """`POST /api/v1/rooms/{room_id}/messages`: a system or bot message."""

    text: Annotated[str, Length(1, 4000)]
    author_id: UserIdField = "system"
    client_msg_id: Annotated[str, Length(1, 64)] | None = None

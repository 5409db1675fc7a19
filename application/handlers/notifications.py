"""Handlers of the /notifications commands of contract v1."""

from __future__ import annotations

from application.contract import notifications as payloads
from application.contract import wire
from application.json_types import JsonObject
from application.pipeline import CommandContext, Handler, route
from domain.errors import ValidationFailed
from domain.services import NotificationService


class NotificationCommands:
    """One method per /notifications command; a user only reaches their own notifications."""

    def __init__(self, notifications: NotificationService) -> None:
        self._notifications = notifications

    def routes(self) -> dict[str, Handler]:
        """Event name -> validated handler."""
        return {
            "notification:list": route(payloads.NotificationList, self.list_notifications),
            "notification:mark_read": route(payloads.NotificationMarkRead, self.mark_read),
            "notification:unread_count": route(payloads.NotificationUnreadCount, self.unread_count),
        }

    async def list_notifications(
        self, ctx: CommandContext, p: payloads.NotificationList
    ) -> JsonObject:
        """The caller's notifications, newest first."""
        page = await self._notifications.page(
            ctx.user_id, unread_only=p.unread_only, before=p.before, limit=p.limit
        )
        return wire.notification_page_json(page)

    async def mark_read(self, ctx: CommandContext, p: payloads.NotificationMarkRead) -> JsonObject:
        """Mark some (`ids`) or all (`all: true`) of the caller's notifications read."""
        if p.all:
            count = await self._notifications.mark_all_read(ctx.user_id)
        elif p.ids:
            count = await self._notifications.mark_read(ctx.user_id, p.ids)
        else:
            raise ValidationFailed(
                "the payload is not valid",
                details={"fields": [{"path": "$", "message": "give ids (1 to 100) or all: true"}]},
            )
        return {"unread_count": count}

    async def unread_count(
        self, ctx: CommandContext, p: payloads.NotificationUnreadCount
    ) -> JsonObject:
        """The caller's unread count."""
        return {"unread_count": await self._notifications.unread_count(ctx.user_id)}

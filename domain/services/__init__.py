"""Domain services: the business rules, on ports only."""

from domain.services.connections import ConnectionManager
from domain.services.messages import ChatMessageService
from domain.services.notifications import NotificationService
from domain.services.presence import PresenceService
from domain.services.rooms import ChatRoomService

__all__ = [
    "ChatMessageService",
    "ChatRoomService",
    "ConnectionManager",
    "NotificationService",
    "PresenceService",
]

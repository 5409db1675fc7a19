"""In-process adapters of every port: the embedded default and the fakes of unit tests.

Each method does its work without awaiting in the middle, so under asyncio every call is
atomic: concurrent tasks never see a half-made change.
"""

from adapters.memory.active_users import MemoryActiveUsersStore
from adapters.memory.messages import MemoryMessageStore
from adapters.memory.metrics import MemoryMetrics
from adapters.memory.notifications import MemoryNotificationStore
from adapters.memory.rooms import MemoryRoomRepository

__all__ = [
    "MemoryActiveUsersStore",
    "MemoryMessageStore",
    "MemoryMetrics",
    "MemoryNotificationStore",
    "MemoryRoomRepository",
]

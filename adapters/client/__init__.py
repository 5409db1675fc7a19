"""The Python client SDK of Switchboard (wire contract v1), over python-socketio.

```python
client = SwitchboardClient("http://127.0.0.1:8080", token_provider)
client.on_message(print)
await client.connect()
room = await client.create_room("general")
await client.send(room.id, "hello")
```

See docs/clients.md.
"""

from __future__ import annotations

from adapters.client.backoff import Backoff
from adapters.client.client import (
    CHAT,
    NOTIFICATIONS,
    ClientSettings,
    SwitchboardClient,
    TokenProvider,
)
from adapters.client.errors import (
    AuthError,
    ConflictError,
    ErrorCategory,
    ForbiddenError,
    NetworkError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    SwitchboardError,
    ValidationError,
)
from adapters.client.metrics import ClientMetrics
from adapters.client.models import (
    HistoryPage,
    JoinedRoom,
    MembersChanged,
    Message,
    MessageDeleted,
    Notification,
    NotificationPage,
    PresenceDiff,
    PresenceEntry,
    Room,
    Typing,
)
from adapters.client.state import ConnectionState, StateChange

__all__ = [
    "CHAT",
    "NOTIFICATIONS",
    "AuthError",
    "Backoff",
    "ClientMetrics",
    "ClientSettings",
    "ConflictError",
    "ConnectionState",
    "ErrorCategory",
    "ForbiddenError",
    "HistoryPage",
    "JoinedRoom",
    "MembersChanged",
    "Message",
    "MessageDeleted",
    "NetworkError",
    "NotFoundError",
    "Notification",
    "NotificationPage",
    "PresenceDiff",
    "PresenceEntry",
    "RateLimitedError",
    "Room",
    "ServerError",
    "StateChange",
    "SwitchboardClient",
    "SwitchboardError",
    "TokenProvider",
    "Typing",
    "ValidationError",
]

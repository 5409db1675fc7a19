"""The central ConnectionManager: every connection of every user goes through it."""

from __future__ import annotations

from domain.errors import Forbidden
from domain.model import CHAT_NAMESPACE, Connection, ConnectionChange, Sid, UserId
from domain.ports import ActiveUsersStore, Clock


class ConnectionManager:
    """Registers and looks up connections; several per user, on several namespaces.

    >>> manager = ConnectionManager(store, clock, instance_id="a")   # doctest: +SKIP
    >>> await manager.register_connection("alice", "sid1", "/chat")  # doctest: +SKIP
    """

    def __init__(self, store: ActiveUsersStore, clock: Clock, instance_id: str) -> None:
        self._store = store
        self._clock = clock
        self.instance_id = instance_id

    async def register_connection(
        self, user_id: UserId, sid: Sid, namespace: str
    ) -> ConnectionChange:
        """Record a new live connection; tells whether the user just came online there."""
        connection = Connection(
            sid=sid,
            user_id=user_id,
            namespace=namespace,
            instance_id=self.instance_id,
            connected_at=self._clock.now(),
        )
        return await self._store.add_connection(connection)

    async def unregister_connection(self, user_id: UserId, sid: Sid) -> ConnectionChange | None:
        """Forget a connection of this user; tells whether it was the user's last there."""
        owned = [c for c in await self._store.user_connections(user_id) if c.sid == sid]
        if not owned:
            return None
        change = await self._store.remove_connection(sid, self._clock.now())
        if change is not None and change.connection.user_id != user_id:
            raise Forbidden("connection belongs to another user")
        return change

    async def get_user_connections(self, user_id: UserId) -> list[Connection]:
        """Every live connection of the user, on every namespace and instance."""
        return await self._store.user_connections(user_id)

    async def get_all_connections(self) -> list[Connection]:
        """Every live connection."""
        return await self._store.all_connections()

    async def is_user_online(self, user_id: UserId, namespace: str = CHAT_NAMESPACE) -> bool:
        """Whether the user has a live connection on the namespace (chat by default)."""
        return await self._store.is_online(user_id, namespace)

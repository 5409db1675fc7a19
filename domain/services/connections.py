"""The central ConnectionManager: every connection of every user goes through it."""

from __future__ import annotations

from datetime import timedelta

from domain.errors import Forbidden
from domain.model import CHAT_NAMESPACE, Connection, ConnectionChange, Sid, UserId
from domain.ports import ActiveUsersStore, Clock


class ConnectionManager:
    """Registers and looks up connections; several per user, on several namespaces.

    It also knows which connections this instance serves, so that `heartbeat` can renew
    them in the shared store (a dead instance's connections then expire after `ttl_s`).

    >>> manager = ConnectionManager(store, clock, instance_id="a")   # doctest: +SKIP
    >>> await manager.register_connection("alice", "sid1", "/chat")  # doctest: +SKIP
    """

    def __init__(
        self,
        store: ActiveUsersStore,
        clock: Clock,
        instance_id: str,
        ttl_s: float | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self.instance_id = instance_id
        self._ttl = None if ttl_s is None else timedelta(seconds=ttl_s)
        self._local: dict[Sid, Connection] = {}

    async def register_connection(
        self, user_id: UserId, sid: Sid, namespace: str
    ) -> ConnectionChange:
        """Record a new live connection; tells whether the user just came online there."""
        now = self._clock.now()
        connection = Connection(
            sid=sid,
            user_id=user_id,
            namespace=namespace,
            instance_id=self.instance_id,
            connected_at=now,
        )
        self._local[sid] = connection
        expires_at = None if self._ttl is None else now + self._ttl
        try:
            return await self._store.add_connection(connection, expires_at)
        except BaseException:
            self._local.pop(sid, None)
            raise

    async def unregister_connection(self, user_id: UserId, sid: Sid) -> ConnectionChange | None:
        """Forget a connection of this user; tells whether it was the user's last there.

        A sid that is not one of this user's connections is left alone (None)."""
        local = self._local.get(sid)
        if local is None:
            owned = [c for c in await self._store.user_connections(user_id) if c.sid == sid]
            if not owned:
                return None
        elif local.user_id != user_id:
            return None
        self._local.pop(sid, None)
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

    def local_connections(self) -> list[Connection]:
        """The connections this instance serves."""
        return list(self._local.values())

    async def heartbeat(self) -> list[ConnectionChange]:
        """Renew this instance's connections; returns the re-registrations that brought a
        user back online (the store had lost them, e.g. it restarted empty)."""
        if self._ttl is None or not self._local:
            return []
        snapshot = self.local_connections()
        changes = await self._store.heartbeat(snapshot, self._clock.now() + self._ttl)
        # a connection that closed while the heartbeat was on its way may have been
        # re-registered by it: remove it again, and announce nothing for it
        for connection in snapshot:
            if connection.sid not in self._local:
                await self._store.remove_connection(connection.sid, self._clock.now())
        return [change for change in changes if change.connection.sid in self._local]

    async def sweep_expired(self) -> list[ConnectionChange]:
        """Remove every connection whose instance stopped renewing it."""
        return await self._store.sweep_expired(self._clock.now())

    async def next_expiry_in(self) -> float | None:
        """Seconds until the earliest expiry in the store (None: nothing expires)."""
        expiry = await self._store.next_expiry()
        if expiry is None:
            return None
        return max((expiry - self._clock.now()).total_seconds(), 0.0)

    async def online_count(self, namespace: str = CHAT_NAMESPACE) -> int:
        """How many users are online on the namespace, cluster-wide."""
        return await self._store.online_count(namespace)

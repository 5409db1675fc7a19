"""The connection registry (ActiveUsersStore) in process memory, with optional expiry."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from domain.model import Connection, ConnectionChange, PresenceEntry, Sid, UserId


class MemoryActiveUsersStore:
    """Live connections by sid, with a per-user, per-namespace index and last_seen."""

    def __init__(self) -> None:
        self._by_sid: dict[Sid, Connection] = {}
        # tuples, not sets: a user has a handful of connections, and a set costs about 200
        # bytes even for one element (this index exists for every connected user)
        self._by_user: dict[tuple[UserId, str], tuple[Sid, ...]] = {}
        self._namespaces_of: dict[UserId, tuple[str, ...]] = {}
        self._last_seen: dict[tuple[UserId, str], datetime] = {}
        self._expires: dict[Sid, datetime] = {}

    async def add_connection(
        self, connection: Connection, expires_at: datetime | None = None
    ) -> ConnectionChange:
        """Register a connection; first of the user on the namespace changes presence."""
        return self._add(connection, expires_at)

    def _add(self, connection: Connection, expires_at: datetime | None) -> ConnectionChange:
        key = (connection.user_id, connection.namespace)
        previous = self._by_sid.get(connection.sid)
        if expires_at is not None:
            self._expires[connection.sid] = expires_at
        if previous is not None:
            return ConnectionChange(connection=previous, user_online_changed=False)
        sids = self._by_user.get(key, ())
        first = not sids
        self._by_user[key] = (*sids, connection.sid)
        namespaces = self._namespaces_of.get(connection.user_id, ())
        if connection.namespace not in namespaces:
            self._namespaces_of[connection.user_id] = (*namespaces, connection.namespace)
        self._by_sid[connection.sid] = connection
        return ConnectionChange(connection=connection, user_online_changed=first)

    async def remove_connection(self, sid: Sid, at: datetime) -> ConnectionChange | None:
        """Remove a connection; the last of the user on the namespace records last_seen."""
        return self._remove(sid, at)

    def _remove(self, sid: Sid, at: datetime) -> ConnectionChange | None:
        connection = self._by_sid.pop(sid, None)
        self._expires.pop(sid, None)
        if connection is None:
            return None
        key = (connection.user_id, connection.namespace)
        sids = tuple(other for other in self._by_user.get(key, ()) if other != sid)
        last = not sids
        if not last:
            self._by_user[key] = sids
        else:
            self._by_user.pop(key, None)
            user_id = connection.user_id
            namespaces = tuple(
                ns for ns in self._namespaces_of.get(user_id, ()) if ns != connection.namespace
            )
            if namespaces:
                self._namespaces_of[user_id] = namespaces
            else:
                self._namespaces_of.pop(user_id, None)
            self._last_seen[key] = at
        return ConnectionChange(connection=connection, user_online_changed=last)

    async def user_connections(self, user_id: UserId) -> list[Connection]:
        """Every live connection of the user."""
        return [
            self._by_sid[sid]
            for namespace in sorted(self._namespaces_of.get(user_id, ()))
            for sid in sorted(self._by_user.get((user_id, namespace), ()))
        ]

    async def all_connections(self) -> list[Connection]:
        """Every live connection."""
        return list(self._by_sid.values())

    async def is_online(self, user_id: UserId, namespace: str) -> bool:
        """Whether the user has a live connection on the namespace."""
        return bool(self._by_user.get((user_id, namespace)))

    async def presence(self, user_ids: Sequence[UserId], namespace: str) -> list[PresenceEntry]:
        """Presence entries in the order asked."""
        entries = []
        for user_id in user_ids:
            count = len(self._by_user.get((user_id, namespace), ()))
            entries.append(
                PresenceEntry(
                    user_id=user_id,
                    online=count > 0,
                    last_seen=None if count else self._last_seen.get((user_id, namespace)),
                    connections=count,
                )
            )
        return entries

    async def online_users(self, namespace: str) -> list[UserId]:
        """Users with at least one live connection on the namespace."""
        return sorted(u for (u, ns), sids in self._by_user.items() if ns == namespace and sids)

    async def online_among(self, user_ids: Sequence[UserId], namespace: str) -> list[UserId]:
        """Those of these users who are online, in the order given."""
        return [u for u in user_ids if self._by_user.get((u, namespace))]

    async def online_count(self, namespace: str) -> int:
        """How many users are online on the namespace."""
        return sum(1 for (_, ns), sids in self._by_user.items() if ns == namespace and sids)

    async def heartbeat(
        self, connections: Sequence[Connection], expires_at: datetime
    ) -> list[ConnectionChange]:
        """Renew these connections; re-register any that is missing."""
        changes = []
        for connection in connections:
            change = self._add(connection, expires_at)
            if change.connection is connection and change.user_online_changed:
                changes.append(change)
        return changes

    async def sweep_expired(self, now: datetime) -> list[ConnectionChange]:
        """Remove every connection past its expiry."""
        expired = [sid for sid, expires in self._expires.items() if expires <= now]
        changes = []
        for sid in expired:
            expires_at = self._expires[sid]
            change = self._remove(sid, expires_at)
            if change is not None:
                changes.append(change)
        return changes

    async def next_expiry(self) -> datetime | None:
        """The earliest expiry, or None."""
        return min(self._expires.values(), default=None)

"""Admission of new connections: handshakes per client IP, connections per user."""

from __future__ import annotations

from multidict import MultiMapping

from domain.errors import AuthRefused, TooManyConnections
from domain.ports import MetricsCollector, RateLimiter
from domain.services import ConnectionManager

HANDSHAKE_LIMIT = "handshake"


class HandshakeGuard:
    """Refuses handshakes from a flooding IP (`rate_limited`) and users over their
    connection limit per namespace across the cluster (`too_many_connections`)."""

    def __init__(
        self,
        limiter: RateLimiter,
        connections: ConnectionManager,
        metrics: MetricsCollector,
        *,
        max_connections_per_user: int,
        trust_forwarded_for: bool,
    ) -> None:
        self._limiter = limiter
        self._connections = connections
        self._metrics = metrics
        self._max = max_connections_per_user
        self._trust_forwarded_for = trust_forwarded_for

    def client_ip(self, peer: str | None, headers: MultiMapping[str]) -> str:
        """The client's address: the peer, or the last X-Forwarded-For hop (added by our
        proxy) when that header is trusted. Several header lines are one list (RFC 9110),
        so a line the client sent itself never wins over the one our proxy appended."""
        if self._trust_forwarded_for:
            forwarded = ",".join(headers.getall("X-Forwarded-For", []))
            hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
            if hops:
                return hops[-1]
        return peer or "unknown"

    async def admit_ip(self, ip: str) -> None:
        """Count one handshake from this IP; refuse past the limit."""
        retry_after_ms = await self._limiter.hit(HANDSHAKE_LIMIT, ip)
        if retry_after_ms is not None:
            self._metrics.record_rate_limited("handshake")
            raise AuthRefused(
                "rate_limited",
                f"too many handshakes from this address; retry in {retry_after_ms} ms",
            )

    async def admit_user(self, user_id: str, namespace: str) -> None:
        """Refuse a user who already has the maximum of connections on this namespace."""
        live = await self._connections.get_user_connections(user_id)
        if sum(1 for c in live if c.namespace == namespace) >= self._max:
            raise TooManyConnections(
                f"at most {self._max} connections per user on {namespace}; close one first"
            )

    async def confirm_user(self, user_id: str, namespace: str, sid: str) -> None:
        """After registering `sid`: if concurrent handshakes overshot the limit, the newest
        connections (by their registration time, then sid) are refused."""
        live = await self._connections.get_user_connections(user_id)
        mine = sorted(
            (c for c in live if c.namespace == namespace), key=lambda c: (c.connected_at, c.sid)
        )
        if sid in [c.sid for c in mine[self._max :]]:
            raise TooManyConnections(
                f"at most {self._max} connections per user on {namespace}; close one first"
            )

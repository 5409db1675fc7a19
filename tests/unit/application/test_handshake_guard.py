"""`HandshakeGuard`: the client address, handshakes per IP, connections per user and namespace.

The guard runs on a recording fake limiter (so each test decides what the limit answers)
and on the real `ConnectionManager` over the memory registry, with a settable clock.
"""

from __future__ import annotations

import attrs
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from adapters.memory import MemoryActiveUsersStore, MemoryMetrics
from application.handshake import HANDSHAKE_LIMIT, HandshakeGuard
from domain.errors import AuthRefused, TooManyConnections
from domain.model import CHAT_NAMESPACE, NOTIFICATIONS_NAMESPACE
from domain.ports import RateLimiter
from domain.services import ConnectionManager
from tests.support.fakes import FixedClock

CHAT = CHAT_NAMESPACE
NOTIFS = NOTIFICATIONS_NAMESPACE


@attrs.define
class ScriptedLimiter:
    """A `RateLimiter` that records each hit and refuses the keys it was told to refuse."""

    refuse: dict[str, int] = attrs.Factory(dict)  # key -> retry_after_ms
    hits: list[tuple[str, str]] = attrs.Factory(list)

    async def hit(self, limit_name: str, key: str) -> int | None:
        """Record the hit; the scripted refusal of `key`, if any."""
        self.hits.append((limit_name, key))
        return self.refuse.get(key)


@attrs.frozen
class Guarded:
    """A guard with the fakes it was built on."""

    guard: HandshakeGuard
    limiter: ScriptedLimiter
    metrics: MemoryMetrics
    connections: ConnectionManager
    clock: FixedClock
    store: MemoryActiveUsersStore


def build(*, max_connections: int = 2, trust_forwarded_for: bool = False) -> Guarded:
    limiter = ScriptedLimiter()
    metrics = MemoryMetrics()
    clock = FixedClock()
    store = MemoryActiveUsersStore()
    connections = ConnectionManager(store, clock, instance_id="instance-a")
    port: RateLimiter = limiter
    guard = HandshakeGuard(
        port,
        connections,
        metrics,
        max_connections_per_user=max_connections,
        trust_forwarded_for=trust_forwarded_for,
    )
    return Guarded(guard, limiter, metrics, connections, clock, store)


def headers(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    """Request headers as aiohttp gives them: case-insensitive, repeated names kept."""
    return CIMultiDictProxy(CIMultiDict(pairs))


# --- client_ip ------------------------------------------------------------------------------


def test_untrusted_forwarded_for_is_ignored() -> None:
    guard = build(trust_forwarded_for=False).guard

    assert guard.client_ip("10.1.2.3", headers(("X-Forwarded-For", "203.0.113.9"))) == "10.1.2.3"
    assert guard.client_ip("10.1.2.3", headers()) == "10.1.2.3"


def test_without_a_peer_the_address_is_unknown() -> None:
    guard = build(trust_forwarded_for=False).guard

    assert guard.client_ip(None, headers(("X-Forwarded-For", "203.0.113.9"))) == "unknown"


def test_trusted_forwarded_for_gives_its_last_hop() -> None:
    guard = build(trust_forwarded_for=True).guard

    assert guard.client_ip("10.0.0.1", headers(("X-Forwarded-For", "203.0.113.9"))) == (
        "203.0.113.9"
    )
    # a client may put anything first; the hop our proxy appended is the last one
    spoofed = headers(("X-Forwarded-For", "198.51.100.1, 192.0.2.7 ,  203.0.113.9 "))
    assert guard.client_ip("10.0.0.1", spoofed) == "203.0.113.9"


def test_trusted_forwarded_for_header_name_is_case_insensitive() -> None:
    guard = build(trust_forwarded_for=True).guard

    assert guard.client_ip("10.0.0.1", headers(("x-forwarded-for", "203.0.113.9"))) == (
        "203.0.113.9"
    )


def test_trusted_but_empty_forwarded_for_falls_back_to_the_peer() -> None:
    guard = build(trust_forwarded_for=True).guard

    assert guard.client_ip("10.0.0.1", headers()) == "10.0.0.1"
    assert guard.client_ip("10.0.0.1", headers(("X-Forwarded-For", " , ,"))) == "10.0.0.1"
    assert guard.client_ip(None, headers(("X-Forwarded-For", ""))) == "unknown"


def test_trusted_forwarded_for_in_several_header_lines_gives_the_last_hop_of_the_last() -> None:
    """A client's own `X-Forwarded-For` line comes first; a proxy that adds its own line
    (HAProxy's `option forwardfor`) puts the real address in the LAST line. Several lines
    of one header are one comma-separated list (RFC 9110, 5.3), so the last hop is
    the last value of the last line, and the client's line must not win."""
    guard = build(trust_forwarded_for=True).guard
    two_lines = headers(
        ("X-Forwarded-For", "198.51.100.66"),  # sent by the client: spoofed
        ("X-Forwarded-For", "203.0.113.9"),  # appended by our proxy
    )

    assert guard.client_ip("10.0.0.1", two_lines) == "203.0.113.9"


# --- admit_ip -------------------------------------------------------------------------------


async def test_admit_ip_hits_the_handshake_limit_of_that_address() -> None:
    guarded = build()

    await guarded.guard.admit_ip("203.0.113.9")
    await guarded.guard.admit_ip("203.0.113.9")

    assert guarded.limiter.hits == [(HANDSHAKE_LIMIT, "203.0.113.9")] * 2
    assert guarded.metrics.rate_limited == {}


async def test_admit_ip_over_the_limit_is_rate_limited_and_counted() -> None:
    guarded = build()
    guarded.limiter.refuse["203.0.113.9"] = 250

    with pytest.raises(AuthRefused) as refused:
        await guarded.guard.admit_ip("203.0.113.9")
    await guarded.guard.admit_ip("203.0.113.10")  # another address is not affected

    assert refused.value.code == "rate_limited"
    assert "250 ms" in refused.value.message
    assert guarded.metrics.rate_limited == {"handshake": 1}


# --- admit_user -----------------------------------------------------------------------------


async def test_admit_user_under_the_limit_passes() -> None:
    guarded = build(max_connections=2)
    await guarded.connections.register_connection("alice", "s1", CHAT)

    await guarded.guard.admit_user("alice", CHAT)


async def test_admit_user_at_the_limit_is_too_many_connections() -> None:
    guarded = build(max_connections=2)
    await guarded.connections.register_connection("alice", "s1", CHAT)
    await guarded.connections.register_connection("alice", "s2", CHAT)

    with pytest.raises(TooManyConnections) as refused:
        await guarded.guard.admit_user("alice", CHAT)

    assert refused.value.code == "too_many_connections"
    assert "2" in refused.value.message


async def test_admit_user_counts_per_namespace_and_per_user() -> None:
    guarded = build(max_connections=2)
    await guarded.connections.register_connection("alice", "s1", CHAT)
    await guarded.connections.register_connection("alice", "s2", CHAT)

    await guarded.guard.admit_user("alice", NOTIFS)
    await guarded.guard.admit_user("bob", CHAT)


async def test_admit_user_passes_again_after_a_connection_closes() -> None:
    guarded = build(max_connections=2)
    await guarded.connections.register_connection("alice", "s1", CHAT)
    await guarded.connections.register_connection("alice", "s2", CHAT)

    await guarded.connections.unregister_connection("alice", "s1")

    await guarded.guard.admit_user("alice", CHAT)


async def test_admit_user_counts_connections_of_other_instances() -> None:
    guarded = build(max_connections=2)
    other = ConnectionManager(guarded.store, guarded.clock, instance_id="instance-b")
    await guarded.connections.register_connection("alice", "s1", CHAT)
    await other.register_connection("alice", "s2", CHAT)

    with pytest.raises(TooManyConnections):
        await guarded.guard.admit_user("alice", CHAT)


# --- confirm_user ---------------------------------------------------------------------------


async def test_confirm_user_refuses_the_newest_connections_past_the_limit() -> None:
    """Three handshakes passed `admit_user` at once: the two oldest registrations stay."""
    guarded = build(max_connections=2)
    for sid in ("s-old", "s-mid", "s-new"):
        guarded.clock.advance(1)
        await guarded.connections.register_connection("alice", sid, CHAT)

    await guarded.guard.confirm_user("alice", CHAT, "s-old")
    await guarded.guard.confirm_user("alice", CHAT, "s-mid")
    with pytest.raises(TooManyConnections):
        await guarded.guard.confirm_user("alice", CHAT, "s-new")


async def test_confirm_user_breaks_ties_of_registration_time_by_sid() -> None:
    guarded = build(max_connections=1)
    await guarded.connections.register_connection("alice", "b-sid", CHAT)
    await guarded.connections.register_connection("alice", "a-sid", CHAT)  # same time

    await guarded.guard.confirm_user("alice", CHAT, "a-sid")
    with pytest.raises(TooManyConnections):
        await guarded.guard.confirm_user("alice", CHAT, "b-sid")


async def test_confirm_user_ignores_other_namespaces_and_users() -> None:
    guarded = build(max_connections=1)
    await guarded.connections.register_connection("alice", "n1", NOTIFS)
    await guarded.connections.register_connection("bob", "b1", CHAT)
    guarded.clock.advance(1)
    await guarded.connections.register_connection("alice", "c1", CHAT)

    await guarded.guard.confirm_user("alice", CHAT, "c1")
    await guarded.guard.confirm_user("alice", NOTIFS, "n1")

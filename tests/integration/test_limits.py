"""Limits over the real server: commands per user (`rate_limited` with `retry_after_ms`,
before anything runs), handshakes per client IP (trusting `X-Forwarded-For` only when told),
and connections per user and namespace (`too_many_connections`)."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator

import aiohttp
import attrs
import pytest
import socketio
from multidict import CIMultiDict

from adapters.auth import issue_token
from application.json_types import JsonObject
from application.settings import Settings
from tests.integration.conftest import JWT_SECRET, Connector, RunningServer, make_settings
from tests.integration.support import (
    CHAT,
    NOTIFICATIONS,
    ChatClient,
    create_room,
    integer,
    new_sio,
    obj,
    objs,
    string,
    wait_until,
)


def retry_after_ms(error: JsonObject) -> int:
    """The `details.retry_after_ms` of a `rate_limited` error (checked: a positive int)."""
    assert error["code"] == "rate_limited", error
    details = obj(error["details"])
    assert set(details) == {"retry_after_ms"}, details
    value = integer(details["retry_after_ms"])
    assert value > 0, error
    return value


async def flood(client: ChatClient, event: str, payloads: list[JsonObject]) -> list[JsonObject]:
    """Send the commands one after the other, as fast as the acks come; the acks."""
    return [await client.call(event, payload) for payload in payloads]


def sends(room_id: str, prefix: str, count: int) -> list[JsonObject]:
    return [
        {"room_id": room_id, "text": f"{prefix} {i}", "client_msg_id": f"{prefix}-{i}"}
        for i in range(count)
    ]


def errors_of(acks: list[JsonObject]) -> list[JsonObject]:
    return [obj(ack["error"]) for ack in acks if ack["ok"] is False]


def rate_limited(server: RunningServer, event: str) -> float:
    return server.container.metrics().value("switchboard_rate_limited_total", event=event)


# --- message:send: 40 per 2 seconds by default -----------------------------------------------


async def test_flooding_message_send_is_refused_past_the_burst_and_stores_nothing(
    connect: Connector, server: RunningServer
) -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    room_id = string((await create_room(alice, members=["bob"]))["id"])

    started = time.monotonic()
    acks = await flood(alice, "message:send", sends(room_id, "a", 60))
    refill = math.ceil((time.monotonic() - started) / 0.05)  # one more per 50 ms meanwhile

    accepted = [obj(obj(ack["data"])["message"]) for ack in acks if ack["ok"] is True]
    refused = errors_of(acks)
    # a burst of 40, plus what the 20 per second refill adds while the flood lasts (GCRA)
    n = len(accepted)
    assert 40 <= n <= 40 + refill, "the contract allows bursts of 40, and 20 per second after"
    ids = [string(m["client_msg_id"]) for m in accepted]
    assert ids[:40] == [f"a-{i}" for i in range(40)]
    assert len(refused) == 60 - n
    for error in refused:
        assert 0 < retry_after_ms(error) <= 2000
        assert string(error["correlation_id"])
    # another user is not affected
    bobs = await bob.ok("message:send", {"room_id": room_id, "text": "hi", "client_msg_id": "b"})
    # nothing was stored for the refused sends: history holds the accepted ones, gap-free
    history = await bob.ok("message:history", {"room_id": room_id, "limit": 100})
    stored = objs(history["messages"])
    assert [m["client_msg_id"] for m in stored] == [*ids, "b"]
    assert [m["seq"] for m in stored] == list(range(1, n + 2))
    assert obj(bobs["message"])["seq"] == n + 1
    metrics = server.container.metrics()
    assert rate_limited(server, "message:send") == 60 - n
    assert (
        metrics.value(
            "switchboard_commands_total",
            namespace=CHAT,
            event="message:send",
            outcome="rate_limited",
        )
        == 60 - n
    )
    assert metrics.value("switchboard_errors_total", code="rate_limited") == 60 - n
    assert metrics.value("switchboard_messages_total", direction="sent") == n + 1


class TestSlowRefill:
    """One token per 2 s: the refill cannot reopen the limit between the flood and the checks,
    however slow the machine is (with the default 20 per second it could, in 50 ms)."""

    @pytest.fixture
    def server_settings(self) -> Settings:
        return attrs.evolve(make_settings(), rate_message_send="5 per 10 seconds")

    async def test_the_limit_refuses_before_validation_and_lifts_after_retry_after(
        self, connect: Connector
    ) -> None:
        alice = await connect("alice")
        room_id = string((await create_room(alice))["id"])
        acks = await flood(alice, "message:send", sends(room_id, "a", 8))
        accepted = sum(1 for ack in acks if ack["ok"] is True)
        assert accepted == 5
        last = errors_of(acks)[-1]

        # while limited, even an invalid payload or an unknown room is refused by the limit
        invalid = await alice.fails("message:send", {"room_id": room_id}, code="rate_limited")
        unknown = await alice.fails(
            "message:send",
            {"room_id": "no-such-room", "text": "x", "client_msg_id": "x"},
            code="rate_limited",
        )
        assert 0 < retry_after_ms(invalid) <= 2000
        assert 0 < retry_after_ms(unknown) <= 2000
        # waiting as told is enough
        await asyncio.sleep(max(retry_after_ms(invalid), retry_after_ms(last)) / 1000 + 0.1)
        data = await alice.ok(
            "message:send", {"room_id": room_id, "text": "again", "client_msg_id": "again"}
        )
        assert obj(data["message"])["seq"] == accepted + 1


async def test_a_client_under_10_per_second_is_never_limited(connect: Connector) -> None:
    alice = await connect("alice")
    room_id = string((await create_room(alice))["id"])
    started = time.monotonic()

    for index, payload in enumerate(sends(room_id, "steady", 20)):  # 8/s for 2.5 s
        await asyncio.sleep(max(0.0, started + index * 0.125 - time.monotonic()))
        await alice.ok("message:send", payload)

    assert time.monotonic() - started >= 2.3


# --- other commands: 50 per second by default, one budget per user --------------------------


async def test_other_commands_are_limited_separately_from_message_send(
    connect: Connector, server: RunningServer
) -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    alice_notifications = await connect.notifications("alice")
    room_id = string((await create_room(bob))["id"])  # bob's budget, not alice's
    await alice.ok("room:join", {"room_id": room_id})  # 1 of alice's 50

    started = time.monotonic()
    acks = await flood(alice, "room:list", [{}] * 70)
    refill = math.ceil((time.monotonic() - started) / 0.02)  # one more per 20 ms meanwhile

    # 49 left of the burst of 50, plus the 50 per second refill while the flood lasts
    ok = sum(1 for ack in acks if ack["ok"] is True)
    assert 49 <= ok <= 49 + refill
    refused = errors_of(acks)
    assert len(refused) == 70 - ok
    assert all(0 < retry_after_ms(error) <= 1000 for error in refused)
    assert rate_limited(server, "room:list") == 70 - ok
    # message:send has a budget of its own
    await alice.ok("message:send", {"room_id": room_id, "text": "hi", "client_msg_id": "m1"})
    # the budget is the user's: alice's /notifications commands are refused as well
    more = await flood(alice_notifications, "notification:unread_count", [{}] * 20)
    assert errors_of(more), "the /notifications commands draw on the same budget"
    assert rate_limited(server, "notification:unread_count") == len(errors_of(more))
    # and other users are not affected
    await bob.ok("room:list", {})


class TestConfiguredCommandLimit:
    @pytest.fixture
    def server_settings(self) -> Settings:
        return attrs.evolve(make_settings(), rate_commands="5 per 10 seconds")

    async def test_the_setting_is_the_limit(
        self, connect: Connector, server: RunningServer
    ) -> None:
        alice = await connect("alice")

        acks = await flood(alice, "room:list", [{}] * 8)
        unknown = await alice.call("no:such:event", {})

        assert [ack["ok"] for ack in acks] == [True] * 5 + [False] * 3
        for error in errors_of(acks):
            # one more fits every 10/5 = 2 s (GCRA): the wait is at most that
            assert 0 < retry_after_ms(error) <= 2000
        # unknown events spend the same budget, and are counted under "unknown"
        assert retry_after_ms(obj(unknown["error"])) > 0
        assert rate_limited(server, "unknown") == 1
        assert rate_limited(server, "room:list") == 3


# --- handshakes per client IP ---------------------------------------------------------------


@attrs.define
class Handshakes:
    """Opens raw handshakes with chosen headers; closes every client at the end."""

    server: RunningServer
    clients: list[socketio.AsyncClient] = attrs.Factory(list)

    async def attempt(
        self,
        user_id: str,
        *,
        namespace: str = CHAT,
        headers: dict[str, str] | None = None,
    ) -> JsonObject | None:
        """None if the handshake was accepted; else the `connect_error` data."""
        sio = new_sio()
        self.clients.append(sio)
        errors: list[object] = []

        def on_error(*args: object) -> None:
            errors.extend(args)

        sio.on("connect_error", on_error, namespace=namespace)
        try:
            await sio.connect(
                self.server.url,
                auth={"token": issue_token(JWT_SECRET, user_id, ttl_s=3600)},
                headers=headers or {},
                transports=["websocket"],
                namespaces=[namespace],
                wait_timeout=5,
            )
        except socketio.exceptions.ConnectionError:
            assert len(errors) == 1, errors
            data = obj(obj(errors[0])["data"])
            assert set(data) == {"code", "message"}, data
            assert string(data["message"])
            return data
        return None

    async def code(self, user_id: str, **kwargs: str) -> str:
        """The refusal code of a handshake that must be refused."""
        data = await self.attempt(user_id, headers=kwargs or None)
        assert data is not None, f"the handshake of {user_id} {kwargs} was accepted"
        return string(data["code"])

    async def close(self) -> None:
        for sio in self.clients:
            if sio.connected:
                await sio.disconnect()


@pytest.fixture
async def handshakes(server: RunningServer) -> AsyncIterator[Handshakes]:
    opened = Handshakes(server)
    try:
        yield opened
    finally:
        await opened.close()


def forwarded(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


class TestHandshakesPerIp:
    @pytest.fixture
    def server_settings(self) -> Settings:
        return attrs.evolve(make_settings(), rate_handshakes_per_ip="3 per 10 seconds")

    async def test_past_the_limit_handshakes_are_rate_limited(
        self, handshakes: Handshakes, server: RunningServer, connect: Connector
    ) -> None:
        assert await handshakes.attempt("u1") is None
        assert await handshakes.attempt("u2") is None
        assert await handshakes.attempt("u3", namespace=NOTIFICATIONS) is None

        refused = await handshakes.attempt("u4")
        refused_notifications = await handshakes.attempt("u5", namespace=NOTIFICATIONS)

        assert refused is not None
        assert refused["code"] == "rate_limited"
        assert refused_notifications is not None
        assert refused_notifications["code"] == "rate_limited"
        assert rate_limited(server, "handshake") == 2
        metrics = server.container.metrics()
        assert metrics.value("switchboard_connections", namespace=CHAT) == 2
        assert metrics.value("switchboard_connections", namespace=NOTIFICATIONS) == 1
        # the refused users were never registered
        entries = await server.container.connection_manager().get_user_connections("u4")
        assert entries == []


class TestTrustedForwardedFor:
    @pytest.fixture
    def server_settings(self) -> Settings:
        return attrs.evolve(
            make_settings(), rate_handshakes_per_ip="2 per 10 seconds", trust_forwarded_for=True
        )

    async def test_each_forwarded_address_has_its_own_limit(self, handshakes: Handshakes) -> None:
        first, second = forwarded("203.0.113.1"), forwarded("203.0.113.2")
        assert await handshakes.attempt("u1", headers=first) is None
        assert await handshakes.attempt("u2", headers=first) is None
        assert await handshakes.code("u3", **first) == "rate_limited"

        assert await handshakes.attempt("u4", headers=second) is None
        assert await handshakes.attempt("u5", headers=second) is None
        assert await handshakes.code("u6", **second) == "rate_limited"

    async def test_the_last_hop_counts_not_what_the_client_put_first(
        self, handshakes: Handshakes
    ) -> None:
        assert await handshakes.attempt("u1", headers=forwarded("203.0.113.1")) is None
        assert await handshakes.attempt("u2", headers=forwarded("203.0.113.1")) is None

        spoofed = forwarded("198.51.100.77, 203.0.113.1")
        assert await handshakes.code("u3", **spoofed) == "rate_limited"


class TestUntrustedForwardedFor:
    @pytest.fixture
    def server_settings(self) -> Settings:
        return attrs.evolve(make_settings(), rate_handshakes_per_ip="2 per 10 seconds")

    async def test_forwarded_addresses_are_one_client_when_not_trusted(
        self, handshakes: Handshakes
    ) -> None:
        assert await handshakes.attempt("u1", headers=forwarded("203.0.113.1")) is None
        assert await handshakes.attempt("u2", headers=forwarded("203.0.113.2")) is None

        assert await handshakes.code("u3", **forwarded("203.0.113.3")) == "rate_limited"


# --- connections per user and namespace -----------------------------------------------------


class TestConnectionsPerUser:
    @pytest.fixture
    def server_settings(self) -> Settings:
        return attrs.evolve(make_settings(), max_connections_per_user=2)

    async def test_the_third_connection_is_refused_until_one_closes(
        self, connect: Connector, handshakes: Handshakes, server: RunningServer
    ) -> None:
        metrics = server.container.metrics()
        first = await connect("alice")
        await connect("alice")

        assert await handshakes.code("alice") == "too_many_connections"

        # per namespace and per user: these are not affected
        assert await handshakes.attempt("alice", namespace=NOTIFICATIONS) is None
        assert await handshakes.attempt("bob") is None
        # the refused connection was never counted
        observer = await connect("bob")
        data = await observer.ok("presence:get", {"user_ids": ["alice"]})
        assert objs(data["presence"])[0]["connections"] == 2
        assert metrics.value("switchboard_connections", namespace=CHAT) == 4

        await first.disconnect()
        await wait_until(
            lambda: metrics.value("switchboard_connections", namespace=CHAT) == 3,
            what="alice's first connection to close",
        )
        assert await handshakes.attempt("alice") is None
        assert await handshakes.code("alice") == "too_many_connections"

    async def test_concurrent_handshakes_do_not_overshoot_the_limit(
        self, handshakes: Handshakes, server: RunningServer, connect: Connector
    ) -> None:
        results = await asyncio.gather(*(handshakes.attempt("carol") for _ in range(6)))

        accepted = [r for r in results if r is None]
        refused = [r for r in results if r is not None]
        assert len(accepted) == 2, results
        assert {string(r["code"]) for r in refused} == {"too_many_connections"}
        observer = await connect("observer")
        data = await observer.ok("presence:get", {"user_ids": ["carol"]})
        assert objs(data["presence"])[0]["connections"] == 2


async def raw_handshake(server: RunningServer, user_id: str, headers: CIMultiDict[str]) -> str:
    """A Socket.IO handshake over a raw WebSocket with exactly these header lines (repeated
    names kept, as a proxy may send them); the server's answer packet to the /chat CONNECT."""
    url = server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    token = issue_token(JWT_SECRET, user_id, ttl_s=3600)
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, headers=headers) as ws,
    ):
        assert (await ws.receive_str(timeout=5)).startswith("0{")
        await ws.send_str(f"40{CHAT}," + json.dumps({"token": token}))
        return await ws.receive_str(timeout=5)


class TestForwardedForInSeveralLines:
    @pytest.fixture
    def server_settings(self) -> Settings:
        return attrs.evolve(
            make_settings(), rate_handshakes_per_ip="2 per 10 seconds", trust_forwarded_for=True
        )

    async def test_a_client_line_before_the_proxy_line_does_not_escape_the_limit(
        self, server: RunningServer
    ) -> None:
        """A proxy that appends its own `X-Forwarded-For` line (HAProxy) leaves the client's
        line first: the real address is the last hop of the last line."""
        answers = [
            await raw_handshake(
                server,
                f"u{index}",
                CIMultiDict(
                    [
                        ("X-Forwarded-For", f"198.51.100.{index}"),  # the client's own line
                        ("X-Forwarded-For", "203.0.113.1"),  # the proxy's line
                    ]
                ),
            )
            for index in range(3)
        ]

        assert [answer[:2] for answer in answers[:2]] == ["40", "40"], answers
        assert answers[2].startswith(f"44{CHAT},"), answers
        assert '"rate_limited"' in answers[2], answers

"""Observability over the real server: Prometheus metrics after real actions (read from the
registry and scraped from `GET /metrics`), the JSON summary of `GET /api/v1/metrics`, the
API key on both routes, the structured logs of commands and of the HTTP API, and the
Admin UI."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import attrs
import pytest
import socketio
import structlog
from engineio.async_socket import AsyncSocket
from prometheus_client.parser import text_string_to_metric_families

from adapters.auth import issue_token
from application.json_types import JsonObject
from application.logging import configure_logging
from application.settings import Settings
from tests.integration.conftest import (
    API_KEY,
    JWT_SECRET,
    Connector,
    RunningServer,
    make_settings,
)
from tests.integration.support import (
    CHAT,
    NOTIFICATIONS,
    ApiClient,
    arr,
    create_room,
    integer,
    new_sio,
    obj,
    send,
    string,
    wait_until,
)

# --- reading the metrics --------------------------------------------------------------------


@attrs.frozen
class Scrape:
    """One `GET /metrics`: the text, and every sample as `(name, labels) -> value`."""

    text: str
    values: dict[tuple[str, frozenset[tuple[str, str]]], float]

    def get(self, name: str, **labels: str) -> float:
        """The value of one sample (0 if the sample is absent)."""
        return self.values.get((name, frozenset(labels.items())), 0.0)

    def types(self) -> dict[str, str]:
        """`# TYPE` lines: metric name -> type."""
        return dict(re.findall(r"^# TYPE (\S+) (\S+)$", self.text, flags=re.MULTILINE))

    def label_names(self, name: str) -> set[frozenset[str]]:
        """The label-name sets of the samples named `name`."""
        return {frozenset(k for k, _ in labels) for n, labels in self.values if n == name}


async def scrape(server: RunningServer, authorization: str | None = None) -> Scrape:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with (
        aiohttp.ClientSession() as session,
        session.get(server.url + "/metrics", headers=headers) as response,
    ):
        assert response.status == 200, await response.text()
        assert response.content_type == "text/plain"
        text = await response.text()
    values: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return Scrape(text, values)


async def dashboard(api: ApiClient) -> JsonObject:
    response = await api.request("GET", "/api/v1/metrics")
    assert response.status == 200, response.body
    return response.json


def value(server: RunningServer, name: str, **labels: str) -> float:
    return server.container.metrics().value(name, **labels)


def commands(server: RunningServer, namespace: str, event: str, outcome: str) -> float:
    return value(
        server, "switchboard_commands_total", namespace=namespace, event=event, outcome=outcome
    )


# --- connections ----------------------------------------------------------------------------


async def test_connections_per_namespace_go_up_and_down(
    server: RunningServer, connect: Connector, api: ApiClient
) -> None:
    alice = await connect("alice")
    await connect("bob")
    await connect.notifications("alice")

    assert value(server, "switchboard_connections", namespace=CHAT) == 2
    assert value(server, "switchboard_connections", namespace=NOTIFICATIONS) == 1
    assert value(server, "switchboard_connections_opened_total", namespace=CHAT) == 2
    assert value(server, "switchboard_connections_opened_total", namespace=NOTIFICATIONS) == 1
    assert (await dashboard(api))["connections"] == {CHAT: 2, NOTIFICATIONS: 1}

    await alice.disconnect()
    await wait_until(
        lambda: value(server, "switchboard_connections", namespace=CHAT) == 1,
        what="the /chat gauge to drop",
    )

    scraped = await scrape(server)
    assert scraped.get("switchboard_connections", namespace=CHAT) == 1
    assert scraped.get("switchboard_connections", namespace=NOTIFICATIONS) == 1
    assert scraped.get("switchboard_connections_opened_total", namespace=CHAT) == 2
    assert scraped.get("switchboard_connections_closed_total", namespace=CHAT) == 1
    assert scraped.get("switchboard_connections_closed_total", namespace=NOTIFICATIONS) == 0
    assert (await dashboard(api))["connections"] == {CHAT: 1, NOTIFICATIONS: 1}


async def test_refused_handshakes_open_no_connection(
    server: RunningServer, connect: Connector
) -> None:
    await connect.refused({"token": "not-a-jwt"})

    assert value(server, "switchboard_connections_opened_total", namespace=CHAT) == 0
    assert value(server, "switchboard_connections", namespace=CHAT) == 0


# --- commands, latency, errors --------------------------------------------------------------


async def test_commands_are_counted_by_namespace_event_and_outcome(
    server: RunningServer, connect: Connector
) -> None:
    alice = await connect("alice")
    notifications = await connect.notifications("alice")
    room_id = string((await create_room(alice))["id"])

    await alice.ok("room:list", {})
    await alice.ok("room:list", {})
    await alice.fails("room:join", {"room_id": "no-such-room"}, code="not_found")
    await alice.fails("message:send", {"room_id": room_id}, code="validation_failed")
    await alice.fails("no:such:event", {}, code="unknown_event")
    await notifications.ok("notification:unread_count", {})

    assert commands(server, CHAT, "room:create", "ok") == 1
    assert commands(server, CHAT, "room:list", "ok") == 2
    assert commands(server, CHAT, "room:join", "not_found") == 1
    assert commands(server, CHAT, "message:send", "validation_failed") == 1
    assert commands(server, CHAT, "unknown", "unknown_event") == 1
    assert commands(server, NOTIFICATIONS, "notification:unread_count", "ok") == 1
    assert commands(server, NOTIFICATIONS, "room:list", "ok") == 0
    for code in ("not_found", "validation_failed", "unknown_event"):
        assert value(server, "switchboard_errors_total", code=code) == 1
    assert value(server, "switchboard_errors_total", code="ok") == 0

    scraped = await scrape(server)
    assert (
        scraped.get("switchboard_commands_total", namespace=CHAT, event="room:list", outcome="ok")
        == 2
    )
    assert (
        scraped.get(
            "switchboard_commands_total",
            namespace=NOTIFICATIONS,
            event="notification:unread_count",
            outcome="ok",
        )
        == 1
    )
    assert scraped.get("switchboard_errors_total", code="not_found") == 1
    # the raw event name of an unknown event never becomes a label
    assert "no:such:event" not in scraped.text


async def test_the_latency_histogram_counts_every_command_per_event(
    server: RunningServer, connect: Connector
) -> None:
    alice = await connect("alice")
    for _ in range(3):
        await alice.ok("room:list", {})
    await alice.fails("room:join", {"room_id": "nope"}, code="not_found")

    def count(event: str) -> float:
        return value(
            server, "switchboard_command_duration_seconds_count", namespace=CHAT, event=event
        )

    assert count("room:list") == 3
    assert count("room:join") == 1  # failures are timed too
    assert (
        value(server, "switchboard_command_duration_seconds_sum", namespace=CHAT, event="room:list")
        > 0
    )
    scraped = await scrape(server)
    bucket = {"namespace": CHAT, "event": "room:list"}
    assert scraped.get("switchboard_command_duration_seconds_bucket", **bucket, le="+Inf") == 3
    assert scraped.get("switchboard_command_duration_seconds_count", **bucket) == 3
    assert scraped.types()["switchboard_command_duration_seconds"] == "histogram"


# --- messages -------------------------------------------------------------------------------


async def test_messages_sent_counts_each_new_message_once(
    server: RunningServer, connect: Connector, api: ApiClient
) -> None:
    alice = await connect("alice")
    room_id = string((await create_room(alice))["id"])

    await send(alice, room_id, "one", "m-1")
    await send(alice, room_id, "two", "m-2")
    await send(alice, room_id, "one", "m-1")  # an idempotent retry stores nothing new
    posted = await api.post(f"/api/v1/rooms/{room_id}/messages", {"text": "from a bot"})
    assert posted.status == 201

    assert value(server, "switchboard_messages_total", direction="sent") == 3
    assert (await scrape(server)).get("switchboard_messages_total", direction="sent") == 3


async def test_messages_delivered_counts_each_connection_a_message_was_handed_to(
    server: RunningServer, connect: Connector
) -> None:
    """`switchboard_messages_total{direction="delivered"}`: messages handed to sockets, as
    the metric's help says; here one message reaches three /chat connections."""
    alice = await connect("alice")
    bob = await connect("bob")
    bob_phone = await connect("bob")
    room_id = string((await create_room(alice, members=["bob"]))["id"])

    await send(alice, room_id, "hello", "m-1")
    for client in (alice, bob, bob_phone):
        await client.wait_for("message:new")

    assert value(server, "switchboard_messages_total", direction="sent") == 1
    assert value(server, "switchboard_messages_total", direction="delivered") == 3, (
        "nothing counts delivered messages"
    )


# --- rate limits ----------------------------------------------------------------------------


class TestRateLimitedMetric:
    @pytest.fixture
    def server_settings(self) -> Settings:
        return attrs.evolve(make_settings(), rate_message_send="1 per 10 seconds")

    async def test_refusals_are_counted_per_event_and_as_errors(
        self, server: RunningServer, connect: Connector, api: ApiClient
    ) -> None:
        alice = await connect("alice")
        room_id = string((await create_room(alice))["id"])
        await send(alice, room_id, "one", "m-1")

        for index in range(2):
            payload = {"room_id": room_id, "text": "x", "client_msg_id": f"r-{index}"}
            await alice.fails("message:send", payload, code="rate_limited")

        scraped = await scrape(server)
        assert scraped.get("switchboard_rate_limited_total", event="message:send") == 2
        assert scraped.get("switchboard_errors_total", code="rate_limited") == 2
        assert (
            scraped.get(
                "switchboard_commands_total",
                namespace=CHAT,
                event="message:send",
                outcome="rate_limited",
            )
            == 2
        )
        assert (await dashboard(api))["errors"] == {"rate_limited": 2}


# --- online users ---------------------------------------------------------------------------


class TestOnlineUsers:
    @pytest.fixture
    def server_settings(self) -> Settings:
        return attrs.evolve(make_settings(), presence_heartbeat_s=0.1, presence_ttl_s=1.0)

    async def test_the_gauge_follows_users_not_connections(
        self, server: RunningServer, connect: Connector, api: ApiClient
    ) -> None:
        def online() -> float:
            return value(server, "switchboard_online_users")

        alice = await connect("alice")
        await connect("alice")
        bob = await connect("bob")
        await connect.notifications("carol")  # /notifications does not make anyone online

        await wait_until(lambda: online() == 2, what="two users online")
        assert (await scrape(server)).get("switchboard_online_users") == 2
        assert (await dashboard(api))["online_users"] == 2

        await bob.disconnect()
        await alice.disconnect()  # alice keeps her second connection
        await wait_until(lambda: online() == 1, what="one user online")
        await asyncio.sleep(0.3)  # a few more heartbeats change nothing
        assert online() == 1


# --- names, types and labels of the contract ------------------------------------------------

CONTRACT_TYPES = {
    "switchboard_connections": "gauge",
    "switchboard_connections_opened_total": "counter",
    "switchboard_commands_total": "counter",
    "switchboard_command_duration_seconds": "histogram",
    "switchboard_errors_total": "counter",
    "switchboard_messages_total": "counter",
    "switchboard_rate_limited_total": "counter",
    "switchboard_online_users": "gauge",
    "switchboard_slow_consumer_disconnects_total": "counter",
}

CONTRACT_LABELS = {
    "switchboard_connections": {"namespace"},
    "switchboard_connections_opened_total": {"namespace"},
    "switchboard_commands_total": {"namespace", "event", "outcome"},
    "switchboard_command_duration_seconds_count": {"namespace", "event"},
    "switchboard_errors_total": {"code"},
    "switchboard_messages_total": {"direction"},
    "switchboard_rate_limited_total": {"event"},
    "switchboard_online_users": set(),
    "switchboard_slow_consumer_disconnects_total": set(),
}


class TestContractNames:
    @pytest.fixture
    def server_settings(self) -> Settings:
        return attrs.evolve(make_settings(), rate_message_send="1 per 10 seconds")

    async def test_every_contract_metric_is_exposed_with_its_type_and_labels(
        self, server: RunningServer, connect: Connector
    ) -> None:
        fresh = await scrape(server)  # before anything happened
        alice = await connect("alice")
        room_id = string((await create_room(alice))["id"])
        await send(alice, room_id, "one", "m-1")
        await alice.fails(
            "message:send",
            {"room_id": room_id, "text": "x", "client_msg_id": "m-2"},
            code="rate_limited",
        )

        scraped = await scrape(server)

        for name, kind in CONTRACT_TYPES.items():
            assert fresh.types().get(name) == kind, f"{name} before any traffic"
            assert scraped.types().get(name) == kind, name
        for name, labels in CONTRACT_LABELS.items():
            assert scraped.label_names(name) == {frozenset(labels)}, name
        assert fresh.get("switchboard_slow_consumer_disconnects_total") == 0
        assert fresh.get("switchboard_online_users") == 0

    async def test_every_metric_name_starts_with_switchboard(
        self, server: RunningServer, connect: Connector
    ) -> None:
        alice = await connect("alice")
        await create_room(alice)

        scraped = await scrape(server)

        names = {name for name, _ in scraped.values} | set(scraped.types())
        assert names
        assert {n for n in names if not n.startswith("switchboard_")} == set()


# --- the metrics routes and the API key -----------------------------------------------------


async def request(
    server: RunningServer, path: str, authorization: str | None = None
) -> tuple[int, str, str, dict[str, str]]:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with (
        aiohttp.ClientSession() as session,
        session.get(server.url + path, headers=headers) as response,
    ):
        return response.status, response.content_type, await response.text(), dict(response.headers)


def unauthenticated(status: int, content_type: str, body: str, headers: dict[str, str]) -> None:
    assert status == 401, body
    assert content_type == "application/json"
    error = obj(obj(json.loads(body))["error"])
    assert error["code"] == "unauthenticated"
    assert string(error["correlation_id"])
    assert headers["WWW-Authenticate"].startswith("Bearer")


async def test_metrics_text_needs_no_key_by_default(server: RunningServer) -> None:
    status, content_type, body, _ = await request(server, "/metrics")
    with_key = await request(server, "/metrics", f"Bearer {API_KEY}")
    with_wrong_key = await request(server, "/metrics", "Bearer wrong")

    assert (status, content_type) == (200, "text/plain")
    assert "# TYPE switchboard_connections gauge" in body
    assert with_key[0] == 200
    assert with_wrong_key[0] == 200


async def test_the_dashboard_summary_needs_the_key(server: RunningServer) -> None:
    unauthenticated(*await request(server, "/api/v1/metrics"))
    unauthenticated(*await request(server, "/api/v1/metrics", "Bearer wrong"))
    unauthenticated(*await request(server, "/api/v1/metrics", API_KEY))  # no scheme

    status, content_type, _, _ = await request(server, "/api/v1/metrics", f"Bearer {API_KEY}")
    assert (status, content_type) == (200, "application/json")


class TestMetricsRequireKey:
    @pytest.fixture
    def server_settings(self) -> Settings:
        return attrs.evolve(make_settings(), metrics_require_key=True)

    async def test_metrics_text_needs_the_key(self, server: RunningServer) -> None:
        unauthenticated(*await request(server, "/metrics"))
        unauthenticated(*await request(server, "/metrics", "Bearer wrong"))

        scraped = await scrape(server, f"Bearer {API_KEY}")

        assert "switchboard_connections" in scraped.types()


# --- the JSON summary -----------------------------------------------------------------------


async def test_the_dashboard_summary_shape_after_real_traffic(
    server: RunningServer, connect: Connector, api: ApiClient
) -> None:
    alice = await connect("alice")
    await connect("bob")
    await connect.notifications("alice")
    room_id = string((await create_room(alice, members=["bob"]))["id"])
    for index in range(5):
        await send(alice, room_id, f"text {index}", f"m-{index}")
    await alice.fails("room:join", {"room_id": "nope"}, code="not_found")
    await alice.fails("room:create", {}, code="validation_failed")

    summary = await dashboard(api)

    assert set(summary) == {
        "connections",
        "online_users",
        "commands_per_second",
        "window_s",
        "latency",
        "errors",
    }
    assert summary["connections"] == {CHAT: 2, NOTIFICATIONS: 1}
    assert isinstance(summary["online_users"], int)
    assert summary["errors"] == {"not_found": 1, "validation_failed": 1}
    rate = summary["commands_per_second"]
    assert isinstance(rate, float | int)
    assert rate > 0
    latency = obj(summary["latency"])
    assert set(latency) == {f"{CHAT} room:create", f"{CHAT} message:send", f"{CHAT} room:join"}
    sends = obj(latency[f"{CHAT} message:send"])
    assert set(sends) == {"count", "p50_ms", "p95_ms", "p99_ms"}
    assert integer(sends["count"]) == 5
    p50, p95, p99 = (sends[k] for k in ("p50_ms", "p95_ms", "p99_ms"))
    assert isinstance(p50, float | int)
    assert isinstance(p95, float | int)
    assert isinstance(p99, float | int)
    assert 0 < p50 <= p95 <= p99 < 10_000
    assert integer(obj(latency[f"{CHAT} room:create"])["count"]) == 2


# --- logs -----------------------------------------------------------------------------------


@attrs.define
class JsonLogs:
    """What the server logged, rendered exactly as `switchboard serve` renders it."""

    buffer: io.StringIO = attrs.Factory(io.StringIO)

    def raw(self) -> str:
        """Everything written so far."""
        return self.buffer.getvalue()

    def lines(self) -> list[JsonObject]:
        """Every line so far, parsed (each must be one JSON object)."""
        return [obj(json.loads(line)) for line in self.raw().splitlines()]

    def forget(self) -> None:
        """Drop what was written so far."""
        self.buffer.seek(0)
        self.buffer.truncate()


@pytest.fixture
def json_logs() -> Iterator[JsonLogs]:
    """The server's real logging configuration (JSON lines, level info), writing into a
    buffer instead of stderr; the previous configuration is restored afterwards."""
    previous = structlog.get_config()
    logs = JsonLogs()
    configure_logging("info", "json")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(logs.buffer))
    try:
        yield logs
    finally:
        structlog.configure(**previous)


def named(lines: list[JsonObject], event: str) -> list[JsonObject]:
    return [line for line in lines if line.get("event") == event]


async def test_one_command_handled_line_per_command(
    server: RunningServer,
    connect: Connector,
    json_logs: JsonLogs,
) -> None:
    alice = await connect("alice")
    notifications = await connect.notifications("alice")
    json_logs.forget()  # the handshakes

    room_id = string((await create_room(alice))["id"])
    await alice.ok("room:list", {})
    await send(alice, room_id, "hi", "m-1")
    await alice.fails("room:join", {"room_id": "nope"}, code="not_found")
    await notifications.ok("notification:unread_count", {})

    handled = named(json_logs.lines(), "command_handled")
    assert [(line["namespace"], line["command"], line["outcome"]) for line in handled] == [
        (CHAT, "room:create", "ok"),
        (CHAT, "room:list", "ok"),
        (CHAT, "message:send", "ok"),
        (CHAT, "room:join", "not_found"),
        (NOTIFICATIONS, "notification:unread_count", "ok"),
    ]
    for line in handled:
        assert line["user_id"] == "alice"
        assert re.fullmatch(r"[0-9a-f]{32}", string(line["correlation_id"])), line
        duration = line["duration_ms"]
        assert isinstance(duration, float | int)
        assert duration >= 0
        assert line["level"] == ("info" if line["outcome"] == "ok" else "warning")
        assert string(line["timestamp"]).endswith("Z")
    assert len({line["correlation_id"] for line in handled}) == len(handled)


async def test_a_failed_commands_line_carries_the_correlation_id_the_client_got(
    server: RunningServer,
    connect: Connector,
    json_logs: JsonLogs,
) -> None:
    alice = await connect("alice")
    room_id = string((await create_room(alice))["id"])

    error = await alice.fails("message:edit", {"room_id": room_id}, code="validation_failed")
    other = await alice.fails("room:join", {"room_id": "nope"}, code="not_found")
    logged = json_logs.lines()

    for failure, command in ((error, "message:edit"), (other, "room:join")):
        lines = [line for line in logged if line.get("correlation_id") == failure["correlation_id"]]
        assert len(lines) == 1, lines
        line = lines[0]
        assert line["event"] == "command_handled"
        assert (line["command"], line["outcome"]) == (command, failure["code"])
        assert line["user_id"] == "alice"
        assert line["namespace"] == CHAT


async def test_http_api_lines_carry_the_correlation_id_of_the_response(
    server: RunningServer,
    api: ApiClient,
    json_logs: JsonLogs,
) -> None:
    await api.push(["alice"], "hello")
    refused = await api.request("POST", "/api/v1/notifications", body={"user_ids": []})
    error = refused.error(400, "validation_failed")

    handled = named(json_logs.lines(), "http_api_handled")
    assert [(line["method"], line["path"], line["status"]) for line in handled] == [
        ("POST", "/api/v1/notifications", 202),
        ("POST", "/api/v1/notifications", 400),
    ]
    assert handled[1]["correlation_id"] == error["correlation_id"]
    assert handled[1]["level"] == "warning"
    assert handled[0]["level"] == "info"


async def test_tokens_api_keys_and_message_texts_are_never_logged(
    server: RunningServer,
    connect: Connector,
    api: ApiClient,
    json_logs: JsonLogs,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)  # library loggers (aiohttp's access log) at info too
    token = issue_token(JWT_SECRET, "alice", ttl_s=3600)
    forged = issue_token("another-secret-" + "q" * 40, "mallory", ttl_s=3600)
    text = "zebra-ultraviolet-4711 my card is 4242"
    edited = "quokka-infrared-0815"
    secret_title = "notification-body-marker-5150"

    alice = await connect("alice", token=token)
    await connect.refused({"token": forged})
    room_id = string((await create_room(alice))["id"])
    message = await send(alice, room_id, text, "m-1")
    await alice.ok(
        "message:edit", {"room_id": room_id, "message_id": message["id"], "text": edited}
    )
    await alice.fails("message:send", {"room_id": room_id, "text": text}, code="validation_failed")
    await api.push(["alice"], "t", body=secret_title)
    wrong_key = await api.request(
        "POST", "/api/v1/notifications", body={}, authorization="Bearer wrong-key-marker-777"
    )
    assert wrong_key.status == 401
    raw = json_logs.raw()

    assert named(json_logs.lines(), "command_handled"), "nothing was logged at all"
    library_lines = "\n".join(record.getMessage() for record in caplog.records)
    for secret in (token, forged, API_KEY, "wrong-key-marker-777", text, edited, secret_title):
        assert secret not in raw, f"{secret!r} is in the logs"
        assert secret not in library_lines, f"{secret!r} is in a library's log"


# --- the Admin UI ---------------------------------------------------------------------------

ADMIN = {"username": "ops", "password": "admin-password-123"}


async def admin_attempt(server: RunningServer, auth: object) -> tuple[bool, list[object]]:
    """Connect to /admin with `auth`; whether it connected, and the events it received."""
    sio = new_sio()
    received: list[object] = []
    errors: list[object] = []

    def on_any(event: object, *_: object) -> None:
        received.append(event)

    def on_error(*args: object) -> None:
        errors.extend(args)

    sio.on("*", on_any, namespace="/admin")
    sio.on("connect_error", on_error, namespace="/admin")
    try:
        await sio.connect(
            server.url,
            auth=auth,
            transports=["websocket"],
            namespaces=["/admin"],
            wait_timeout=5,
        )
    except socketio.exceptions.ConnectionError:
        assert len(errors) == 1, errors
        return False, received
    try:
        await wait_until(lambda: "config" in received, what="the Admin UI config")
    finally:
        await sio.disconnect()
    return True, received


@pytest.fixture
def restore_engineio_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """`instrument()` patches python-engineio's socket class for the whole process: undo
    it after the test, so that later servers of the suite are not instrumented."""
    for name in ("_websocket_handler", "handle_post_request", "_send_ping"):
        monkeypatch.setattr(AsyncSocket, name, getattr(AsyncSocket, name))


@pytest.mark.usefixtures("restore_engineio_socket")
class TestAdminUi:
    @pytest.fixture
    def server_settings(self) -> Settings:
        return attrs.evolve(
            make_settings(),
            admin_ui_username=ADMIN["username"],
            admin_ui_password=ADMIN["password"],
        )

    async def test_the_right_credentials_connect(self, server: RunningServer) -> None:
        connected, received = await admin_attempt(server, ADMIN)

        assert connected
        assert "config" in received

    async def test_wrong_or_missing_credentials_are_refused(self, server: RunningServer) -> None:
        assert (await admin_attempt(server, {**ADMIN, "password": "guess"}))[0] is False
        assert (await admin_attempt(server, {"username": "ops"}))[0] is False
        assert (await admin_attempt(server, None))[0] is False

    async def test_chat_works_as_usual_with_the_admin_ui_on(
        self, server: RunningServer, connect: Connector
    ) -> None:
        alice = await connect("alice")
        bob = await connect("bob")
        room_id = string((await create_room(alice, members=["bob"]))["id"])

        await send(alice, room_id, "hi", "m-1")

        assert (await bob.wait_for("message:new"))["text"] == "hi"
        assert value(server, "switchboard_connections", namespace=CHAT) == 2


class TestWithoutAdminUi:
    async def test_admin_is_refused_whatever_the_credentials(self, server: RunningServer) -> None:
        assert (await admin_attempt(server, ADMIN))[0] is False
        assert (await admin_attempt(server, None))[0] is False


# --- the Grafana dashboard ------------------------------------------------------------------

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"


def dashboard_queries() -> list[str]:
    dashboard = obj(json.loads(DASHBOARD.read_text()))
    queries: list[str] = []
    for panel in (obj(p) for p in arr(dashboard["panels"])):
        queries += [string(obj(target)["expr"]) for target in arr(panel.get("targets", []))]
    return queries


async def test_the_grafana_dashboard_queries_only_what_the_server_exposes(
    server: RunningServer,
) -> None:
    queries = dashboard_queries()
    exposed = (await scrape(server)).types()

    used = set(re.findall(r"\bswitchboard_[a-z_]+", " ".join(queries)))
    for name in used:
        family = re.sub(r"_(bucket|count|sum)$", "", name)
        assert name in exposed or exposed.get(family) == "histogram", name
    assert set(CONTRACT_TYPES) <= {re.sub(r"_bucket$", "", name) for name in used}
    grouped = {
        label.strip()
        for clause in re.findall(r"by \(([^)]*)\)", " ".join(queries))
        for label in clause.split(",")
    }
    assert grouped <= {"namespace", "event", "outcome", "code", "direction", "le"}, grouped
    for quantile in ("0.5", "0.95", "0.99"):
        assert any(q.startswith(f"histogram_quantile({quantile},") for q in queries), quantile

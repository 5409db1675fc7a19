"""The HTTP side of the port: health, readiness, the dev token; and the metrics counters."""

from __future__ import annotations

import aiohttp
import pytest

from application.json_types import JsonObject
from application.settings import Settings
from tests.integration.conftest import Connector, RunningServer, make_settings
from tests.integration.support import create_room, obj, string, wait_until


async def _get(server: RunningServer, path: str) -> tuple[int, JsonObject | None]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(server.url + path) as response,
    ):
        body: object = (
            await response.json() if response.content_type == "application/json" else None
        )
        return response.status, None if body is None else obj(body)


async def test_healthz(server: RunningServer) -> None:
    status, body = await _get(server, "/healthz")

    assert status == 200
    assert body == {"status": "ok"}


async def test_readyz_on_memory_stores(server: RunningServer) -> None:
    status, body = await _get(server, "/readyz")

    assert status == 200
    assert body is not None
    assert body["status"] == "ok"


async def test_dev_token_connects(server: RunningServer, connect: Connector) -> None:
    status, body = await _get(server, "/dev/token?user_id=dave")
    assert status == 200
    assert body is not None
    token = string(body["token"])

    dave = await connect("dave", token=token)

    data = await dave.ok("room:create", {"name": "dave's"})
    assert obj(data["room"])["owner_id"] == "dave"


async def test_dev_token_needs_a_user_id(server: RunningServer) -> None:
    status, body = await _get(server, "/dev/token")

    assert status == 400
    assert body is not None
    assert obj(body["error"])["code"] == "validation_failed"


class TestWithoutDev:
    @pytest.fixture
    def server_settings(self) -> Settings:
        return make_settings(dev=False)

    async def test_dev_token_route_is_absent(self, server: RunningServer) -> None:
        status, _ = await _get(server, "/dev/token?user_id=dave")

        assert status == 404

    async def test_health_and_chat_still_work(
        self, server: RunningServer, connect: Connector
    ) -> None:
        assert (await _get(server, "/healthz"))[0] == 200
        alice = await connect("alice")
        assert await alice.ok("room:list", {}) == {"rooms": []}


# --- metrics --------------------------------------------------------------------------------


async def test_commands_move_the_metrics(server: RunningServer, connect: Connector) -> None:
    metrics = server.container.metrics()
    alice = await connect("alice")
    assert metrics.value("switchboard_connections", namespace="/chat") == 1
    assert metrics.value("switchboard_connections_opened_total", namespace="/chat") == 1

    room = await create_room(alice)
    await alice.ok("room:list", {})
    await alice.ok("room:list", {})
    await alice.ok("message:send", {"room_id": room["id"], "text": "hi", "client_msg_id": "c1"})

    assert (
        metrics.value(
            "switchboard_commands_total", namespace="/chat", event="room:create", outcome="ok"
        )
        == 1
    )
    assert (
        metrics.value(
            "switchboard_commands_total", namespace="/chat", event="room:list", outcome="ok"
        )
        == 2
    )
    assert (
        metrics.value(
            "switchboard_commands_total", namespace="/chat", event="message:send", outcome="ok"
        )
        == 1
    )
    assert (
        metrics.value(
            "switchboard_command_duration_seconds_count", namespace="/chat", event="room:list"
        )
        == 2
    )
    assert metrics.value("switchboard_messages_total", direction="sent") == 1


async def test_disconnect_moves_the_connection_gauge(
    server: RunningServer, connect: Connector
) -> None:
    metrics = server.container.metrics()
    alice = await connect("alice")
    observer = await connect("observer")
    assert metrics.value("switchboard_connections", namespace="/chat") == 2

    await alice.disconnect()

    await wait_until(
        lambda: metrics.value("switchboard_connections", namespace="/chat") == 1,
        what="the gauge to drop",
    )
    assert observer.connected
    assert metrics.value("switchboard_connections_opened_total", namespace="/chat") == 2

"""The per-user connection limit holds across the cluster: two `switchboard serve` processes
on one redis-server, `SWITCHBOARD_MAX_CONNECTIONS_PER_USER=2`; one connection on each
instance, and the third is refused on either with `too_many_connections`.

Every wait is bounded, and every process started here is killed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import attrs
import pytest
import socketio
from prometheus_client.parser import text_string_to_metric_families

from adapters.auth import issue_token
from tests.support.redis_server import free_port

pytestmark = pytest.mark.e2e

SWITCHBOARD = Path(sys.executable).parent / "switchboard"
SECRET = "limit-e2e-jwt-secret-" + "s" * 32
API_KEY = "limit-e2e-api-key-" + "k" * 16
CHAT = "/chat"
NOTIFICATIONS = "/notifications"
START_TIMEOUT_S = 20.0


@attrs.define
class Instance:
    """One `switchboard serve` process on its own port (always killed at the end)."""

    name: str
    port: int
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- log of {self.name} ---\n{text[-3000:]}"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def launch(name: str, redis_url: str, prefix: str, directory: Path) -> Instance:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SWITCHBOARD_") and k not in ("REDIS_URL", "REDIS_FALLBACK")
    }
    env.update(
        PYTHONUNBUFFERED="1",
        REDIS_URL=redis_url,
        SWITCHBOARD_JWT_SECRET=SECRET,
        SWITCHBOARD_API_KEY=API_KEY,
        SWITCHBOARD_MAX_CONNECTIONS_PER_USER="2",
        SWITCHBOARD_PRESENCE_HEARTBEAT_S="1",
        SWITCHBOARD_PRESENCE_TTL_S="3",
        SWITCHBOARD_REDIS_PREFIX=prefix,
        SWITCHBOARD_INSTANCE_ID=name,
    )
    port = free_port()
    log = directory / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(SWITCHBOARD), "serve", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    return Instance(name, port, log, process)


async def wait_ready(session: aiohttp.ClientSession, instance: Instance) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert instance.process.poll() is None, f"{instance.name} exited\n{instance.log_tail()}"
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with session.get(
                instance.url + "/readyz", timeout=aiohttp.ClientTimeout(total=1)
            ) as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{instance.name} not ready in {START_TIMEOUT_S} s\n{instance.log_tail()}")


@attrs.define
class Clients:
    """Socket.IO clients of the test (all disconnected at the end)."""

    opened: list[socketio.AsyncClient] = attrs.Factory(list)

    async def attempt(
        self, instance: Instance, user_id: str, namespace: str = CHAT
    ) -> tuple[socketio.AsyncClient, str | None]:
        """Connect; the client and None, or the refusal code of its `connect_error`."""
        sio = socketio.AsyncClient(reconnection=False, logger=False, engineio_logger=False)
        self.opened.append(sio)
        errors: list[object] = []

        def on_error(*args: object) -> None:
            errors.extend(args)

        sio.on("connect_error", on_error, namespace=namespace)
        try:
            await sio.connect(
                instance.url,
                auth={"token": issue_token(SECRET, user_id)},
                transports=["websocket"],
                namespaces=[namespace],
                wait_timeout=10,
            )
        except socketio.exceptions.ConnectionError:
            assert len(errors) == 1, errors
            error = errors[0]
            assert isinstance(error, dict), error
            data = error.get("data")
            assert isinstance(data, dict), error
            code = data.get("code")
            assert isinstance(code, str), error
            return sio, code
        return sio, None

    async def connected(
        self, instance: Instance, user_id: str, namespace: str = CHAT
    ) -> socketio.AsyncClient:
        sio, code = await self.attempt(instance, user_id, namespace)
        assert code is None, f"{user_id} refused on {instance.name}: {code}\n{instance.log_tail()}"
        return sio

    async def refusal(self, instance: Instance, user_id: str, namespace: str = CHAT) -> str:
        _, code = await self.attempt(instance, user_id, namespace)
        assert code is not None, f"{user_id} was accepted on {instance.name}"
        return code

    async def close(self) -> None:
        for sio in self.opened:
            if sio.connected:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(sio.disconnect(), timeout=5)


async def scrape(session: aiohttp.ClientSession, instance: Instance) -> dict[str, float]:
    """`GET /metrics` of an instance: `name{labels}` -> value (labels sorted)."""
    async with session.get(instance.url + "/metrics") as response:
        assert response.status == 200
        text = await response.text()
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}"] = sample.value
    return values


async def wait_for_metric(
    session: aiohttp.ClientSession, instance: Instance, key: str, expected: float
) -> None:
    deadline = time.monotonic() + 10
    seen: float | None = None
    while time.monotonic() < deadline:
        seen = (await scrape(session, instance)).get(key)
        if seen == expected:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{key} on {instance.name} is {seen}, expected {expected}")


@pytest.fixture
async def cluster(
    redis_url: str, tmp_path: Path
) -> AsyncIterator[tuple[aiohttp.ClientSession, Instance, Instance, Clients]]:
    prefix = f"limit-e2e-{uuid.uuid4().hex[:8]}:"
    instances = [launch(name, redis_url, prefix, tmp_path) for name in ("a", "b")]
    clients = Clients()
    try:
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(wait_ready(session, i) for i in instances))
            yield session, instances[0], instances[1], clients
            await clients.close()
    finally:
        for instance in instances:
            instance.kill()


async def test_the_limit_counts_connections_on_every_instance(
    cluster: tuple[aiohttp.ClientSession, Instance, Instance, Clients],
) -> None:
    session, a, b, clients = cluster
    on_a = await clients.connected(a, "alice")
    await clients.connected(b, "alice")

    assert await clients.refusal(a, "alice") == "too_many_connections"
    assert await clients.refusal(b, "alice") == "too_many_connections"

    # per user and per namespace: others are not affected
    await clients.connected(a, "bob")
    await clients.connected(b, "alice", NOTIFICATIONS)
    # the gauges: one /chat connection of alice per instance (plus bob on a), and two
    # users online in the cluster, seen alike from both instances after a heartbeat
    await wait_for_metric(session, a, 'switchboard_connections{namespace="/chat"}', 2)
    await wait_for_metric(session, b, 'switchboard_connections{namespace="/chat"}', 1)
    await wait_for_metric(session, a, "switchboard_online_users{}", 2)
    await wait_for_metric(session, b, "switchboard_online_users{}", 2)

    # closing the connection on a frees a place, which b sees
    await on_a.disconnect()
    deadline = time.monotonic() + 5
    while True:
        _, code = await clients.attempt(b, "alice")
        if code is None:
            break
        assert code == "too_many_connections", code
        assert time.monotonic() < deadline, "b never saw alice's connection on a close"
        await asyncio.sleep(0.1)
    assert await clients.refusal(a, "alice") == "too_many_connections"


async def test_concurrent_handshakes_on_both_instances_do_not_overshoot(
    cluster: tuple[aiohttp.ClientSession, Instance, Instance, Clients],
) -> None:
    session, a, b, clients = cluster

    results = await asyncio.gather(
        *(clients.attempt(instance, "carol") for instance in (a, b, a, b, a, b))
    )

    codes = [code for _, code in results]
    assert codes.count(None) == 2, codes
    assert set(codes) - {None} == {"too_many_connections"}, codes
    connections = [
        (await scrape(session, instance)).get('switchboard_connections{namespace="/chat"}', 0.0)
        for instance in (a, b)
    ]
    assert sum(connections) == 2, connections

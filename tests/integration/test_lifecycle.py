"""Stopping the app in-process (aiohttp's shutdown and cleanup of `create_app`'s app).

Regression tests: an idle server once crashed on stop (`sio.eio.disconnect()` with no client
runs `asyncio.wait([])` in python-engineio), and connected clients were once closed only
after aiohttp had waited ~45 s (the engine.io ping timeout) for their WebSockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from tests.integration.conftest import Connector, make_settings, start_server
from tests.integration.support import wait_until


async def test_an_idle_server_stops_cleanly() -> None:
    server = await start_server(make_settings())

    await asyncio.wait_for(server.runner.cleanup(), 5)  # must not raise


async def test_a_server_whose_clients_left_stops_cleanly() -> None:
    server = await start_server(make_settings())
    connect = Connector(server)
    alice = await connect("alice")
    await alice.disconnect()
    await wait_until(
        lambda: server.container.metrics().value("switchboard_connections", namespace="/chat") == 0,
        what="the disconnect",
    )

    await asyncio.wait_for(server.runner.cleanup(), 5)


async def test_stopping_the_server_disconnects_its_clients_and_clears_presence() -> None:
    server = await start_server(make_settings())
    connect = Connector(server)
    alice = await connect("alice")
    bob = await connect("bob")
    started = time.monotonic()
    stopping = asyncio.create_task(server.runner.cleanup())
    try:
        await wait_until(
            lambda: bool(alice.received("disconnect")) and bool(bob.received("disconnect")),
            within=3,
            what="the server to disconnect its clients",
        )
        await asyncio.wait_for(asyncio.shield(stopping), 10)  # the contract's drain bound
    finally:
        await connect.close_all()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(stopping, 60)

    assert time.monotonic() - started < 10
    active_users = server.container.active_users()
    assert await active_users.is_online("alice", "/chat") is False
    assert await active_users.online_users("/chat") == []
    assert server.container.metrics().value("switchboard_connections", namespace="/chat") == 0

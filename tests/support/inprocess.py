"""A real Switchboard app served in the test's event loop on a free loopback port."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import attrs
from aiohttp import web

from application.server import create_app
from application.settings import Settings
from tests.support.redis_server import free_port


@contextlib.asynccontextmanager
async def serve_in_process(settings: Settings) -> AsyncIterator[str]:
    """Serve `settings` (its port replaced by a free one); yields the base URL."""
    port = free_port()
    runner = web.AppRunner(create_app(attrs.evolve(settings, port=port)))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()

"""The aiohttp app factory: one port serves Socket.IO, health, the HTTP API and the demo."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from adapters.auth import issue_token
from adapters.http.api import HttpApi, json_errors
from adapters.http.health import dev_token_handler, healthz, readyz_handler
from adapters.memory.probe import MemoryProbe
from application.containers import Container
from application.logging import get_logger
from application.settings import Settings

CONTAINER = web.AppKey("container", Container)

log = get_logger("switchboard.server")


def build_container(settings: Settings) -> Container:
    """A fresh container for these settings (tests override providers on it)."""
    return Container(settings=settings)


def create_app(settings: Settings, container: Container | None = None) -> web.Application:
    """Build the aiohttp application with every namespace and route mounted."""
    container = container or build_container(settings)
    app = web.Application(client_max_size=settings.max_payload_bytes, middlewares=[json_errors])
    app[CONTAINER] = container
    sio = container.sio()
    sio.attach(app)
    sio.register_namespace(container.chat_namespace())
    sio.register_namespace(container.notifications_namespace())
    HttpApi(container.server_api(), settings.api_key).add_routes(app)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz_handler([MemoryProbe()]))
    if settings.dev and settings.jwt_secret is not None:
        secret = settings.jwt_secret

        def issue(user_id: str) -> str:
            return issue_token(secret, user_id, ttl_s=24 * 3600)

        app.router.add_get("/dev/token", dev_token_handler(issue))

    app.on_shutdown.append(_drain)
    app.cleanup_ctx.append(_lifecycle)
    return app


async def _drain(app: web.Application) -> None:
    """Close every client ourselves (each runs its disconnect handler, so presence is
    cleaned up); aiohttp would otherwise wait for open WebSockets at shutdown."""
    sio = app[CONTAINER].sio()
    if sio.eio.sockets:
        await sio.eio.disconnect()


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    container = app[CONTAINER]
    settings = container.settings()
    log.info(
        "started",
        instance_id=settings.instance_id,
        store=settings.store,
        host=settings.host,
        port=settings.port,
        dev=settings.dev,
    )
    yield
    await container.event_publisher().coalescer.flush_all()
    await container.sio().shutdown()
    log.info("stopped", instance_id=settings.instance_id)

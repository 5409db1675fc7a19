"""The aiohttp app factory: one port serves Socket.IO, health, the HTTP API and the demo."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import attrs
from aiohttp import web

from adapters.auth import issue_token
from adapters.http.api import HttpApi, json_error_bodies
from adapters.http.health import dev_token_handler, healthz, readyz_handler
from adapters.http.metrics import add_metrics_routes
from adapters.memory.probe import MemoryProbe
from adapters.redis.probe import RedisProbe, redis_answers
from adapters.socketio.closing import close_all
from adapters.web import mount_demo
from application.containers import Container
from application.logging import get_logger
from application.ports import ReadinessProbe
from application.settings import Settings, SettingsError

CONTAINER = web.AppKey("container", Container)

log = get_logger("switchboard.server")


def build_container(settings: Settings) -> Container:
    """A fresh container for these settings (tests override providers on it)."""
    return Container(settings=settings)


def create_app(settings: Settings, container: Container | None = None) -> web.Application:
    """Build the aiohttp application with every namespace and route mounted."""
    container = container or build_container(settings)
    # no middleware: see json_error_bodies
    app = web.Application(client_max_size=settings.max_payload_bytes)
    app.on_response_prepare.append(json_error_bodies)
    app[CONTAINER] = container
    sio = container.sio()
    sio.attach(app)
    container.admin_ui()  # instruments the server when the Admin UI is configured
    sio.register_namespace(container.chat_namespace())
    sio.register_namespace(container.notifications_namespace())
    http_api = HttpApi(container.server_api(), settings.api_key)
    http_api.add_routes(app)
    add_metrics_routes(
        app,
        registry=container.registry(),
        summary=container.metrics_summary(),
        api=http_api,
        require_key=settings.metrics_require_key,
    )

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz_handler(_probes(settings, container)))
    if settings.dev and settings.jwt_secret is not None:
        secret = settings.jwt_secret

        def issue(user_id: str) -> str:
            return issue_token(secret, user_id, ttl_s=24 * 3600)

        app.router.add_get("/dev/token", dev_token_handler(issue))
        mount_demo(app)

    app.on_shutdown.append(_drain)
    app.cleanup_ctx.append(_lifecycle)
    return app


def _probes(settings: Settings, container: Container) -> list[ReadinessProbe]:
    if settings.store == "redis":
        return [RedisProbe(container.redis_client())]
    return [MemoryProbe(fallback=settings.fallback_active)]


async def check_store(settings: Settings) -> Settings:
    """Before serving: with Redis configured but unreachable, fall back to memory
    (`REDIS_FALLBACK=memory`, `/readyz` says degraded) or refuse to start (`fail`)."""
    if settings.store != "redis" or settings.redis_url is None:
        return settings
    problem = await redis_answers(settings.redis_url)
    if problem is None:
        return settings
    if settings.redis_fallback == "memory":
        log.warning("redis_unreachable_fallback_to_memory", reason=problem)
        return attrs.evolve(settings, store="memory", fallback_active=True)
    raise SettingsError(
        f"Redis at REDIS_URL does not answer ({problem}); start it, fix REDIS_URL, or set "
        "REDIS_FALLBACK=memory to run on the in-memory stores"
    )


DRAIN_FLUSH_S = 0.1


async def _drain(app: web.Application) -> None:
    """SIGTERM: close every client ourselves (each runs its disconnect handler, so this
    instance's connections leave presence at once) instead of letting aiohttp wait for
    open WebSockets; then remove any connection a failed handler left behind."""
    container = app[CONTAINER]
    sio = container.sio()
    await container.presence_keeper().stop()
    # every client gets engine.io's CLOSE (its disconnect handlers run), then, after a moment
    # to flush, we close the connections ourselves: neither WebSockets nor idle long-polls
    # keep the process waiting on their clients
    await close_all(sio, "server shutting down", flush_s=DRAIN_FLUSH_S)
    manager = container.connection_manager()
    for connection in manager.local_connections():
        with contextlib.suppress(Exception):
            await manager.unregister_connection(connection.user_id, connection.sid)


METRICS_SAMPLE_S = 5.0


async def _sample_metrics(container: Container) -> None:
    """Feed the dashboard summary its per-minute window."""
    summary = container.metrics_summary()
    while True:
        summary.sample()
        await asyncio.sleep(METRICS_SAMPLE_S)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    container = app[CONTAINER]
    settings = container.settings()
    snapshots = container.snapshot_keeper()
    if snapshots is not None:
        await snapshots.load()  # a file that cannot be used stops the start (SnapshotError)
    elif settings.snapshot_path is not None:
        log.warning("snapshot_path_ignored", reason="snapshots are for the memory store only")
    log.info(
        "started",
        instance_id=settings.instance_id,
        store=settings.store,
        host=settings.host,
        port=settings.port,
        dev=settings.dev,
    )
    keeper = container.presence_keeper()
    keeper.start()
    slow_consumers = container.slow_consumer_guard()
    slow_consumers.start()
    sampler = asyncio.get_running_loop().create_task(
        _sample_metrics(container), name="metrics-sampler"
    )
    if snapshots is not None:
        snapshots.start()
    yield
    sampler.cancel()
    await slow_consumers.stop()
    await keeper.stop()
    await container.event_publisher().coalescer.flush_all()
    admin = container.admin_ui()
    if admin is not None:
        await admin.shutdown()
        admin.uninstrument()
    await container.sio().shutdown()
    if snapshots is not None:
        await snapshots.stop()  # the last save, after every client is gone
    if settings.store == "redis":
        await container.redis_client().aclose(close_connection_pool=True)
    log.info("stopped", instance_id=settings.instance_id)

"""Fixtures of the integration tests: the real aiohttp + python-socketio server, started
in-process on a free loopback port, and real `socketio.AsyncClient`s connected to it.

Per-test configuration: override the `server_settings` fixture (a `Settings`) or the
`configure_container` fixture (called with the fresh container BEFORE the app is built, so
provider overrides take effect) in a module or a test class.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from typing import Protocol

import aiohttp
import attrs
import pytest
import socketio
from aiohttp import web

from adapters.auth import issue_token
from application.containers import Container
from application.json_types import JsonObject
from application.server import build_container, create_app
from application.settings import Settings
from tests.integration.support import (
    CHAT,
    NOTIFICATION_EVENTS,
    NOTIFICATIONS,
    SERVER_EVENTS,
    ApiClient,
    ChatClient,
    NotificationsClient,
    new_sio,
    obj,
)

JWT_SECRET = "integration-secret-" + "x" * 32
API_KEY = "k" * 32

ContainerSetup = Callable[[Container], None]


@attrs.frozen
class RunningServer:
    """A server listening on 127.0.0.1 for one test."""

    url: str
    settings: Settings
    container: Container
    app: web.Application
    runner: web.AppRunner


def make_settings(*, dev: bool = True, handler_timeout_s: float = 5.0) -> Settings:
    """Test settings: a fixed secret and API key, a 50 ms coalescing window."""
    return Settings(
        dev=dev,
        jwt_secret=JWT_SECRET,
        api_key=API_KEY,
        coalesce_window_ms=50,
        handler_timeout_s=handler_timeout_s,
    )


async def start_server(
    settings: Settings, configure: ContainerSetup | None = None
) -> RunningServer:
    """Build the container (then let `configure` override providers), the app, and serve it
    on a free loopback port."""
    container = build_container(settings)
    if configure is not None:
        configure(container)
    app = create_app(settings, container)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    await web.SockSite(runner, sock).start()
    return RunningServer(
        url=f"http://127.0.0.1:{port}",
        settings=settings,
        container=container,
        app=app,
        runner=runner,
    )


async def stop_server(server: RunningServer) -> None:
    """Stop the server: aiohttp's shutdown (which drains clients) and cleanup."""
    await server.runner.cleanup()


@pytest.fixture
def server_settings() -> Settings:
    """The settings of the test's server (override to change them)."""
    return make_settings()


@pytest.fixture
def configure_container() -> ContainerSetup:
    """Called with the container before the app is built (override to replace providers)."""

    def configure(_: Container) -> None:
        return None

    return configure


@pytest.fixture(params=["memory", "redis"])
def store_backend(request: pytest.FixtureRequest) -> str:
    """Every integration test runs on the embedded stores and on a real Redis."""
    return str(request.param)


@pytest.fixture
async def server(
    server_settings: Settings,
    configure_container: ContainerSetup,
    store_backend: str,
    request: pytest.FixtureRequest,
) -> AsyncIterator[RunningServer]:
    """The real app on a free loopback port; stopped after the test (after its clients)."""
    settings = server_settings
    if store_backend == "redis":
        settings = attrs.evolve(
            settings,
            store="redis",
            redis_url=str(request.getfixturevalue("redis_url")),
            redis_prefix=str(request.getfixturevalue("redis_prefix")),
        )
    running = await start_server(settings, configure_container)
    try:
        yield running
    finally:
        await stop_server(running)


_NO_TOKEN = object()


class Connector:
    """`await connect("alice")`: a connected /chat client of alice (all closed at teardown)."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.clients: list[ChatClient] = []
        self._spare: list[socketio.AsyncClient] = []

    async def __call__(
        self,
        user_id: str,
        *,
        token: str | None = None,
        name: str | None = None,
        transports: tuple[str, ...] = ("websocket",),
    ) -> ChatClient:
        """Issue a token for `user_id` (unless given) and connect with it over WebSocket
        (or the `transports` given: `("polling", "websocket")` starts on long-polling and
        upgrades, as browsers do)."""
        secret = self.server.settings.jwt_secret or JWT_SECRET
        if token is None:
            token = issue_token(secret, user_id, ttl_s=3600, name=name)
        sio = new_sio()
        client = ChatClient(user_id=user_id, sio=sio)
        for event in (*SERVER_EVENTS, "disconnect"):
            sio.on(event, _recorder(client, event), namespace=CHAT)
        self.clients.append(client)
        await sio.connect(
            self.server.url,
            auth={"token": token},
            transports=list(transports),
            namespaces=[CHAT],
            wait_timeout=5,
        )
        return client

    async def refused(self, auth: object = _NO_TOKEN, namespace: str = CHAT) -> JsonObject:
        """Try to connect with `auth` (no auth at all by default); the `connect_error` data.

        Fails the test unless the client raises `socketio.exceptions.ConnectionError`.
        """
        sio = new_sio()
        self._spare.append(sio)
        errors: list[object] = []

        def on_error(*args: object) -> None:
            errors.extend(args)

        sio.on("connect_error", on_error, namespace=namespace)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await sio.connect(
                self.server.url,
                auth=None if auth is _NO_TOKEN else auth,
                transports=["websocket"],
                namespaces=[namespace],
                wait_timeout=5,
            )
        assert len(errors) == 1, errors
        return obj(errors[0])

    async def notifications(self, user_id: str, *, token: str | None = None) -> NotificationsClient:
        """A connected /notifications client of `user_id` (a token is issued unless given),
        recording `notification:new` and `notification:unread_count`."""
        secret = self.server.settings.jwt_secret or JWT_SECRET
        if token is None:
            token = issue_token(secret, user_id, ttl_s=3600)
        sio = new_sio()
        client = NotificationsClient(user_id=user_id, sio=sio)
        for event in (*NOTIFICATION_EVENTS, "disconnect"):
            sio.on(event, _recorder(client, event), namespace=NOTIFICATIONS)
        self.clients.append(client)
        await sio.connect(
            self.server.url,
            auth={"token": token},
            transports=["websocket"],
            namespaces=[NOTIFICATIONS],
            wait_timeout=5,
        )
        return client

    async def notifications_refused(self, auth: object = _NO_TOKEN) -> JsonObject:
        """Like `refused`, on the /notifications namespace: the `connect_error` data."""
        return await self.refused(auth, NOTIFICATIONS)

    async def close_all(self) -> None:
        """Disconnect every client this connector made."""
        for client in self.clients:
            await client.disconnect()
        for sio in self._spare:
            if sio.connected:
                await sio.disconnect()


class _EventHandler(Protocol):
    def __call__(self, *args: object) -> None: ...


def _recorder(client: ChatClient, event: str) -> _EventHandler:
    def handler(*args: object) -> None:
        client.record(event, *args)

    return handler


@pytest.fixture
async def connect(server: RunningServer) -> AsyncIterator[Connector]:
    """The factory of connected clients; disconnects them all after the test."""
    connector = Connector(server)
    try:
        yield connector
    finally:
        await connector.close_all()


@pytest.fixture
async def api(server: RunningServer) -> AsyncIterator[ApiClient]:
    """The server HTTP API with the server's API key (one client session per test)."""
    async with aiohttp.ClientSession() as session:
        yield ApiClient(session, server.url, server.settings.api_key)

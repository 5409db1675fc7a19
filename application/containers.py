"""The dependency-injector container: the composition root that picks adapters per setting.

`Container(settings=...)` wires ports to adapters. Stores are chosen with a `Selector` on
`settings.store` (`memory` or `redis`). Tests override providers with
real fakes (`container.active_users.override(...)`) before anything is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import redis.asyncio as aioredis
import socketio
from dependency_injector import containers, providers
from prometheus_client import CollectorRegistry

from adapters.auth import JwtTokenVerifier
from adapters.memory import (
    MemoryActiveUsersStore,
    MemoryMessageStore,
    MemoryNotificationStore,
    MemoryRoomRepository,
)
from adapters.memory.snapshot_keeper import SnapshotKeeper
from adapters.prometheus import PrometheusMetrics
from adapters.prometheus.summary import MetricsSummary
from adapters.ratelimit.gcra import GcraRateLimiter, RedisGcraRateLimiter
from adapters.redis.active_users import RedisActiveUsersStore
from adapters.redis.base import create_client
from adapters.redis.fanout import PromptRedisManager
from adapters.redis.messages import RedisMessageStore
from adapters.redis.notifications import RedisNotificationStore
from adapters.redis.rooms import RedisRoomRepository
from adapters.socketio.broadcaster import SocketIOBroadcaster
from adapters.socketio.chat import ChatNamespace
from adapters.socketio.delivery import FastManager
from adapters.socketio.fastjson import OrjsonShim, load_orjson
from adapters.socketio.notifications import NotificationsNamespace
from adapters.socketio.slow_consumers import SlowConsumerGuard
from adapters.socketio.transport import LeanServer
from adapters.system import SystemClock, TimeOrderedIds
from application.handlers.api import ServerApi
from application.handlers.chat import ChatCommands
from application.handlers.notifications import NotificationCommands
from application.handshake import HANDSHAKE_LIMIT, HandshakeGuard
from application.pipeline import (
    COMMANDS_LIMIT,
    MESSAGE_SEND_LIMIT,
    CommandPipeline,
    Middleware,
    rate_limit_middleware,
    timeout_middleware,
)
from application.presence_keeper import PresenceKeeper
from application.publisher import WireEventPublisher
from application.settings import Settings, SettingsError
from domain.model import CHAT_NAMESPACE, NOTIFICATIONS_NAMESPACE
from domain.ports import RateLimiter
from domain.services import (
    ChatMessageService,
    ChatRoomService,
    ConnectionManager,
    NotificationService,
    PresenceService,
)


class AdminUi(Protocol):
    """What we use of python-socketio's instrumented server (the Admin UI)."""

    async def shutdown(self) -> None: ...

    def uninstrument(self) -> None: ...


def _store_kind(settings: Settings) -> str:
    return settings.store


def _redis_client(settings: Settings) -> aioredis.Redis:
    return create_client(settings.redis_url or "redis://", max_connections=settings.redis_pool_size)


def _redis_prefix(settings: Settings) -> str:
    return settings.redis_prefix


def _snapshot_keeper(
    settings: Settings,
    rooms: object,
    messages: object,
    notifications: object,
    clock: SystemClock,
) -> SnapshotKeeper | None:
    """The snapshot file of the memory stores, if `SWITCHBOARD_SNAPSHOT_PATH` is set (memory
    store only: with Redis, or on the memory fallback of an unreachable Redis, it is None)."""
    if settings.snapshot_path is None or settings.store != "memory" or settings.fallback_active:
        return None
    if not (
        isinstance(rooms, MemoryRoomRepository)
        and isinstance(messages, MemoryMessageStore)
        and isinstance(notifications, MemoryNotificationStore)
    ):
        raise TypeError("snapshots need the memory stores (a store provider was overridden)")
    return SnapshotKeeper(
        Path(settings.snapshot_path),
        settings.snapshot_interval_s,
        rooms,
        messages,
        notifications,
        clock.now,
    )


def _client_manager(settings: Settings, metrics: PrometheusMetrics) -> socketio.AsyncManager:
    def count(delivered: int) -> None:
        metrics.increment_messages("delivered", delivered)

    if settings.store == "redis" and settings.redis_url:
        return PromptRedisManager(
            settings.redis_url,
            channel=settings.redis_prefix + "socketio",
            count_delivered=count,
            fast=settings.fast_fanout,
        )
    return FastManager(count, fast=settings.fast_fanout)


def _json_module(settings: Settings) -> OrjsonShim | None:
    """orjson for Socket.IO packets when installed (auto) or asked for; None: the stdlib."""
    if settings.json_library == "stdlib":
        return None
    orjson = load_orjson()
    if orjson is None:
        if settings.json_library == "orjson":
            raise SettingsError("SWITCHBOARD_JSON=orjson but orjson is not installed")
        return None
    return OrjsonShim(orjson)


def _socketio_server(settings: Settings, manager: socketio.AsyncManager) -> socketio.AsyncServer:
    admin_ui = settings.admin_ui_username is not None and settings.admin_ui_password is not None
    namespaces = [CHAT_NAMESPACE, NOTIFICATIONS_NAMESPACE] + (["/admin"] if admin_ui else [])
    json_module = _json_module(settings)
    extra = {} if json_module is None else {"json": json_module}
    return LeanServer(
        **extra,
        compress=settings.websocket_compression,
        async_mode="aiohttp",
        client_manager=manager,
        # None = same origin only (python-socketio's default); [] would switch CORS off
        cors_allowed_origins=list(settings.cors_origins) or None,
        namespaces=namespaces,  # "/" and any other namespace are refused
        max_http_buffer_size=settings.max_payload_bytes,
        logger=False,
        engineio_logger=False,
        ping_interval=25,
        ping_timeout=20,
    )


def _admin_ui(settings: Settings, sio: socketio.AsyncServer) -> AdminUi | None:
    if settings.admin_ui_username is None or settings.admin_ui_password is None:
        return None
    # production mode: the development mode emits once per recipient of every broadcast
    admin: AdminUi = sio.instrument(
        auth={"username": settings.admin_ui_username, "password": settings.admin_ui_password},
        mode="production",
    )
    return admin


def _slow_consumer_guard(
    settings: Settings, sio: socketio.AsyncServer, metrics: PrometheusMetrics
) -> SlowConsumerGuard:
    return SlowConsumerGuard(
        sio,
        metrics,
        max_queued=settings.slow_consumer_max_queued,
        max_buffered_bytes=settings.slow_consumer_max_buffered_bytes,
    )


def _verifier(settings: Settings, clock: SystemClock) -> JwtTokenVerifier:
    return JwtTokenVerifier(
        secret=settings.jwt_secret,
        public_key=settings.jwt_public_key,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        clock=clock,
    )


def _rate_limiter(settings: Settings, client: aioredis.Redis) -> RateLimiter:
    """Cluster-wide limits in Redis with several instances; GCRA in memory on one."""
    rates = {
        MESSAGE_SEND_LIMIT: settings.rate_message_send,
        COMMANDS_LIMIT: settings.rate_commands,
        HANDSHAKE_LIMIT: settings.rate_handshakes_per_ip,
    }
    if settings.store == "redis" and settings.redis_url:
        return RedisGcraRateLimiter(client, settings.redis_prefix, rates)
    return GcraRateLimiter(rates)


def _handshake_guard(
    settings: Settings,
    limiter: RateLimiter,
    connections: ConnectionManager,
    metrics: PrometheusMetrics,
) -> HandshakeGuard:
    return HandshakeGuard(
        limiter,
        connections,
        metrics,
        max_connections_per_user=settings.max_connections_per_user,
        trust_forwarded_for=settings.trust_forwarded_for,
    )


def _middlewares(
    settings: Settings, limiter: RateLimiter, metrics: PrometheusMetrics
) -> list[Middleware]:
    return [
        rate_limit_middleware(limiter, metrics),
        timeout_middleware(settings.handler_timeout_s),
    ]


def _chat_pipeline(
    commands: ChatCommands, middlewares: list[Middleware], metrics: PrometheusMetrics
) -> CommandPipeline:
    return CommandPipeline(CHAT_NAMESPACE, commands.routes(), middlewares, metrics)


def _notifications_pipeline(
    commands: NotificationCommands, middlewares: list[Middleware], metrics: PrometheusMetrics
) -> CommandPipeline:
    return CommandPipeline(NOTIFICATIONS_NAMESPACE, commands.routes(), middlewares, metrics)


def _instance_id(settings: Settings) -> str:
    return settings.instance_id


def _ttl_s(settings: Settings) -> float:
    return settings.presence_ttl_s


def _heartbeat_s(settings: Settings) -> float:
    return settings.presence_heartbeat_s


def _window_s(settings: Settings) -> float:
    return settings.coalesce_window_ms / 1000


class Container(containers.DeclarativeContainer):
    """Every collaborator of one server instance, built lazily, once."""

    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(TimeOrderedIds)
    registry = providers.Singleton(CollectorRegistry)
    metrics = providers.Singleton(PrometheusMetrics, registry)
    metrics_summary = providers.Singleton(MetricsSummary, registry)

    store_kind = providers.Callable(_store_kind, settings)
    redis_client = providers.Singleton(_redis_client, settings)
    redis_prefix = providers.Callable(_redis_prefix, settings)
    active_users = providers.Selector(
        store_kind,
        memory=providers.Singleton(MemoryActiveUsersStore),
        redis=providers.Singleton(RedisActiveUsersStore, redis_client, redis_prefix),
    )
    room_repository = providers.Selector(
        store_kind,
        memory=providers.Singleton(MemoryRoomRepository),
        redis=providers.Singleton(RedisRoomRepository, redis_client, redis_prefix),
    )
    message_store = providers.Selector(
        store_kind,
        memory=providers.Singleton(MemoryMessageStore),
        redis=providers.Singleton(RedisMessageStore, redis_client, redis_prefix),
    )
    notification_store = providers.Selector(
        store_kind,
        memory=providers.Singleton(MemoryNotificationStore),
        redis=providers.Singleton(RedisNotificationStore, redis_client, redis_prefix),
    )

    client_manager = providers.Singleton(_client_manager, settings, metrics)
    sio = providers.Singleton(_socketio_server, settings, client_manager)
    admin_ui = providers.Singleton(_admin_ui, settings, sio)
    token_verifier = providers.Singleton(_verifier, settings, clock)

    connection_manager = providers.Singleton(
        ConnectionManager,
        active_users,
        clock,
        providers.Callable(_instance_id, settings),
        providers.Callable(_ttl_s, settings),
    )
    broadcaster = providers.Singleton(SocketIOBroadcaster, sio, connection_manager)
    event_publisher = providers.Singleton(
        WireEventPublisher,
        broadcaster,
        connection_manager,
        metrics,
        providers.Callable(_window_s, settings),
    )
    presence_service = providers.Singleton(
        PresenceService,
        connection_manager,
        active_users,
        room_repository,
        event_publisher,
        providers.Callable(_window_s, settings),
    )
    room_service = providers.Singleton(
        ChatRoomService,
        room_repository,
        message_store,
        presence_service,
        event_publisher,
        clock,
        ids,
    )
    notification_service = providers.Singleton(
        NotificationService, notification_store, event_publisher, clock, ids
    )
    message_service = providers.Singleton(
        ChatMessageService,
        message_store,
        room_service,
        event_publisher,
        clock,
        ids,
        notification_service,
    )

    rate_limiter = providers.Singleton(_rate_limiter, settings, redis_client)
    handshake_guard = providers.Singleton(
        _handshake_guard, settings, rate_limiter, connection_manager, metrics
    )
    middlewares = providers.Singleton(_middlewares, settings, rate_limiter, metrics)
    chat_commands = providers.Singleton(
        ChatCommands, room_service, message_service, presence_service
    )
    chat_pipeline = providers.Singleton(_chat_pipeline, chat_commands, middlewares, metrics)
    chat_namespace = providers.Singleton(
        ChatNamespace,
        verifier=token_verifier,
        connections=connection_manager,
        pipeline=chat_pipeline,
        metrics=metrics,
        presence=presence_service,
        guard=handshake_guard,
    )

    notification_commands = providers.Singleton(NotificationCommands, notification_service)
    notifications_pipeline = providers.Singleton(
        _notifications_pipeline, notification_commands, middlewares, metrics
    )
    notifications_namespace = providers.Singleton(
        NotificationsNamespace,
        verifier=token_verifier,
        connections=connection_manager,
        pipeline=notifications_pipeline,
        metrics=metrics,
        guard=handshake_guard,
    )
    server_api = providers.Singleton(
        ServerApi, notification_service, message_service, presence_service, room_repository, ids
    )
    slow_consumer_guard = providers.Singleton(_slow_consumer_guard, settings, sio, metrics)
    presence_keeper = providers.Singleton(
        PresenceKeeper,
        connection_manager,
        presence_service,
        metrics,
        providers.Callable(_heartbeat_s, settings),
    )
    snapshot_keeper = providers.Singleton(
        _snapshot_keeper, settings, room_repository, message_store, notification_store, clock
    )

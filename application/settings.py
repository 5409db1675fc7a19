"""Settings from the environment (contract v1's table, plus tuning knobs), read once at start."""

from __future__ import annotations

import math
import secrets
import uuid
from collections.abc import Mapping
from typing import Literal

import attrs
import limits

StoreKind = Literal["memory", "redis"]


JSON_CHOICES = ("auto", "orjson", "stdlib")
LOOP_CHOICES = ("auto", "uvloop", "asyncio")


def _json_library(value: str) -> Literal["auto", "orjson", "stdlib"]:
    return "orjson" if value == "orjson" else "stdlib" if value == "stdlib" else "auto"


def _event_loop(value: str) -> Literal["auto", "uvloop", "asyncio"]:
    return "uvloop" if value == "uvloop" else "asyncio" if value == "asyncio" else "auto"


class SettingsError(Exception):
    """The configuration is missing or wrong; the message says what to set."""


@attrs.frozen
class Settings:
    """Everything configurable; see docs/configuration.md for each variable."""

    host: str = "127.0.0.1"
    port: int = 8080
    dev: bool = False
    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    api_key: str = ""
    store: StoreKind = "memory"
    redis_url: str | None = None
    redis_fallback: Literal["fail", "memory"] = "fail"
    cors_origins: tuple[str, ...] = ()
    log_level: str = "info"
    log_format: Literal["json", "console"] = "json"
    handler_timeout_s: float = 5.0
    coalesce_window_ms: int = 500
    max_payload_bytes: int = 65536
    presence_heartbeat_s: float = 4.0
    presence_ttl_s: float = 12.0
    instance_id: str = attrs.Factory(lambda: uuid.uuid4().hex[:12])
    generated_secrets: bool = False
    redis_prefix: str = "switchboard:"
    redis_pool_size: int = 200
    fallback_active: bool = False
    snapshot_path: str | None = None
    snapshot_interval_s: float = 60.0
    rate_message_send: str = "40 per 2 seconds"
    rate_commands: str = "50 per second"
    rate_handshakes_per_ip: str = "20 per second"
    max_connections_per_user: int = 20
    trust_forwarded_for: bool = False
    metrics_require_key: bool = False
    slow_consumer_max_queued: int = 1000
    slow_consumer_max_buffered_bytes: int = 1_048_576
    fast_fanout: bool = True
    websocket_compression: bool = False
    gc_tuning: bool = True
    json_library: Literal["auto", "orjson", "stdlib"] = "auto"
    event_loop: Literal["auto", "uvloop", "asyncio"] = "auto"
    admin_ui_username: str | None = None
    admin_ui_password: str | None = None

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str],
        *,
        dev: bool = False,
        host: str | None = None,
        port: int | None = None,
    ) -> Settings:
        """Read and check every setting; raises `SettingsError` with a clear message."""
        reader = _Reader(env)
        secret = reader.text("SWITCHBOARD_JWT_SECRET")
        public_key = reader.text("SWITCHBOARD_JWT_PUBLIC_KEY")
        api_key = reader.text("SWITCHBOARD_API_KEY")
        generated = False
        if secret is None and public_key is None:
            if not dev:
                raise SettingsError(
                    "SWITCHBOARD_JWT_SECRET (at least 32 bytes) or SWITCHBOARD_JWT_PUBLIC_KEY "
                    "is required; run with --dev to use a generated one"
                )
            secret, generated = secrets.token_urlsafe(32), True
        if secret is not None and len(secret.encode()) < 32:
            raise SettingsError("SWITCHBOARD_JWT_SECRET must be at least 32 bytes long")
        if api_key is None:
            if not dev:
                raise SettingsError(
                    "SWITCHBOARD_API_KEY is required; run with --dev to use a generated one"
                )
            api_key, generated = secrets.token_urlsafe(24), True
        redis_url = reader.text("REDIS_URL")
        store = reader.choice(
            "SWITCHBOARD_STORE", ("memory", "redis"), "redis" if redis_url else "memory"
        )
        if store == "redis" and redis_url is None:
            raise SettingsError("SWITCHBOARD_STORE=redis needs REDIS_URL")
        heartbeat = reader.number("SWITCHBOARD_PRESENCE_HEARTBEAT_S", 4.0, minimum=0.05)
        ttl = reader.number("SWITCHBOARD_PRESENCE_TTL_S", 12.0, minimum=0.1)
        if ttl <= heartbeat:
            raise SettingsError("SWITCHBOARD_PRESENCE_TTL_S must be longer than the heartbeat")
        origins = reader.text("SWITCHBOARD_CORS_ORIGINS")
        admin_user = reader.text("SWITCHBOARD_ADMIN_UI_USERNAME")
        admin_password = reader.text("SWITCHBOARD_ADMIN_UI_PASSWORD")
        if (admin_user is None) != (admin_password is None):
            raise SettingsError(
                "the Admin UI needs both SWITCHBOARD_ADMIN_UI_USERNAME and "
                "SWITCHBOARD_ADMIN_UI_PASSWORD (or neither, to keep it off)"
            )
        return cls(
            host=host or reader.text("SWITCHBOARD_HOST") or "127.0.0.1",
            port=port
            if port is not None
            else reader.integer("SWITCHBOARD_PORT", 8080, minimum=0, maximum=65535),
            dev=dev,
            jwt_secret=secret if public_key is None else None,
            jwt_public_key=public_key,
            jwt_audience=reader.text("SWITCHBOARD_JWT_AUDIENCE"),
            jwt_issuer=reader.text("SWITCHBOARD_JWT_ISSUER"),
            api_key=api_key,
            store="redis" if store == "redis" else "memory",
            redis_url=redis_url,
            redis_fallback="memory"
            if reader.choice("REDIS_FALLBACK", ("fail", "memory"), "fail") == "memory"
            else "fail",
            cors_origins=tuple(o.strip() for o in (origins or "").split(",") if o.strip()),
            log_level=reader.choice(
                "SWITCHBOARD_LOG_LEVEL", ("debug", "info", "warning", "error", "critical"), "info"
            ),
            log_format="console"
            if reader.choice("SWITCHBOARD_LOG_FORMAT", ("json", "console"), "json") == "console"
            else "json",
            handler_timeout_s=reader.number("SWITCHBOARD_HANDLER_TIMEOUT_S", 5.0, minimum=0.001),
            coalesce_window_ms=reader.integer(
                "SWITCHBOARD_COALESCE_WINDOW_MS", 500, minimum=1, maximum=60_000
            ),
            max_payload_bytes=reader.integer(
                "SWITCHBOARD_MAX_PAYLOAD_BYTES", 65536, minimum=1024, maximum=64 * 1024 * 1024
            ),
            presence_heartbeat_s=heartbeat,
            presence_ttl_s=ttl,
            instance_id=reader.text("SWITCHBOARD_INSTANCE_ID") or uuid.uuid4().hex[:12],
            generated_secrets=generated,
            redis_prefix=reader.text("SWITCHBOARD_REDIS_PREFIX") or "switchboard:",
            redis_pool_size=reader.integer(
                "SWITCHBOARD_REDIS_POOL_SIZE", 200, minimum=1, maximum=10_000
            ),
            snapshot_path=reader.text("SWITCHBOARD_SNAPSHOT_PATH"),
            snapshot_interval_s=reader.number("SWITCHBOARD_SNAPSHOT_INTERVAL_S", 60.0, minimum=0.1),
            rate_message_send=reader.rate("SWITCHBOARD_RATE_MESSAGE_SEND", "40 per 2 seconds"),
            rate_commands=reader.rate("SWITCHBOARD_RATE_COMMANDS", "50 per second"),
            rate_handshakes_per_ip=reader.rate(
                "SWITCHBOARD_RATE_HANDSHAKES_PER_IP", "20 per second"
            ),
            max_connections_per_user=reader.integer(
                "SWITCHBOARD_MAX_CONNECTIONS_PER_USER", 20, minimum=1, maximum=10_000
            ),
            trust_forwarded_for=reader.flag("SWITCHBOARD_TRUST_FORWARDED_FOR"),
            metrics_require_key=reader.flag("SWITCHBOARD_METRICS_REQUIRE_KEY"),
            slow_consumer_max_queued=reader.integer(
                "SWITCHBOARD_SLOW_CONSUMER_MAX_QUEUED", 1000, minimum=10, maximum=1_000_000
            ),
            slow_consumer_max_buffered_bytes=reader.integer(
                "SWITCHBOARD_SLOW_CONSUMER_MAX_BUFFERED_BYTES",
                1_048_576,
                minimum=4096,
                maximum=1 << 30,
            ),
            fast_fanout=not reader.flag("SWITCHBOARD_SLOW_FANOUT"),
            websocket_compression=reader.flag("SWITCHBOARD_WS_COMPRESSION"),
            gc_tuning=not reader.flag("SWITCHBOARD_NO_GC_TUNING"),
            json_library=_json_library(reader.choice("SWITCHBOARD_JSON", JSON_CHOICES, "auto")),
            event_loop=_event_loop(reader.choice("SWITCHBOARD_EVENT_LOOP", LOOP_CHOICES, "auto")),
            admin_ui_username=admin_user,
            admin_ui_password=admin_password,
        )


@attrs.frozen
class _Reader:
    env: Mapping[str, str]

    def text(self, name: str) -> str | None:
        value = self.env.get(name, "").strip()
        return value or None

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = (self.text(name) or default).lower()
        if value not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)} (got {value!r})")
        return value

    def number(self, name: str, default: float, *, minimum: float) -> float:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a number (got {raw!r})") from None
        if not math.isfinite(value):
            raise SettingsError(f"{name} must be a finite number (got {raw!r})")
        if value < minimum:
            raise SettingsError(f"{name} must be at least {minimum:g} (got {raw!r})")
        return value

    def flag(self, name: str) -> bool:
        return self.choice(name, ("true", "false", "1", "0", "yes", "no"), "false") in (
            "true",
            "1",
            "yes",
        )

    def rate(self, name: str, default: str) -> str:
        raw = self.text(name) or default
        try:
            parsed = limits.parse_many(raw)
        except ValueError:
            parsed = []
        if len(parsed) != 1 or parsed[0].amount < 1:
            raise SettingsError(
                f"{name} must be one rate like '20 per second' or '40 per 2 seconds', "
                f"at least 1 (got {raw!r})"
            )
        return raw

    def integer(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a whole number (got {raw!r})") from None
        if value < minimum:
            raise SettingsError(f"{name} must be at least {minimum} (got {raw!r})")
        if value > maximum:
            raise SettingsError(f"{name} must be at most {maximum} (got {raw!r})")
        return value

"""The transport-neutral command pipeline every handler goes through.

    correlation id -> structured log line + metrics -> error mapping
        -> middlewares (rate limit, ...) -> timeout -> validation -> handler

A namespace adapter calls `CommandPipeline.dispatch` and sends back the ack envelope it
returns; it never sees an exception. Middlewares are plain async callables, so rate
limiting or extra instrumentation plug in without touching handlers.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from typing import TypeVar

import attrs
import structlog

from application.contract import wire
from application.contract.validation import parse
from application.json_types import JsonObject
from application.logging import get_logger
from domain.errors import CommandTimeout, DomainError, RateLimited, UnknownEvent
from domain.model import Sid, UserId
from domain.ports import MetricsCollector, RateLimiter

P = TypeVar("P")

correlation_id_var: ContextVar[str] = ContextVar("correlation_id", default="")

log = get_logger("switchboard.command")


def new_correlation_id() -> str:
    """A fresh correlation id."""
    return uuid.uuid4().hex


@attrs.frozen
class CommandContext:
    """Who sent which command, where; passed to every middleware and handler."""

    namespace: str
    event: str
    sid: Sid
    user_id: UserId
    correlation_id: str
    label: str = ""  # the metrics label: the event name, or "unknown"


Handler = Callable[[CommandContext, object], Awaitable[JsonObject]]
Middleware = Callable[[CommandContext, object, Handler], Awaitable[JsonObject]]


def route(
    payload_type: type[P], handler: Callable[[CommandContext, P], Awaitable[JsonObject]]
) -> Handler:
    """A handler that first validates the raw payload into `payload_type`."""

    async def validated(ctx: CommandContext, raw: object) -> JsonObject:
        return await handler(ctx, parse(payload_type, raw))

    return validated


def timeout_middleware(seconds: float) -> Middleware:
    """Answer `timeout` when the rest of the chain takes longer than `seconds`."""

    async def middleware(ctx: CommandContext, raw: object, call_next: Handler) -> JsonObject:
        scope = asyncio.timeout(seconds)
        try:
            async with scope:
                return await call_next(ctx, raw)
        except TimeoutError:
            if not scope.expired():
                raise  # the handler's own TimeoutError (e.g. a store client): internal
            raise CommandTimeout(f"the command did not finish within {seconds:g} s") from None

    return middleware


MESSAGE_SEND_LIMIT = "message_send"
COMMANDS_LIMIT = "commands"


def rate_limit_middleware(limiter: RateLimiter, metrics: MetricsCollector) -> Middleware:
    """Refuse a command over its user's limit with `rate_limited` (and `retry_after_ms`)
    before anything runs: `message:send` has its own limit, every other command shares one."""

    async def middleware(ctx: CommandContext, raw: object, call_next: Handler) -> JsonObject:
        limit = MESSAGE_SEND_LIMIT if ctx.event == "message:send" else COMMANDS_LIMIT
        retry_after_ms = await limiter.hit(limit, ctx.user_id)
        if retry_after_ms is not None:
            metrics.record_rate_limited(ctx.label or ctx.event)
            raise RateLimited(
                f"too many commands; retry in {retry_after_ms} ms", retry_after_ms=retry_after_ms
            )
        return await call_next(ctx, raw)

    return middleware


class CommandPipeline:
    """Runs the commands of one namespace through the middlewares to their handlers."""

    def __init__(
        self,
        namespace: str,
        routes: Mapping[str, Handler],
        middlewares: Sequence[Middleware],
        metrics: MetricsCollector,
    ) -> None:
        self.namespace = namespace
        self._metrics = metrics
        self._chains = {event: _wrap(handler, middlewares) for event, handler in routes.items()}
        self._unknown = _wrap(_unknown, middlewares)

    @property
    def events(self) -> list[str]:
        """The command names this pipeline serves."""
        return sorted(self._chains)

    async def dispatch(self, event: str, sid: Sid, user_id: UserId, raw: object) -> JsonObject:
        """Run one command and return its ack envelope; never raises."""
        correlation_id = new_correlation_id()
        token = correlation_id_var.set(correlation_id)
        chain = self._chains.get(event)
        label = event if chain is not None else "unknown"
        ctx = CommandContext(self.namespace, event, sid, user_id, correlation_id, label)
        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(
            correlation_id=correlation_id,
            user_id=user_id,
            namespace=self.namespace,
            command=label,
        ):
            try:
                data = await (chain or self._unknown)(ctx, raw)
                outcome, ack = "ok", wire.ok(data)
            except DomainError as exc:
                outcome, ack = exc.code, wire.failure(exc, correlation_id)
            except Exception:
                log.exception("command_crashed")
                outcome = "internal"
                ack = {
                    "ok": False,
                    "error": wire.error_object(
                        "internal", "internal error; quote the correlation id", correlation_id
                    ),
                }
            finally:
                correlation_id_var.reset(token)
            duration = time.perf_counter() - started
            self._metrics.record_command(self.namespace, label, outcome)
            self._metrics.record_response_time(self.namespace, label, duration)
            if outcome != "ok":
                self._metrics.record_error(outcome)
            log_method = log.info if outcome == "ok" else log.warning
            log_method("command_handled", outcome=outcome, duration_ms=round(duration * 1000, 3))
        return ack


async def _unknown(ctx: CommandContext, raw: object) -> JsonObject:
    raise UnknownEvent(f"unknown event {ctx.event[:64]!r} on {ctx.namespace}")


def _wrap(handler: Handler, middlewares: Sequence[Middleware]) -> Handler:
    for middleware in reversed(middlewares):
        handler = _bind(middleware, handler)
    return handler


def _bind(middleware: Middleware, call_next: Handler) -> Handler:
    async def bound(ctx: CommandContext, raw: object) -> JsonObject:
        return await middleware(ctx, raw, call_next)

    return bound

"""`CommandPipeline`: envelopes, error mapping, middlewares, timeouts, logs and metrics."""

from __future__ import annotations

import asyncio

import attrs
import pytest
import structlog
from structlog.testing import capture_logs
from structlog.typing import EventDict

from adapters.memory import MemoryMetrics
from application.json_types import JsonObject
from application.pipeline import (
    CommandContext,
    CommandPipeline,
    Handler,
    Middleware,
    correlation_id_var,
    new_correlation_id,
    route,
    timeout_middleware,
)
from domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthenticated,
    Unavailable,
)

NS = "/chat"


@attrs.frozen
class Echo:
    text: str


@attrs.frozen
class Empty:
    pass


async def echo(ctx: CommandContext, payload: Echo) -> JsonObject:
    return {"text": payload.text, "user": ctx.user_id, "event": ctx.event}


def raising(error: Exception) -> Handler:
    async def handler(ctx: CommandContext, payload: Empty) -> JsonObject:
        raise error

    return route(Empty, handler)


def pipeline(
    routes: dict[str, Handler],
    metrics: MemoryMetrics,
    middlewares: list[Middleware] | None = None,
) -> CommandPipeline:
    return CommandPipeline(NS, routes, middlewares or [], metrics)


def error_of(ack: JsonObject) -> JsonObject:
    assert ack["ok"] is False
    assert set(ack) == {"ok", "error"}
    error = ack["error"]
    assert isinstance(error, dict)
    return error


def merged_logs() -> list[structlog.typing.Processor]:
    return [structlog.contextvars.merge_contextvars]


def events_named(logs: list[EventDict], name: str) -> list[EventDict]:
    return [entry for entry in logs if entry["event"] == name]


@pytest.fixture
def metrics() -> MemoryMetrics:
    return MemoryMetrics()


# --- success ----------------------------------------------------------------------------------


async def test_success_envelope(metrics: MemoryMetrics) -> None:
    chain = pipeline({"echo": route(Echo, echo)}, metrics)
    ack = await chain.dispatch("echo", "sid1", "alice", {"text": "hi"})
    assert ack == {"ok": True, "data": {"text": "hi", "user": "alice", "event": "echo"}}


async def test_events_lists_the_routes(metrics: MemoryMetrics) -> None:
    chain = pipeline({"b": route(Echo, echo), "a": route(Echo, echo)}, metrics)
    assert chain.events == ["a", "b"]
    assert chain.namespace == NS


async def test_context_carries_the_caller(metrics: MemoryMetrics) -> None:
    seen: list[CommandContext] = []

    async def handler(ctx: CommandContext, payload: Empty) -> JsonObject:
        seen.append(ctx)
        return {}

    chain = pipeline({"look": route(Empty, handler)}, metrics)
    await chain.dispatch("look", "sid9", "bob", {})
    assert len(seen) == 1
    ctx = seen[0]
    assert (ctx.namespace, ctx.event, ctx.sid, ctx.user_id) == (NS, "look", "sid9", "bob")
    assert len(ctx.correlation_id) == 32


def test_correlation_ids_are_unique() -> None:
    assert len({new_correlation_id() for _ in range(100)}) == 100


# --- error mapping ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (Forbidden("nope"), "forbidden"),
        (NotFound("nope"), "not_found"),
        (Conflict("nope"), "conflict"),
        (Unauthenticated("nope"), "unauthenticated"),
        (Unavailable("nope"), "unavailable"),
        (PayloadTooLarge("nope"), "payload_too_large"),
    ],
)
async def test_domain_errors_map_to_their_codes(
    metrics: MemoryMetrics, error: DomainError, code: str
) -> None:
    chain = pipeline({"fail": raising(error)}, metrics)
    error_obj = error_of(await chain.dispatch("fail", "s", "u", {}))
    assert error_obj["code"] == code
    assert error_obj["message"] == "nope"
    assert "details" not in error_obj
    assert metrics.commands[(NS, "fail", code)] == 1
    assert metrics.errors[code] == 1


async def test_rate_limited_carries_retry_after(metrics: MemoryMetrics) -> None:
    chain = pipeline({"fail": raising(RateLimited("slow", retry_after_ms=120))}, metrics)
    error_obj = error_of(await chain.dispatch("fail", "s", "u", {}))
    assert error_obj["code"] == "rate_limited"
    assert error_obj["details"] == {"retry_after_ms": 120}


async def test_validation_failure_from_route(metrics: MemoryMetrics) -> None:
    chain = pipeline({"echo": route(Echo, echo)}, metrics)
    error_obj = error_of(await chain.dispatch("echo", "s", "u", {"text": 5}))
    assert error_obj["code"] == "validation_failed"
    assert error_obj["details"] == {"fields": [{"path": "$.text", "message": "must be a string"}]}
    assert metrics.commands[(NS, "echo", "validation_failed")] == 1


@pytest.mark.parametrize("raw", [None, "text", [1, 2], 42])
async def test_non_object_payloads_are_answered(metrics: MemoryMetrics, raw: object) -> None:
    chain = pipeline({"echo": route(Echo, echo)}, metrics)
    error_obj = error_of(await chain.dispatch("echo", "s", "u", raw))
    assert error_obj["code"] == "validation_failed"
    assert error_obj["details"] == {"fields": [{"path": "$", "message": "must be a JSON object"}]}


async def test_unexpected_exception_is_internal_and_logged(metrics: MemoryMetrics) -> None:
    chain = pipeline({"boom": raising(RuntimeError("secret db password in text"))}, metrics)
    with capture_logs(processors=merged_logs()) as logs:
        ack = await chain.dispatch("boom", "s", "alice", {})
    error_obj = error_of(ack)
    assert error_obj["code"] == "internal"
    assert "secret" not in str(ack)
    assert "RuntimeError" not in str(ack)
    assert set(error_obj) == {"code", "message", "correlation_id"}
    crashed = events_named(logs, "command_crashed")
    assert len(crashed) == 1
    assert crashed[0]["log_level"] == "error"
    assert crashed[0]["exc_info"] is True
    assert crashed[0]["correlation_id"] == error_obj["correlation_id"]
    assert crashed[0]["user_id"] == "alice"
    assert crashed[0]["command"] == "boom"
    assert metrics.commands[(NS, "boom", "internal")] == 1
    assert metrics.errors["internal"] == 1


async def test_unknown_event(metrics: MemoryMetrics) -> None:
    chain = pipeline({"echo": route(Echo, echo)}, metrics)
    with capture_logs(processors=merged_logs()) as logs:
        ack = await chain.dispatch("no:such", "s", "u", {"text": "x"})
    error_obj = error_of(ack)
    assert error_obj["code"] == "unknown_event"
    assert "no:such" in str(error_obj["message"])
    assert metrics.commands == {(NS, "unknown", "unknown_event"): 1}
    assert list(metrics.durations) == [(NS, "unknown")]
    assert metrics.errors == {"unknown_event": 1}
    handled = events_named(logs, "command_handled")
    assert handled[0]["command"] == "unknown"


async def test_unknown_event_name_is_cut_in_the_message(metrics: MemoryMetrics) -> None:
    chain = pipeline({}, metrics)
    error_obj = error_of(await chain.dispatch("x" * 10_000, "s", "u", {}))
    assert len(str(error_obj["message"])) < 200


async def test_unknown_event_goes_through_middlewares(metrics: MemoryMetrics) -> None:
    seen: list[str] = []

    async def record(ctx: CommandContext, raw: object, call_next: Handler) -> JsonObject:
        seen.append(ctx.event)
        return await call_next(ctx, raw)

    chain = pipeline({}, metrics, [record])
    await chain.dispatch("what", "s", "u", {})
    assert seen == ["what"]


# --- timeout ----------------------------------------------------------------------------------


async def test_slow_handler_times_out(metrics: MemoryMetrics) -> None:
    finished: list[bool] = []

    async def slow(ctx: CommandContext, payload: Empty) -> JsonObject:
        await asyncio.sleep(5)
        finished.append(True)
        return {}

    chain = pipeline({"slow": route(Empty, slow)}, metrics, [timeout_middleware(0.05)])
    loop = asyncio.get_running_loop()
    started = loop.time()
    error_obj = error_of(await chain.dispatch("slow", "s", "u", {}))
    assert loop.time() - started < 1.0
    assert error_obj["code"] == "timeout"
    assert "0.05" in str(error_obj["message"])
    assert finished == []
    assert metrics.commands[(NS, "slow", "timeout")] == 1
    assert metrics.errors["timeout"] == 1


async def test_fast_handler_within_timeout(metrics: MemoryMetrics) -> None:
    chain = pipeline({"echo": route(Echo, echo)}, metrics, [timeout_middleware(1.0)])
    ack = await chain.dispatch("echo", "s", "u", {"text": "t"})
    assert ack["ok"] is True


async def test_own_timeout_error_of_a_handler_is_not_the_command_timeout(
    metrics: MemoryMetrics,
) -> None:
    # a TimeoutError raised by the handler itself (a store client timing out, say) after
    # a few microseconds is a crash to log, not "did not finish within 5 s"
    chain = pipeline({"t": raising(TimeoutError("socket"))}, metrics, [timeout_middleware(5)])
    with capture_logs() as logs:
        error_obj = error_of(await chain.dispatch("t", "s", "u", {}))
    assert error_obj["code"] == "internal"
    assert events_named(logs, "command_crashed")


# --- middlewares ------------------------------------------------------------------------------


async def test_middlewares_run_in_order(metrics: MemoryMetrics) -> None:
    calls: list[str] = []

    def recording(name: str) -> Middleware:
        async def middleware(ctx: CommandContext, raw: object, call_next: Handler) -> JsonObject:
            calls.append(f"{name}:before")
            result = await call_next(ctx, raw)
            calls.append(f"{name}:after")
            return result

        return middleware

    async def handler(ctx: CommandContext, payload: Empty) -> JsonObject:
        calls.append("handler")
        return {}

    chain = pipeline(
        {"go": route(Empty, handler)}, metrics, [recording("a"), recording("b"), recording("c")]
    )
    await chain.dispatch("go", "s", "u", {})
    assert calls == ["a:before", "b:before", "c:before", "handler", "c:after", "b:after", "a:after"]


async def test_middleware_can_short_circuit(metrics: MemoryMetrics) -> None:
    reached: list[str] = []

    async def gate(ctx: CommandContext, raw: object, call_next: Handler) -> JsonObject:
        if ctx.user_id == "banned":
            raise RateLimited("too many", retry_after_ms=1000)
        return await call_next(ctx, raw)

    async def cached(ctx: CommandContext, raw: object, call_next: Handler) -> JsonObject:
        if raw == {"cached": True}:
            return {"from": "cache"}
        return await call_next(ctx, raw)

    async def handler(ctx: CommandContext, payload: Empty) -> JsonObject:
        reached.append(ctx.user_id)
        return {"from": "handler"}

    chain = pipeline({"go": route(Empty, handler)}, metrics, [gate, cached])
    limited = error_of(await chain.dispatch("go", "s", "banned", {}))
    assert limited["code"] == "rate_limited"
    assert await chain.dispatch("go", "s", "u", {"cached": True}) == {
        "ok": True,
        "data": {"from": "cache"},
    }
    assert await chain.dispatch("go", "s", "u", {}) == {"ok": True, "data": {"from": "handler"}}
    assert reached == ["u"]


async def test_middleware_sees_raw_payload_before_validation(metrics: MemoryMetrics) -> None:
    raws: list[object] = []

    async def spy(ctx: CommandContext, raw: object, call_next: Handler) -> JsonObject:
        raws.append(raw)
        return await call_next(ctx, raw)

    chain = pipeline({"echo": route(Echo, echo)}, metrics, [spy])
    await chain.dispatch("echo", "s", "u", "not an object")
    assert raws == ["not an object"]


# --- correlation ids --------------------------------------------------------------------------


async def test_failures_carry_the_correlation_id_of_the_log_line(metrics: MemoryMetrics) -> None:
    chain = pipeline({"fail": raising(NotFound("gone")), "echo": route(Echo, echo)}, metrics)
    with capture_logs(processors=merged_logs()) as logs:
        acks = [
            await chain.dispatch("fail", "s", "u", {}),
            await chain.dispatch("echo", "s", "u", {"text": "t"}),
            await chain.dispatch("nope", "s", "u", {}),
        ]
    handled = events_named(logs, "command_handled")
    assert len(handled) == 3
    failure_ids = [error_of(acks[0])["correlation_id"], error_of(acks[2])["correlation_id"]]
    assert failure_ids == [handled[0]["correlation_id"], handled[2]["correlation_id"]]
    assert len({entry["correlation_id"] for entry in handled}) == 3
    assert [entry["outcome"] for entry in handled] == ["not_found", "ok", "unknown_event"]
    assert [entry["log_level"] for entry in handled] == ["warning", "info", "warning"]
    assert all(entry["namespace"] == NS for entry in handled)
    assert all(isinstance(entry["duration_ms"], float) for entry in handled)


async def test_correlation_id_visible_in_handler_and_reset_after(metrics: MemoryMetrics) -> None:
    inside: list[tuple[str, str]] = []

    async def handler(ctx: CommandContext, payload: Empty) -> JsonObject:
        inside.append((correlation_id_var.get(), ctx.correlation_id))
        raise NotFound("x")

    chain = pipeline({"look": route(Empty, handler)}, metrics)
    assert correlation_id_var.get() == ""
    ack = await chain.dispatch("look", "s", "u", {})
    assert correlation_id_var.get() == ""
    [(seen, ctx_id)] = inside
    assert seen == ctx_id
    assert seen == error_of(ack)["correlation_id"]


async def test_correlation_id_reset_after_crash(metrics: MemoryMetrics) -> None:
    chain = pipeline({"boom": raising(ValueError("x"))}, metrics)
    with capture_logs():
        await chain.dispatch("boom", "s", "u", {})
    assert correlation_id_var.get() == ""
    assert structlog.contextvars.get_contextvars() == {}


async def test_concurrent_commands_keep_their_own_ids(metrics: MemoryMetrics) -> None:
    async def handler(ctx: CommandContext, payload: Empty) -> JsonObject:
        await asyncio.sleep(0.01)
        return {"cid": correlation_id_var.get(), "ctx": ctx.correlation_id}

    chain = pipeline({"go": route(Empty, handler)}, metrics)
    acks = await asyncio.gather(*(chain.dispatch("go", "s", "u", {}) for _ in range(10)))
    datas = [ack["data"] for ack in acks]
    assert all(isinstance(d, dict) and d["cid"] == d["ctx"] for d in datas)
    assert len({str(d) for d in datas}) == 10


# --- metrics ----------------------------------------------------------------------------------


async def test_metrics_move(metrics: MemoryMetrics) -> None:
    chain = pipeline({"echo": route(Echo, echo), "fail": raising(Conflict("c"))}, metrics)
    await chain.dispatch("echo", "s", "u", {"text": "a"})
    await chain.dispatch("echo", "s", "u", {"text": "b"})
    await chain.dispatch("echo", "s", "u", {})
    await chain.dispatch("fail", "s", "u", {})
    assert metrics.commands == {
        (NS, "echo", "ok"): 2,
        (NS, "echo", "validation_failed"): 1,
        (NS, "fail", "conflict"): 1,
    }
    assert len(metrics.durations[(NS, "echo")]) == 3
    assert len(metrics.durations[(NS, "fail")]) == 1
    assert all(d >= 0 for d in metrics.durations[(NS, "echo")])
    assert metrics.errors == {"validation_failed": 1, "conflict": 1}


async def test_success_counts_no_error(metrics: MemoryMetrics) -> None:
    chain = pipeline({"echo": route(Echo, echo)}, metrics)
    await chain.dispatch("echo", "s", "u", {"text": "a"})
    assert metrics.errors == {}


async def test_duration_covers_the_handler(metrics: MemoryMetrics) -> None:
    async def handler(ctx: CommandContext, payload: Empty) -> JsonObject:
        await asyncio.sleep(0.03)
        return {}

    chain = pipeline({"go": route(Empty, handler)}, metrics)
    await chain.dispatch("go", "s", "u", {})
    [duration] = metrics.durations[(NS, "go")]
    assert duration >= 0.025

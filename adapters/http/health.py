"""Liveness, readiness and (with --dev) the dev token endpoint."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from adapters.http.errors import error_response
from application.json_types import JsonObject
from application.ports import ReadinessProbe


async def healthz(_: web.Request) -> web.Response:
    """200 while the process serves."""
    return web.json_response({"status": "ok"})


def readyz_handler(
    probes: Sequence[ReadinessProbe],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """200 when every backing store answers (`degraded` on a fallback), else 503."""

    async def readyz(_: web.Request) -> web.Response:
        results: JsonObject = {}
        for probe in probes:
            try:
                results[probe.name] = await probe.check()
            except Exception as exc:  # a probe must never break the endpoint
                results[probe.name] = f"error: {type(exc).__name__}"
        failing = [name for name, state in results.items() if state not in ("ok", "degraded")]
        if failing:
            return web.json_response({"status": "unavailable", "stores": results}, status=503)
        status = "degraded" if "degraded" in results.values() else "ok"
        return web.json_response({"status": status, "stores": results})

    return readyz


def dev_token_handler(
    issue: Callable[[str], str],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """`GET /dev/token?user_id=alice` -> `{"token": ...}` (only mounted with --dev)."""

    async def dev_token(request: web.Request) -> web.Response:
        user_id = request.query.get("user_id", "")
        if not 1 <= len(user_id) <= 128:
            return error_response(
                "validation_failed",
                "user_id is required (1 to 128 characters)",
                {"fields": [{"path": "$.user_id", "message": "must have 1 to 128 characters"}]},
            )
        return web.json_response({"token": issue(user_id), "user_id": user_id})

    return dev_token

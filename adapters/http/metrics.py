"""`GET /metrics` (Prometheus text) and `GET /api/v1/metrics` (JSON summary for dashboards)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from adapters.http.api import HttpApi
from adapters.prometheus.summary import MetricsSummary


def add_metrics_routes(
    app: web.Application,
    *,
    registry: CollectorRegistry,
    summary: MetricsSummary,
    api: HttpApi,
    require_key: bool,
) -> None:
    """Mount the two metrics routes; `/metrics` asks for the API key only if told to."""

    async def prometheus_text(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        response = web.Response(body=body)
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def dashboard(_: web.Request) -> web.Response:
        return web.json_response(summary.summary())

    app.router.add_get("/metrics", api.guard(prometheus_text) if require_key else prometheus_text)
    app.router.add_get("/api/v1/metrics", api.guard(dashboard))

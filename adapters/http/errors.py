"""JSON error responses with the contract's error object."""

from __future__ import annotations

from aiohttp import web

from application.contract import wire
from application.pipeline import correlation_id_var, new_correlation_id

STATUS_OF_CODE = {
    "validation_failed": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "payload_too_large": 413,
    "rate_limited": 429,
    "unavailable": 503,
    "timeout": 504,
    "internal": 500,
}


def error_response(
    code: str,
    message: str,
    details: dict[str, object] | None = None,
    status: int | None = None,
    correlation_id: str | None = None,
) -> web.Response:
    """`{"error": {...}}` with the status that fits the code (and the request's correlation id
    when there is one, so the client can quote what the log line carries)."""
    cid = correlation_id or correlation_id_var.get() or new_correlation_id()
    body = {"error": wire.error_object(code, message, cid, details)}
    return web.json_response(body, status=status or STATUS_OF_CODE.get(code, 500))

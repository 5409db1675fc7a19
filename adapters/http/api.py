"""aiohttp routes of the server HTTP API: bearer API key, JSON in and out, JSON errors."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import hdrs, web

from adapters.http.errors import error_response
from application.contract import wire
from application.handlers.api import ServerApi
from application.logging import get_logger
from application.pipeline import correlation_id_var, new_correlation_id
from domain.errors import DomainError, ValidationFailed

log = get_logger("switchboard.http")

Endpoint = Callable[[web.Request], Awaitable[web.Response]]

_CODE_OF_STATUS = {
    400: "validation_failed",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


async def json_error_bodies(request: web.Request, response: web.StreamResponse) -> None:
    """Give aiohttp's own error answers (unknown route 404, 405, 413, 500) the contract's
    JSON error object, just before their headers go out (`on_response_prepare`).

    A signal rather than a middleware on purpose: a middleware is a coroutine frame that lives
    as long as the request, and a WebSocket request lives as long as its connection (about
    1 KB per connection, with aiohttp's own middleware wrapper). Engine.IO's answers under
    `/socket.io` keep their own format, as do answers that are already JSON."""
    if (
        response.status < 400
        or not isinstance(response, web.Response)
        or response.content_type == "application/json"
        or request.path.startswith("/socket.io")
    ):
        return
    code = _CODE_OF_STATUS.get(
        response.status, "internal" if response.status >= 500 else "conflict"
    )
    cid = correlation_id_var.get() or new_correlation_id()
    body = json.dumps({"error": wire.error_object(code, response.reason, cid, None)}).encode()
    response.content_type = "application/json"
    response.charset = "utf-8"
    response.body = body
    response.headers[hdrs.CONTENT_LENGTH] = str(len(body))  # aiohttp counted the old body


class HttpApi:
    """Binds `ServerApi` to routes, checking the bearer key in constant time."""

    def __init__(self, api: ServerApi, api_key: str) -> None:
        self._api = api
        self._key = api_key.encode()

    def add_routes(self, app: web.Application) -> None:
        """Mount the `/api/v1` routes."""
        app.router.add_post("/api/v1/notifications", self._guard(self._notifications))
        app.router.add_post("/api/v1/rooms/{room_id}/messages", self._guard(self._room_message))
        app.router.add_get("/api/v1/presence", self._guard(self._presence))

    def guard(self, endpoint: Endpoint) -> Endpoint:
        """Wrap another endpoint in the API key check, correlation id and JSON errors."""
        return self._guard(endpoint)

    def authorized(self, request: web.Request) -> bool:
        """Whether the request carries `Authorization: Bearer <api key>`."""
        if not self._key:  # no key configured: nothing is authorized
            return False
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self._key)

    def _guard(self, endpoint: Endpoint) -> Endpoint:
        async def guarded(request: web.Request) -> web.Response:
            correlation_id = new_correlation_id()
            token = correlation_id_var.set(correlation_id)
            try:
                with structlog.contextvars.bound_contextvars(
                    correlation_id=correlation_id, path=request.path, method=request.method
                ):
                    response = await self._answer(endpoint, request)
                    log_method = log.info if response.status < 400 else log.warning
                    log_method("http_api_handled", status=response.status)
                    return response
            finally:
                correlation_id_var.reset(token)

        return guarded

    async def _answer(self, endpoint: Endpoint, request: web.Request) -> web.Response:
        if not self.authorized(request):
            refused = error_response("unauthenticated", "a valid API key is required (Bearer)")
            refused.headers["WWW-Authenticate"] = 'Bearer realm="switchboard"'
            return refused
        try:
            return await endpoint(request)
        except DomainError as exc:
            return error_response(exc.code, exc.message, exc.details)
        except web.HTTPRequestEntityTooLarge as exc:
            return error_response("payload_too_large", exc.reason, status=413)
        except web.HTTPException:
            raise
        except Exception:
            log.exception("http_api_crashed")
            return error_response("internal", "internal error; quote the correlation id")

    async def _notifications(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        return web.json_response(await self._api.push_notifications(body), status=202)

    async def _room_message(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        result = await self._api.post_room_message(request.match_info["room_id"], body)
        return web.json_response(result, status=201)

    async def _presence(self, request: web.Request) -> web.Response:
        return web.json_response(await self._api.presence(request.query.get("user_ids", "")))


async def _json_body(request: web.Request) -> object:
    raw = await request.read()  # raises 413 past client_max_size
    try:
        body: object = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed(
            "the body is not valid JSON",
            details={"fields": [{"path": "$", "message": "must be valid JSON"}]},
        ) from None
    return body

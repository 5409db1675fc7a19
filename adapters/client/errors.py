"""Typed errors of the client SDK, sorted by category, built from ack envelopes and handshakes."""

from __future__ import annotations

import enum
from collections.abc import Mapping

from adapters.client.json_types import JsonValue


class ErrorCategory(enum.StrEnum):
    """What kind of failure an error is, so callers can decide what to do about it."""

    NETWORK = "network"
    AUTH = "auth"
    VALIDATION = "validation"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    RATE_LIMITED = "rate_limited"
    SERVER = "server"


class SwitchboardError(Exception):
    """Base of every SDK error: the wire `code`, its `category`, the server's correlation id."""

    category: ErrorCategory = ErrorCategory.SERVER

    def __init__(
        self,
        code: str,
        message: str,
        *,
        correlation_id: str | None = None,
        details: Mapping[str, JsonValue] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.correlation_id = correlation_id
        self.details: dict[str, JsonValue] = dict(details or {})


class NetworkError(SwitchboardError):
    """No answer: not connected, connection lost, ack timeout, command queue full or expired."""

    category = ErrorCategory.NETWORK


class AuthError(SwitchboardError):
    """The token was missing, invalid or expired (handshake refusal or `unauthenticated`)."""

    category = ErrorCategory.AUTH


class ValidationError(SwitchboardError):
    """The server rejected the payload (`validation_failed`, `payload_too_large`, ...)."""

    category = ErrorCategory.VALIDATION

    @property
    def fields(self) -> list[tuple[str, str]]:
        """`(path, message)` of each bad field listed in `details.fields`."""
        found: list[tuple[str, str]] = []
        fields = self.details.get("fields")
        if isinstance(fields, list):
            for field in fields:
                if isinstance(field, dict):
                    path, message = field.get("path"), field.get("message")
                    if isinstance(path, str) and isinstance(message, str):
                        found.append((path, message))
        return found


class ForbiddenError(SwitchboardError):
    """The user may not do this (not a member, not the author, ...)."""

    category = ErrorCategory.FORBIDDEN


class NotFoundError(SwitchboardError):
    """The room or message does not exist."""

    category = ErrorCategory.NOT_FOUND


class ConflictError(SwitchboardError):
    """The change conflicts with the current state (e.g. editing a deleted message)."""

    category = ErrorCategory.CONFLICT


class RateLimitedError(SwitchboardError):
    """Too many commands or connections; `retry_after_ms` says when to try again, if known."""

    category = ErrorCategory.RATE_LIMITED

    @property
    def retry_after_ms(self) -> int | None:
        """The server's hint from `details.retry_after_ms`, or None."""
        value = self.details.get("retry_after_ms")
        return value if isinstance(value, int) and not isinstance(value, bool) else None


class ServerError(SwitchboardError):
    """The server failed (`internal`, `timeout`, `unavailable`) or answered off-contract."""

    category = ErrorCategory.SERVER


_BY_CODE: dict[str, type[SwitchboardError]] = {
    "auth_required": AuthError,
    "auth_invalid": AuthError,
    "auth_expired": AuthError,
    "unauthenticated": AuthError,
    "validation_failed": ValidationError,
    "payload_too_large": ValidationError,
    "unknown_event": ValidationError,
    "forbidden": ForbiddenError,
    "not_found": NotFoundError,
    "conflict": ConflictError,
    "rate_limited": RateLimitedError,
    "too_many_connections": RateLimitedError,
    "internal": ServerError,
    "timeout": ServerError,
    "unavailable": ServerError,
}

# client-side codes (never sent by the server)
DISCONNECTED = "disconnected"
NOT_CONNECTED = "not_connected"
ACK_TIMEOUT = "ack_timeout"
QUEUE_FULL = "queue_full"
QUEUE_TIMEOUT = "queue_timeout"
CONNECT_FAILED = "connect_failed"
CLOSED = "closed"
BAD_RESPONSE = "bad_response"


def error_for(
    code: str,
    message: str,
    *,
    correlation_id: str | None = None,
    details: Mapping[str, JsonValue] | None = None,
) -> SwitchboardError:
    """The typed error for a wire code; an unknown code is a `ServerError`."""
    cls = _BY_CODE.get(code, ServerError)
    return cls(code, message, correlation_id=correlation_id, details=details)

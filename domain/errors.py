"""Domain errors, each carrying one stable wire code of contract v1."""

from __future__ import annotations

from collections.abc import Mapping


class DomainError(Exception):
    """Base of every error the core raises on purpose; `code` is the stable wire code."""

    code: str = "internal"

    def __init__(self, message: str, *, details: Mapping[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, object] = dict(details or {})


class ValidationFailed(DomainError):
    """A payload or argument broke a rule; `details["fields"]` lists each bad field."""

    code = "validation_failed"


class Unauthenticated(DomainError):
    """The caller is not authenticated."""

    code = "unauthenticated"


class Forbidden(DomainError):
    """The caller may not do this to this resource."""

    code = "forbidden"


class NotFound(DomainError):
    """The resource does not exist (or no longer does)."""

    code = "not_found"


class Conflict(DomainError):
    """The change conflicts with the current state."""

    code = "conflict"


class RateLimited(DomainError):
    """Too many commands; retry after `retry_after_ms`."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_ms: int) -> None:
        super().__init__(message, details={"retry_after_ms": retry_after_ms})
        self.retry_after_ms = retry_after_ms


class PayloadTooLarge(DomainError):
    """The payload is larger than the configured bound."""

    code = "payload_too_large"


class CommandTimeout(DomainError):
    """The command did not finish within the handler timeout."""

    code = "timeout"


class Unavailable(DomainError):
    """A backing store is down; retry with backoff."""

    code = "unavailable"


class UnknownEvent(DomainError):
    """No handler exists for this event name."""

    code = "unknown_event"


class AuthRefused(DomainError):
    """A handshake was refused; `code` is one of the handshake codes of the contract."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class AuthRequired(AuthRefused):
    """The handshake carried no token."""

    def __init__(self, message: str = "a token is required in auth.token") -> None:
        super().__init__("auth_required", message)


class AuthInvalid(AuthRefused):
    """The token is malformed, badly signed or for another audience or issuer."""

    def __init__(self, message: str = "the token is invalid") -> None:
        super().__init__("auth_invalid", message)


class AuthExpired(AuthRefused):
    """The token has expired."""

    def __init__(self, message: str = "the token has expired") -> None:
        super().__init__("auth_expired", message)


class TooManyConnections(AuthRefused):
    """The per-user connection limit of a namespace is reached."""

    def __init__(self, message: str = "too many connections for this user") -> None:
        super().__init__("too_many_connections", message)

"""Ack envelopes and handshake refusals become typed errors sorted by category."""

from __future__ import annotations

import pytest

from adapters.client.errors import (
    AuthError,
    ConflictError,
    ErrorCategory,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    SwitchboardError,
    ValidationError,
    error_for,
)
from adapters.client.parsing import ack_data, ack_error, refusal_error


@pytest.mark.parametrize(
    ("code", "cls", "category"),
    [
        ("validation_failed", ValidationError, ErrorCategory.VALIDATION),
        ("payload_too_large", ValidationError, ErrorCategory.VALIDATION),
        ("unknown_event", ValidationError, ErrorCategory.VALIDATION),
        ("unauthenticated", AuthError, ErrorCategory.AUTH),
        ("forbidden", ForbiddenError, ErrorCategory.FORBIDDEN),
        ("not_found", NotFoundError, ErrorCategory.NOT_FOUND),
        ("conflict", ConflictError, ErrorCategory.CONFLICT),
        ("rate_limited", RateLimitedError, ErrorCategory.RATE_LIMITED),
        ("timeout", ServerError, ErrorCategory.SERVER),
        ("unavailable", ServerError, ErrorCategory.SERVER),
        ("internal", ServerError, ErrorCategory.SERVER),
        ("something_new", ServerError, ErrorCategory.SERVER),
    ],
)
def test_failure_acks_raise_the_error_of_their_category(
    code: str, cls: type[SwitchboardError], category: ErrorCategory
) -> None:
    envelope = {
        "ok": False,
        "error": {"code": code, "message": "nope", "correlation_id": "c0ffee"},
    }

    with pytest.raises(SwitchboardError) as caught:
        ack_data(envelope)

    error = caught.value
    assert type(error) is cls
    assert (error.code, error.category, error.message) == (code, category, "nope")
    assert error.correlation_id == "c0ffee"
    assert error.details == {}


def test_validation_details_list_the_fields() -> None:
    error = ack_error(
        {
            "code": "validation_failed",
            "message": "the payload is not valid",
            "correlation_id": "x",
            "details": {
                "fields": [
                    {"path": "$.name", "message": "must have 1 to 100 characters"},
                    {"path": "$.members[1]", "message": "must be a string"},
                    "junk",
                ]
            },
        }
    )

    assert isinstance(error, ValidationError)
    assert error.fields == [
        ("$.name", "must have 1 to 100 characters"),
        ("$.members[1]", "must be a string"),
    ]


def test_rate_limited_exposes_retry_after() -> None:
    error = error_for("rate_limited", "slow down", details={"retry_after_ms": 250})
    assert isinstance(error, RateLimitedError)
    assert error.retry_after_ms == 250
    assert RateLimitedError("rate_limited", "x").retry_after_ms is None


def test_success_acks_give_their_data() -> None:
    assert ack_data({"ok": True, "data": {"unread_count": 3}}) == {"unread_count": 3}
    assert ack_data({"ok": True}) == {}


@pytest.mark.parametrize(
    "envelope",
    [None, "ok", [], {"data": {}}, {"ok": "yes"}, {"ok": True, "data": []}, {"ok": False}],
)
def test_off_contract_acks_are_server_errors(envelope: object) -> None:
    with pytest.raises(ServerError) as caught:
        ack_data(envelope)
    assert caught.value.code == "bad_response"


def test_a_failure_without_code_counts_as_internal() -> None:
    error = ack_error({"message": 5})
    assert (type(error), error.code, error.message, error.correlation_id) == (
        ServerError,
        "internal",
        "",
        None,
    )


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"message": "bad", "data": {"code": "auth_invalid", "message": "bad"}}, "auth_invalid"),
        ({"code": "auth_expired", "message": "old"}, "auth_expired"),
        ({"message": "x", "data": {"code": "auth_required"}}, "auth_required"),
    ],
)
def test_handshake_refusals_are_auth_errors(data: object, code: str) -> None:
    error = refusal_error(data)

    assert isinstance(error, AuthError)
    assert error.code == code
    assert error.category is ErrorCategory.AUTH


def test_refusals_for_limits_and_outages_and_codeless_ones() -> None:
    assert isinstance(refusal_error({"code": "too_many_connections"}), RateLimitedError)
    assert isinstance(refusal_error({"code": "unavailable"}), ServerError)
    assert refusal_error("Unable to connect") is None
    assert refusal_error({"message": "no code"}) is None

"""Outbound shapes of contract v1: times, resources, envelopes, JSON narrowing, channels."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import attrs
import pytest

from application.contract import wire
from domain.errors import (
    CommandTimeout,
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    RateLimited,
    ValidationFailed,
)
from domain.model import ChatMessage, JoinResult, PresenceEntry, Room, Visibility

AT = datetime(2026, 11, 25, 19, 30, 0, 123456, tzinfo=UTC)

ROOM_KEYS = {"id", "name", "visibility", "owner_id", "created_at", "member_count"}
MESSAGE_KEYS = {
    "id",
    "room_id",
    "seq",
    "author_id",
    "text",
    "client_msg_id",
    "created_at",
    "edited_at",
    "deleted",
}
PRESENCE_KEYS = {"user_id", "online", "last_seen", "connections"}


def a_room() -> Room:
    return Room("r1", "general", Visibility.PRIVATE, "alice", AT, member_count=3)


def a_message() -> ChatMessage:
    return ChatMessage("m1", "r1", 7, "alice", "hi", "c1", AT)


# --- times ------------------------------------------------------------------------------------


def test_iso_time_has_milliseconds_and_z() -> None:
    assert wire.iso_time(AT) == "2026-11-25T19:30:00.123Z"


def test_iso_time_pads_milliseconds() -> None:
    assert wire.iso_time(datetime(2026, 1, 2, 3, 4, 5, 7000, tzinfo=UTC)) == (
        "2026-01-02T03:04:05.007Z"
    )
    assert wire.iso_time(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000Z"


def test_iso_time_truncates_sub_millisecond_digits() -> None:
    assert wire.iso_time(datetime(2026, 1, 1, 0, 0, 0, 999999, tzinfo=UTC)) == (
        "2026-01-01T00:00:00.999Z"
    )


def test_iso_time_converts_other_offsets_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2026, 11, 25, 21, 30, 0, 123000, tzinfo=plus_two)
    assert wire.iso_time(local) == "2026-11-25T19:30:00.123Z"
    minus_five = timezone(timedelta(hours=-5, minutes=-30))
    late = datetime(2026, 12, 31, 22, 0, 0, tzinfo=minus_five)
    assert wire.iso_time(late) == "2027-01-01T03:30:00.000Z"


def test_optional_time() -> None:
    assert wire.optional_time(None) is None
    assert wire.optional_time(AT) == "2026-11-25T19:30:00.123Z"


# --- resources --------------------------------------------------------------------------------


def test_room_shape() -> None:
    room = wire.room_json(a_room())
    assert set(room) == ROOM_KEYS
    assert room == {
        "id": "r1",
        "name": "general",
        "visibility": "private",
        "owner_id": "alice",
        "created_at": "2026-11-25T19:30:00.123Z",
        "member_count": 3,
    }


def test_message_shape() -> None:
    message = wire.message_json(a_message())
    assert set(message) == MESSAGE_KEYS
    assert message == {
        "id": "m1",
        "room_id": "r1",
        "seq": 7,
        "author_id": "alice",
        "text": "hi",
        "client_msg_id": "c1",
        "created_at": "2026-11-25T19:30:00.123Z",
        "edited_at": None,
        "deleted": False,
    }


def test_edited_and_deleted_message() -> None:
    later = AT + timedelta(seconds=1)
    edited = wire.message_json(attrs.evolve(a_message(), edited_at=later))
    assert edited["edited_at"] == "2026-11-25T19:30:01.123Z"
    tombstone = wire.message_json(attrs.evolve(a_message(), text="", deleted=True))
    assert tombstone["deleted"] is True
    assert tombstone["text"] == ""


def test_presence_shape() -> None:
    online = wire.presence_json(PresenceEntry("bob", True, None, 2))
    assert set(online) == PRESENCE_KEYS
    assert online == {"user_id": "bob", "online": True, "last_seen": None, "connections": 2}
    offline = wire.presence_json(PresenceEntry("bob", False, AT, 0))
    assert offline["last_seen"] == "2026-11-25T19:30:00.123Z"
    assert offline["online"] is False


def test_join_shape() -> None:
    result = JoinResult(
        room=a_room(),
        online=(PresenceEntry("bob", True, None, 1),),
        online_count=1,
        missed=(a_message(),),
        has_more=True,
    )
    data = wire.join_json(result)
    assert set(data) == {"room", "online", "online_count", "missed", "has_more"}
    assert data["room"] == wire.room_json(a_room())
    assert data["online"] == [wire.presence_json(PresenceEntry("bob", True, None, 1))]
    assert data["missed"] == [wire.message_json(a_message())]
    assert data["online_count"] == 1
    assert data["has_more"] is True


def test_resources_are_json_serialisable() -> None:
    for value in (wire.room_json(a_room()), wire.message_json(a_message())):
        assert json.loads(json.dumps(value)) == value


# --- envelopes --------------------------------------------------------------------------------


def test_ok_envelope() -> None:
    assert wire.ok({"x": 1}) == {"ok": True, "data": {"x": 1}}
    assert wire.ok({}) == {"ok": True, "data": {}}


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (Forbidden("no"), "forbidden"),
        (NotFound("no"), "not_found"),
        (Conflict("no"), "conflict"),
        (CommandTimeout("no"), "timeout"),
        (DomainError("no"), "internal"),
    ],
)
def test_failure_without_details_has_no_details_key(error: DomainError, code: str) -> None:
    assert wire.failure(error, "cid") == {
        "ok": False,
        "error": {"code": code, "message": "no", "correlation_id": "cid"},
    }


def test_failure_carries_details_when_present() -> None:
    error = ValidationFailed(
        "the payload is not valid", details={"fields": [{"path": "$.x", "message": "bad"}]}
    )
    assert wire.failure(error, "abc") == {
        "ok": False,
        "error": {
            "code": "validation_failed",
            "message": "the payload is not valid",
            "correlation_id": "abc",
            "details": {"fields": [{"path": "$.x", "message": "bad"}]},
        },
    }


def test_rate_limited_failure_has_retry_after_ms() -> None:
    envelope = wire.failure(RateLimited("slow down", retry_after_ms=250), "c")
    error = envelope["error"]
    assert isinstance(error, dict)
    assert error["code"] == "rate_limited"
    assert error["details"] == {"retry_after_ms": 250}


def test_error_object_omits_empty_details() -> None:
    assert wire.error_object("internal", "m", "c", {}) == {
        "code": "internal",
        "message": "m",
        "correlation_id": "c",
    }
    assert wire.error_object("internal", "m", "c", None) == {
        "code": "internal",
        "message": "m",
        "correlation_id": "c",
    }


# --- to_json ----------------------------------------------------------------------------------


def test_to_json_keeps_json_values() -> None:
    value = {"a": [1, 2.5, "s", None, True, {"b": []}]}
    assert wire.to_json(value) == value


def test_to_json_narrows_tuples_keys_and_objects() -> None:
    assert wire.to_json((1, (2, 3))) == [1, [2, 3]]
    assert wire.to_json({1: "a", None: "b"}) == {"1": "a", "None": "b"}
    assert wire.to_json({"when": AT}) == {"when": str(AT)}
    assert wire.to_json(Visibility.PUBLIC) == str(Visibility.PUBLIC)


def test_to_json_output_is_serialisable() -> None:
    value = wire.to_json({"t": (AT, frozenset({1})), "n": {"deep": (object(),)}})
    assert json.loads(json.dumps(value)) == value


def test_to_json_object_narrows_each_value() -> None:
    assert wire.to_json_object({"a": (1, 2), "b": {"c": AT}}) == {"a": [1, 2], "b": {"c": str(AT)}}


# --- channels ---------------------------------------------------------------------------------


def test_channel_names() -> None:
    assert wire.room_channel("r1") == "room:r1"
    assert wire.user_channel("alice") == "user:alice"

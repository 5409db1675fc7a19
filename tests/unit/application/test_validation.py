"""`parse` with the real /chat payload classes: strict types, bounds, paths, never a crash."""

from __future__ import annotations

from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from application.contract.chat import (
    MessageDelete,
    MessageEdit,
    MessageHistory,
    MessageSend,
    PresenceGet,
    RoomCreate,
    RoomInvite,
    RoomJoin,
    RoomLeave,
    RoomList,
    Typing,
)
from application.contract.validation import parse
from domain.errors import ValidationFailed
from domain.model import Visibility

T = TypeVar("T")

SEND = {"room_id": "r1", "text": "hello", "client_msg_id": "c1"}


def fields_of(payload_type: type[T], raw: object) -> list[dict[str, object]]:
    """The `details["fields"]` of the `ValidationFailed` that `parse` must raise."""
    with pytest.raises(ValidationFailed) as caught:
        parse(payload_type, raw)
    error = caught.value
    assert error.code == "validation_failed"
    assert set(error.details) == {"fields"}
    fields = error.details["fields"]
    assert isinstance(fields, list)
    result: list[dict[str, object]] = []
    for entry in fields:
        assert isinstance(entry, dict)
        assert set(entry) == {"path", "message"}
        assert isinstance(entry["path"], str)
        assert isinstance(entry["message"], str)
        assert entry["message"]
        result.append({str(k): v for k, v in entry.items()})
    return result


def paths_of(payload_type: type[T], raw: object) -> list[object]:
    return [f["path"] for f in fields_of(payload_type, raw)]


# --- valid payloads ---------------------------------------------------------------------------


def test_valid_message_send() -> None:
    assert parse(MessageSend, SEND) == MessageSend(room_id="r1", text="hello", client_msg_id="c1")


def test_defaults_of_room_create() -> None:
    room = parse(RoomCreate, {"name": "general"})
    assert room == RoomCreate(name="general", visibility=Visibility.PUBLIC, members=[])


def test_every_chat_payload_parses_a_valid_example() -> None:
    assert parse(RoomList, {}) == RoomList()
    assert parse(RoomJoin, {"room_id": "r", "since_seq": 0}) == RoomJoin("r", 0)
    assert parse(RoomLeave, {"room_id": "r"}) == RoomLeave("r")
    assert parse(RoomInvite, {"room_id": "r", "user_id": "u"}) == RoomInvite("r", "u")
    assert parse(MessageEdit, {"room_id": "r", "message_id": "m", "text": "t"}) == MessageEdit(
        "r", "m", "t"
    )
    assert parse(MessageDelete, {"room_id": "r", "message_id": "m"}) == MessageDelete("r", "m")
    assert parse(MessageHistory, {"room_id": "r", "after_seq": 3, "limit": 10}) == MessageHistory(
        "r", None, 3, 10
    )
    assert parse(Typing, {"room_id": "r", "typing": False}) == Typing("r", False)
    assert parse(PresenceGet, {"user_ids": ["a", "b"]}) == PresenceGet(["a", "b"])


def test_unknown_fields_are_ignored() -> None:
    parsed = parse(MessageSend, {**SEND, "extra": {"deep": [1, 2]}, "room": 5})
    assert parsed == MessageSend(room_id="r1", text="hello", client_msg_id="c1")
    assert parse(RoomList, {"anything": True}) == RoomList()


def test_null_for_optional_fields_means_absent() -> None:
    parsed = parse(
        MessageHistory, {"room_id": "r", "before_seq": None, "after_seq": None, "limit": None}
    )
    assert parsed == MessageHistory(room_id="r", before_seq=None, after_seq=None, limit=50)
    room = parse(RoomCreate, {"name": "n", "visibility": None, "members": None})
    assert room == RoomCreate(name="n", visibility=Visibility.PUBLIC, members=[])
    assert parse(RoomJoin, {"room_id": "r", "since_seq": None}) == RoomJoin("r", None)


def test_null_for_a_required_field_is_missing() -> None:
    assert fields_of(MessageSend, {**SEND, "text": None}) == [
        {"path": "$.text", "message": "is required"}
    ]


def test_missing_required_fields_are_all_reported() -> None:
    assert fields_of(MessageSend, {}) == [
        {"path": "$.room_id", "message": "is required"},
        {"path": "$.text", "message": "is required"},
        {"path": "$.client_msg_id", "message": "is required"},
    ]


# --- strictness -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["5", True, False, 5.0, 1.5, [5], {"n": 5}])
def test_an_integer_field_takes_integers_only(value: object) -> None:
    assert fields_of(MessageHistory, {"room_id": "r", "limit": value}) == [
        {"path": "$.limit", "message": "must be an integer"}
    ]


@pytest.mark.parametrize("field", ["since_seq"])
@pytest.mark.parametrize("value", ["0", True])
def test_optional_integer_is_strict_too(field: str, value: object) -> None:
    assert paths_of(RoomJoin, {"room_id": "r", field: value}) == [f"$.{field}"]


@pytest.mark.parametrize("value", [5, 5.5, True, ["a"], {"a": "b"}])
def test_a_string_field_takes_strings_only(value: object) -> None:
    assert fields_of(MessageSend, {**SEND, "text": value}) == [
        {"path": "$.text", "message": "must be a string"}
    ]


@pytest.mark.parametrize("value", ["abc", "", {"0": "a"}, 5, True])
def test_a_list_field_takes_lists_only(value: object) -> None:
    assert fields_of(RoomCreate, {"name": "n", "members": value}) == [
        {"path": "$.members", "message": "must be a list"}
    ]
    assert fields_of(PresenceGet, {"user_ids": value}) == [
        {"path": "$.user_ids", "message": "must be a list"}
    ]


@pytest.mark.parametrize("value", [1, 0, "true", "false", None])
def test_a_bool_field_takes_true_or_false_only(value: object) -> None:
    expected = "is required" if value is None else "must be true or false"
    assert fields_of(Typing, {"room_id": "r", "typing": value}) == [
        {"path": "$.typing", "message": expected}
    ]


def test_enum_choices() -> None:
    assert parse(RoomCreate, {"name": "n", "visibility": "private"}).visibility is (
        Visibility.PRIVATE
    )
    for bad in ("secret", "PUBLIC", "", 1, True, ["public"]):
        assert fields_of(RoomCreate, {"name": "n", "visibility": bad}) == [
            {"path": "$.visibility", "message": "must be one of: public, private"}
        ]


# --- length and numeric bounds ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload_type", "base", "field", "low", "high", "message"),
    [
        (RoomCreate, {}, "name", 1, 100, "must have 1 to 100 characters"),
        (MessageSend, SEND, "text", 1, 4000, "must have 1 to 4000 characters"),
        (MessageSend, SEND, "client_msg_id", 1, 64, "must have 1 to 64 characters"),
        (MessageSend, SEND, "room_id", 1, 128, "must have 1 to 128 characters"),
        (MessageEdit, {"room_id": "r", "message_id": "m"}, "text", 1, 4000, None),
        (RoomInvite, {"room_id": "r"}, "user_id", 1, 128, "must have 1 to 128 characters"),
    ],
)
def test_string_length_bounds(
    payload_type: type[object],
    base: dict[str, object],
    field: str,
    low: int,
    high: int,
    message: str | None,
) -> None:
    for length in (low, high):
        parsed = parse(payload_type, {**base, field: "x" * length})
        assert getattr(parsed, field) == "x" * length
    for length in (low - 1, high + 1):
        fields = fields_of(payload_type, {**base, field: "x" * length})
        assert [f["path"] for f in fields] == [f"$.{field}"]
        if message is not None:
            assert fields[0]["message"] == message


def test_length_counts_characters_not_bytes() -> None:
    assert parse(RoomCreate, {"name": "é" * 100}).name == "é" * 100


def test_members_at_most_100() -> None:
    assert len(parse(RoomCreate, {"name": "n", "members": ["u"] * 100}).members) == 100
    assert parse(RoomCreate, {"name": "n", "members": []}).members == []
    assert fields_of(RoomCreate, {"name": "n", "members": ["u"] * 101}) == [
        {"path": "$.members", "message": "must have 0 to 100 items"}
    ]


def test_presence_user_ids_1_to_100() -> None:
    assert len(parse(PresenceGet, {"user_ids": ["u"] * 100}).user_ids) == 100
    assert parse(PresenceGet, {"user_ids": ["u"]}).user_ids == ["u"]
    for bad in ([], ["u"] * 101):
        assert fields_of(PresenceGet, {"user_ids": bad}) == [
            {"path": "$.user_ids", "message": "must have 1 to 100 items"}
        ]


def test_list_items_are_bounded_too() -> None:
    assert paths_of(PresenceGet, {"user_ids": ["a", "", "x" * 129]}) == [
        "$.user_ids[1]",
        "$.user_ids[2]",
    ]


def test_history_limit_bounds() -> None:
    assert parse(MessageHistory, {"room_id": "r", "limit": 1}).limit == 1
    assert parse(MessageHistory, {"room_id": "r", "limit": 100}).limit == 100
    assert fields_of(MessageHistory, {"room_id": "r", "limit": 0}) == [
        {"path": "$.limit", "message": "must be at least 1"}
    ]
    assert fields_of(MessageHistory, {"room_id": "r", "limit": 101}) == [
        {"path": "$.limit", "message": "must be at most 100"}
    ]


def test_seq_is_never_negative() -> None:
    assert parse(RoomJoin, {"room_id": "r", "since_seq": 0}).since_seq == 0
    assert fields_of(MessageHistory, {"room_id": "r", "before_seq": -1}) == [
        {"path": "$.before_seq", "message": "must be at least 0"}
    ]
    assert paths_of(RoomJoin, {"room_id": "r", "since_seq": -5}) == ["$.since_seq"]


# --- non-object payloads, paths, several errors -----------------------------------------------


@pytest.mark.parametrize("raw", ["text", "", [], [SEND], 5, 0, 1.5, True, None])
def test_a_non_object_payload_fails_at_the_root(raw: object) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse(MessageSend, raw)
    assert caught.value.details == {"fields": [{"path": "$", "message": "must be a JSON object"}]}


@pytest.mark.parametrize("raw", ["text", [], 5, None])
def test_a_payload_without_fields_still_needs_an_object(raw: object) -> None:
    assert paths_of(RoomList, raw) == ["$"]


def test_nested_list_item_paths() -> None:
    assert fields_of(RoomCreate, {"name": "n", "members": ["a", 5, "b"]}) == [
        {"path": "$.members[1]", "message": "must be a string"}
    ]
    assert fields_of(RoomCreate, {"name": "n", "members": ["a", "b", None]}) == [
        {"path": "$.members[2]", "message": "must be a string"}
    ]


def test_several_bad_fields_are_reported_together() -> None:
    fields = fields_of(
        RoomCreate, {"name": "", "visibility": "hidden", "members": ["ok", 7, "x" * 200]}
    )
    assert {str(f["path"]) for f in fields} == {
        "$.name",
        "$.visibility",
        "$.members[1]",
        "$.members[2]",
    }
    assert fields_of(MessageSend, {"room_id": 1, "text": "", "client_msg_id": "c" * 65}) == [
        {"path": "$.room_id", "message": "must be a string"},
        {"path": "$.text", "message": "must have 1 to 4000 characters"},
        {"path": "$.client_msg_id", "message": "must have 1 to 64 characters"},
    ]


def test_the_error_message_is_generic() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse(MessageSend, {})
    assert caught.value.message == "the payload is not valid"


# --- never any other exception ----------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values: st.SearchStrategy[object] = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
send_keys = st.sampled_from(["room_id", "text", "client_msg_id", "other"])
near_sends: st.SearchStrategy[object] = st.dictionaries(
    send_keys, json_values | st.text(max_size=70), max_size=4
)


def _check_send(value: object) -> None:
    try:
        parsed = parse(MessageSend, value)
    except ValidationFailed as exc:
        fields = exc.details["fields"]
        assert isinstance(fields, list)
        assert fields
        return
    assert isinstance(parsed, MessageSend)
    assert isinstance(parsed.room_id, str)
    assert 1 <= len(parsed.room_id) <= 128
    assert isinstance(parsed.text, str)
    assert 1 <= len(parsed.text) <= 4000
    assert isinstance(parsed.client_msg_id, str)
    assert 1 <= len(parsed.client_msg_id) <= 64


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_value_parses_or_fails_validation(value: object) -> None:
    _check_send(value)


@settings(max_examples=300, deadline=None)
@given(near_sends)
def test_any_object_with_the_right_keys_parses_or_fails_validation(value: object) -> None:
    _check_send(value)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_room_create_never_raises_anything_else(value: object) -> None:
    payload = {"name": "n", "visibility": "public", "members": value}
    try:
        parsed = parse(RoomCreate, payload)
    except ValidationFailed:
        return
    assert all(isinstance(m, str) and 1 <= len(m) <= 128 for m in parsed.members)

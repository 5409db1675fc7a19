"""Untyped values from python-socketio are narrowed into the attrs types, or refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.client.errors import ServerError
from adapters.client.json_types import JsonObject
from adapters.client.parsing import (
    json_value,
    parse_members_changed,
    parse_message,
    parse_notification,
    parse_presence,
    parse_presence_diff,
    parse_room,
    parse_typing,
    parse_unread_count,
)
from tests.client.fakes import message_json, room_json


def test_a_message_is_parsed_with_times() -> None:
    raw = message_json("r1", 7, "hi")
    raw["edited_at"] = "2026-11-28T20:09:00.500Z"

    message = parse_message(raw)

    assert (message.seq, message.text, message.room_id) == (7, "hi", "r1")
    assert message.created_at == datetime(2026, 11, 28, 20, 8, 2, 61000, tzinfo=UTC)
    assert message.edited_at == datetime(2026, 11, 28, 20, 9, 0, 500000, tzinfo=UTC)


def test_events_are_parsed() -> None:
    assert parse_members_changed({"room_id": "r", "joined": ["a"], "left": []}).joined == ("a",)
    assert parse_presence_diff({"room_id": "r", "joins": [], "leaves": ["b"]}).leaves == ("b",)
    assert parse_typing({"room_id": "r", "user_id": "u", "typing": False}).typing is False
    assert parse_unread_count({"unread_count": 3}) == 3
    entry = parse_presence({"user_id": "u", "online": False, "last_seen": None, "connections": 0})
    assert entry.last_seen is None
    notification = parse_notification(
        {
            "id": "n1",
            "user_id": "bob",
            "kind": "deploy",
            "title": "t",
            "body": "",
            "data": {"nested": [1, 2.5, None, {"ok": True}]},
            "created_at": "2026-11-28T20:08:02.061Z",
            "read_at": None,
        }
    )
    assert notification.data == {"nested": [1, 2.5, None, {"ok": True}]}


def _with(base: JsonObject, **changes: object) -> dict[str, object]:
    return {**base, **changes}


@pytest.mark.parametrize(
    "raw",
    [
        "not an object",
        _with(message_json("r", 1), seq="1"),
        _with(message_json("r", 1), seq=True),
        _with(message_json("r", 1), text=None),
        _with(message_json("r", 1), deleted="no"),
        _with(message_json("r", 1), created_at="yesterday"),
        _with(message_json("r", 1), edited_at=5),
        {1: "non-string key"},
        _with(message_json("r", 1), extra=object()),
    ],
)
def test_off_contract_messages_are_refused(raw: object) -> None:
    with pytest.raises(ServerError) as caught:
        parse_message(raw)
    assert caught.value.code == "bad_response"


@pytest.mark.parametrize(
    "raw",
    [
        _with(room_json("r"), visibility="secret"),
        _with(room_json("r"), member_count=None),
    ],
)
def test_off_contract_rooms_are_refused(raw: object) -> None:
    with pytest.raises(ServerError):
        parse_room(raw)


@pytest.mark.parametrize(
    ("parse", "raw"),
    [
        (parse_members_changed, {"room_id": "r", "joined": "a", "left": []}),
        (parse_members_changed, {"room_id": "r", "joined": [1], "left": []}),
        (parse_unread_count, {"unread_count": "3"}),
        (
            parse_notification,
            {
                "id": "n",
                "user_id": "u",
                "kind": "k",
                "title": "t",
                "body": "b",
                "data": [],
                "created_at": "2026-11-28T20:08:02.061Z",
                "read_at": None,
            },
        ),
    ],
)
def test_off_contract_events_are_refused(parse: object, raw: object) -> None:
    assert callable(parse)
    with pytest.raises(ServerError):
        parse(raw)


def test_json_value_refuses_non_json() -> None:
    assert json_value([1, "a", {"b": None}]) == [1, "a", {"b": None}]
    with pytest.raises(ServerError):
        json_value({"x": b"bytes"})

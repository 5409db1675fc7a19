"""Failure acks over the wire: validation with field paths, non-object payloads, not_found,
forbidden, unknown_event, correlation ids, `internal` and `timeout` from a broken store."""

from __future__ import annotations

import asyncio
import json

import pytest
from dependency_injector import providers

from adapters.memory import MemoryMessageStore
from application.containers import Container
from application.json_types import JsonObject
from application.settings import Settings
from domain.model import AppendResult, NewMessage
from tests.integration.conftest import Connector, ContainerSetup, RunningServer, make_settings
from tests.integration.support import create_room, obj, objs, send, string


def _field_paths(error: JsonObject) -> list[str]:
    details = obj(error["details"])
    return [string(f["path"]) for f in objs(details["fields"])]


# --- validation_failed ----------------------------------------------------------------------


async def test_validation_failed_lists_each_bad_field_with_its_path(connect: Connector) -> None:
    alice = await connect("alice")
    room_id = string((await create_room(alice))["id"])

    error = await alice.fails(
        "message:send", {"room_id": room_id, "text": ""}, code="validation_failed"
    )

    fields = objs(obj(error["details"])["fields"])
    assert {string(f["path"]) for f in fields} == {"$.text", "$.client_msg_id"}
    assert all(string(f["message"]) for f in fields)


@pytest.mark.parametrize(
    ("event", "payload", "paths"),
    [
        ("message:send", {"room_id": "r", "text": "x" * 4001, "client_msg_id": "c"}, ["$.text"]),
        ("message:send", {"room_id": 5, "text": "x", "client_msg_id": "c"}, ["$.room_id"]),
        (
            "message:send",
            {"room_id": "r", "text": "x", "client_msg_id": "c" * 65},
            ["$.client_msg_id"],
        ),
        ("room:create", {"name": ""}, ["$.name"]),
        ("room:create", {"name": "x" * 101}, ["$.name"]),
        ("room:create", {"name": "ok", "visibility": "secret"}, ["$.visibility"]),
        ("room:create", {"name": "ok", "members": "bob"}, ["$.members"]),
        ("room:create", {"name": "ok", "members": [f"u{i}" for i in range(101)]}, ["$.members"]),
        ("room:join", {"room_id": "r", "since_seq": -1}, ["$.since_seq"]),
        ("room:join", {"room_id": "r", "since_seq": "3"}, ["$.since_seq"]),
        ("room:join", {}, ["$.room_id"]),
        ("typing", {"room_id": "r", "typing": "yes"}, ["$.typing"]),
        ("room:invite", {"room_id": "r"}, ["$.user_id"]),
    ],
)
async def test_validation_failed_paths(
    connect: Connector, event: str, payload: object, paths: list[str]
) -> None:
    alice = await connect("alice")

    error = await alice.fails(event, payload, code="validation_failed")

    assert _field_paths(error) == paths


@pytest.mark.parametrize("payload", ["hello", [1, 2], ["room:list"], 42, 4.5, True, b"\x00\x01"])
async def test_payload_that_is_not_an_object_fails_at_the_root(
    connect: Connector, payload: object
) -> None:
    alice = await connect("alice")

    error = await alice.fails("room:create", payload, code="validation_failed")

    assert _field_paths(error) == ["$"]
    # the connection survives
    assert alice.connected
    assert await alice.ok("room:list", {}) == {"rooms": []}


async def test_unknown_fields_are_ignored(connect: Connector) -> None:
    alice = await connect("alice")

    data = await alice.ok("room:create", {"name": "general", "color": "blue"})

    assert obj(data["room"])["name"] == "general"


# --- not_found, forbidden, unknown_event ----------------------------------------------------


async def test_send_to_an_unknown_room_is_not_found(connect: Connector) -> None:
    alice = await connect("alice")

    await alice.fails(
        "message:send", {"room_id": "nope", "text": "x", "client_msg_id": "c"}, code="not_found"
    )


async def test_send_by_a_non_member_is_forbidden(connect: Connector) -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    room_id = string((await create_room(alice))["id"])

    await bob.fails(
        "message:send", {"room_id": room_id, "text": "x", "client_msg_id": "c"}, code="forbidden"
    )

    history = await alice.ok("message:history", {"room_id": room_id})
    assert history["messages"] == []


@pytest.mark.parametrize("event", ["nope", "room:destroy", "notification:list", "x" * 300])
async def test_unknown_event_name(connect: Connector, event: str) -> None:
    alice = await connect("alice")

    error = await alice.fails(event, {}, code="unknown_event")

    assert len(string(error["message"])) < 200
    assert await alice.ok("room:list", {}) == {"rooms": []}


async def test_every_error_carries_its_own_correlation_id(connect: Connector) -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    room_id = string((await create_room(alice))["id"])
    errors = [
        await alice.fails("room:create", {}, code="validation_failed"),
        await alice.fails("room:create", "text", code="validation_failed"),
        await alice.fails("room:join", {"room_id": "nope"}, code="not_found"),
        await bob.fails("message:history", {"room_id": room_id}, code="forbidden"),
        await alice.fails("what:ever", {}, code="unknown_event"),
    ]

    ids = [string(e["correlation_id"]) for e in errors]
    assert all(len(i) >= 8 for i in ids)
    assert len(set(ids)) == len(ids)
    for error in errors:
        assert set(error) <= {"code", "message", "details", "correlation_id"}


async def test_errors_are_counted_in_the_metrics(connect: Connector, server: RunningServer) -> None:
    alice = await connect("alice")

    await alice.fails("room:join", {"room_id": "nope"}, code="not_found")
    await alice.fails("what:ever", {}, code="unknown_event")

    metrics = server.container.metrics()
    assert (
        metrics.value(
            "switchboard_commands_total", namespace="/chat", event="room:join", outcome="not_found"
        )
        == 1
    )
    assert (
        metrics.value(
            "switchboard_commands_total",
            namespace="/chat",
            event="unknown",
            outcome="unknown_event",
        )
        == 1
    )
    assert metrics.value("switchboard_errors_total", code="not_found") == 1
    assert metrics.value("switchboard_errors_total", code="unknown_event") == 1


# --- a crashing handler ---------------------------------------------------------------------


class BrokenStore(MemoryMessageStore):
    """A message store whose `append` crashes with a revealing exception."""

    async def append(self, new: NewMessage) -> AppendResult:
        raise RuntimeError("secret detail: db password hunter2")


class SlowStore(MemoryMessageStore):
    """A message store whose `append` takes a second."""

    async def append(self, new: NewMessage) -> AppendResult:
        await asyncio.sleep(1)
        return await super().append(new)


def _use_store(store: MemoryMessageStore) -> ContainerSetup:
    def configure(container: Container) -> None:
        container.message_store.override(providers.Object(store))

    return configure


class TestCrashingHandler:
    @pytest.fixture
    def configure_container(self) -> ContainerSetup:
        return _use_store(BrokenStore())

    async def test_the_store_override_is_in_effect(self, server: RunningServer) -> None:
        assert isinstance(server.container.message_store(), BrokenStore)
        assert isinstance(server.container.message_service()._messages, BrokenStore)

    async def test_unexpected_exception_answers_internal_without_its_text(
        self, connect: Connector, server: RunningServer
    ) -> None:
        alice = await connect("alice")
        bob = await connect("bob")
        room_id = string((await create_room(alice, members=["bob"]))["id"])

        error = await alice.fails(
            "message:send",
            {"room_id": room_id, "text": "x", "client_msg_id": "c"},
            code="internal",
        )

        text = json.dumps(error)
        assert "secret" not in text
        assert "hunter2" not in text
        assert "RuntimeError" not in text
        assert "Traceback" not in text
        assert "details" not in error
        assert (
            server.container.metrics().value(
                "switchboard_commands_total",
                namespace="/chat",
                event="message:send",
                outcome="internal",
            )
            == 1
        )
        # the connection and the server keep serving
        assert alice.connected
        assert bob.connected
        assert len(objs((await alice.ok("room:list", {}))["rooms"])) == 1
        carol = await connect("carol")
        await carol.ok("room:join", {"room_id": room_id})


class TestHandlerTimeout:
    @pytest.fixture
    def server_settings(self) -> Settings:
        return make_settings(handler_timeout_s=0.2)

    @pytest.fixture
    def configure_container(self) -> ContainerSetup:
        return _use_store(SlowStore())

    async def test_slow_handler_answers_timeout(
        self, connect: Connector, server: RunningServer
    ) -> None:
        alice = await connect("alice")
        room_id = string((await create_room(alice))["id"])
        started = asyncio.get_running_loop().time()

        await alice.fails(
            "message:send",
            {"room_id": room_id, "text": "x", "client_msg_id": "c"},
            code="timeout",
        )

        assert asyncio.get_running_loop().time() - started < 0.9
        assert (
            server.container.metrics().value(
                "switchboard_commands_total",
                namespace="/chat",
                event="message:send",
                outcome="timeout",
            )
            == 1
        )
        assert await alice.ok("room:list", {}) != {}
        # the cancelled append stored nothing
        history = await alice.ok("message:history", {"room_id": room_id})
        assert history["messages"] == []


async def test_normal_send_still_works_with_the_default_store(connect: Connector) -> None:
    alice = await connect("alice")
    room_id = string((await create_room(alice))["id"])

    assert (await send(alice, room_id, "hi", "c1"))["seq"] == 1

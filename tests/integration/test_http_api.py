"""The server HTTP API over a real socket: `POST /api/v1/notifications`,
`POST /api/v1/rooms/{room_id}/messages`, `GET /api/v1/presence`; the bearer API key; and the
JSON error object of every failure (400, 401, 404, 405, 413), aiohttp's own errors included.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from application.settings import Settings
from tests.integration.conftest import Connector, RunningServer, make_settings
from tests.integration.support import (
    ISO_MS,
    ApiClient,
    ChatClient,
    create_room,
    obj,
    objs,
    send,
    string,
    strings,
    wait_until,
)

NOTIFICATIONS_PATH = "/api/v1/notifications"

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


def _push_body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {"user_ids": ["bob"], "kind": "system", "title": "hello"}
    body.update(overrides)
    return body


async def _room_of(owner: ChatClient, *members: ChatClient) -> str:
    room = await create_room(owner, "general", members=[m.user_id for m in members])
    return string(room["id"])


# --- POST /api/v1/notifications -------------------------------------------------------------


async def test_push_answers_202_with_one_id_per_distinct_user(
    api: ApiClient, connect: Connector
) -> None:
    bob = await connect.notifications("bob")

    response = await api.post(
        NOTIFICATIONS_PATH, _push_body(user_ids=["bob", "alice", "bob", "carol"])
    )

    assert response.status == 202
    assert response.content_type == "application/json"
    assert set(response.json) == {"ids"}
    ids = strings(response.json["ids"])
    assert len(ids) == 3
    assert len(set(ids)) == 3
    assert (await bob.wait_for("notification:new"))["id"] == ids[0]


async def test_push_stores_body_and_data(api: ApiClient, connect: Connector) -> None:
    data = {"url": "/builds/7", "nested": {"ok": True, "n": [1, 2.5, None]}}
    await api.push(["bob"], "build", kind="ci", body="passed", data=data)
    bob = await connect.notifications("bob")

    listed = objs((await bob.ok("notification:list", {}))["notifications"])

    assert len(listed) == 1
    assert listed[0]["kind"] == "ci"
    assert listed[0]["body"] == "passed"
    assert listed[0]["data"] == data


async def test_push_defaults_body_and_data(api: ApiClient, connect: Connector) -> None:
    await api.push(["bob"], "bare")
    await api.push(["bob"], "nulls", body=None, data=None)
    bob = await connect.notifications("bob")

    listed = objs((await bob.ok("notification:list", {}))["notifications"])

    assert [(n["title"], n["body"], n["data"]) for n in listed] == [
        ("nulls", "", {}),
        ("bare", "", {}),
    ]


# --- the API key ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong-key",
        "Bearer ",
        "Bearer",
        "",
        "Basic " + "k" * 32,
        "k" * 32,
        "Bearer " + "k" * 31,
        "Bearer " + "k" * 33,
    ],
)
async def test_a_missing_or_wrong_key_is_401_and_pushes_nothing(
    api: ApiClient, connect: Connector, authorization: str | None
) -> None:
    bob = await connect.notifications("bob")

    response = await api.request(
        "POST",
        NOTIFICATIONS_PATH,
        body=_push_body(),
        authorization=authorization,
        with_key=False,
    )

    response.error(401, "unauthenticated")
    assert await bob.ok("notification:unread_count", {}) == {"unread_count": 0}
    assert bob.received("notification:new") == []


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "bEaReR"])
async def test_the_bearer_scheme_is_case_insensitive(api: ApiClient, scheme: str) -> None:
    # RFC 9110 section 11.1: the auth scheme is case-insensitive; the server compares it
    # lowercased (adapters/http/api.py, HttpApi.authorized), so these are accepted
    response = await api.request(
        "POST", NOTIFICATIONS_PATH, body=_push_body(), authorization=f"{scheme} {api.api_key}"
    )

    assert response.status == 202


async def test_the_key_itself_is_case_sensitive(api: ApiClient) -> None:
    response = await api.request(
        "POST",
        NOTIFICATIONS_PATH,
        body=_push_body(),
        authorization=f"Bearer {api.api_key.upper()}",
    )

    response.error(401, "unauthenticated")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/rooms/nope/messages"),
        ("GET", "/api/v1/presence?user_ids=bob"),
    ],
)
async def test_every_api_route_needs_the_key(api: ApiClient, method: str, path: str) -> None:
    body = {"text": "hi"} if method == "POST" else None

    response = await api.request(method, path, body=body, with_key=False)

    response.error(401, "unauthenticated")


async def test_the_key_is_checked_before_the_body(api: ApiClient) -> None:
    response = await api.request(
        "POST", NOTIFICATIONS_PATH, data=b"{not json", authorization="Bearer wrong"
    )

    response.error(401, "unauthenticated")


async def test_a_401_names_the_bearer_challenge(api: ApiClient) -> None:
    response = await api.request("POST", NOTIFICATIONS_PATH, body=_push_body(), with_key=False)

    assert response.status == 401
    assert response.headers.get("WWW-Authenticate", "").lower().startswith("bearer")


class TestWithAnEmptyApiKey:
    """`Settings(api_key="")` (the attrs default; `from_env` never yields it)."""

    @pytest.fixture
    def server_settings(self) -> Settings:
        settings = make_settings()
        return Settings(
            dev=settings.dev,
            jwt_secret=settings.jwt_secret,
            api_key="",
            coalesce_window_ms=settings.coalesce_window_ms,
        )

    async def test_no_request_is_authorized(self, api: ApiClient) -> None:
        response = await api.request(
            "POST", NOTIFICATIONS_PATH, body=_push_body(), authorization="Bearer "
        )

        assert response.status == 401


# --- validation of the push -----------------------------------------------------------------


async def test_malformed_json_is_400(api: ApiClient) -> None:
    response = await api.request("POST", NOTIFICATIONS_PATH, data=b'{"user_ids": [')

    assert response.field_paths() == {"$"}


async def test_a_body_that_is_not_utf8_is_400(api: ApiClient) -> None:
    response = await api.request("POST", NOTIFICATIONS_PATH, data=b"\xff\xfe\x00")

    assert response.field_paths() == {"$"}


async def test_an_empty_body_is_400(api: ApiClient) -> None:
    response = await api.request("POST", NOTIFICATIONS_PATH)

    assert response.field_paths() == {"$"}


@pytest.mark.parametrize("body", [[{"user_ids": ["bob"]}], "hello", 5, None])
async def test_a_body_that_is_not_an_object_is_400_at_the_root(
    api: ApiClient, body: object
) -> None:
    response = await api.request("POST", NOTIFICATIONS_PATH, data=json.dumps(body).encode())

    assert response.field_paths() == {"$"}


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        ({"user_ids": [], "title": ""}, {"$.user_ids", "$.kind", "$.title"}),
        ({}, {"$.user_ids", "$.kind", "$.title"}),
        (_push_body(user_ids="bob"), {"$.user_ids"}),
        (_push_body(user_ids=[5]), {"$.user_ids[0]"}),
        (_push_body(user_ids=[""]), {"$.user_ids[0]"}),
        (_push_body(user_ids=["u" * 129]), {"$.user_ids[0]"}),
        (_push_body(user_ids=[f"u{i}" for i in range(1001)]), {"$.user_ids"}),
        (_push_body(title=""), {"$.title"}),
        (_push_body(title="t" * 201), {"$.title"}),
        (_push_body(kind=""), {"$.kind"}),
        (_push_body(kind="k" * 65), {"$.kind"}),
        (_push_body(body="b" * 4001), {"$.body"}),
        (_push_body(body=5), {"$.body"}),
        (_push_body(data=[1]), {"$.data"}),
        (_push_body(data="x"), {"$.data"}),
        (_push_body(data=5), {"$.data"}),
    ],
)
async def test_push_validation_names_each_bad_field(
    api: ApiClient, connect: Connector, body: dict[str, object], paths: set[str]
) -> None:
    bob = await connect.notifications("bob")

    response = await api.post(NOTIFICATIONS_PATH, body)

    assert response.field_paths() == paths
    assert await bob.ok("notification:unread_count", {}) == {"unread_count": 0}


async def test_unknown_fields_are_ignored(api: ApiClient) -> None:
    response = await api.post(NOTIFICATIONS_PATH, _push_body(priority="high"))

    assert response.status == 202


# --- POST /api/v1/rooms/{room_id}/messages --------------------------------------------------


async def test_room_message_is_201_and_broadcast_with_the_next_seq(
    api: ApiClient, connect: Connector
) -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    outsider = await connect("outsider")
    room_id = await _room_of(alice, bob)
    await send(alice, room_id, "first", "c1")

    response = await api.post(f"/api/v1/rooms/{room_id}/messages", {"text": "deploy done"})

    assert response.status == 201
    assert response.content_type == "application/json"
    assert set(response.json) == {"message"}
    message = obj(response.json["message"])
    assert set(message) == MESSAGE_KEYS
    assert message["room_id"] == room_id
    assert message["seq"] == 2
    assert message["author_id"] == "system"
    assert message["text"] == "deploy done"
    assert string(message["client_msg_id"])
    assert ISO_MS.match(string(message["created_at"]))
    assert message["edited_at"] is None
    assert message["deleted"] is False
    for member in (alice, bob):
        assert await member.wait_for("message:new", lambda m: m["seq"] == 2) == message
    await outsider.ok("room:list", {})
    assert outsider.received("message:new") == []
    history = await bob.ok("message:history", {"room_id": room_id})
    assert [m["id"] for m in objs(history["messages"])][-1] == message["id"]


async def test_room_message_with_an_author(api: ApiClient, connect: Connector) -> None:
    alice = await connect("alice")
    room_id = await _room_of(alice)

    response = await api.post(
        f"/api/v1/rooms/{room_id}/messages", {"text": "beep", "author_id": "deploy-bot"}
    )

    assert response.status == 201
    assert obj(response.json["message"])["author_id"] == "deploy-bot"
    assert (await alice.wait_for("message:new"))["author_id"] == "deploy-bot"


async def test_room_message_posts_to_a_private_room_too(api: ApiClient, connect: Connector) -> None:
    alice = await connect("alice")
    room = await create_room(alice, "secret", visibility="private")

    response = await api.post(f"/api/v1/rooms/{room['id']}/messages", {"text": "hi"})

    assert response.status == 201
    assert (await alice.wait_for("message:new"))["text"] == "hi"


async def test_room_message_to_an_unknown_room_is_404(api: ApiClient) -> None:
    response = await api.post("/api/v1/rooms/no-such-room/messages", {"text": "hi"})

    response.error(404, "not_found")


async def test_the_same_client_msg_id_twice_returns_the_same_message_and_broadcasts_once(
    api: ApiClient, connect: Connector
) -> None:
    alice = await connect("alice")
    room_id = await _room_of(alice)
    path = f"/api/v1/rooms/{room_id}/messages"

    first = await api.post(path, {"text": "once", "client_msg_id": "job-7"})
    second = await api.post(path, {"text": "once", "client_msg_id": "job-7"})
    marker = await api.post(path, {"text": "marker", "client_msg_id": "job-8"})

    assert (first.status, second.status, marker.status) == (201, 201, 201)
    assert first.json == second.json
    assert obj(marker.json["message"])["seq"] == 2
    await alice.wait_for("message:new", lambda m: m["text"] == "marker")
    assert [m["text"] for m in alice.received("message:new")] == ["once", "marker"]


async def test_without_client_msg_id_each_post_is_a_new_message(
    api: ApiClient, connect: Connector
) -> None:
    alice = await connect("alice")
    room_id = await _room_of(alice)
    path = f"/api/v1/rooms/{room_id}/messages"

    first = await api.post(path, {"text": "same"})
    second = await api.post(path, {"text": "same"})

    assert obj(first.json["message"])["seq"] == 1
    assert obj(second.json["message"])["seq"] == 2
    assert obj(first.json["message"])["id"] != obj(second.json["message"])["id"]


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        ({}, {"$.text"}),
        ({"text": ""}, {"$.text"}),
        ({"text": "x" * 4001}, {"$.text"}),
        ({"text": 5}, {"$.text"}),
        ({"text": "hi", "author_id": ""}, {"$.author_id"}),
        ({"text": "hi", "author_id": "a" * 129}, {"$.author_id"}),
        ({"text": "hi", "client_msg_id": "c" * 65}, {"$.client_msg_id"}),
        ([{"text": "hi"}], {"$"}),
    ],
)
async def test_room_message_validation(
    api: ApiClient, connect: Connector, body: object, paths: set[str]
) -> None:
    alice = await connect("alice")
    room_id = await _room_of(alice)

    response = await api.post(f"/api/v1/rooms/{room_id}/messages", body)

    assert response.field_paths() == paths
    history = await alice.ok("message:history", {"room_id": room_id})
    assert history["messages"] == []


async def test_room_message_malformed_json_is_400(api: ApiClient, connect: Connector) -> None:
    alice = await connect("alice")
    room_id = await _room_of(alice)

    response = await api.request("POST", f"/api/v1/rooms/{room_id}/messages", data=b"{oops")

    assert response.field_paths() == {"$"}


# --- GET /api/v1/presence -------------------------------------------------------------------


async def test_presence_lists_the_asked_users(api: ApiClient, connect: Connector) -> None:
    await connect("alice")
    await connect("alice")

    response = await api.request("GET", "/api/v1/presence?user_ids=alice,zed")

    assert response.status == 200
    assert set(response.json) == {"presence"}
    entries = {string(e["user_id"]): e for e in objs(response.json["presence"])}
    assert set(entries) == {"alice", "zed"}
    for entry in entries.values():
        assert set(entry) == {"user_id", "online", "last_seen", "connections"}
    assert entries["alice"]["online"] is True
    assert entries["alice"]["connections"] == 2
    assert entries["zed"] == {
        "user_id": "zed",
        "online": False,
        "last_seen": None,
        "connections": 0,
    }


async def test_presence_after_a_disconnect_has_last_seen(
    api: ApiClient, connect: Connector, server: RunningServer
) -> None:
    alice = await connect("alice")
    await alice.disconnect()
    metrics = server.container.metrics()
    await wait_until(
        lambda: metrics.value("switchboard_connections", namespace="/chat") == 0,
        what="the disconnect",
    )

    response = await api.request("GET", "/api/v1/presence?user_ids=alice")

    entry = objs(response.json["presence"])[0]
    assert entry["online"] is False
    assert entry["connections"] == 0
    assert ISO_MS.match(string(entry["last_seen"]))


async def test_presence_trims_and_skips_empty_ids(api: ApiClient, connect: Connector) -> None:
    await connect("alice")

    response = await api.request("GET", "/api/v1/presence?user_ids=%20alice%20,,bob,")

    assert response.status == 200
    users = [e["user_id"] for e in objs(response.json["presence"])]
    assert sorted(string(u) for u in users) == ["alice", "bob"]


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?user_ids=",
        "?user_ids=,,",
        "?users=alice",
        "?user_ids=" + ",".join(f"u{i}" for i in range(101)),
    ],
)
async def test_presence_validation(api: ApiClient, query: str) -> None:
    response = await api.request("GET", "/api/v1/presence" + query)

    assert response.field_paths() == {"$.user_ids"}


async def test_presence_names_each_too_long_id(api: ApiClient) -> None:
    long_id = "u" * 129

    response = await api.request("GET", f"/api/v1/presence?user_ids=alice,{long_id},{long_id}x")

    assert response.field_paths() == {"$.user_ids[1]", "$.user_ids[2]"}


# --- aiohttp's own errors as JSON -----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/v1/nope"), ("POST", "/api/v2/notifications"), ("GET", "/nothing/here")],
)
async def test_an_unknown_route_is_a_404_error_object(
    api: ApiClient, method: str, path: str
) -> None:
    response = await api.request(method, path)

    response.error(404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", NOTIFICATIONS_PATH),
        ("DELETE", NOTIFICATIONS_PATH),
        ("POST", "/api/v1/presence?user_ids=bob"),
        ("GET", "/api/v1/rooms/r/messages"),
    ],
)
async def test_a_wrong_method_is_a_405_error_object(api: ApiClient, method: str, path: str) -> None:
    response = await api.request(method, path)

    # the code is `method_not_allowed` (adapters/http/api.py _CODE_OF_STATUS); it is not in
    # the contract's list of stable codes, which names no code for 405
    response.error(405, "method_not_allowed")


async def test_a_405_names_the_allowed_methods(api: ApiClient) -> None:
    response = await api.request("GET", NOTIFICATIONS_PATH)

    assert response.status == 405
    assert response.headers.get("Allow") == "POST"


async def test_a_body_over_max_payload_bytes_is_413(
    api: ApiClient, connect: Connector, server: RunningServer
) -> None:
    bob = await connect.notifications("bob")
    limit = server.settings.max_payload_bytes
    body = json.dumps(_push_body()).encode()
    at_limit = body + b" " * (limit - len(body))
    over = at_limit + b" "

    accepted = await api.request("POST", NOTIFICATIONS_PATH, data=at_limit)
    refused = await api.request("POST", NOTIFICATIONS_PATH, data=over)

    assert accepted.status == 202
    refused.error(413, "payload_too_large")
    assert await bob.ok("notification:unread_count", {}) == {"unread_count": 1}


async def test_a_413_on_the_room_message_route_posts_nothing(
    api: ApiClient, connect: Connector, server: RunningServer
) -> None:
    alice = await connect("alice")
    room_id = await _room_of(alice)
    text = "x" * (server.settings.max_payload_bytes + 10)

    response = await api.post(f"/api/v1/rooms/{room_id}/messages", {"text": text})

    response.error(413, "payload_too_large")
    assert (await alice.ok("message:history", {"room_id": room_id}))["messages"] == []


async def test_the_server_still_serves_after_http_errors(
    api: ApiClient, connect: Connector
) -> None:
    await api.request("POST", NOTIFICATIONS_PATH, data=b"{")
    await api.request("GET", "/api/v1/nope")
    await api.request("GET", NOTIFICATIONS_PATH)

    alice = await connect("alice")
    assert await alice.ok("room:list", {}) == {"rooms": []}
    assert (await api.request("GET", "/healthz")).status == 200


# --- a large push ---------------------------------------------------------------------------


async def test_a_push_to_1000_users_keeps_the_loop_serving(
    api: ApiClient, connect: Connector
) -> None:
    users = [f"user-{i:04d}" for i in range(1000)]
    alice = await connect("alice")
    await create_room(alice, "lobby")
    watchers = [await connect.notifications(u) for u in (users[0], users[500], users[999])]

    started = time.monotonic()
    finished: dict[str, float] = {}

    async def push() -> list[str]:
        ids = await api.push(users, "maintenance tonight", kind="broadcast")
        finished["push"] = time.monotonic()
        return ids

    async def room_list() -> list[object]:
        data = await alice.ok("room:list", {})
        finished["room:list"] = time.monotonic()
        return list(objs(data["rooms"]))

    push_task = asyncio.create_task(push())
    await asyncio.sleep(0)  # the request is on its way
    rooms = await room_list()
    ids = await asyncio.wait_for(push_task, timeout=60)

    assert len(rooms) == 1
    assert len(ids) == 1000
    assert len(set(ids)) == 1000
    assert finished["room:list"] <= finished["push"] or finished["room:list"] - started <= 2.0, (
        finished
    )
    for watcher in watchers:
        index = users.index(watcher.user_id)
        notification = await watcher.wait_for("notification:new", within=10)
        assert notification["id"] == ids[index]
        assert notification["user_id"] == watcher.user_id

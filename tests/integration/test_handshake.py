"""The /chat handshake: the JWT in `auth.token` decides who connects, refusals are
`connect_error`s with the contract's `{"code", "message"}` data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.auth import issue_token
from application.json_types import JsonObject
from tests.integration.conftest import JWT_SECRET, Connector, RunningServer
from tests.integration.support import obj, objs, string


def _refusal_code(error: JsonObject) -> str:
    data = obj(error["data"])
    assert set(data) == {"code", "message"}, data
    assert string(data["message"])
    return string(data["code"])


async def test_no_token_is_auth_required(connect: Connector) -> None:
    error = await connect.refused()

    assert _refusal_code(error) == "auth_required"
    assert string(error["message"])


async def test_auth_without_a_token_field_is_auth_required(connect: Connector) -> None:
    assert _refusal_code(await connect.refused({"user": "alice"})) == "auth_required"
    assert _refusal_code(await connect.refused({"token": ""})) == "auth_required"


async def test_garbage_token_is_auth_invalid(connect: Connector) -> None:
    assert _refusal_code(await connect.refused({"token": "not-a-jwt"})) == "auth_invalid"


async def test_token_signed_with_another_secret_is_auth_invalid(connect: Connector) -> None:
    forged = issue_token("another-secret-" + "y" * 32, "alice")

    assert _refusal_code(await connect.refused({"token": forged})) == "auth_invalid"


async def test_expired_token_is_auth_expired(connect: Connector) -> None:
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    expired = issue_token(JWT_SECRET, "alice", ttl_s=3600, now=two_hours_ago)

    assert _refusal_code(await connect.refused({"token": expired})) == "auth_expired"


async def test_refused_handshakes_register_no_connection(
    connect: Connector, server: RunningServer
) -> None:
    await connect.refused()
    await connect.refused({"token": "not-a-jwt"})
    observer = await connect("observer")

    data = await observer.ok("presence:get", {"user_ids": ["alice"]})

    assert server.container.metrics().value("switchboard_connections", namespace="/chat") == 1
    assert objs(data["presence"])[0]["online"] is False


async def test_valid_token_connects_and_the_user_comes_from_the_token(
    connect: Connector,
) -> None:
    alice = await connect("alice")

    data = await alice.ok("room:create", {"name": "general", "owner_id": "mallory"})

    assert alice.connected
    assert obj(data["room"])["owner_id"] == "alice"

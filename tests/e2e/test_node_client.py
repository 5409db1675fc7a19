"""Interop: the official JavaScript socket.io-client 4.x chats with a real Switchboard server."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.auth import issue_token
from application.settings import Settings
from tests.support.inprocess import serve_in_process

NODE_DIR = Path(__file__).parent / "node"
SECRET = "interop-secret-" + "x" * 32


@pytest.fixture
async def server_url() -> AsyncIterator[str]:
    settings = Settings(dev=True, jwt_secret=SECRET, api_key="k" * 32, coalesce_window_ms=50)
    async with serve_in_process(settings) as url:
        yield url


def _node() -> str:
    node = shutil.which("node")
    assert node, "node is required for the interop test (apt-get install nodejs)"
    assert (NODE_DIR / "node_modules" / "socket.io-client").is_dir(), (
        "run `npm ci --prefix tests/e2e/node` (scripts/test does it)"
    )
    return node


async def test_official_js_client_chats(server_url: str) -> None:
    process = await asyncio.create_subprocess_exec(
        _node(),
        str(NODE_DIR / "chat_client.mjs"),
        server_url,
        issue_token(SECRET, "alice"),
        issue_token(SECRET, "bob"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, stderr.decode() + stdout.decode()
    report = json.loads(stdout.decode().strip().splitlines()[-1])

    assert report["refused"]["data"]["code"] == "auth_invalid"
    assert report["created"]["ok"] is True
    room = report["created"]["data"]["room"]
    assert room["name"] == "interop"
    assert report["joined"]["data"]["room"]["member_count"] == 2
    message = report["sent"]["data"]["message"]
    assert (message["seq"], message["text"], message["author_id"]) == (
        1,
        "hello from node",
        "alice",
    )
    assert report["invalid"]["ok"] is False
    assert report["invalid"]["error"]["code"] == "validation_failed"
    assert report["invalid"]["error"]["details"]["fields"][0]["path"] == "$"
    assert report["unknown"]["error"]["code"] == "unknown_event"
    assert report["noPayload"]["ok"] is True
    received = [e for e in report["bobEvents"] if e["event"] == "message:new"]
    assert [e["payload"]["id"] for e in received] == [message["id"]]

"""From the embedded default to Redis with the real commands: `switchboard serve` on memory
with a snapshot path, SIGTERM (the last save), `switchboard migrate` into the test Redis,
then `switchboard serve` on Redis under that prefix serves the same rooms, the same history
with the same seqs, the same notifications and unread counts, and an idempotent resend of a
migrated `client_msg_id` returns the stored message. A second migrate finds nothing new.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import attrs
import pytest
import redis.asyncio as aioredis

from adapters.auth import issue_token
from adapters.memory.messages import MessagesState
from adapters.memory.notifications import NotificationsState
from adapters.memory.rooms import RoomsState
from adapters.memory.snapshot import Snapshot, read_snapshot, write_snapshot
from application.json_types import JsonValue
from domain.model import ChatMessage, Room, Visibility
from tests.integration.support import (
    CHAT,
    NOTIFICATIONS,
    ApiClient,
    ChatClient,
    NotificationsClient,
    create_room,
    integer,
    new_sio,
    obj,
    send,
    seqs,
    string,
)
from tests.support.redis_server import free_port

pytestmark = pytest.mark.e2e

SWITCHBOARD = Path(sys.executable).parent / "switchboard"
SECRET = "migrate-e2e-secret-" + "s" * 32
API_KEY = "migrate-e2e-api-key-" + "k" * 16
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 15.0


def base_env(**extra: str) -> dict[str, str]:
    """The test's environment without any Switchboard or Redis setting, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SWITCHBOARD_") and k not in ("REDIS_URL", "REDIS_FALLBACK")
    }
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


@attrs.define
class Serve:
    """One `switchboard serve` process (a fixed secret and API key) and its log."""

    env: dict[str, str]
    log: Path
    port: int = attrs.Factory(free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Serve:
        """Start and wait (bounded) until `/healthz` answers."""
        env = {
            **self.env,
            "SWITCHBOARD_JWT_SECRET": SECRET,
            "SWITCHBOARD_API_KEY": API_KEY,
            "SWITCHBOARD_COALESCE_WINDOW_MS": "50",
        }
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(SWITCHBOARD), "serve", "--port", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"serve exited with {self.process.returncode}:\n{self.output()}")
            if _healthy(self.port):
                return self
            time.sleep(0.05)
        pytest.fail(f"serve not healthy within {START_TIMEOUT_S} s:\n{self.output()}")

    def stop(self) -> int:
        """SIGTERM and wait for the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve did not stop within {STOP_TIMEOUT_S} s:\n{self.output()}")

    def kill(self) -> None:
        """Make sure it is gone (after a failed test)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def output(self) -> str:
        """What it printed so far."""
        return self.log.read_text(errors="replace")[-6000:]


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture
def servers() -> Iterator[list[Serve]]:
    """Server processes a test starts; all killed after it, whatever happened."""
    started: list[Serve] = []
    try:
        yield started
    finally:
        for server in started:
            server.kill()


def migrate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `switchboard migrate` with these arguments."""
    return subprocess.run(
        [str(SWITCHBOARD), "migrate", *args],
        capture_output=True,
        text=True,
        env=env or base_env(),
        timeout=60,
        check=False,
    )


def table(output: str) -> dict[str, tuple[int, int, int]]:
    """The report's rows: kind -> (moved, already there, refused)."""
    rows: dict[str, tuple[int, int, int]] = {}
    for line in output.splitlines():
        for kind in ("rooms", "memberships", "messages", "idempotency keys", "notifications"):
            if line.startswith(kind + " "):
                moved, already, refused = (int(v) for v in line[len(kind) :].split()[:3])
                rows[kind] = (moved, already, refused)
    assert len(rows) == 5, output
    return rows


# --- clients ----------------------------------------------------------------------------------


@attrs.define
class Clients:
    """Socket.IO clients and an HTTP API client against one server process."""

    url: str
    http: aiohttp.ClientSession
    opened: list[ChatClient] = attrs.Factory(list)

    @property
    def api(self) -> ApiClient:
        """The HTTP API with the server's key."""
        return ApiClient(self.http, self.url, API_KEY)

    async def chat(self, user_id: str) -> ChatClient:
        """A connected /chat client of the user."""
        client = ChatClient(user_id=user_id, sio=new_sio())
        await self._connect(client, CHAT)
        return client

    async def notifications(self, user_id: str) -> NotificationsClient:
        """A connected /notifications client of the user."""
        client = NotificationsClient(user_id=user_id, sio=new_sio())
        await self._connect(client, NOTIFICATIONS)
        return client

    async def _connect(self, client: ChatClient, namespace: str) -> None:
        self.opened.append(client)
        await client.sio.connect(
            self.url,
            auth={"token": issue_token(SECRET, client.user_id, ttl_s=3600)},
            transports=["websocket"],
            namespaces=[namespace],
            wait_timeout=5,
        )

    async def close(self) -> None:
        """Disconnect every client."""
        for client in self.opened:
            await client.disconnect()
        self.opened.clear()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@attrs.frozen
class Seen:
    """What the users see: their room lists, the rooms' history, their notifications."""

    rooms: dict[str, JsonValue]
    history: dict[str, JsonValue]
    notifications: dict[str, JsonValue]
    unread: dict[str, int]


async def observe(clients: Clients, room_ids: Sequence[str]) -> Seen:
    """Every user's room list and notifications, every room's full history."""
    seen = Seen(rooms={}, history={}, notifications={}, unread={})
    for user in ("alice", "bob", "carol"):
        chat = await clients.chat(user)
        seen.rooms[user] = (await chat.ok("room:list", {}))["rooms"]
        for room_id in room_ids:
            ack = await chat.call("message:history", {"room_id": room_id, "limit": 100})
            if ack["ok"] is True:
                seen.history[room_id] = obj(ack["data"])["messages"]
        notes = await clients.notifications(user)
        listed = await notes.ok("notification:list", {"limit": 100})
        seen.notifications[user] = listed["notifications"]
        seen.unread[user] = integer(listed["unread_count"])
    await clients.close()
    return seen


STORE_KEY_PARTS = ("{rooms}:", "{r:", ":notes", ":order", ":unread", ":read", ":counter")
"""What the room, message and notification stores write (rate limits and presence, also
under the prefix, come and go by themselves)."""


async def store_dump(client: aioredis.Redis, prefix: str) -> dict[bytes, bytes]:
    """Every store key under the prefix with its serialised value (`DUMP`)."""
    found: dict[bytes, bytes] = {}
    async for key in client.scan_iter(match=prefix.encode() + b"*"):
        name = key[len(prefix) :].decode("utf-8", "surrogatepass")
        if any(part in name for part in STORE_KEY_PARTS) and not name.startswith("limits"):
            value: bytes | None = await client.dump(key)
            assert value is not None, key
            found[key] = value
    assert found
    return found


# --- the whole path ---------------------------------------------------------------------------


async def test_serve_on_memory_then_migrate_then_serve_on_redis(
    tmp_path: Path,
    redis_url: str,
    redis_prefix: str,
    redis_client: aioredis.Redis,
    http: aiohttp.ClientSession,
    servers: list[Serve],
) -> None:
    snapshot = tmp_path / "switchboard.snapshot.json"
    embedded = Serve(
        env=base_env(SWITCHBOARD_SNAPSHOT_PATH=str(snapshot)), log=tmp_path / "memory.log"
    )
    servers.append(embedded)
    await asyncio.to_thread(embedded.start)
    clients = Clients(embedded.url, http)
    alice = await clients.chat("alice")
    bob = await clients.chat("bob")
    carol = await clients.chat("carol")
    public = string((await create_room(alice, "general"))["id"])
    private = string(
        (await create_room(alice, "secret", visibility="private", members=["bob"]))["id"]
    )
    await bob.ok("room:join", {"room_id": public})
    await carol.ok("room:join", {"room_id": public})
    hello = await send(alice, public, "hello @bob", "c-1")  # mentions bob
    await send(bob, public, "hi", "c-2")
    edited = await send(alice, public, "tpyo", "c-3")
    await alice.ok("message:edit", {"room_id": public, "message_id": edited["id"], "text": "typo"})
    gone = await send(bob, public, "oops", "c-4")
    await bob.ok("message:delete", {"room_id": public, "message_id": gone["id"]})
    await send(bob, private, "just us", "p-1")
    await carol.ok("room:leave", {"room_id": public})
    pushed = await clients.api.push(["bob", "carol"], "deploy", kind="ci", data={"v": [1, 2.5]})
    await clients.api.push(["carol"], "second")
    bob_notes = await clients.notifications("bob")
    await bob_notes.ok("notification:mark_read", {"ids": [pushed[0]]})
    await clients.close()
    before = await observe(clients, [public, private])
    assert before.unread == {"alice": 0, "bob": 1, "carol": 2}
    assert seqs(before.history[public]) == [1, 2, 3, 4]

    assert await asyncio.to_thread(embedded.stop) == 0, embedded.output()
    assert '"snapshot_saved"' in embedded.output()
    counts = read_snapshot(snapshot).counts()

    args = ("--snapshot", str(snapshot), "--redis-url", redis_url, "--prefix", redis_prefix)
    first = await asyncio.to_thread(migrate, *args)
    assert first.returncode == 0, first.stdout + first.stderr
    assert table(first.stdout) == {
        "rooms": (counts.rooms, 0, 0),
        "memberships": (counts.memberships, 0, 0),
        "messages": (counts.messages, 0, 0),
        "idempotency keys": (counts.idempotency_keys, 0, 0),
        "notifications": (counts.notifications, 0, 0),
    }
    assert (counts.rooms, counts.messages, counts.notifications, counts.unread) == (2, 5, 4, 3)
    assert "done: moved" in first.stdout

    on_redis = Serve(
        env=base_env(REDIS_URL=redis_url, SWITCHBOARD_REDIS_PREFIX=redis_prefix),
        log=tmp_path / "redis.log",
    )
    servers.append(on_redis)
    await asyncio.to_thread(on_redis.start)
    clients = Clients(on_redis.url, http)
    after = await observe(clients, [public, private])
    assert after == before

    alice = await clients.chat("alice")
    assert await send(alice, public, "hello @bob", "c-1") == hello  # the stored message
    assert (await send(alice, public, "on redis now", "c-5"))["seq"] == 5
    bob = await clients.chat("bob")
    joined = await bob.ok("room:join", {"room_id": public, "since_seq": 2})
    assert seqs(joined["missed"]) == [3, 4, 5]
    assert (await send(bob, private, "still private", "p-2"))["seq"] == 2
    notes = await clients.notifications("bob")
    assert (await notes.ok("notification:unread_count", {}))["unread_count"] == 1
    await clients.close()
    assert await asyncio.to_thread(on_redis.stop) == 0, on_redis.output()

    stored_before = await store_dump(redis_client, redis_prefix)
    second = await asyncio.to_thread(migrate, *args)
    assert second.returncode == 0, second.stdout + second.stderr
    assert table(second.stdout) == {
        "rooms": (0, counts.rooms, 0),
        "memberships": (0, counts.memberships, 0),
        "messages": (0, counts.messages, 0),
        "idempotency keys": (0, counts.idempotency_keys, 0),
        "notifications": (0, counts.notifications, 0),
    }
    assert "nothing new" in second.stdout
    assert await store_dump(redis_client, redis_prefix) == stored_before  # nothing changed


# --- the command's contract -----------------------------------------------------------------


def small_snapshot(path: Path, text: str = "hello", now: datetime | None = None) -> None:
    """A snapshot file of one room with one member, one message and its idempotency key."""
    now = now or datetime.now(UTC)
    message = ChatMessage("m-1", "r-1", 1, "alice", text, "c-1", now)
    write_snapshot(
        path,
        Snapshot(
            rooms=RoomsState(
                rooms=(Room("r-1", "general", Visibility.PUBLIC, "alice", now),),
                members={"r-1": frozenset({"alice"})},
            ),
            messages=MessagesState(
                logs={"r-1": (message,)}, idempotency={("r-1", "alice", "c-1"): 1}
            ),
            notifications=NotificationsState(logs={}),
            written_at=now,
        ),
    )


async def test_dry_run_reports_and_writes_nothing(
    tmp_path: Path, redis_url: str, redis_prefix: str, redis_client: aioredis.Redis
) -> None:
    path = tmp_path / "snapshot.json"
    small_snapshot(path)
    result = await asyncio.to_thread(
        migrate,
        *("--snapshot", str(path), "--redis-url", redis_url, "--prefix", redis_prefix),
        "--dry-run",
    )
    assert result.returncode == 0, result.stderr
    assert "dry run" in result.stdout
    assert table(result.stdout)["messages"] == (1, 0, 0)
    assert await redis_client.keys(redis_prefix + "*") == []


def test_a_different_message_at_a_seq_is_refused_with_exit_3(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    original, changed = tmp_path / "a.json", tmp_path / "b.json"
    now = datetime.now(UTC)
    small_snapshot(original, "hello", now)
    small_snapshot(changed, "something else", now)
    args = ("--redis-url", redis_url, "--prefix", redis_prefix)
    assert migrate("--snapshot", str(original), *args).returncode == 0
    result = migrate("--snapshot", str(changed), *args)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "refused: messages of room 'r-1': Redis has different messages at seq 1" in result.stdout
    assert table(result.stdout)["messages"] == (0, 0, 1)
    assert table(result.stdout)["rooms"][1] == 1  # the room itself is the same


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--snapshot", "/nonexistent/snapshot.json", "--redis-url", "redis://127.0.0.1:1"],
            "cannot read",
        ),
        (["--snapshot", "FILE", "--redis-url", "http://127.0.0.1:6379"], "redis://"),
        (["--snapshot", "FILE"], "--redis-url is required"),
        (["--snapshot", "FILE", "--redis-url", "redis://127.0.0.1:1", "--prefix", " "], "--prefix"),
        (["--redis-url", "redis://127.0.0.1:1"], "--snapshot"),
    ],
)
def test_bad_arguments_and_files_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    path = tmp_path / "snapshot.json"
    small_snapshot(path)
    result = migrate(*(str(path) if a == "FILE" else a for a in args))
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_corrupt_snapshot_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    small_snapshot(path)
    doc = json.loads(path.read_text())
    doc["version"] = 2
    path.write_text(json.dumps(doc))
    result = migrate("--snapshot", str(path), "--redis-url", "redis://127.0.0.1:1")
    assert result.returncode == 2
    assert "unsupported snapshot version 2" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_redis_exits_1_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    small_snapshot(path)
    result = migrate(
        "--snapshot", str(path), "--redis-url", f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "does not answer" in result.stderr
    assert "nothing was written" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout  # the password is never printed
    assert "Traceback" not in result.stderr


def test_serve_refuses_to_start_on_a_corrupt_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    path.write_text('{"format": "switchboard-snapshot", "version": 1, "rooms": [')
    env = base_env(
        SWITCHBOARD_SNAPSHOT_PATH=str(path),
        SWITCHBOARD_JWT_SECRET=SECRET,
        SWITCHBOARD_API_KEY=API_KEY,
    )
    result = subprocess.run(
        [str(SWITCHBOARD), "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "switchboard: snapshot error:" in result.stderr
    assert "not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr
    assert path.read_text().endswith("[")  # kept as it was, never reset

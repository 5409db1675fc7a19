"""The Python SDK against a real server process that is SIGKILLed and restarted mid-chat.

The server keeps its data in a `redis-server` started by the test, and the JWT secret is
fixed, so rooms, messages and tokens survive the restart. Two SDK clients chat, the server
dies, the sender keeps sending (the commands wait), the server comes back, and each client
ends with every message exactly once, in seq order.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest

from adapters.auth import issue_token
from adapters.client import (
    AuthError,
    Backoff,
    ClientSettings,
    ConnectionState,
    ErrorCategory,
    Message,
    SwitchboardClient,
)
from tests.support.redis_server import RedisServer, free_port

pytestmark = pytest.mark.e2e

SWITCHBOARD = Path(sys.executable).parent / "switchboard"
SECRET = "sdk-restart-secret-" + "s" * 32
API_KEY = "sdk-restart-api-key-" + "k" * 16
START_TIMEOUT_S = 15.0
BACKOFF = Backoff(base_s=0.05, ceiling_s=0.4, max_attempts=200)


@attrs.define
class ServerProcess:
    """`switchboard serve --dev` on a fixed port, with Redis; killable and restartable."""

    port: int
    redis_url: str
    log: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        """The base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start and wait (bounded) until `/healthz` answers."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("SWITCHBOARD_") and k not in ("REDIS_URL", "REDIS_FALLBACK")
        }
        env.update(
            SWITCHBOARD_JWT_SECRET=SECRET,
            SWITCHBOARD_API_KEY=API_KEY,
            REDIS_URL=self.redis_url,
            SWITCHBOARD_COALESCE_WINDOW_MS="50",
            PYTHONUNBUFFERED="1",
        )
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"\n=== start {self.starts}\n".encode())
            self.process = subprocess.Popen(
                [str(SWITCHBOARD), "serve", "--dev", "--port", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"server exited with {self.process.returncode}:\n{self.log_text()}")
            if _healthz(self.port):
                return
            time.sleep(0.05)
        pytest.fail(f"server not healthy within {START_TIMEOUT_S} s:\n{self.log_text()}")

    def kill(self) -> None:
        """SIGKILL: no drain, no goodbye."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def log_text(self) -> str:
        """The server's output so far (for failure messages)."""
        return self.log.read_text(errors="replace")[-6000:]


def _healthz(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def server(redis: RedisServer, tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(port=free_port(), redis_url=redis.url, log=tmp_path / "server.log")
    process.start()
    try:
        yield process
    finally:
        process.kill()


@attrs.define
class RecordingSleep:
    """The injected sleep: records each backoff delay, then really sleeps it."""

    delays: list[float] = attrs.Factory(list)

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(seconds)


@attrs.define
class Tokens:
    """A token provider that counts its calls and can be held back."""

    user_id: str
    calls: int = 0
    gate: asyncio.Event | None = None

    async def __call__(self) -> str:
        self.calls += 1
        if self.gate is not None and self.calls > 1:
            async with asyncio.timeout(30):
                await self.gate.wait()
        return issue_token(SECRET, self.user_id)


@attrs.define
class Chatter:
    """One SDK client and what it saw."""

    client: SwitchboardClient
    tokens: Tokens
    sleep: RecordingSleep
    received: list[Message] = attrs.Factory(list)


def chatter(url: str, user_id: str, seed: int) -> Chatter:
    tokens = Tokens(user_id)
    sleep = RecordingSleep()
    client = SwitchboardClient(
        url,
        tokens,
        ClientSettings(
            backoff=BACKOFF, connect_timeout_s=3.0, ack_timeout_s=5.0, queue_max_wait_s=30.0
        ),
        random=random.Random(seed).random,
        sleep=sleep,
    )
    result = Chatter(client, tokens, sleep)
    client.on_message(result.received.append)
    return result


@pytest.fixture
async def chatters(server: ServerProcess) -> AsyncIterator[tuple[Chatter, Chatter]]:
    alice, bob = chatter(server.url, "alice", 1), chatter(server.url, "bob", 2)
    try:
        yield alice, bob
    finally:
        await alice.client.close()
        await bob.client.close()


async def eventually(check: object, timeout_s: float, what: str) -> None:
    """Poll a zero-argument predicate until it holds (bounded)."""
    assert callable(check)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}")


def texts(messages: list[Message]) -> list[str]:
    return [m.text for m in messages]


async def test_clients_survive_a_server_kill_without_gaps_or_duplicates(
    server: ServerProcess, chatters: tuple[Chatter, Chatter]
) -> None:
    alice, bob = chatters
    await alice.client.connect()
    await bob.client.connect()
    room = await alice.client.create_room("restart")
    await bob.client.join_room(room.id)
    for i in range(1, 6):
        await alice.client.send(room.id, f"m{i}")
    await eventually(lambda: len(bob.received) == 5, 10, "bob to see m1..m5")

    bob.tokens.gate = asyncio.Event()  # bob comes back only after alice sent m6..m10
    server.kill()
    await eventually(
        lambda: alice.client.state is bob.client.state is ConnectionState.RECONNECTING,
        10,
        "both clients to notice the dead server",
    )
    pending = [
        asyncio.create_task(alice.client.send(room.id, f"m{i}", client_msg_id=f"while-down-{i}"))
        for i in range(6, 11)
    ]
    await asyncio.sleep(0.5)
    assert not any(task.done() for task in pending), "sends must wait while reconnecting"
    assert alice.client.state is ConnectionState.RECONNECTING

    server.start()
    async with asyncio.timeout(30):
        sent = await asyncio.gather(*pending)
    assert [m.seq for m in sent] == [6, 7, 8, 9, 10]
    assert bob.client.state is ConnectionState.RECONNECTING  # held back by its token gate
    bob.tokens.gate.set()
    await bob.client.wait_for_state(ConnectionState.CONNECTED, 15)
    for i in range(11, 13):
        await alice.client.send(room.id, f"m{i}")

    expected = [f"m{i}" for i in range(1, 13)]
    for who in (alice, bob):
        await eventually(lambda who=who: len(who.received) >= 12, 15, "all 12 messages")
        await asyncio.sleep(0.2)  # nothing more may trickle in
        assert texts(who.received) == expected, who.tokens.user_id
        assert [m.seq for m in who.received] == list(range(1, 13))
        assert len({(m.room_id, m.seq) for m in who.received}) == 12
        history = who.client.state_history
        assert history == [
            ConnectionState.CLOSED,
            ConnectionState.CONNECTING,
            ConnectionState.CONNECTED,
            ConnectionState.RECONNECTING,
            ConnectionState.CONNECTED,
        ], who.tokens.user_id
        metrics = who.client.metrics
        assert metrics.reconnect_count == 1
        assert metrics.reconnect_attempts >= 1
        assert metrics.last_rtt_s is not None
        assert metrics.last_rtt_s < 5
        assert metrics.time_to_connect_s is not None
        assert who.tokens.calls == 1 + metrics.reconnect_attempts  # a token per attempt
        delays = who.sleep.delays
        assert delays == list(metrics.backoff_delays_s)
        assert len(delays) == metrics.reconnect_attempts
        for attempt, delay in enumerate(delays):
            assert 0 <= delay <= min(BACKOFF.ceiling_s, BACKOFF.base_s * 2**attempt)
    # the server stored each message once: the waiting sends were not duplicated
    page = await bob.client.history(room.id, limit=100)
    assert texts(list(page.messages)) == expected


async def test_bad_and_expired_tokens_raise_auth_errors(server: ServerProcess) -> None:
    async def bad_token() -> str:
        return "not-a-jwt"

    async def expired_token() -> str:
        return issue_token(SECRET, "alice", now=datetime.now(UTC) - timedelta(hours=2))

    for provider, code in ((bad_token, "auth_invalid"), (expired_token, "auth_expired")):
        sleep = RecordingSleep()
        client = SwitchboardClient(
            server.url, provider, ClientSettings(backoff=BACKOFF), sleep=sleep
        )
        with pytest.raises(AuthError) as caught:
            await client.connect()
        assert caught.value.code == code
        assert caught.value.category is ErrorCategory.AUTH
        assert client.state is ConnectionState.ERROR
        assert sleep.delays == []  # an auth refusal is not retried
        await client.close()

"""`SwitchboardClient` over a fake transport: states, backoff, token refresh, the command
queue, resending, rejoin with `since_seq` and live gap filling. No network."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import attrs
import pytest

from adapters.client import (
    AuthError,
    Backoff,
    ClientSettings,
    ConnectionState,
    Message,
    NetworkError,
    NotFoundError,
    StateChange,
    SwitchboardClient,
)
from tests.client.fakes import (
    FakeServer,
    FakeSleep,
    ScriptedRandom,
    fake_transport_factory,
)

S = ConnectionState


@attrs.define
class Harness:
    """A client on a fake server, with what it delivered and the tokens it asked for."""

    server: FakeServer
    client: SwitchboardClient
    sleep: FakeSleep
    received: list[Message]
    changes: list[StateChange]
    token_calls: list[int]

    def seqs(self, room_id: str = "r1") -> list[int]:
        return [m.seq for m in self.received if m.room_id == room_id]


def make(
    server: FakeServer | None = None,
    *,
    max_attempts: int = 10_000,
    queue_max_size: int = 10,
    queue_max_wait_s: float = 2.0,
    random: Callable[[], float] | None = None,
) -> Harness:
    server = server or FakeServer()
    sleep = FakeSleep()
    token_calls: list[int] = []

    async def tokens() -> str:
        token_calls.append(len(token_calls) + 1)
        return f"token-{len(token_calls)}"

    client = SwitchboardClient(
        "http://fake",
        tokens,
        ClientSettings(
            backoff=Backoff(base_s=0.1, ceiling_s=1.0, max_attempts=max_attempts),
            ack_timeout_s=1.0,
            queue_max_size=queue_max_size,
            queue_max_wait_s=queue_max_wait_s,
        ),
        random=random or ScriptedRandom([0.5]),
        sleep=sleep,
        transport_factory=fake_transport_factory(server),
    )
    received: list[Message] = []
    changes: list[StateChange] = []
    client.on_message(received.append)
    client.on_state(changes.append)
    return Harness(server, client, sleep, received, changes, token_calls)


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = make()
    try:
        yield h
    finally:
        await h.client.close()


async def until(check: Callable[[], bool], timeout_s: float = 2.0) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            if check():
                return
            await asyncio.sleep(0.001)


async def test_connect_goes_connecting_then_connected(harness: Harness) -> None:
    await harness.client.connect()

    assert [(c.previous, c.current) for c in harness.changes] == [
        (S.CLOSED, S.CONNECTING),
        (S.CONNECTING, S.CONNECTED),
    ]
    assert harness.server.tokens == ["token-1"]
    assert harness.client.metrics.time_to_connect_s is not None
    await harness.client.connect()  # already connected: nothing happens
    assert harness.server.tokens == ["token-1"]


async def test_initial_connect_retries_with_backoff_and_a_fresh_token() -> None:
    h = make(FakeServer(fail_connects=3), random=ScriptedRandom([0.5, 0.25, 1.0]))

    await h.client.connect()

    assert h.sleep.delays == pytest.approx([0.05, 0.05, 0.4])  # 0.5*0.1, 0.25*0.2, 1.0*0.4
    assert h.server.tokens == ["token-1", "token-2", "token-3", "token-4"]
    assert h.client.state is S.CONNECTED
    await h.client.close()


async def test_initial_connect_gives_up_after_max_attempts() -> None:
    h = make(FakeServer(up=False), max_attempts=4)

    with pytest.raises(NetworkError) as caught:
        await h.client.connect()

    assert caught.value.code == "connect_failed"
    assert len(h.server.tokens) == 4
    assert len(h.sleep.delays) == 3
    assert h.client.state is S.ERROR
    assert h.changes[-1].error is caught.value
    with pytest.raises(NetworkError) as refused:
        await h.client.list_rooms()
    assert refused.value.code == "not_connected"
    await h.client.close()
    assert h.client.state_history[-2:] == [S.ERROR, S.CLOSED]


async def test_an_auth_refusal_is_not_retried() -> None:
    h = make(FakeServer(refuse_code="auth_invalid"))

    with pytest.raises(AuthError) as caught:
        await h.client.connect()

    assert caught.value.code == "auth_invalid"
    assert h.sleep.delays == []
    assert h.client.state_history == [S.CLOSED, S.CONNECTING, S.ERROR]


async def test_a_dropped_connection_reconnects_with_backoff_and_rejoins(harness: Harness) -> None:
    h = harness
    await h.client.connect()
    room = await h.client.create_room("general")
    for n in range(3):
        h.server.post(room.id, f"before {n}")
    assert h.seqs() == [1, 2, 3]

    h.server.crash()
    assert h.client.state is S.RECONNECTING
    for n in range(4):
        h.server.post(room.id, f"while away {n}", live=False)
    h.server.up = True
    await h.client.wait_for_state(S.CONNECTED, 2)

    assert h.seqs() == [1, 2, 3, 4, 5, 6, 7]
    assert ("room:join", {"room_id": "r1", "since_seq": 3}) in h.server.calls
    assert h.client.state_history == [
        S.CLOSED,
        S.CONNECTING,
        S.CONNECTED,
        S.RECONNECTING,
        S.CONNECTED,
    ]
    assert h.changes[2].error is not None
    assert h.changes[2].error.code == "disconnected"
    assert h.client.metrics.reconnect_count == 1
    assert h.server.tokens == ["token-1", "token-2"]  # the token provider asked again
    assert h.sleep.delays == [0.05]


async def test_reconnect_keeps_trying_while_the_server_is_down_then_gives_up() -> None:
    h = make(max_attempts=3)
    await h.client.connect()
    commands = asyncio.create_task(h.client.list_rooms())

    h.server.crash()
    await h.client.wait_for_state(S.ERROR, 2)

    assert h.sleep.delays == pytest.approx([0.05, 0.1, 0.2])  # cap 0.1, 0.2, 0.4 at 0.5
    assert h.client.metrics.reconnect_attempts == 3
    with pytest.raises(NetworkError) as caught:
        await commands
    assert caught.value.code == "not_connected"
    await h.client.close()


async def test_missed_messages_come_before_live_ones_that_arrive_during_the_rejoin(
    harness: Harness,
) -> None:
    h = harness
    await h.client.connect()
    room = await h.client.create_room("general")
    h.server.post(room.id)
    h.server.crash()
    h.server.missed_cap = 2  # the join ack holds 2..3, history the rest
    for _ in range(5):
        h.server.post(room.id, live=False)  # seq 2..6 while away
    gate = asyncio.Event()
    h.server.ack_gate = gate
    h.server.up = True
    await until(lambda: bool(h.server.transports))
    h.server.post(room.id)  # seq 7 arrives live while the rejoin is still waiting
    assert h.seqs() == [1]
    gate.set()
    await h.client.wait_for_state(S.CONNECTED, 2)
    h.server.ack_gate = None

    assert h.seqs() == [1, 2, 3, 4, 5, 6, 7]
    assert ("message:history", {"room_id": "r1", "after_seq": 3, "limit": 100}) in h.server.calls


async def test_a_live_seq_gap_is_filled_from_history_in_order(harness: Harness) -> None:
    h = harness
    await h.client.connect()
    room = await h.client.create_room("general")
    h.server.post(room.id)
    h.server.post(room.id, live=False)  # 2 and 3 never arrive live
    h.server.post(room.id, live=False)
    h.server.post(room.id)  # 4: a gap
    h.server.post(room.id)  # 5: held until the gap is filled

    await until(lambda: len(h.received) == 5)

    assert h.seqs() == [1, 2, 3, 4, 5]
    assert ("message:history", {"room_id": "r1", "after_seq": 1, "limit": 100}) in h.server.calls


async def test_commands_issued_while_reconnecting_wait_and_are_sent_after() -> None:
    h = make(max_attempts=100_000)
    await h.client.connect()
    room = await h.client.create_room("general")
    h.server.crash()
    h.server.up = False
    sends = [asyncio.create_task(h.client.send(room.id, f"queued {n}")) for n in range(3)]
    await asyncio.sleep(0.01)
    assert not any(s.done() for s in sends)

    h.server.up = True
    async with asyncio.timeout(2):
        sent = await asyncio.gather(*sends)

    assert [m.text for m in sent] == ["queued 0", "queued 1", "queued 2"]
    assert [m.seq for m in sent] == [1, 2, 3]
    assert h.seqs() == [1, 2, 3]
    await h.client.close()


async def test_a_send_cut_off_by_a_disconnect_is_resent_with_the_same_client_msg_id(
    harness: Harness,
) -> None:
    h = harness
    await h.client.connect()
    room = await h.client.create_room("general")
    h.server.drop_on = "message:send"  # the server dies as the send arrives

    send = asyncio.create_task(h.client.send(room.id, "once", client_msg_id="fixed-id"))
    await until(lambda: h.client.state is S.RECONNECTING)
    h.server.up = True
    async with asyncio.timeout(2):
        message = await send

    assert message.client_msg_id == "fixed-id"
    ids = [p["client_msg_id"] for e, p in h.server.calls if e == "message:send"]
    assert ids == ["fixed-id"]  # the first try never reached the server
    assert h.seqs() == [1]


async def test_a_resend_after_a_lost_ack_does_not_duplicate(harness: Harness) -> None:
    h = harness
    await h.client.connect()
    room = await h.client.create_room("general")
    gate = asyncio.Event()
    h.server.ack_gate = gate  # the server stores the message, the ack never comes back

    send = asyncio.create_task(h.client.send(room.id, "exactly once"))
    await until(lambda: any(e == "message:send" for e, _ in h.server.calls))
    h.server.crash()
    h.server.ack_gate = None
    gate.set()
    h.server.up = True
    async with asyncio.timeout(2):
        message = await send

    sends = [p for e, p in h.server.calls if e == "message:send"]
    assert len(sends) == 2
    assert sends[0]["client_msg_id"] == sends[1]["client_msg_id"]
    assert len(h.server.rooms[room.id]) == 1
    assert message.seq == 1
    await h.client.wait_for_state(S.CONNECTED, 2)
    assert h.seqs() == [1]


async def test_room_create_is_not_resent_when_its_ack_is_lost(harness: Harness) -> None:
    h = harness
    await h.client.connect()
    h.server.drop_on = "room:create"

    with pytest.raises(NetworkError) as caught:
        await h.client.create_room("maybe")

    assert caught.value.code == "disconnected"


async def test_the_queue_is_bounded_in_size() -> None:
    h = make(queue_max_size=2)
    await h.client.connect()
    h.server.crash()
    h.server.up = False
    waiting = [asyncio.create_task(h.client.list_rooms()) for _ in range(2)]
    await asyncio.sleep(0)

    with pytest.raises(NetworkError) as caught:
        await h.client.list_rooms()

    assert caught.value.code == "queue_full"
    await h.client.close()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert [getattr(r, "code", None) for r in results] == ["closed", "closed"]


async def test_the_queue_is_bounded_in_time() -> None:
    h = make(queue_max_wait_s=0.05, max_attempts=1000)
    await h.client.connect()
    h.server.crash()

    with pytest.raises(NetworkError) as caught:
        await h.client.list_rooms()

    assert caught.value.code == "queue_timeout"
    assert h.client.state is S.RECONNECTING
    await h.client.close()


async def test_join_without_since_seq_returns_recent_history_and_continues_after_it(
    harness: Harness,
) -> None:
    h = harness
    h.server.rooms["r1"] = []
    for _ in range(3):
        h.server.post("r1")
    await h.client.connect()

    joined = await h.client.join_room("r1")
    h.server.post("r1")

    assert [m.seq for m in joined.recent] == [1, 2, 3]
    assert joined.last_seq == 3
    assert h.seqs() == [4]
    assert h.client.last_seq("r1") == 4


async def test_join_with_since_seq_delivers_every_missed_message() -> None:
    h = make(FakeServer(missed_cap=2))
    h.server.rooms["r1"] = []
    for _ in range(7):
        h.server.post("r1")
    await h.client.connect()

    joined = await h.client.join_room("r1", since_seq=2)

    assert [m.seq for m in joined.missed] == [3, 4]
    assert joined.has_more
    assert h.seqs() == [3, 4, 5, 6, 7]
    assert joined.last_seq == 7
    await h.client.close()


async def test_a_failed_join_stops_tracking_the_room(harness: Harness) -> None:
    await harness.client.connect()

    with pytest.raises(NotFoundError):
        await harness.client.join_room("nope")

    assert harness.client.last_seq("nope") is None


async def test_messages_of_rooms_not_joined_here_are_followed_from_the_first_one(
    harness: Harness,
) -> None:
    h = harness
    await h.client.connect()
    h.server.rooms["r9"] = []
    for _ in range(3):
        h.server.post("r9", live=False)
    h.server.post("r9")
    h.server.post("r9")

    assert h.seqs("r9") == [4, 5]


async def test_close_fails_waiting_commands_and_ignores_late_events(harness: Harness) -> None:
    h = harness
    await h.client.connect()
    room = await h.client.create_room("general")
    h.server.crash()
    waiting = asyncio.create_task(h.client.send(room.id, "never"))
    await asyncio.sleep(0)

    await h.client.close()

    with pytest.raises(NetworkError) as caught:
        await waiting
    assert caught.value.code == "closed"
    assert h.client.state is S.CLOSED
    assert h.client.state_history[-1] is S.CLOSED
    await h.client.close()  # twice is harmless


async def test_rtt_and_unread_count_after_connect(harness: Harness) -> None:
    counts: list[int] = []
    harness.client.on_unread_count(counts.append)
    harness.server.unread = 4

    await harness.client.connect()

    assert counts == [4]
    assert harness.client.metrics.last_rtt_s is not None


async def test_close_during_connect_ends_in_closed_without_a_live_transport() -> None:
    server = FakeServer()
    release = asyncio.Event()

    async def slow_token() -> str:
        await release.wait()
        return "token"

    client = SwitchboardClient(
        "http://fake", slow_token, transport_factory=fake_transport_factory(server)
    )
    connecting = asyncio.create_task(client.connect())
    await until(lambda: client.state is S.CONNECTING)

    await client.close()
    release.set()

    with pytest.raises(NetworkError) as caught:
        await connecting
    assert caught.value.code == "closed"
    assert client.state is S.CLOSED
    assert server.transports == []

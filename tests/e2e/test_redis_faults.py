"""Two instances keep serving through a Redis restart in the middle of traffic (issue #4).

Redis is SIGKILLed while both instances serve chat traffic, stays away for `OUTAGE_S`, and
comes back on the same port: once with its data (AOF, `appendfsync always`), once EMPTY.
Throughout, both instances must answer every command (`ok` or `unavailable`, nothing else),
`/healthz` stays 200, and `/readyz` is 503 during the outage and 200 after. Once Redis is
back, presence is right again within one heartbeat without any client reconnecting, and
cross-instance fan-out works again within `FANOUT_BUDGET_S`.

The outage (4 s) is longer than the presence TTL (3 s), so every connection's expiry runs
out while Redis is away; and long enough that python-socketio's stock `AsyncRedisManager`
(listener backoff 1, 2, 4 s ... up to 60 s) would resubscribe only 3 s after Redis is
back, while ours retries at least every second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from application.json_types import JsonObject
from tests.e2e.cluster import (
    Cluster,
    Peer,
    Refused,
    ServerProcess,
    create_room,
    diff_has,
    full_history,
    http_status,
    integer,
    obj,
    objs,
    open_cluster,
    presence,
    raw_connect,
    send,
    string,
    strings,
    unique,
    wait_until,
)
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.e2e

HEARTBEAT_S = 1.0
TTL_S = 3.0
OUTAGE_S = 4.0
SLACK_S = 0.5
"""Scheduling slack on two shared cores (two servers, redis-server and this test)."""
PRESENCE_BUDGET_S = HEARTBEAT_S + SLACK_S
FANOUT_BUDGET_S = 2.0
"""Ours resubscribes at most 1 s after Redis is back; the stock manager would take 3 s here."""
SEND_PAUSE_S = 0.03
# the senders go faster than the default message:send limit; rate limits are not under test
HIGH_LIMITS = {"SWITCHBOARD_RATE_MESSAGE_SEND": "10000 per second"}


@pytest.fixture
def redis_aof() -> Iterator[RedisServer]:
    server = RedisServer(appendonly=True).start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def redis_plain() -> Iterator[RedisServer]:
    server = RedisServer(appendonly=False).start()
    try:
        yield server
    finally:
        server.cleanup()


@attrs.frozen
class Outcome:
    """What one command answered: `ok`, an error code, or the exception raised."""

    at: float
    who: str
    event: str
    result: str
    message: JsonObject | None = None


@attrs.define
class Traffic:
    """Chat traffic and health probes running while Redis goes away and comes back."""

    cluster: Cluster
    outcomes: list[Outcome] = attrs.Factory(list)
    probes: list[tuple[float, str, str, int | None]] = attrs.Factory(list)
    stop: asyncio.Event = attrs.Factory(asyncio.Event)
    tasks: list[asyncio.Task[None]] = attrs.Factory(list)

    def start_sender(self, peer: Peer, room_id: str) -> None:
        """Send messages back to back (each waits for its ack) until stopped."""
        self.tasks.append(asyncio.get_running_loop().create_task(self._send(peer, room_id)))

    def start_probes(self, servers: list[ServerProcess]) -> None:
        """Poll `/healthz` and `/readyz` of each instance every 100 ms until stopped."""
        for server in servers:
            self.tasks.append(asyncio.get_running_loop().create_task(self._probe(server)))

    async def _send(self, peer: Peer, room_id: str) -> None:
        while not self.stop.is_set():
            payload: JsonObject = {
                "room_id": room_id,
                "text": f"traffic from {peer.user_id}",
                "client_msg_id": unique(peer.user_id),
            }
            try:
                ack = await peer.call("message:send", payload)
            except Exception as exc:  # recorded, and failed on by the test
                self.outcomes.append(
                    Outcome(time.monotonic(), peer.user_id, "message:send", repr(exc))
                )
            else:
                if ack.get("ok") is True:
                    message = obj(obj(ack["data"])["message"])
                    self.outcomes.append(
                        Outcome(time.monotonic(), peer.user_id, "message:send", "ok", message)
                    )
                else:
                    code = string(obj(ack["error"])["code"])
                    self.outcomes.append(
                        Outcome(time.monotonic(), peer.user_id, "message:send", code)
                    )
            await asyncio.sleep(SEND_PAUSE_S)

    async def _probe(self, server: ServerProcess) -> None:
        while not self.stop.is_set():
            for path in ("/healthz", "/readyz"):
                status = await http_status(self.cluster.session, server.url, path)
                self.probes.append((time.monotonic(), server.name, path, status))
            await asyncio.sleep(0.1)

    async def finish(self) -> None:
        """Stop every loop and wait for it."""
        self.stop.set()
        await asyncio.gather(*self.tasks)

    def statuses(self, server: str, path: str, since: float, until: float) -> list[int | None]:
        """The probe results of one instance and path within a time span."""
        return [
            s
            for at, name, p, s in self.probes
            if name == server and p == path and since <= at <= until
        ]

    def acked(self) -> list[JsonObject]:
        """Every message whose send was acknowledged with `ok: true`."""
        return [o.message for o in self.outcomes if o.message is not None]


async def readyz_is(
    cluster: Cluster, servers: list[ServerProcess], status: int, within: float
) -> float:
    """Wait until `/readyz` of every instance answers `status`; when it held for all."""
    for server in servers:
        deadline = time.monotonic() + within
        while await http_status(cluster.session, server.url, "/readyz") != status:
            assert time.monotonic() < deadline, f"/readyz of {server.name} never said {status}"
            await asyncio.sleep(0.05)
    return time.monotonic()


async def presence_right_after(
    viewers: list[Peer], users: list[str], back_at: float, within: float
) -> float:
    """Poll `presence:get` through every viewer until each shows `users` online (answers
    `unavailable` are retried); seconds from `back_at` until it was right everywhere."""
    deadline = back_at + within + 3.0  # poll past the budget, to report the real figure
    pending = list(viewers)
    while pending:
        viewer = pending[0]
        ack = await viewer.call("presence:get", {"user_ids": list(users)}, ack_s=3)
        if ack.get("ok") is True:
            entries = obj(ack["data"])["presence"]
            assert isinstance(entries, list)
            if all(obj(e)["online"] is True for e in entries):
                pending.pop(0)
                continue
        assert time.monotonic() < deadline, f"presence not right at {viewer.user_id}: {ack!r}"
        await asyncio.sleep(0.05)
    return time.monotonic() - back_at


async def outage(redis: RedisServer, *, empty: bool) -> tuple[float, float]:
    """SIGKILL Redis, keep it away for `OUTAGE_S`, start it again (EMPTY if asked) on the
    same port. Returns the monotonic times when it went down and when it was launched again;
    recovery times are measured from the launch, which is a little before Redis answers
    (so the figures are, if anything, pessimistic)."""
    down_at = time.monotonic()
    redis.stop()
    await asyncio.sleep(OUTAGE_S)
    launched_at = time.monotonic()
    await asyncio.to_thread(redis.restart, empty=empty)
    return down_at, launched_at


async def refused_during_outage(cluster: Cluster, server: ServerProcess) -> str:
    """A handshake while Redis is away: the refusal's code."""
    try:
        socket = await raw_connect(cluster.session, server.url, unique("latecomer"))
    except Refused as refused:
        return refused.code
    await socket.close()
    return "accepted"


def check_answers(traffic: Traffic, allowed_after_back: set[str], back_at: float) -> None:
    """Every command got an answer: `ok` or `unavailable` (plus `allowed_after_back` once
    Redis is back), never another error, a timeout or a lost connection."""
    wrong = [
        o
        for o in traffic.outcomes
        if o.result not in {"ok", "unavailable"}
        and not (o.at >= back_at and o.result in allowed_after_back)
    ]
    assert wrong == [], wrong[:5]
    assert any(o.result == "unavailable" for o in traffic.outcomes), "the outage hit nothing"


def check_health(
    traffic: Traffic, servers: list[ServerProcess], down_at: float, back_at: float
) -> None:
    """`/healthz` 200 throughout; `/readyz` 503 seen during the outage, 200 at the end."""
    start, end = traffic.probes[0][0], traffic.probes[-1][0]
    for server in servers:
        assert server.alive, server.log_tail()
        healthz = traffic.statuses(server.name, "/healthz", start, end)
        assert healthz, "no probe ran"
        assert set(healthz) == {200}, f"/healthz of {server.name}: {healthz}"
        during = traffic.statuses(server.name, "/readyz", down_at + 0.3, back_at - 0.3)
        assert 503 in during, f"/readyz of {server.name} during the outage: {during}"
        assert set(during) == {503}, f"/readyz of {server.name} during the outage: {during}"
        assert 200 in traffic.statuses(server.name, "/readyz", back_at, end)


async def fanout_recovery(alice: Peer, bob: Peer, back_at: float) -> float:
    """Seconds from Redis being back until one of alice's messages, sent on A, is delivered
    to bob on B (her traffic keeps sending, so this is when fan-out works again)."""
    first = await wait_until(
        lambda: any(
            r.at > back_at and r.payload.get("author_id") == alice.user_id
            for r in bob.received("message:new")
        ),
        within=FANOUT_BUDGET_S + 10.0,
        what="a message from A to reach B after the restart",
    )
    return first - back_at


async def test_redis_restart_with_aof_loses_no_acknowledged_message_and_recovers(
    redis_aof: RedisServer, tmp_path: Path
) -> None:
    async with open_cluster(redis_aof.url, tmp_path) as cluster:
        a, b = await cluster.start("a", "b", heartbeat_s=HEARTBEAT_S, ttl_s=TTL_S, env=HIGH_LIMITS)
        alice = await cluster.connect(a, "alice")
        room = await create_room(alice, "through-the-outage", members=["bob"])
        bob = await cluster.connect(b, "bob")
        await alice.wait_for("presence:diff", diff_has("joins", "bob", room))

        traffic = Traffic(cluster)
        traffic.start_probes([a, b])
        traffic.start_sender(alice, room)
        traffic.start_sender(bob, room)
        await asyncio.sleep(1.0)
        restart = asyncio.get_running_loop().create_task(outage(redis_aof, empty=False))
        await asyncio.sleep(1.0)
        refusal = await refused_during_outage(cluster, a)
        down_at, back_at = await restart

        ready_s = await readyz_is(cluster, [a, b], 200, within=5.0) - back_at
        presence_s = await presence_right_after(
            [alice, bob], ["alice", "bob"], back_at, PRESENCE_BUDGET_S
        )
        fanout_s = await fanout_recovery(alice, bob, back_at)
        await asyncio.sleep(1.0)  # traffic after the recovery too
        await traffic.finish()
        print(
            f"\nAOF restart: /readyz 200 {ready_s:.3f} s, presence right {presence_s:.3f} s, "
            f"fan-out A->B {fanout_s:.3f} s after Redis was back; "
            f"{len(traffic.acked())} acked, "
            f"{sum(o.result == 'unavailable' for o in traffic.outcomes)} unavailable"
        )

        check_health(traffic, [a, b], down_at, back_at)
        check_answers(traffic, set(), back_at)
        assert refusal == "unavailable"
        # nobody reconnected: presence came back for the same connections
        assert alice.connected
        assert bob.connected
        assert alice.disconnected_at == bob.disconnected_at == []
        assert presence_s <= PRESENCE_BUDGET_S, presence_s
        assert fanout_s <= FANOUT_BUDGET_S, fanout_s

        # every acknowledged message is in the history, under the seq it was acked with
        history = await full_history(alice, room)
        history_seqs = [integer(m["seq"]) for m in history]
        assert history_seqs == list(range(1, len(history) + 1)), "seqs have gaps"
        by_seq = {integer(m["seq"]): m for m in history}
        acked = traffic.acked()
        assert len(acked) > 20
        missing = [m for m in acked if by_seq.get(integer(m["seq"])) != m]
        assert missing == [], f"{len(missing)} acknowledged messages lost: {missing[:3]}"
        # after fan-out came back, every message alice got acked also reached bob on B
        delivered = {r.payload["id"] for r in bob.received("message:new")}
        fanned_at = back_at + fanout_s
        late = [
            o.message
            for o in traffic.outcomes
            if o.who == "alice" and o.message is not None and o.at > fanned_at + 0.2
        ]
        assert late, "no traffic after the recovery"
        assert [m["seq"] for m in late if m["id"] not in delivered] == []


async def test_redis_restart_empty_keeps_serving_and_presence_recovers(
    redis_plain: RedisServer, tmp_path: Path
) -> None:
    async with open_cluster(redis_plain.url, tmp_path) as cluster:
        a, b = await cluster.start("a", "b", heartbeat_s=HEARTBEAT_S, ttl_s=TTL_S, env=HIGH_LIMITS)
        alice = await cluster.connect(a, "alice")
        room = await create_room(alice, "before-the-wipe", members=["bob"])
        bob = await cluster.connect(b, "bob")
        await alice.wait_for("presence:diff", diff_has("joins", "bob", room))

        traffic = Traffic(cluster)
        traffic.start_probes([a, b])
        traffic.start_sender(alice, room)
        traffic.start_sender(bob, room)
        await asyncio.sleep(1.0)
        restart = asyncio.get_running_loop().create_task(outage(redis_plain, empty=True))
        await asyncio.sleep(1.0)
        refusal = await refused_during_outage(cluster, b)
        down_at, back_at = await restart

        ready_s = await readyz_is(cluster, [a, b], 200, within=5.0) - back_at
        # Redis lost every connection record: the heartbeats put them back, without any
        # client reconnecting
        presence_s = await presence_right_after(
            [alice, bob], ["alice", "bob"], back_at, PRESENCE_BUDGET_S
        )
        await asyncio.sleep(0.5)
        await traffic.finish()

        # the old room is gone with the data; a new one works across the instances at once
        fresh = await create_room(alice, "after-the-wipe")
        joined = await bob.ok("room:join", {"room_id": fresh})
        assert {e["user_id"] for e in objs(joined["online"])} == {"alice", "bob"}
        fanout_started = time.monotonic()
        sent = await send(alice, fresh, "is anyone still there?")
        got = await bob.wait_for(
            "message:new", lambda m: m.get("id") == sent["id"], within=FANOUT_BUDGET_S + 5
        )
        fanout_s = got.at - back_at
        reply = await send(bob, fresh, "yes, on B")
        await alice.wait_for("message:new", lambda m: m.get("id") == reply["id"])
        print(
            f"\nEMPTY restart: /readyz 200 {ready_s:.3f} s, presence right {presence_s:.3f} s "
            f"after Redis was back; fan-out A->B delivered {got.at - fanout_started:.3f} s "
            f"after the send ({fanout_s:.3f} s after Redis was back)"
        )

        check_health(traffic, [a, b], down_at, back_at)
        # sends to the wiped room now find no room: `not_found` is the right answer then
        check_answers(traffic, {"not_found"}, back_at)
        assert refusal == "unavailable"
        assert presence_s <= PRESENCE_BUDGET_S, presence_s
        assert integer(sent["seq"]) == 1
        assert got.at - fanout_started <= FANOUT_BUDGET_S
        # nobody reconnected: the same connections are online again
        assert alice.connected
        assert bob.connected
        assert alice.disconnected_at == bob.disconnected_at == []
        entries = await presence(bob, ["alice", "bob"])
        assert [entries[u]["connections"] for u in ("alice", "bob")] == [1, 1]


async def test_a_redis_outage_longer_than_the_ttl_announces_no_false_leaves(
    redis_aof: RedisServer, tmp_path: Path
) -> None:
    """Nobody disconnects, Redis comes back with its data after more than a TTL: no
    instance may take the live connections of another (or its own) for dead ones. A
    `presence:diff` leave means "their last connection closed", and none did."""
    async with open_cluster(redis_aof.url, tmp_path) as cluster:
        # three instances: a false leave needs only one sweeper to run before the heartbeats
        # of the others, so this shows the race (if present) in nearly every run
        a, b, c = await cluster.start("a", "b", "c", heartbeat_s=HEARTBEAT_S, ttl_s=TTL_S)
        users = {"alice": a, "bob": b, "carol": c, "dave": a, "erin": b, "frank": c}
        peers = {user: await cluster.connect(server, user) for user, server in users.items()}
        room = await create_room(peers["alice"], "steady", members=list(users))
        for user in users:
            await peers["alice"].wait_for("presence:diff", diff_has("joins", user, room))

        down_at, back_at = await outage(redis_aof, empty=False)
        await readyz_is(cluster, [a, b, c], 200, within=5.0)
        # two heartbeats and two sweeps after Redis is back, plus the coalescing window
        await asyncio.sleep(2 * HEARTBEAT_S + SLACK_S)

        diffs = {
            viewer: [
                (
                    round(r.at - back_at, 3),
                    strings(r.payload["joins"]),
                    strings(r.payload["leaves"]),
                )
                for r in peer.received("presence:diff")
                if r.at > down_at
            ]
            for viewer, peer in peers.items()
        }
        print(f"\npresence:diff after the outage (s after Redis was back, joins, leaves): {diffs}")
        false_leaves = {viewer: [d for d in seen if d[2]] for viewer, seen in diffs.items()}
        assert all(seen == [] for seen in false_leaves.values()), false_leaves
        entries = await presence(peers["bob"], list(users))
        assert all(entries[user]["online"] is True for user in users), entries

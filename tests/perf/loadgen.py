"""A load generator worker: thousands of raw Socket.IO connections in one process.

Each connection is a raw WebSocket (`tests/perf/rawws.py`, an asyncio Protocol) speaking
Engine.IO v4 / Socket.IO v5 text frames directly (`tests/perf/wire.py`), which costs a
fraction of python-socketio's client (and of aiohttp's WebSocket client) per message: a
received `message:new` is recognised by its prefix and only the send timestamp inside the
text is read (no JSON decoding, no task wake-up). The coordinator (`tests/perf/bench.py`) drives
one or more workers over a pipe, one command at a time, and each command answers one
`Reply`. Every wait is bounded, and a worker exits by itself when the pipe closes or when
its lifetime is over.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import resource
import threading
import time
from multiprocessing.connection import Connection
from typing import Literal

import attrs
import jwt

from tests.perf import wire
from tests.perf.rawws import HandshakeFailed, Receipts, SocketIOConnection, open_connection

Dialect = Literal["switchboard", "plain"]
"""`switchboard`: room:create / room:join / message:send; `plain`: join / send (baselines)."""

TOKEN_TTL_S = 3600
ERRORS_KEPT = 5


@attrs.frozen
class Target:
    """Where and how to connect."""

    host: str
    port: int
    dialect: Dialect
    compress: bool = False  # offer permessage-deflate, as browsers do
    path: str = "/socket.io/?EIO=4&transport=websocket"


@attrs.frozen
class Prepare:
    """Forget earlier connections; make a token per user for the next `Connect`."""

    target: Target
    secret: str
    user_ids: tuple[str, ...]


@attrs.frozen
class Connect:
    """Open every prepared connection, at most `concurrency` handshakes in flight."""

    concurrency: int
    timeout_s: float


@attrs.frozen
class CreateRooms:
    """Each (connection, room name): create the room (Switchboard) or join it (baselines)."""

    items: tuple[tuple[int, str], ...]
    timeout_s: float


@attrs.frozen
class Join:
    """Each (connection, room key): join the room and wait for the ack."""

    items: tuple[tuple[int, str], ...]
    concurrency: int
    timeout_s: float


@attrs.frozen
class Arm:
    """Reset the receive counters before a send phase."""


@attrs.frozen
class SendPlan:
    """`count` messages from one connection to one room, one every `period_s` from `first_at`."""

    conn: int
    room: str
    first_at: float
    period_s: float
    count: int


@attrs.frozen
class Send:
    """Run the plans (open loop: sends do not wait for acks), then wait for the acks."""

    plans: tuple[SendPlan, ...]
    ack_timeout_s: float


@attrs.frozen
class Poll:
    """How many stamped messages arrived so far."""


@attrs.frozen
class Collect:
    """The counters and latency samples since `Arm`."""


@attrs.frozen
class Close:
    """Close every connection (bounded by `timeout_s`)."""

    timeout_s: float


@attrs.frozen
class Quit:
    """Stop the worker."""


Command = Prepare | Connect | CreateRooms | Join | Arm | Send | Poll | Collect | Close | Quit


@attrs.frozen
class Reply:
    """The answer to one command (fields unused by a command keep their defaults)."""

    ok: int = 0
    failed: int = 0
    started_at: float = 0.0
    finished_at: float = 0.0
    errors: tuple[str, ...] = ()
    keys: tuple[tuple[str, str], ...] = ()
    received: int = 0
    other_frames: int = 0
    last_receive_at: float = 0.0
    latencies_us: tuple[int, ...] = ()
    ack_latencies_us: tuple[int, ...] = ()
    open_connections: int = 0


@attrs.define
class Slot:
    """One connection of this worker."""

    user_id: str
    token: str
    conn: SocketIOConnection | None = None


@attrs.frozen
class Acked:
    """An ack frame and when it arrived."""

    at_us: int
    frame: bytes


FAILURES = (HandshakeFailed, TimeoutError, OSError)


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


class Worker:
    """The connections of one worker process and their counters."""

    def __init__(self) -> None:
        self.target = Target("127.0.0.1", 0, "plain")
        self.slots: list[Slot] = []
        self.waiters: dict[int, asyncio.Future[Acked]] = {}
        self.next_ack_id = 0
        self.receipts = Receipts()

    async def handle(self, command: Command) -> Reply:
        """Run one command."""
        match command:
            case Prepare():
                return await self.prepare(command)
            case Connect():
                return await self.connect(command)
            case CreateRooms():
                return await self.create_rooms(command)
            case Join():
                return await self.join(command)
            case Arm():
                self.receipts.reset()
                return Reply()
            case Send():
                return await self.send(command)
            case Poll():
                return Reply(
                    received=self.receipts.received, last_receive_at=self.receipts.last_us / 1e6
                )
            case Collect():
                return Reply(
                    received=self.receipts.received,
                    other_frames=self.receipts.other,
                    last_receive_at=self.receipts.last_us / 1e6,
                    latencies_us=tuple(self.receipts.latencies),
                    open_connections=self.open_connections(),
                )
            case Close():
                return await self.close(command.timeout_s)
            case Quit():
                return Reply()

    def open_connections(self) -> int:
        """Connections still open."""
        return sum(1 for s in self.slots if s.conn is not None and s.conn.is_open)

    async def prepare(self, command: Prepare) -> Reply:
        await self.close(10.0)
        self.target = command.target
        now = int(time.time())
        self.slots = [
            Slot(
                user_id,
                jwt.encode(
                    {"sub": user_id, "iat": now, "exp": now + TOKEN_TTL_S},
                    command.secret,
                    algorithm="HS256",
                ),
            )
            for user_id in command.user_ids
        ]
        return Reply(ok=len(self.slots))

    async def connect(self, command: Connect) -> Reply:
        gate = asyncio.Semaphore(max(1, command.concurrency))
        started = time.time()
        pending = [s for s in self.slots if s.conn is None]
        results = await asyncio.gather(
            *(self._open(slot, gate, command.timeout_s) for slot in pending)
        )
        done_at = [r for r in results if isinstance(r, float)]
        errors = [r for r in results if isinstance(r, str)]
        return Reply(
            ok=len(done_at),
            failed=len(errors),
            started_at=started,
            finished_at=max(done_at, default=started),
            errors=tuple(sorted(set(errors))[:ERRORS_KEPT]),
            open_connections=self.open_connections(),
        )

    async def _open(self, slot: Slot, gate: asyncio.Semaphore, timeout_s: float) -> float | str:
        """Connect one slot: the time it was done, or an error text."""
        target = self.target
        async with gate:
            try:
                slot.conn = await open_connection(
                    target.host,
                    target.port,
                    target.path,
                    slot.token,
                    self.receipts,
                    self._acked,
                    compress=target.compress,
                    timeout_s=timeout_s,
                )
            except FAILURES as exc:
                return _error(exc)
        return time.time()

    def _acked(self, ack_id: int, frame: bytes) -> None:
        waiter = self.waiters.pop(ack_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(Acked(wire.now_us(), frame))

    def _ack_id(self) -> int:
        self.next_ack_id += 1
        return self.next_ack_id

    def _emit(self, slot: Slot, ack_id: int, frame: str) -> asyncio.Future[Acked]:
        """Send an event frame and return the future of its ack."""
        if slot.conn is None or not slot.conn.is_open:
            raise HandshakeFailed("not connected")
        waiter: asyncio.Future[Acked] = asyncio.get_running_loop().create_future()
        self.waiters[ack_id] = waiter
        slot.conn.send(frame.encode())
        return waiter

    async def _call(
        self, slot: Slot, name: str, payload: dict[str, str], timeout_s: float
    ) -> object:
        """Send an event with an ack id and return the ack's body."""
        ack_id = self._ack_id()
        try:
            acked = await asyncio.wait_for(
                self._emit(slot, ack_id, wire.event_frame(ack_id, name, payload)), timeout_s
            )
        finally:
            self.waiters.pop(ack_id, None)
        return wire.ack_body(acked.frame.decode())

    async def create_rooms(self, command: CreateRooms) -> Reply:
        async def create(conn: int, name: str) -> tuple[str, str] | str:
            slot = self.slots[conn]
            try:
                if self.target.dialect == "plain":
                    body = await self._call(slot, "join", {"room": name}, command.timeout_s)
                    return (name, name) if wire.ack_ok(body) else f"join refused: {body!r:.120}"
                body = await self._call(slot, "room:create", {"name": name}, command.timeout_s)
                room_id = _room_id(body)
                return (name, room_id) if room_id else f"room:create refused: {body!r:.120}"
            except FAILURES as exc:
                return _error(exc)

        results = await asyncio.gather(*(create(c, n) for c, n in command.items))
        keys = tuple(r for r in results if isinstance(r, tuple))
        errors = [r for r in results if isinstance(r, str)]
        return Reply(
            ok=len(keys),
            failed=len(errors),
            keys=keys,
            errors=tuple(sorted(set(errors))[:ERRORS_KEPT]),
        )

    async def join(self, command: Join) -> Reply:
        gate = asyncio.Semaphore(max(1, command.concurrency))
        started = time.time()
        plain = self.target.dialect == "plain"
        name, field = ("join", "room") if plain else ("room:join", "room_id")

        async def join_one(conn: int, key: str) -> str | None:
            async with gate:
                try:
                    body = await self._call(self.slots[conn], name, {field: key}, command.timeout_s)
                except FAILURES as exc:
                    return _error(exc)
            return None if wire.ack_ok(body) else f"{name} refused: {body!r:.120}"

        results = await asyncio.gather(*(join_one(c, k) for c, k in command.items))
        errors = [r for r in results if r is not None]
        return Reply(
            ok=len(results) - len(errors),
            failed=len(errors),
            started_at=started,
            finished_at=time.time(),
            errors=tuple(sorted(set(errors))[:ERRORS_KEPT]),
        )

    def _send_frame(self, ack_id: int, room: str, sent_at_us: int) -> str:
        text = wire.stamped_text(sent_at_us)
        if self.target.dialect == "plain":
            payload = {"room": room, "text": text, "client_msg_id": f"b{ack_id}"}
            return wire.event_frame(ack_id, "send", payload)
        payload = {"room_id": room, "text": text, "client_msg_id": f"b{ack_id}"}
        return wire.event_frame(ack_id, "message:send", payload)

    async def send(self, command: Send) -> Reply:
        sent: list[tuple[int, asyncio.Future[Acked]]] = []
        errors: list[str] = []

        async def run(plan: SendPlan) -> None:
            slot = self.slots[plan.conn]
            for k in range(plan.count):
                delay = plan.first_at + k * plan.period_s - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                ack_id = self._ack_id()
                sent_at = wire.now_us()
                try:
                    waiter = self._emit(slot, ack_id, self._send_frame(ack_id, plan.room, sent_at))
                except FAILURES as exc:
                    errors.append(_error(exc))
                    return
                sent.append((sent_at, waiter))

        started = time.time()
        await asyncio.gather(*(run(plan) for plan in command.plans))
        finished = time.time()
        if sent:
            await asyncio.wait([w for _, w in sent], timeout=command.ack_timeout_s)
        ack_latencies: list[int] = []
        for sent_at, waiter in sent:
            if waiter.done() and wire.ack_ok(wire.ack_body(waiter.result().frame.decode())):
                ack_latencies.append(waiter.result().at_us - sent_at)
            elif not waiter.done():
                waiter.cancel()
        for ack_id in [i for i, w in self.waiters.items() if w.done()]:
            del self.waiters[ack_id]
        return Reply(
            ok=len(sent),
            failed=len(sent) - len(ack_latencies),
            started_at=min((p.first_at for p in command.plans), default=started),
            finished_at=finished,
            errors=tuple(sorted(set(errors))[:ERRORS_KEPT]),
            ack_latencies_us=tuple(ack_latencies),
        )

    async def close(self, timeout_s: float) -> Reply:
        conns = [s.conn for s in self.slots if s.conn is not None]
        if conns:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s + 1.0):
                    await asyncio.gather(
                        *(c.close(timeout_s) for c in conns), return_exceptions=True
                    )
        for conn in conns:
            if conn.transport is not None:
                conn.transport.abort()
        for waiter in self.waiters.values():
            waiter.cancel()
        self.waiters.clear()
        self.slots = []
        return Reply(ok=len(conns))

    async def shutdown(self) -> None:
        """Close every connection."""
        await self.close(5.0)


def _room_id(body: object) -> str:
    if not wire.ack_ok(body) or not isinstance(body, dict):
        return ""
    data = body.get("data")
    room = data.get("room") if isinstance(data, dict) else None
    room_id = room.get("id") if isinstance(room, dict) else None
    return room_id if isinstance(room_id, str) else ""


def raise_open_files_limit() -> int:
    """Raise this process's open-files soft limit to its hard limit; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def use_uvloop() -> bool:
    """Run on uvloop when it can be imported (the project's `fast` and `dev` extras): the
    generator's own cost per received frame is then about half of asyncio's."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def main(pipe: Connection[Reply, object], lifetime_s: float) -> None:
    """The worker process's entry point: serve commands from `pipe` until told to quit."""
    raise_open_files_limit()
    if os.environ.get("SWITCHBOARD_BENCH_ASYNCIO") != "1":
        use_uvloop()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(pipe, lifetime_s))


async def _serve(pipe: Connection[Reply, object], lifetime_s: float) -> None:
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[object] = asyncio.Queue()

    def read_commands() -> None:
        """A daemon thread doing the blocking reads (an fd watched by uvloop turns
        non-blocking, and a large pickled command then arrives in pieces)."""
        while True:
            try:
                command: object = pipe.recv()
            except (EOFError, OSError):
                command = Quit()
            loop.call_soon_threadsafe(inbox.put_nowait, command)
            if isinstance(command, Quit):
                return

    threading.Thread(target=read_commands, name="commands", daemon=True).start()
    worker = Worker()
    try:
        async with asyncio.timeout(lifetime_s):
            while True:
                command = await inbox.get()
                if not isinstance(command, Command) or isinstance(command, Quit):
                    break
                reply = await worker.handle(command)
                pipe.send(reply)
    except TimeoutError:
        pass
    finally:
        await worker.shutdown()

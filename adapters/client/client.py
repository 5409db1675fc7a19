"""`SwitchboardClient`: the Python SDK of Switchboard's wire contract v1.

One client holds one connection (both namespaces by default) for one user. It reconnects
by itself with exponential backoff and full jitter, asks the token provider for a fresh
token on every attempt, rejoins its rooms with `since_seq` and delivers every message of
those rooms exactly once, in seq order, with no gap. Commands issued while it reconnects
wait in a bounded queue and are sent once it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random as _random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import TracebackType

import attrs

from adapters.client.backoff import Backoff, RandomSource
from adapters.client.errors import (
    CLOSED,
    DISCONNECTED,
    NOT_CONNECTED,
    AuthError,
    NetworkError,
    SwitchboardError,
)
from adapters.client.json_types import JsonObject, JsonValue
from adapters.client.metrics import ClientMetrics
from adapters.client.models import (
    HistoryPage,
    JoinedRoom,
    MembersChanged,
    Message,
    MessageDeleted,
    Notification,
    NotificationPage,
    PresenceDiff,
    PresenceEntry,
    Room,
    Typing,
    Visibility,
)
from adapters.client.parsing import (
    ack_data,
    parse_history,
    parse_join,
    parse_members_changed,
    parse_message,
    parse_message_deleted,
    parse_notification,
    parse_notification_page,
    parse_presence_diff,
    parse_presence_list,
    parse_room,
    parse_rooms,
    parse_typing,
    parse_unread_count,
)
from adapters.client.queue import CommandQueue, PendingCommand
from adapters.client.recovery import HISTORY_PAGE, RoomStream, catch_up
from adapters.client.signals import Signal
from adapters.client.state import ConnectionState, StateChange, StateMachine
from adapters.client.transport import (
    SocketIOTransport,
    Transport,
    TransportFactory,
    TransportListener,
    disconnected,
)

log = logging.getLogger("switchboard.client")

CHAT = "/chat"
NOTIFICATIONS = "/notifications"

TokenProvider = Callable[[], Awaitable[str]]
"""Returns a valid JWT; called again before every connection attempt."""
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

State = ConnectionState


@attrs.frozen
class ClientSettings:
    """Tuning of one client (every duration in seconds)."""

    backoff: Backoff = attrs.Factory(Backoff)
    """Delays between connection attempts, and how many attempts before giving up."""
    connect_timeout_s: float = 5.0
    """Bound of one connection attempt (handshake of every namespace included)."""
    ack_timeout_s: float = 10.0
    """Bound of the wait for one command's ack."""
    queue_max_size: int = 100
    """At most this many commands wait for the connection; one more raises `queue_full`."""
    queue_max_wait_s: float = 30.0
    """A command not sent within this time raises `queue_timeout`."""
    namespaces: tuple[str, ...] = (CHAT, NOTIFICATIONS)
    """Namespaces to connect (`/chat` is required for the chat commands)."""
    transports: tuple[str, ...] = ("websocket",)
    """Engine.IO transports to use: `websocket` and/or `polling`."""
    recent_on_join: int = 50
    """History page fetched by `join_room` when it is given no `since_seq` (1..100)."""


@attrs.frozen
class _Link:
    """The transport's listener for one connection attempt (older ones are ignored)."""

    client: SwitchboardClient
    generation: int

    def on_event(self, namespace: str, event: str, payload: object, /) -> None:
        self.client._on_event(self.generation, namespace, event, payload)

    def on_disconnect(self, reason: str, /) -> None:
        self.client._on_lost(self.generation, reason)


def _socketio_factory(transports: Sequence[str]) -> TransportFactory:
    def build(listener: TransportListener) -> Transport:
        return SocketIOTransport(listener, transports)

    return build


class SwitchboardClient:
    """A Switchboard connection for one user with typed commands and gap-free room streams.

    `random`, `sleep`, `clock` and `transport_factory` exist for tests: inject a seeded
    random source, a recording sleep, or a fake transport.
    """

    def __init__(
        self,
        url: str,
        token_provider: TokenProvider,
        settings: ClientSettings | None = None,
        *,
        random: RandomSource = _random.random,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        transport_factory: TransportFactory | None = None,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.url = url
        self.settings = settings or ClientSettings()
        self._token_provider = token_provider
        self._random = random
        self._sleep = sleep
        self._clock = clock
        self._factory = transport_factory or _socketio_factory(self.settings.transports)
        self._new_id = new_id
        self._machine = StateMachine()
        self._queue = CommandQueue(self.settings.queue_max_size, self.settings.queue_max_wait_s)
        self._streams: dict[str, RoomStream] = {}
        self._transport: Transport | None = None
        self._generation = 0
        self._lost_generation = -1
        self._tasks: set[asyncio.Task[None]] = set()
        self._reconnect_task: asyncio.Task[None] | None = None
        self._drain_task: asyncio.Task[None] | None = None
        self._filling: set[str] = set()
        self._metrics = ClientMetrics()
        self._state_changed = asyncio.Event()
        self._machine.listen(lambda _change: self._state_changed.set())
        self.messages: Signal[Message] = Signal("message")
        self.message_updates: Signal[Message] = Signal("message:updated")
        self.message_deletions: Signal[MessageDeleted] = Signal("message:deleted")
        self.member_changes: Signal[MembersChanged] = Signal("room:members")
        self.presence_diffs: Signal[PresenceDiff] = Signal("presence:diff")
        self.typing_events: Signal[Typing] = Signal("typing")
        self.notifications: Signal[Notification] = Signal("notification:new")
        self.unread_counts: Signal[int] = Signal("notification:unread_count")
        self.rejoined: Signal[JoinedRoom] = Signal("rejoined")

    # -- observing ---------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """The current connection state."""
        return self._machine.state

    def _now(self) -> ConnectionState:
        return self._machine.state

    @property
    def state_history(self) -> list[ConnectionState]:
        """Every state the client went through, the initial `closed` first."""
        return list(self._machine.history)

    @property
    def metrics(self) -> ClientMetrics:
        """A snapshot of the connection metrics."""
        return self._metrics

    def last_seq(self, room_id: str) -> int | None:
        """The last seq delivered to the message handlers for a room, if it is tracked."""
        stream = self._streams.get(room_id)
        return None if stream is None else stream.last_seq

    def on_state(self, handler: Callable[[StateChange], None]) -> Callable[[], None]:
        """Call `handler` on every state change; returns a function that stops it."""
        return self._machine.listen(handler)

    def on_message(self, handler: Callable[[Message], None]) -> Callable[[], None]:
        """New messages of tracked rooms, gap-free and in seq order (missed ones included)."""
        return self.messages.connect(handler)

    def on_message_updated(self, handler: Callable[[Message], None]) -> Callable[[], None]:
        """`message:updated` events."""
        return self.message_updates.connect(handler)

    def on_message_deleted(self, handler: Callable[[MessageDeleted], None]) -> Callable[[], None]:
        """`message:deleted` events."""
        return self.message_deletions.connect(handler)

    def on_members(self, handler: Callable[[MembersChanged], None]) -> Callable[[], None]:
        """`room:members` events."""
        return self.member_changes.connect(handler)

    def on_presence(self, handler: Callable[[PresenceDiff], None]) -> Callable[[], None]:
        """`presence:diff` events."""
        return self.presence_diffs.connect(handler)

    def on_typing(self, handler: Callable[[Typing], None]) -> Callable[[], None]:
        """`typing` events."""
        return self.typing_events.connect(handler)

    def on_notification(self, handler: Callable[[Notification], None]) -> Callable[[], None]:
        """`notification:new` events."""
        return self.notifications.connect(handler)

    def on_unread_count(self, handler: Callable[[int], None]) -> Callable[[], None]:
        """`notification:unread_count` events, and the count fetched on every (re)connect."""
        return self.unread_counts.connect(handler)

    def on_rejoined(self, handler: Callable[[JoinedRoom], None]) -> Callable[[], None]:
        """Each room rejoined after a reconnect (fresh `online` list)."""
        return self.rejoined.connect(handler)

    async def wait_for_state(self, state: ConnectionState, timeout_s: float) -> None:
        """Wait until the client is in `state`; raises `TimeoutError` after `timeout_s`."""
        async with asyncio.timeout(timeout_s):
            while self._now() is not state:
                self._state_changed.clear()
                await self._state_changed.wait()

    # -- connecting --------------------------------------------------------------------

    async def __aenter__(self) -> SwitchboardClient:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Connect (retrying with backoff); raises `AuthError` at once, or the last error
        when every attempt failed. Rooms tracked from an earlier connection are rejoined."""
        if self._now() is State.CONNECTED:
            return
        if self._now() in (State.CONNECTING, State.RECONNECTING):
            await self.wait_for_state(State.CONNECTED, self._give_up_bound())
            return
        self._machine.to(State.CONNECTING)
        started = self._clock()
        attempts = 0
        while True:
            try:
                await self._attempt()
            except SwitchboardError as error:
                await self._drop_transport()
                if self._now() is not State.CONNECTING:
                    raise NetworkError(CLOSED, "the client was closed") from None
                attempts += 1
                if isinstance(error, AuthError) or self.settings.backoff.exhausted(attempts):
                    self._give_up(error)
                    raise
                await self._backoff(attempts - 1)
                if self._now() is not State.CONNECTING:
                    raise NetworkError(CLOSED, "the client was closed") from None
                continue
            break
        if self._now() is not State.CONNECTING:  # closed while the last attempt finished
            await self._drop_transport()
            raise NetworkError(CLOSED, "the client was closed")
        self._metrics = attrs.evolve(self._metrics, time_to_connect_s=self._clock() - started)
        self._machine.to(State.CONNECTED)
        self._kick_drain()

    async def close(self) -> None:
        """Disconnect for good: pending commands fail with `NetworkError(closed)`."""
        if self._now() is State.CLOSED:
            return
        self._machine.to(State.CLOSED)
        self._queue.fail_all(NetworkError(CLOSED, "the client was closed"))
        current = asyncio.current_task()
        tasks = [t for t in (*self._tasks, self._reconnect_task, self._drain_task) if t]
        for task in tasks:
            if task is not current:
                task.cancel()
        for task in tasks:
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self._drop_transport()

    async def _attempt(self) -> None:
        """One connection attempt: a fresh token, a fresh transport, then catch up."""
        token = await self._token()
        self._generation += 1
        generation = self._generation
        transport = self._factory(_Link(self, generation))
        self._transport = transport
        await transport.connect(
            self.url, token, self.settings.namespaces, self.settings.connect_timeout_s
        )
        await self._resync()
        if self._lost_generation == generation:
            raise disconnected()

    async def _token(self) -> str:
        try:
            return await self._token_provider()
        except SwitchboardError:
            raise
        except Exception as exc:
            raise NetworkError("token_unavailable", f"the token provider failed: {exc!r}") from exc

    async def _backoff(self, attempt: int) -> None:
        delay = self.settings.backoff.delay(attempt, self._random)
        self._metrics = attrs.evolve(
            self._metrics, backoff_delays_s=(*self._metrics.backoff_delays_s, delay)
        )
        await self._sleep(delay)

    def _give_up(self, error: SwitchboardError) -> None:
        self._machine.to(State.ERROR, error)
        self._queue.fail_all(
            error
            if isinstance(error, AuthError)
            else NetworkError(NOT_CONNECTED, f"gave up reconnecting: {error.message}")
        )

    def _give_up_bound(self) -> float:
        backoff = self.settings.backoff
        per_attempt = backoff.ceiling_s + self.settings.connect_timeout_s * 3
        return per_attempt * backoff.max_attempts + 1

    async def _drop_transport(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            with contextlib.suppress(Exception):
                await transport.disconnect()

    def _on_lost(self, generation: int, reason: str) -> None:
        if generation != self._generation:
            return
        self._lost_generation = generation
        if self._now() is not State.CONNECTED:
            return  # a connect or reconnect attempt is running; it sees the loss itself
        self._transport = None
        for stream in self._streams.values():
            stream.begin_sync()
        self._machine.to(State.RECONNECTING, disconnected(f"connection lost ({reason})"))
        self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        started = self._clock()
        attempts = 0
        while True:
            await self._backoff(attempts)
            if self._now() is not State.RECONNECTING:
                return
            attempts += 1
            self._metrics = attrs.evolve(
                self._metrics, reconnect_attempts=self._metrics.reconnect_attempts + 1
            )
            try:
                await self._attempt()
            except SwitchboardError as error:
                await self._drop_transport()
                if self._now() is not State.RECONNECTING:
                    return
                log.info("reconnect attempt %d failed: %s", attempts, error)
                if isinstance(error, AuthError) or self.settings.backoff.exhausted(attempts):
                    self._give_up(error)
                    return
                continue
            if self._now() is not State.RECONNECTING:
                return
            self._metrics = attrs.evolve(
                self._metrics,
                reconnect_count=self._metrics.reconnect_count + 1,
                time_to_connect_s=self._clock() - started,
            )
            self._machine.to(State.CONNECTED)
            self._kick_drain()
            return

    async def _resync(self) -> None:
        """After a (re)connect: rejoin every tracked room since its last seq, in order, and
        refresh the unread count."""
        for stream in list(self._streams.values()):
            if stream.last_seq is None:
                continue  # its join_room is still running and finishes it
            stream.begin_sync()
            try:
                raw = await self._call(
                    CHAT, "room:join", {"room_id": stream.room_id, "since_seq": stream.last_seq}
                )
                joined = parse_join(ack_data(raw))
                await catch_up(
                    stream,
                    self._fetch_direct,
                    self.messages.emit,
                    first=HistoryPage(joined.missed, joined.has_more),
                )
            except NetworkError:
                raise
            except SwitchboardError as error:  # the room went away or we may not rejoin
                log.warning("could not rejoin room %s: %s", stream.room_id, error)
                for message in stream.release_all():
                    self.messages.emit(message)
                self._streams.pop(stream.room_id, None)
                continue
            self.rejoined.emit(attrs.evolve(joined, last_seq=stream.last_seq or 0))
        if NOTIFICATIONS in self.settings.namespaces:
            count = parse_unread_count(
                ack_data(await self._call(NOTIFICATIONS, "notification:unread_count", {}))
            )
            self.unread_counts.emit(count)

    # -- sending -----------------------------------------------------------------------

    async def _call(self, namespace: str, event: str, payload: JsonObject) -> object:
        """Send now on the current transport; measures the round trip."""
        transport = self._transport
        if transport is None:
            raise disconnected("not connected")
        started = self._clock()
        raw = await transport.call(namespace, event, payload, self.settings.ack_timeout_s)
        self._metrics = attrs.evolve(self._metrics, last_rtt_s=self._clock() - started)
        return raw

    async def _request(
        self, namespace: str, event: str, payload: JsonObject, *, retry_safe: bool = True
    ) -> JsonObject:
        """Send a command and return its ack data; waits in the queue while reconnecting."""
        if self._now() in (State.CLOSED, State.ERROR):
            raise NetworkError(NOT_CONNECTED, f"not connected ({self.state}); call connect()")
        if self._now() is State.CONNECTED and not self._queue and not self._draining():
            try:
                return ack_data(await self._call(namespace, event, payload))
            except NetworkError as error:
                if error.code != DISCONNECTED or not retry_safe:
                    raise
        command = PendingCommand(namespace, event, payload, retry_safe=retry_safe)
        self._queue.put(command)
        self._kick_drain()
        return ack_data(await self._queue.wait(command))

    def _draining(self) -> bool:
        return self._drain_task is not None and not self._drain_task.done()

    def _kick_drain(self) -> None:
        if self._now() is State.CONNECTED and self._queue and not self._draining():
            self._drain_task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        """Send the queued commands one by one, oldest first, while connected."""
        while self._now() is State.CONNECTED:
            command = self._queue.next()
            if command is None:
                return
            try:
                raw = await self._call(command.namespace, command.event, command.payload)
            except NetworkError as error:
                if error.code == DISCONNECTED and command.retry_safe:
                    self._queue.put_back(command)
                    return
                self._queue.fail(command, error)
                continue
            except Exception as error:
                self._queue.fail(command, error)
                continue
            self._queue.complete(command, raw)

    async def _fetch_direct(self, room_id: str, after_seq: int) -> HistoryPage:
        raw = await self._call(
            CHAT,
            "message:history",
            {"room_id": room_id, "after_seq": after_seq, "limit": HISTORY_PAGE},
        )
        return parse_history(ack_data(raw))

    async def _fetch_queued(self, room_id: str, after_seq: int) -> HistoryPage:
        return await self.history(room_id, after_seq=after_seq, limit=HISTORY_PAGE)

    # -- incoming events ---------------------------------------------------------------

    def _on_event(self, generation: int, namespace: str, event: str, payload: object) -> None:
        if generation != self._generation:
            return
        try:
            if namespace == CHAT:
                self._on_chat_event(event, payload)
            elif namespace == NOTIFICATIONS:
                self._on_notification_event(event, payload)
        except SwitchboardError as error:
            log.warning("ignored a malformed %s event on %s: %s", event, namespace, error)

    def _on_chat_event(self, event: str, payload: object) -> None:
        if event == "message:new":
            self._on_new_message(parse_message(payload))
        elif event == "message:updated":
            self.message_updates.emit(parse_message(payload))
        elif event == "message:deleted":
            self.message_deletions.emit(parse_message_deleted(payload))
        elif event == "room:members":
            self.member_changes.emit(parse_members_changed(payload))
        elif event == "presence:diff":
            self.presence_diffs.emit(parse_presence_diff(payload))
        elif event == "typing":
            self.typing_events.emit(parse_typing(payload))

    def _on_notification_event(self, event: str, payload: object) -> None:
        if event == "notification:new":
            self.notifications.emit(parse_notification(payload))
        elif event == "notification:unread_count":
            self.unread_counts.emit(parse_unread_count(payload))

    def _on_new_message(self, message: Message) -> None:
        stream = self._streams.get(message.room_id)
        if stream is None:  # a room we did not join here: follow it from this message on
            stream = RoomStream(message.room_id, last_seq=message.seq - 1)
            self._streams[message.room_id] = stream
        offer = stream.offer(message)
        for delivered in offer.deliver:
            self.messages.emit(delivered)
        if offer.fetch_after is not None and message.room_id not in self._filling:
            self._spawn(self._fill_gap(stream))

    async def _fill_gap(self, stream: RoomStream) -> None:
        """A live seq gap: fetch what is missing, deliver it, then what was held back."""
        self._filling.add(stream.room_id)
        try:
            await catch_up(stream, self._fetch_direct, self.messages.emit)
        except NetworkError:
            pass  # the reconnect rejoins this room since its last seq
        except SwitchboardError as error:
            log.warning("could not fill a gap in room %s: %s", stream.room_id, error)
            for message in stream.release_all():
                self.messages.emit(message)
        finally:
            self._filling.discard(stream.room_id)

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        async def run() -> None:
            await coroutine

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- /chat commands ----------------------------------------------------------------

    async def create_room(
        self, name: str, *, visibility: Visibility = "public", members: Iterable[str] = ()
    ) -> Room:
        """`room:create`; the new room is tracked from seq 0. Never resent if the connection
        drops before its ack (the outcome is unknown: check `list_rooms`)."""
        payload: JsonObject = {"name": name, "visibility": visibility}
        member_list: list[JsonValue] = list(members)
        if member_list:
            payload["members"] = member_list
        data = await self._request(CHAT, "room:create", payload, retry_safe=False)
        room = parse_room(data.get("room"))
        self._streams.setdefault(room.id, RoomStream(room.id, last_seq=0))
        return room

    async def list_rooms(self) -> list[Room]:
        """`room:list`: public rooms and the private rooms the user is a member of."""
        return parse_rooms(await self._request(CHAT, "room:list", {}))

    async def join_room(self, room_id: str, *, since_seq: int | None = None) -> JoinedRoom:
        """`room:join`, then track the room: every later message reaches `on_message`.

        With `since_seq`, the messages after it are delivered to `on_message` (all of them,
        paging through history when the server cut the list). Without it, the last
        `recent_on_join` messages come back in `recent` and delivery continues after them.
        A room that is tracked already continues from its last seq.
        """
        stream = self._streams.get(room_id)
        created = stream is None
        if stream is None:
            stream = RoomStream(room_id)
            self._streams[room_id] = stream
        elif stream.last_seq is not None:
            since_seq = stream.last_seq if since_seq is None else max(since_seq, stream.last_seq)
        stream.begin_sync()
        try:
            if since_seq is not None:
                stream.set_baseline(since_seq)
                joined = parse_join(
                    await self._request(
                        CHAT, "room:join", {"room_id": room_id, "since_seq": since_seq}
                    )
                )
                await catch_up(
                    stream,
                    self._fetch_queued,
                    self.messages.emit,
                    first=HistoryPage(joined.missed, joined.has_more),
                )
                return attrs.evolve(joined, last_seq=stream.last_seq or 0)
            joined = parse_join(await self._request(CHAT, "room:join", {"room_id": room_id}))
            recent = await self.history(room_id, limit=self.settings.recent_on_join)
            stream.set_baseline(recent.messages[-1].seq if recent.messages else 0)
            await catch_up(stream, self._fetch_queued, self.messages.emit)
            return attrs.evolve(joined, recent=recent.messages, last_seq=stream.last_seq or 0)
        except BaseException:
            if created and stream.last_seq is None:
                self._streams.pop(room_id, None)
            raise

    async def leave_room(self, room_id: str) -> None:
        """`room:leave`; the room is no longer tracked."""
        await self._request(CHAT, "room:leave", {"room_id": room_id})
        self._streams.pop(room_id, None)

    async def invite(self, room_id: str, user_id: str) -> None:
        """`room:invite`: the user becomes a member at once."""
        await self._request(CHAT, "room:invite", {"room_id": room_id, "user_id": user_id})

    async def send(self, room_id: str, text: str, *, client_msg_id: str | None = None) -> Message:
        """`message:send` with a `client_msg_id` made once for this send (a UUID unless
        given), so resending after a reconnect never duplicates the message."""
        msg_id = client_msg_id or self._new_id()
        payload: JsonObject = {"room_id": room_id, "text": text, "client_msg_id": msg_id}
        try:
            data = await self._request(CHAT, "message:send", payload)
        except SwitchboardError as error:
            error.details.setdefault("client_msg_id", msg_id)
            raise
        return parse_message(data.get("message"))

    async def edit(self, room_id: str, message_id: str, text: str) -> Message:
        """`message:edit` (author only)."""
        data = await self._request(
            CHAT, "message:edit", {"room_id": room_id, "message_id": message_id, "text": text}
        )
        return parse_message(data.get("message"))

    async def delete(self, room_id: str, message_id: str) -> None:
        """`message:delete` (author or room owner): leaves a tombstone."""
        await self._request(CHAT, "message:delete", {"room_id": room_id, "message_id": message_id})

    async def history(
        self,
        room_id: str,
        *,
        before_seq: int | None = None,
        after_seq: int | None = None,
        limit: int | None = None,
    ) -> HistoryPage:
        """`message:history`: ascending seq; see docs/events.md for the paging rules."""
        payload: JsonObject = {"room_id": room_id}
        if before_seq is not None:
            payload["before_seq"] = before_seq
        if after_seq is not None:
            payload["after_seq"] = after_seq
        if limit is not None:
            payload["limit"] = limit
        return parse_history(await self._request(CHAT, "message:history", payload))

    async def set_typing(self, room_id: str, typing: bool = True) -> None:
        """`typing`. Ephemeral: while not connected it is dropped instead of queued."""
        if self._now() is not State.CONNECTED:
            return
        await self._request(CHAT, "typing", {"room_id": room_id, "typing": typing})

    async def get_presence(self, user_ids: Iterable[str]) -> list[PresenceEntry]:
        """`presence:get`, in the order asked, duplicates removed."""
        ids: list[JsonValue] = list(user_ids)
        return parse_presence_list(await self._request(CHAT, "presence:get", {"user_ids": ids}))

    # -- /notifications commands -------------------------------------------------------

    async def list_notifications(
        self, *, unread_only: bool = False, before: str | None = None, limit: int | None = None
    ) -> NotificationPage:
        """`notification:list`: newest first."""
        payload: JsonObject = {"unread_only": unread_only}
        if before is not None:
            payload["before"] = before
        if limit is not None:
            payload["limit"] = limit
        return parse_notification_page(
            await self._request(NOTIFICATIONS, "notification:list", payload)
        )

    async def mark_read(self, ids: Iterable[str] = (), *, all: bool = False) -> int:
        """`notification:mark_read` by ids, or every one with `all=True`; the unread count."""
        payload: JsonObject
        if all:
            payload = {"all": True}
        else:
            id_list: list[JsonValue] = list(ids)
            payload = {"ids": id_list}
        return parse_unread_count(
            await self._request(NOTIFICATIONS, "notification:mark_read", payload)
        )

    async def unread_count(self) -> int:
        """`notification:unread_count`."""
        return parse_unread_count(
            await self._request(NOTIFICATIONS, "notification:unread_count", {})
        )

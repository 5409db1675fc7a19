"""Gap-free, duplicate-free, in-order delivery of each room's messages.

`RoomStream` is the pure bookkeeping of one room (last seq delivered, live messages held
back while catching up); `catch_up` drives it with a history fetcher. Nothing here does I/O
by itself, so the rules are unit-tested with small fakes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

import attrs

from adapters.client.models import HistoryPage, Message

HISTORY_PAGE = 100
"""`limit` of each `message:history` call made while catching up (the contract's maximum)."""

MAX_CATCH_UP_ROUNDS = 20
"""How often a catch-up may find a new gap before it delivers what it holds as it is."""


@attrs.frozen
class Offer:
    """What to do after an event: deliver these now, and/or fetch history after a seq."""

    deliver: tuple[Message, ...] = ()
    fetch_after: int | None = None


@attrs.define
class RoomStream:
    """One room: `last_seq` delivered so far (None until known) and the held-back messages."""

    room_id: str
    last_seq: int | None = None
    syncing: bool = False
    _held: dict[int, Message] = attrs.Factory(dict)

    @property
    def held(self) -> list[int]:
        """Seqs held back (buffered) right now, ascending."""
        return sorted(self._held)

    def offer(self, message: Message) -> Offer:
        """A live `message:new`: deliver, drop (duplicate), hold, or hold and report a gap."""
        last = self.last_seq
        if last is not None and message.seq <= last:
            return Offer()  # seen already
        if self.syncing or last is None:
            self._held.setdefault(message.seq, message)
            return Offer()
        if message.seq == last + 1:
            self.last_seq = message.seq
            return Offer(deliver=(message,))
        self._held.setdefault(message.seq, message)
        self.syncing = True
        return Offer(fetch_after=last)

    def begin_sync(self) -> None:
        """Hold live messages back (the connection dropped, or a rejoin starts)."""
        self.syncing = True

    def set_baseline(self, seq: int) -> None:
        """Messages up to `seq` count as delivered (the caller has them another way)."""
        self.last_seq = seq
        for held in [s for s in self._held if s <= seq]:
            del self._held[held]

    def fill(self, messages: Iterable[Message]) -> tuple[Message, ...]:
        """Messages from `missed` or `message:history`: the new ones, in seq order."""
        delivered: list[Message] = []
        for message in sorted(messages, key=lambda m: m.seq):
            if self.last_seq is not None and message.seq <= self.last_seq:
                continue
            delivered.append(message)
            self.last_seq = message.seq
            self._held.pop(message.seq, None)
        return tuple(delivered)

    def finish(self) -> Offer:
        """End of a catch-up: release the held messages that follow on; report a gap left."""
        last = self.last_seq if self.last_seq is not None else self._first_held() - 1
        for seq in [s for s in self._held if s <= last]:
            del self._held[seq]
        released: list[Message] = []
        while last + 1 in self._held:
            last += 1
            released.append(self._held.pop(last))
        self.last_seq = last
        if self._held:
            return Offer(deliver=tuple(released), fetch_after=last)
        self.syncing = False
        return Offer(deliver=tuple(released))

    def release_all(self) -> tuple[Message, ...]:
        """Give up on a gap: deliver everything held, in order, and stop syncing."""
        released = tuple(self._held[s] for s in sorted(self._held))
        self._held.clear()
        if released:
            self.last_seq = max(self.last_seq or 0, released[-1].seq)
        self.syncing = False
        return released

    def _first_held(self) -> int:
        return min(self._held) if self._held else 1


Fetch = Callable[[str, int], Awaitable[HistoryPage]]
"""`fetch(room_id, after_seq)`: one `message:history` page after that seq."""

Deliver = Callable[[Message], None]


async def catch_up(
    stream: RoomStream,
    fetch: Fetch,
    deliver: Deliver,
    *,
    first: HistoryPage | None = None,
    max_rounds: int = MAX_CATCH_UP_ROUNDS,
) -> None:
    """Deliver everything after `stream.last_seq`, then the held live messages, in order.

    `first` is what the server already sent (the `missed` of `room:join`). Pages are fetched
    while `has_more`; a gap left among held messages is fetched too, at most `max_rounds`
    times. Errors of `fetch` propagate and leave the stream syncing (a rejoin resumes it).
    """
    more = True
    if first is not None:
        for message in stream.fill(first.messages):
            deliver(message)
        more = first.has_more
    rounds = 0
    while True:
        while more:
            after = stream.last_seq if stream.last_seq is not None else 0
            page = await fetch(stream.room_id, after)
            for message in stream.fill(page.messages):
                deliver(message)
            more = page.has_more and bool(page.messages)
        offer = stream.finish()
        for message in offer.deliver:
            deliver(message)
        if offer.fetch_after is None:
            return
        rounds += 1
        if rounds >= max_rounds:
            for message in stream.release_all():
                deliver(message)
            return
        more = True

"""Gap detection, dedupe by (room, seq), and in-order catch-up of one room's messages."""

from __future__ import annotations

import pytest

from adapters.client.errors import NetworkError
from adapters.client.models import HistoryPage, Message
from adapters.client.parsing import parse_message
from adapters.client.recovery import Offer, RoomStream, catch_up
from tests.client.fakes import message_json


def msg(seq: int, room: str = "r1") -> Message:
    return parse_message(message_json(room, seq))


def seqs(messages: tuple[Message, ...] | list[Message]) -> list[int]:
    return [m.seq for m in messages]


class FakeHistory:
    """`message:history` after a seq over a stored log, `page` at a time; records calls."""

    def __init__(self, last: int, page: int = 3, fail_after_calls: int | None = None) -> None:
        self.log = [msg(s) for s in range(1, last + 1)]
        self.page = page
        self.calls: list[int] = []
        self.fail_after_calls = fail_after_calls

    async def __call__(self, room_id: str, after_seq: int) -> HistoryPage:
        if self.fail_after_calls is not None and len(self.calls) >= self.fail_after_calls:
            raise NetworkError("disconnected", "gone")
        self.calls.append(after_seq)
        newer = [m for m in self.log if m.seq > after_seq]
        return HistoryPage(tuple(newer[: self.page]), len(newer) > self.page)


def test_in_order_live_messages_are_delivered_and_duplicates_dropped() -> None:
    stream = RoomStream("r1", last_seq=0)

    assert stream.offer(msg(1)) == Offer(deliver=(msg(1),))
    assert stream.offer(msg(2)) == Offer(deliver=(msg(2),))
    assert stream.offer(msg(2)) == Offer()
    assert stream.offer(msg(1)) == Offer()
    assert stream.last_seq == 2


def test_a_seq_gap_holds_the_message_and_asks_for_history() -> None:
    stream = RoomStream("r1", last_seq=41)

    offer = stream.offer(msg(43))

    assert offer == Offer(fetch_after=41)
    assert stream.syncing
    assert stream.held == [43]
    assert stream.offer(msg(44)) == Offer()  # held too, no second fetch
    assert stream.held == [43, 44]


def test_fill_then_finish_deliver_the_gap_then_the_held_ones() -> None:
    stream = RoomStream("r1", last_seq=41)
    stream.offer(msg(43))
    stream.offer(msg(44))

    filled = stream.fill([msg(42), msg(43)])  # history overlaps a held message
    finished = stream.finish()

    assert seqs(filled) == [42, 43]
    assert seqs(finished.deliver) == [44]
    assert finished.fetch_after is None
    assert not stream.syncing
    assert stream.last_seq == 44


def test_finish_reports_a_gap_left_among_held_messages() -> None:
    stream = RoomStream("r1", last_seq=5)
    stream.begin_sync()
    for seq in (6, 7, 9):
        stream.offer(msg(seq))

    offer = stream.finish()

    assert seqs(offer.deliver) == [6, 7]
    assert offer.fetch_after == 7
    assert stream.syncing
    assert stream.held == [9]


def test_unknown_baseline_holds_everything_until_set() -> None:
    stream = RoomStream("r1")
    stream.offer(msg(3))
    stream.offer(msg(4))

    stream.set_baseline(3)

    assert stream.held == [4]
    assert seqs(stream.finish().deliver) == [4]


def test_release_all_gives_up_on_a_gap_in_order() -> None:
    stream = RoomStream("r1", last_seq=1)
    stream.begin_sync()
    for seq in (9, 5, 7):
        stream.offer(msg(seq))

    assert seqs(stream.release_all()) == [5, 7, 9]
    assert stream.last_seq == 9
    assert not stream.syncing


async def test_catch_up_pages_through_history_then_releases_held_live_messages() -> None:
    stream = RoomStream("r1", last_seq=2)
    stream.begin_sync()  # the connection dropped: live messages are held meanwhile
    stream.offer(msg(9))
    stream.offer(msg(10))
    history = FakeHistory(last=10, page=3)
    delivered: list[Message] = []

    await catch_up(stream, history, delivered.append, first=HistoryPage((msg(3), msg(4)), True))

    assert seqs(delivered) == list(range(3, 11))
    assert history.calls == [4, 7]  # pages after 4 (5..7), after 7 (8..10)
    assert not stream.syncing
    assert stream.offer(msg(11)) == Offer(deliver=(msg(11),))


async def test_catch_up_dedupes_when_live_messages_overlap_the_fetched_pages() -> None:
    stream = RoomStream("r1", last_seq=0)
    history = FakeHistory(last=6, page=100)
    delivered: list[Message] = []
    stream.offer(msg(1))
    delivered.append(msg(1))
    assert stream.offer(msg(4)).fetch_after == 1  # 2 and 3 were lost
    stream.offer(msg(5))
    stream.offer(msg(4))

    await catch_up(stream, history, delivered.append)

    assert seqs(delivered) == [1, 2, 3, 4, 5, 6]
    assert len({(m.room_id, m.seq) for m in delivered}) == 6


async def test_catch_up_fetches_a_gap_that_remains_after_the_pages() -> None:
    stream = RoomStream("r1", last_seq=0)
    history = FakeHistory(last=3, page=100)
    stream.begin_sync()
    stream.offer(msg(6))
    delivered: list[Message] = []

    async def growing_history(room_id: str, after_seq: int) -> HistoryPage:
        if len(history.calls) == 1:  # 4 and 5 were stored meanwhile
            history.log.extend([msg(4), msg(5)])
        return await history(room_id, after_seq)

    await catch_up(stream, growing_history, delivered.append)

    assert seqs(delivered) == [1, 2, 3, 4, 5, 6]
    assert history.calls == [0, 3]


async def test_catch_up_gives_up_after_max_rounds_and_delivers_in_order() -> None:
    stream = RoomStream("r1", last_seq=0)
    stream.begin_sync()
    stream.offer(msg(5))
    history = FakeHistory(last=0)  # the server never has 1..4
    delivered: list[Message] = []

    await catch_up(stream, history, delivered.append, max_rounds=3)

    assert seqs(delivered) == [5]
    assert len(history.calls) == 3
    assert not stream.syncing


async def test_a_failing_fetch_propagates_and_leaves_the_stream_syncing() -> None:
    stream = RoomStream("r1", last_seq=0)
    stream.begin_sync()
    stream.offer(msg(8))
    history = FakeHistory(last=8, page=2, fail_after_calls=1)
    delivered: list[Message] = []

    with pytest.raises(NetworkError):
        await catch_up(stream, history, delivered.append)

    assert seqs(delivered) == [1, 2]
    assert stream.syncing
    assert stream.last_seq == 2
    assert stream.held == [8]

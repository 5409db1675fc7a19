"""`RoomDiffCoalescer`: one flush per room per window, undone changes cancel out."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from application.coalescer import RoomDiffCoalescer
from application.json_types import JsonObject
from domain.model import RoomId

WINDOW = 0.02


class Recorder:
    """A flush callback that keeps what it is given (and can be told to fail)."""

    def __init__(self) -> None:
        self.calls: list[tuple[RoomId, str, JsonObject]] = []
        self.fail_rooms: set[RoomId] = set()
        self.fail_events: set[str] = set()

    async def __call__(self, room_id: RoomId, event: str, payload: JsonObject) -> None:
        if room_id in self.fail_rooms or event in self.fail_events:
            raise RuntimeError("broadcast failed")
        self.calls.append((room_id, event, payload))

    def of(self, event: str) -> list[tuple[RoomId, JsonObject]]:
        return [(room, payload) for room, name, payload in self.calls if name == event]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def coalescer(recorder: Recorder) -> RoomDiffCoalescer:
    return RoomDiffCoalescer(WINDOW, recorder)


async def a_window_passes() -> None:
    await asyncio.sleep(WINDOW * 5)


async def test_nothing_is_sent_before_the_window_ends(recorder: Recorder) -> None:
    slow = RoomDiffCoalescer(10.0, recorder)
    slow.membership("r1", "alice", True)
    await asyncio.sleep(WINDOW)
    assert recorder.calls == []
    await slow.flush_all()
    assert len(recorder.calls) == 1


async def test_several_joins_in_one_window_flush_once(
    coalescer: RoomDiffCoalescer, recorder: Recorder
) -> None:
    for user in ("alice", "bob", "carol"):
        coalescer.membership("r1", user, True)
    coalescer.membership("r1", "dave", False)
    await a_window_passes()
    assert recorder.calls == [
        (
            "r1",
            "room:members",
            {"room_id": "r1", "joined": ["alice", "bob", "carol"], "left": ["dave"]},
        )
    ]


async def test_presence_diff_shape(coalescer: RoomDiffCoalescer, recorder: Recorder) -> None:
    coalescer.presence("r1", "alice", True)
    coalescer.presence("r1", "bob", False)
    await a_window_passes()
    assert recorder.calls == [
        ("r1", "presence:diff", {"room_id": "r1", "joins": ["alice"], "leaves": ["bob"]})
    ]


async def test_members_and_presence_of_one_room_in_one_window(
    coalescer: RoomDiffCoalescer, recorder: Recorder
) -> None:
    coalescer.membership("r1", "alice", True)
    coalescer.presence("r1", "bob", True)
    await a_window_passes()
    assert [event for _, event, _ in recorder.calls] == ["room:members", "presence:diff"]


@pytest.mark.parametrize("first", [True, False])
async def test_a_change_undone_in_the_window_is_in_neither_list(
    coalescer: RoomDiffCoalescer, recorder: Recorder, first: bool
) -> None:
    coalescer.membership("r1", "alice", first)
    coalescer.membership("r1", "alice", not first)
    coalescer.membership("r1", "bob", True)
    coalescer.presence("r1", "carol", first)
    coalescer.presence("r1", "carol", not first)
    await a_window_passes()
    assert recorder.calls == [
        ("r1", "room:members", {"room_id": "r1", "joined": ["bob"], "left": []})
    ]


async def test_a_fully_undone_window_sends_nothing(
    coalescer: RoomDiffCoalescer, recorder: Recorder
) -> None:
    coalescer.membership("r1", "alice", True)
    coalescer.membership("r1", "alice", False)
    coalescer.presence("r1", "alice", False)
    coalescer.presence("r1", "alice", True)
    await a_window_passes()
    assert recorder.calls == []


async def test_join_leave_join_is_a_join(coalescer: RoomDiffCoalescer, recorder: Recorder) -> None:
    coalescer.membership("r1", "alice", True)
    coalescer.membership("r1", "alice", False)
    coalescer.membership("r1", "alice", True)
    await a_window_passes()
    assert recorder.of("room:members") == [
        ("r1", {"room_id": "r1", "joined": ["alice"], "left": []})
    ]


async def test_repeated_join_is_listed_once(
    coalescer: RoomDiffCoalescer, recorder: Recorder
) -> None:
    coalescer.membership("r1", "alice", True)
    coalescer.membership("r1", "alice", True)
    await a_window_passes()
    assert recorder.of("room:members") == [
        ("r1", {"room_id": "r1", "joined": ["alice"], "left": []})
    ]


async def test_rooms_flush_separately(coalescer: RoomDiffCoalescer, recorder: Recorder) -> None:
    coalescer.membership("r1", "alice", True)
    coalescer.membership("r2", "bob", True)
    coalescer.membership("r2", "carol", False)
    await a_window_passes()
    assert sorted(recorder.of("room:members")) == [
        ("r1", {"room_id": "r1", "joined": ["alice"], "left": []}),
        ("r2", {"room_id": "r2", "joined": ["bob"], "left": ["carol"]}),
    ]


async def test_a_later_window_flushes_again(
    coalescer: RoomDiffCoalescer, recorder: Recorder
) -> None:
    coalescer.membership("r1", "alice", True)
    await a_window_passes()
    coalescer.membership("r1", "alice", False)
    await a_window_passes()
    assert recorder.of("room:members") == [
        ("r1", {"room_id": "r1", "joined": ["alice"], "left": []}),
        ("r1", {"room_id": "r1", "joined": [], "left": ["alice"]}),
    ]


async def test_flush_all_emits_pending_immediately(recorder: Recorder) -> None:
    coalescer = RoomDiffCoalescer(60.0, recorder)
    coalescer.membership("r1", "alice", True)
    coalescer.presence("r2", "bob", True)
    await coalescer.flush_all()
    assert sorted((room, event) for room, event, _ in recorder.calls) == [
        ("r1", "room:members"),
        ("r2", "presence:diff"),
    ]
    # the cancelled timers never fire a second flush
    await asyncio.sleep(0.01)
    assert len(recorder.calls) == 2


async def test_flush_all_with_nothing_pending(
    coalescer: RoomDiffCoalescer, recorder: Recorder
) -> None:
    await coalescer.flush_all()
    assert recorder.calls == []


async def test_flush_all_waits_for_a_flush_in_progress() -> None:
    release = asyncio.Event()
    done: list[str] = []

    async def slow_flush(room_id: RoomId, event: str, payload: JsonObject) -> None:
        await release.wait()
        done.append(event)

    coalescer = RoomDiffCoalescer(0.001, slow_flush)
    coalescer.membership("r1", "alice", True)
    await asyncio.sleep(0.02)  # the timer fired; its flush waits on `release`
    flushing = asyncio.create_task(coalescer.flush_all())
    await asyncio.sleep(0.01)
    assert not flushing.done()
    release.set()
    await asyncio.wait_for(flushing, 1)
    assert done == ["room:members"]


async def test_a_failing_flush_is_logged_and_later_flushes_go_on(
    coalescer: RoomDiffCoalescer, recorder: Recorder
) -> None:
    recorder.fail_rooms.add("bad")
    with capture_logs() as logs:
        coalescer.membership("bad", "alice", True)
        coalescer.membership("good", "bob", True)
        await a_window_passes()
    assert recorder.of("room:members") == [
        ("good", {"room_id": "good", "joined": ["bob"], "left": []})
    ]
    failures = [entry for entry in logs if entry["event"] == "coalesced_flush_failed"]
    assert len(failures) == 1
    assert failures[0]["room_id"] == "bad"
    assert failures[0]["log_level"] == "error"
    assert failures[0]["exc_info"] is True

    recorder.fail_rooms.clear()
    coalescer.membership("bad", "carol", True)
    await a_window_passes()
    assert ("bad", {"room_id": "bad", "joined": ["carol"], "left": []}) in recorder.of(
        "room:members"
    )


async def test_a_failing_flush_does_not_break_flush_all(recorder: Recorder) -> None:
    coalescer = RoomDiffCoalescer(60.0, recorder)
    recorder.fail_rooms.add("bad")
    coalescer.membership("bad", "alice", True)
    coalescer.membership("good", "bob", True)
    with capture_logs():
        await coalescer.flush_all()
    assert [room for room, _ in recorder.of("room:members")] == ["good"]


async def test_a_failed_members_flush_still_sends_presence(recorder: Recorder) -> None:
    coalescer = RoomDiffCoalescer(60.0, recorder)
    recorder.fail_events.add("room:members")
    coalescer.membership("r1", "alice", True)
    coalescer.presence("r1", "bob", True)
    with capture_logs():
        await coalescer.flush_all()
    assert recorder.of("presence:diff") == [
        ("r1", {"room_id": "r1", "joins": ["bob"], "leaves": []})
    ]


async def test_a_storm_of_joins_is_one_broadcast(recorder: Recorder) -> None:
    coalescer = RoomDiffCoalescer(WINDOW, recorder)
    users = [f"user{i}" for i in range(1000)]
    for user in users:
        coalescer.membership("big", user, True)
        coalescer.presence("big", user, True)
    await a_window_passes()
    assert len(recorder.calls) == 2
    members = recorder.of("room:members")[0][1]
    assert members["joined"] == users

"""Snapshots of the memory stores: every kind of data round-trips, the write is atomic, and a
file that cannot be used is refused with a clear error (never read as empty)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import attrs
import pytest

from adapters.memory import MemoryMessageStore, MemoryNotificationStore, MemoryRoomRepository
from adapters.memory import snapshot as snapshot_module
from adapters.memory.snapshot import (
    SNAPSHOT_FORMAT,
    SNAPSHOT_VERSION,
    Snapshot,
    SnapshotCounts,
    SnapshotError,
    SnapshotSaveError,
    capture,
    read_snapshot,
    restore,
    write_snapshot,
)
from adapters.memory.snapshot_keeper import SnapshotKeeper
from application.settings import Settings, SettingsError
from domain.json_types import JsonObject
from domain.model import NewMessage, Notification, Room, Visibility

T0 = datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC)
ODD_ID = "a:b{c}%d \udc80 \u00e9\u4e2d"
"""An id with key separators, hash-tag braces, a percent, a lone surrogate and non-ASCII."""


@attrs.define
class Stores:
    """One set of the three memory stores a snapshot covers."""

    rooms: MemoryRoomRepository = attrs.Factory(MemoryRoomRepository)
    messages: MemoryMessageStore = attrs.Factory(MemoryMessageStore)
    notifications: MemoryNotificationStore = attrs.Factory(MemoryNotificationStore)

    def capture(self, at: datetime = T0) -> Snapshot:
        """A snapshot of the three stores."""
        return capture(self.rooms, self.messages, self.notifications, at)

    def restore(self, snapshot: Snapshot) -> None:
        """Replace the three stores' state with the snapshot's."""
        restore(snapshot, self.rooms, self.messages, self.notifications)


async def populated() -> Stores:
    """Stores with every kind of data: public and private rooms, a room nobody is left in,
    plain, edited and deleted messages in several rooms, odd ids and texts, notifications
    with nested data, read and unread."""
    stores = Stores()
    rooms = stores.rooms
    await rooms.create(Room("r-pub", "general", Visibility.PUBLIC, "alice", T0), ["alice", "bob"])
    await rooms.create(
        Room(ODD_ID, "secret \u2603", Visibility.PRIVATE, "bob", T0 + timedelta(seconds=1)),
        ["bob", ODD_ID],
    )
    await rooms.create(Room("r-empty", "left", Visibility.PUBLIC, "carol", T0), ["carol"])
    await rooms.remove_member("r-empty", "carol")
    await rooms.add_member("r-pub", "carol")
    messages = stores.messages
    for index in range(4):
        await messages.append(
            NewMessage(
                id=f"m{index}",
                room_id="r-pub",
                author_id="alice" if index % 2 == 0 else "bob",
                text=f'hello {index} \udc80 \u00e9 "quoted" \\ \n',
                client_msg_id=f"c{index}",
                created_at=T0 + timedelta(seconds=index),
            )
        )
    await messages.edit("r-pub", "m1", "edited text", T0 + timedelta(minutes=1))
    await messages.tombstone("r-pub", "m2", T0 + timedelta(minutes=2))
    await messages.append(NewMessage("m-odd", ODD_ID, ODD_ID, "hi", ODD_ID, T0))
    notifications: list[Notification] = [
        Notification(
            id=f"n{index}",
            user_id="bob",
            kind="mention",
            title=f"title {index}",
            body="body \u00e9",
            data={"nested": {"list": [1, 2.5, None, True, "x"], "empty": [], "obj": {}}},
            created_at=T0,  # the same time: the order must come from the log, not the time
        )
        for index in range(5)
    ]
    notifications.append(
        Notification(ODD_ID, ODD_ID, "system", "t", "b", {"big": 2**60, "f": 0.1}, T0)
    )
    await stores.notifications.add(notifications)
    await stores.notifications.mark_read("bob", ["n1", "n3"], T0 + timedelta(hours=1))
    return stores


def state_of(stores: Stores) -> tuple[object, ...]:
    """Everything the three stores hold, order-independent where the stores are."""
    rooms = stores.rooms.export_state()
    messages = stores.messages.export_state()
    notifications = stores.notifications.export_state()
    return (
        {room.id: room for room in rooms.rooms},
        dict(rooms.members),
        dict(messages.logs),
        dict(messages.idempotency),
        dict(notifications.logs),
    )


def document(path: Path) -> JsonObject:
    """The parsed JSON of a snapshot file."""
    parsed: JsonObject = json.loads(path.read_text())
    return parsed


def write_document(path: Path, doc: object) -> None:
    """Write a JSON document (a snapshot edited by a test)."""
    path.write_text(json.dumps(doc))


# --- round trips ----------------------------------------------------------------------------


async def test_every_kind_of_data_round_trips_through_a_file(tmp_path: Path) -> None:
    original = await populated()
    path = tmp_path / "snapshot.json"
    write_snapshot(path, original.capture())
    restored = Stores()
    restored.restore(read_snapshot(path))

    assert state_of(restored) == state_of(original)
    assert path.read_bytes().isascii()  # lone surrogates and non-ASCII are escaped
    doc = document(path)
    assert (doc["format"], doc["version"]) == (SNAPSHOT_FORMAT, SNAPSHOT_VERSION)
    assert read_snapshot(path).counts() == SnapshotCounts(
        rooms=3, memberships=5, messages=5, idempotency_keys=5, notifications=6, unread=4
    )


async def test_restored_stores_behave_as_the_originals(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    write_snapshot(path, (await populated()).capture())
    stores = Stores()
    stores.restore(read_snapshot(path))

    rooms = stores.rooms
    assert [r.id for r in await rooms.list_visible("bob")] == ["r-empty", "r-pub", ODD_ID]
    assert [r.id for r in await rooms.list_visible("alice")] == ["r-empty", "r-pub"]
    assert (await rooms.get("r-pub")) == Room(
        "r-pub", "general", Visibility.PUBLIC, "alice", T0, member_count=3
    )
    assert await rooms.rooms_of("bob") == sorted(["r-pub", ODD_ID])
    assert await rooms.members("r-empty") == []
    assert await rooms.add_member("r-empty", "dave")
    assert not await rooms.add_member("r-pub", "alice")

    messages = stores.messages
    assert await messages.last_seq("r-pub") == 4
    history = await messages.history("r-pub", after_seq=0, limit=10)
    assert [(m.seq, m.id) for m in history.messages] == [(1, "m0"), (2, "m1"), (3, "m2"), (4, "m3")]
    edited, deleted = history.messages[1], history.messages[2]
    assert (edited.text, edited.edited_at) == ("edited text", T0 + timedelta(minutes=1))
    assert (deleted.text, deleted.deleted) == ("", True)
    replay = await messages.append(NewMessage("other", "r-pub", "bob", "again", "c1", T0))
    assert (replay.created, replay.message.id) == (False, "m1")
    fresh = await messages.append(NewMessage("m4", "r-pub", "bob", "new", "c-new", T0))
    assert (fresh.created, fresh.message.seq) == (True, 5)  # seqs continue gap-free
    assert (await messages.get(ODD_ID, "m-odd")) is not None
    assert (await messages.edit("r-pub", "m2", "no", T0)) is None  # still a tombstone

    notes = stores.notifications
    assert await notes.unread_count("bob") == 3
    page, more = await notes.page("bob", unread_only=False, before=None, limit=2)
    assert ([n.id for n in page], more) == (["n4", "n3"], True)
    older, more = await notes.page("bob", unread_only=False, before="n3", limit=10)
    assert ([n.id for n in older], more) == (["n2", "n1", "n0"], False)
    unread, _ = await notes.page("bob", unread_only=True, before=None, limit=10)
    assert [n.id for n in unread] == ["n4", "n2", "n0"]
    assert older[1].read_at == T0 + timedelta(hours=1)
    assert await notes.mark_read("bob", ["n0"], T0) == 2
    (odd,) = (await notes.page(ODD_ID, unread_only=False, before=None, limit=5))[0]
    assert odd.data == {"big": 2**60, "f": 0.1}


async def test_empty_stores_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    write_snapshot(path, Stores().capture())
    restored = await populated()  # whatever was there is replaced
    restored.restore(read_snapshot(path))
    assert state_of(restored) == state_of(Stores())
    assert read_snapshot(path).counts() == SnapshotCounts(0, 0, 0, 0, 0, 0)


async def test_times_in_other_timezones_are_kept_as_the_same_instant(tmp_path: Path) -> None:
    stores = Stores()
    paris = T0.astimezone(timezone(timedelta(hours=1)))
    await stores.rooms.create(Room("r", "n", Visibility.PUBLIC, "a", paris), ["a"])
    path = tmp_path / "snapshot.json"
    write_snapshot(path, stores.capture())
    (room,) = read_snapshot(path).rooms.rooms
    assert room.created_at == T0
    assert document(path)["rooms"] == [
        {
            "id": "r",
            "name": "n",
            "visibility": "public",
            "owner_id": "a",
            "created_at": "2026-03-01T09:30:00.123456+00:00",
        }
    ]


async def test_a_capture_is_a_copy_that_later_changes_do_not_touch() -> None:
    stores = await populated()
    before = stores.capture()
    await stores.rooms.add_member("r-pub", "zed")
    await stores.messages.append(NewMessage("late", "r-pub", "bob", "late", "late", T0))
    await stores.notifications.mark_all_read("bob", T0)
    restored = Stores()
    restored.restore(before)
    assert "zed" not in await restored.rooms.members("r-pub")
    assert await restored.messages.last_seq("r-pub") == 4
    assert await restored.notifications.unread_count("bob") == 3


# --- atomic write ---------------------------------------------------------------------------


async def test_a_failed_write_leaves_the_previous_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "snapshot.json"
    first = await populated()
    write_snapshot(path, first.capture())
    before = path.read_bytes()

    def broken(snapshot: Snapshot) -> Iterator[str]:
        yield '{"format": "switchboard-snapshot", "version": 1, "rooms": ['
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(snapshot_module, "encode_snapshot", broken)
    with pytest.raises(SnapshotSaveError, match="No space left"):
        write_snapshot(path, Stores().capture())
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["snapshot.json"]


async def test_the_file_is_fsynced_before_it_replaces_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "snapshot.json"
    path.write_text("old")
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        calls.append("fsync")
        real_fsync(fd)

    def replace(src: str, dst: Path) -> None:
        assert Path(src).parent == tmp_path  # the temporary is in the same directory
        assert path.read_text() == "old"  # nothing touched the old file until now
        calls.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    write_snapshot(path, (await populated()).capture())
    assert calls == ["fsync", "replace", "fsync"]  # file, rename, then the directory
    assert read_snapshot(path).counts().messages == 5
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)  # chat data: owner only


def test_writing_into_a_missing_directory_is_a_save_error(tmp_path: Path) -> None:
    with pytest.raises(SnapshotSaveError, match="cannot create a file"):
        write_snapshot(tmp_path / "missing" / "snapshot.json", Stores().capture())


# --- refused files --------------------------------------------------------------------------


async def test_a_truncated_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    write_snapshot(path, (await populated()).capture())
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(SnapshotError, match="not valid JSON"):
        read_snapshot(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not valid JSON"),
        (b"\xff\xfe garbage", "not valid JSON"),
        (b"[1, 2]", "not a Switchboard snapshot"),
        (b'{"format": "something-else", "version": 1}', "not a Switchboard snapshot"),
        (b"[" * 100_000, "nested too deeply|not valid JSON"),
    ],
)
def test_a_file_that_is_not_a_snapshot_is_refused(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "snapshot.json"
    path.write_bytes(content)
    with pytest.raises(SnapshotError, match=message):
        read_snapshot(path)


@pytest.mark.parametrize("version", [2, 0, "1", None, True])
async def test_an_unknown_version_is_refused(
    tmp_path: Path, version: int | str | bool | None
) -> None:
    path = tmp_path / "snapshot.json"
    write_snapshot(path, (await populated()).capture())
    doc = document(path)
    doc["version"] = version
    write_document(path, doc)
    with pytest.raises(SnapshotError, match="unsupported snapshot version"):
        read_snapshot(path)


def test_a_missing_file_is_a_snapshot_error(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="cannot read"):
        read_snapshot(tmp_path / "nope.json")


def _group(doc: JsonObject, kind: str, owner: str) -> list[JsonObject]:
    """The records of one room or user in a section (`messages`, `idempotency`, ...)."""
    section = doc[kind]
    assert isinstance(section, list)
    for group in section:
        assert isinstance(group, dict)
        if owner in (group.get("room_id"), group.get("user_id")):
            (records,) = (value for key, value in group.items() if key.endswith("s"))
            assert isinstance(records, list)
            return [record for record in records if isinstance(record, dict)]
    raise AssertionError(f"no {kind} of {owner!r}")


def _first(doc: JsonObject, kind: str) -> JsonObject:
    """The first record of a top-level list (`rooms`, `memberships`)."""
    records = doc[kind]
    assert isinstance(records, list)
    record = records[0]
    assert isinstance(record, dict)
    return record


def _break_seq(doc: JsonObject) -> None:
    _group(doc, "messages", "r-pub")[2]["seq"] = 7


def _duplicate_room(doc: JsonObject) -> None:
    rooms = doc["rooms"]
    assert isinstance(rooms, list)
    rooms.append(rooms[0])


def _unknown_key(doc: JsonObject) -> None:
    _group(doc, "messages", "r-pub")[0]["extra"] = 1


def _missing_key(doc: JsonObject) -> None:
    del _group(doc, "messages", "r-pub")[0]["client_msg_id"]


def _unknown_top_key(doc: JsonObject) -> None:
    doc["presence"] = []


def _naive_time(doc: JsonObject) -> None:
    _group(doc, "messages", "r-pub")[0]["created_at"] = "2026-03-01T09:30:00"


def _bad_time(doc: JsonObject) -> None:
    _group(doc, "messages", "r-pub")[0]["created_at"] = "yesterday"


def _string_seq(doc: JsonObject) -> None:
    _group(doc, "messages", "r-pub")[0]["seq"] = "1"


def _foreign_idempotency(doc: JsonObject) -> None:
    _group(doc, "idempotency", "r-pub")[0]["seq"] = 2  # seq 2 has another client_msg_id


def _idempotency_past_the_end(doc: JsonObject) -> None:
    _group(doc, "idempotency", "r-pub")[0]["seq"] = 99


def _members_of_unknown_room(doc: JsonObject) -> None:
    memberships = doc["memberships"]
    assert isinstance(memberships, list)
    memberships.append({"room_id": "ghost", "members": ["a"]})


def _bad_visibility(doc: JsonObject) -> None:
    _first(doc, "rooms")["visibility"] = "secret"


def _notification_data_not_an_object(doc: JsonObject) -> None:
    _group(doc, "notifications", "bob")[0]["data"] = [1]


def _duplicate_notification(doc: JsonObject) -> None:
    notes = _group(doc, "notifications", "bob")
    notes[1]["id"] = notes[0]["id"]


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (_break_seq, r"messages\[\d\]\.messages\[2\]: seq 7 where 3 was expected"),
        (_duplicate_room, "listed twice"),
        (_unknown_key, "unknown extra"),
        (_missing_key, "missing client_msg_id"),
        (_unknown_top_key, "unknown presence"),
        (_naive_time, "has no timezone"),
        (_bad_time, "is not an ISO-8601 time"),
        (_string_seq, r"seq: expected an integer"),
        (_foreign_idempotency, "another author or client_msg_id"),
        (_idempotency_past_the_end, "is not a message of room"),
        (_members_of_unknown_room, "not in rooms"),
        (_bad_visibility, "expected public or private"),
        (_notification_data_not_an_object, r"data: expected an object"),
        (_duplicate_notification, "listed twice"),
    ],
)
async def test_an_inconsistent_snapshot_is_refused_with_where_and_what(
    tmp_path: Path, corrupt: Callable[[JsonObject], None], message: str
) -> None:
    path = tmp_path / "snapshot.json"
    write_snapshot(path, (await populated()).capture())
    doc = document(path)
    corrupt(doc)
    write_document(path, doc)
    with pytest.raises(SnapshotError, match=message) as caught:
        read_snapshot(path)
    assert str(path) in str(caught.value)


# --- the keeper (load at start, periodic saves, last save at stop) -------------------------------


def keeper_for(stores: Stores, path: Path, interval_s: float = 60.0) -> SnapshotKeeper:
    """A keeper of these stores on `path` with a fixed clock."""
    return SnapshotKeeper(
        path, interval_s, stores.rooms, stores.messages, stores.notifications, lambda: T0
    )


async def test_keeper_load_without_a_file_starts_empty_and_stop_writes_one(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    stores = Stores()
    keeper = keeper_for(stores, path)
    assert await keeper.load() is None
    keeper.start()
    await stores.rooms.create(Room("r", "n", Visibility.PUBLIC, "a", T0), ["a"])
    counts = await keeper.stop()
    assert counts.rooms == 1
    again = Stores()
    assert (await keeper_for(again, path).load()) == counts
    assert await again.rooms.members("r") == ["a"]


async def test_keeper_saves_every_interval(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    stores = Stores()
    keeper = keeper_for(stores, path, interval_s=0.05)
    await keeper.load()
    keeper.start()
    try:
        await stores.rooms.create(Room("r", "n", Visibility.PUBLIC, "a", T0), ["a"])
        deadline = time.monotonic() + 5
        while not (path.exists() and read_snapshot(path).counts().rooms == 1):
            assert time.monotonic() < deadline, "no periodic save within 5 s"
            await asyncio.sleep(0.02)
        await stores.rooms.add_member("r", "b")
        while read_snapshot(path).counts().memberships != 2:
            assert time.monotonic() < deadline, "the second change was not saved within 5 s"
            await asyncio.sleep(0.02)
    finally:
        await keeper.stop()


async def test_keeper_refuses_to_start_on_a_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    path.write_text('{"format": "switchboard-snapshot", "version": 1, "rooms": [')
    stores = await populated()
    before = state_of(stores)
    with pytest.raises(SnapshotError, match="not valid JSON"):
        await keeper_for(stores, path).load()
    assert state_of(stores) == before  # nothing was replaced by half a file
    assert path.read_text().endswith("[")  # and the file is kept for inspection


async def test_keeper_refuses_a_directory_it_cannot_write_in(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="cannot write snapshots in"):
        await keeper_for(Stores(), tmp_path / "missing" / "snapshot.json").load()
    with pytest.raises(SnapshotError, match="is a directory"):
        await keeper_for(Stores(), tmp_path).load()


async def test_a_failed_periodic_save_is_retried_at_the_next_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "snapshot.json"
    stores = Stores()
    keeper = keeper_for(stores, path, interval_s=0.05)
    failures: list[Path] = []
    real = snapshot_module.write_snapshot

    def flaky(target: Path, snapshot: Snapshot) -> int:
        if len(failures) < 2:
            failures.append(target)
            raise SnapshotSaveError("disk full")
        return real(target, snapshot)

    monkeypatch.setattr("adapters.memory.snapshot_keeper.write_snapshot", flaky)
    await keeper.load()
    keeper.start()
    try:
        deadline = time.monotonic() + 5
        while not path.exists():
            assert time.monotonic() < deadline, "no save after the failures"
            await asyncio.sleep(0.02)
    finally:
        await keeper.stop()
    assert len(failures) == 2


async def test_saving_a_big_store_keeps_the_event_loop_responsive(tmp_path: Path) -> None:
    """The copy on the loop is fast and the JSON is written in a thread, so the loop keeps
    ticking while a 100,000-message snapshot is saved."""
    stores = Stores()
    await stores.rooms.create(Room("r", "n", Visibility.PUBLIC, "a", T0), ["a"])
    for index in range(100_000):
        await stores.messages.append(
            NewMessage(f"m{index}", f"r{index % 20}", "a", "some text " * 8, f"c{index}", T0)
        )
    keeper = keeper_for(stores, tmp_path / "snapshot.json")
    ticks: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        while not done.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.002)
            ticks.append(time.perf_counter() - started)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.02)
    started = time.perf_counter()
    await keeper.save()
    took = time.perf_counter() - started
    done.set()
    await ticker
    assert read_snapshot(tmp_path / "snapshot.json").counts().messages == 100_000
    # A save that ran on the loop would give one tick as long as the whole save.
    assert max(ticks) < max(0.25, took / 2), (max(ticks), took)
    assert len(ticks) > 10


# --- settings ---------------------------------------------------------------------------------

ENV = {"SWITCHBOARD_JWT_SECRET": "s" * 32, "SWITCHBOARD_API_KEY": "k"}


def test_snapshots_are_off_by_default_and_saved_every_minute_when_on() -> None:
    settings = Settings.from_env(ENV)
    assert (settings.snapshot_path, settings.snapshot_interval_s) == (None, 60.0)
    configured = Settings.from_env(
        {
            **ENV,
            "SWITCHBOARD_SNAPSHOT_PATH": " /var/lib/switchboard/snapshot.json ",
            "SWITCHBOARD_SNAPSHOT_INTERVAL_S": "2.5",
        }
    )
    assert configured.snapshot_path == "/var/lib/switchboard/snapshot.json"
    assert configured.snapshot_interval_s == 2.5


@pytest.mark.parametrize("interval", ["0", "-1", "soon", "nan"])
def test_a_bad_snapshot_interval_is_a_configuration_error(interval: str) -> None:
    with pytest.raises(SettingsError, match="SWITCHBOARD_SNAPSHOT_INTERVAL_S"):
        Settings.from_env({**ENV, "SWITCHBOARD_SNAPSHOT_INTERVAL_S": interval})

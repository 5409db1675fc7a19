"""Contract of the `RoomRepository` port: every adapter passes it unchanged."""

from __future__ import annotations

from datetime import timedelta

from domain.model import Room, Visibility
from domain.ports import RoomRepository
from tests.support.fakes import EPOCH

PUBLIC = Visibility.PUBLIC
PRIVATE = Visibility.PRIVATE


def room(
    room_id: str, owner: str = "alice", visibility: Visibility = PUBLIC, minute: int = 0
) -> Room:
    """A room record as the service builds it (member_count left to the repository)."""
    return Room(
        id=room_id,
        name=f"room {room_id}",
        visibility=visibility,
        owner_id=owner,
        created_at=EPOCH + timedelta(minutes=minute),
    )


async def test_create_returns_the_room_with_its_member_count(
    room_repository: RoomRepository,
) -> None:
    created = await room_repository.create(room("r1"), ["alice", "bob", "carol"])

    assert created.id == "r1"
    assert created.name == "room r1"
    assert created.owner_id == "alice"
    assert created.visibility is PUBLIC
    assert created.created_at == EPOCH
    assert created.member_count == 3


async def test_create_counts_repeated_members_once(room_repository: RoomRepository) -> None:
    created = await room_repository.create(room("r1"), ["alice", "bob", "alice"])

    assert created.member_count == 2
    assert sorted(await room_repository.members("r1")) == ["alice", "bob"]


async def test_get_returns_the_stored_room_or_none(room_repository: RoomRepository) -> None:
    created = await room_repository.create(room("r1", visibility=PRIVATE), ["alice"])

    assert await room_repository.get("r1") == created
    assert await room_repository.get("missing") is None


async def test_list_visible_shows_public_rooms_and_own_private_ones(
    room_repository: RoomRepository,
) -> None:
    await room_repository.create(room("pub", owner="alice"), ["alice"])
    await room_repository.create(room("alices", "alice", PRIVATE, minute=1), ["alice"])
    await room_repository.create(room("shared", "bob", PRIVATE, minute=2), ["bob", "carol"])

    assert [r.id for r in await room_repository.list_visible("alice")] == ["pub", "alices"]
    assert [r.id for r in await room_repository.list_visible("carol")] == ["pub", "shared"]
    assert [r.id for r in await room_repository.list_visible("dave")] == ["pub"]


async def test_list_visible_is_oldest_first_whatever_the_insertion_order(
    room_repository: RoomRepository,
) -> None:
    await room_repository.create(room("c", minute=3), ["alice"])
    await room_repository.create(room("a", minute=1), ["alice"])
    await room_repository.create(room("b", "alice", PRIVATE, minute=2), ["alice"])

    assert [r.id for r in await room_repository.list_visible("alice")] == ["a", "b", "c"]


async def test_list_visible_carries_member_counts(room_repository: RoomRepository) -> None:
    await room_repository.create(room("r1"), ["alice", "bob"])
    await room_repository.add_member("r1", "carol")

    (listed,) = await room_repository.list_visible("dave")

    assert listed.member_count == 3


async def test_add_member_is_idempotent(room_repository: RoomRepository) -> None:
    await room_repository.create(room("r1"), ["alice"])

    first = await room_repository.add_member("r1", "bob")
    again = await room_repository.add_member("r1", "bob")

    assert (first, again) == (True, False)
    assert await room_repository.is_member("r1", "bob") is True
    stored = await room_repository.get("r1")
    assert stored is not None
    assert stored.member_count == 2
    assert sorted(await room_repository.members("r1")) == ["alice", "bob"]
    assert await room_repository.rooms_of("bob") == ["r1"]


async def test_add_member_of_an_initial_member_returns_false(
    room_repository: RoomRepository,
) -> None:
    await room_repository.create(room("r1"), ["alice", "bob"])

    assert await room_repository.add_member("r1", "bob") is False


async def test_add_member_to_a_missing_room_is_refused(room_repository: RoomRepository) -> None:
    assert await room_repository.add_member("missing", "bob") is False
    assert await room_repository.is_member("missing", "bob") is False
    assert await room_repository.rooms_of("bob") == []


async def test_remove_member_is_idempotent(room_repository: RoomRepository) -> None:
    await room_repository.create(room("r1"), ["alice", "bob"])

    first = await room_repository.remove_member("r1", "bob")
    again = await room_repository.remove_member("r1", "bob")

    assert (first, again) == (True, False)
    assert await room_repository.is_member("r1", "bob") is False
    stored = await room_repository.get("r1")
    assert stored is not None
    assert stored.member_count == 1
    assert await room_repository.members("r1") == ["alice"]
    assert await room_repository.rooms_of("bob") == []


async def test_remove_member_of_a_non_member_or_missing_room(
    room_repository: RoomRepository,
) -> None:
    await room_repository.create(room("r1"), ["alice"])

    assert await room_repository.remove_member("r1", "zed") is False
    assert await room_repository.remove_member("missing", "alice") is False
    assert await room_repository.members("r1") == ["alice"]


async def test_a_removed_member_no_longer_sees_the_private_room(
    room_repository: RoomRepository,
) -> None:
    await room_repository.create(room("secret", "alice", PRIVATE), ["alice", "bob"])

    await room_repository.remove_member("secret", "bob")

    assert await room_repository.list_visible("bob") == []
    assert [r.id for r in await room_repository.list_visible("alice")] == ["secret"]


async def test_a_member_added_later_sees_the_private_room(room_repository: RoomRepository) -> None:
    await room_repository.create(room("secret", "alice", PRIVATE), ["alice"])

    await room_repository.add_member("secret", "bob")

    assert [r.id for r in await room_repository.list_visible("bob")] == ["secret"]


async def test_rooms_of_and_members(room_repository: RoomRepository) -> None:
    await room_repository.create(room("r1"), ["alice", "bob"])
    await room_repository.create(room("r2", minute=1), ["bob"])
    await room_repository.create(room("r3", "carol", PRIVATE, minute=2), ["carol", "bob"])

    assert sorted(await room_repository.rooms_of("bob")) == ["r1", "r2", "r3"]
    assert await room_repository.rooms_of("alice") == ["r1"]
    assert await room_repository.rooms_of("nobody") == []
    assert sorted(await room_repository.members("r3")) == ["bob", "carol"]
    assert await room_repository.members("missing") == []
    assert await room_repository.is_member("r2", "alice") is False


async def test_member_count_follows_every_change(room_repository: RoomRepository) -> None:
    await room_repository.create(room("r1"), ["alice"])
    counts = []
    for change in (
        room_repository.add_member("r1", "bob"),
        room_repository.add_member("r1", "carol"),
        room_repository.add_member("r1", "bob"),
        room_repository.remove_member("r1", "alice"),
        room_repository.remove_member("r1", "alice"),
    ):
        await change
        stored = await room_repository.get("r1")
        assert stored is not None
        counts.append(stored.member_count)

    assert counts == [2, 3, 3, 2, 2]

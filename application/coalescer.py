"""Coalesces membership and presence changes per room over a short window.

A storm of N joins in a room costs one `room:members` / `presence:diff` broadcast per
window, not N x N deliveries. A user whose change is undone within the window (join then
leave, or leave then join) appears in neither list.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import attrs

from application.json_types import JsonObject
from application.logging import get_logger
from domain.model import RoomId, UserId

Flush = Callable[[RoomId, str, JsonObject], Awaitable[None]]

log = get_logger("switchboard.coalescer")


@attrs.define
class _Pending:
    members: dict[UserId, bool] = attrs.Factory(dict)
    presence: dict[UserId, bool] = attrs.Factory(dict)


def _record(changes: dict[UserId, bool], user_id: UserId, on: bool) -> None:
    previous = changes.get(user_id)
    if previous is None:
        changes[user_id] = on
    elif previous != on:
        del changes[user_id]  # undone within the window


class RoomDiffCoalescer:
    """Collects per-room diffs and flushes each room once per window."""

    def __init__(self, window_s: float, flush: Flush) -> None:
        self._window_s = window_s
        self._flush = flush
        self._pending: dict[RoomId, _Pending] = {}
        self._timers: dict[RoomId, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def membership(self, room_id: RoomId, user_id: UserId, joined: bool) -> None:
        """Record that a user joined or left a room's membership."""
        _record(self._room(room_id).members, user_id, joined)

    def presence(self, room_id: RoomId, user_id: UserId, online: bool) -> None:
        """Record that a member came online or went offline."""
        _record(self._room(room_id).presence, user_id, online)

    def _room(self, room_id: RoomId) -> _Pending:
        pending = self._pending.get(room_id)
        if pending is None:
            pending = self._pending[room_id] = _Pending()
            loop = asyncio.get_running_loop()
            self._timers[room_id] = loop.call_later(self._window_s, self._due, room_id)
        return pending

    def _due(self, room_id: RoomId) -> None:
        task = asyncio.get_running_loop().create_task(self._emit(room_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _emit(self, room_id: RoomId) -> None:
        self._timers.pop(room_id, None)
        pending = self._pending.pop(room_id, None)
        if pending is None:
            return
        if pending.members:
            await self._send(
                room_id, "room:members", _diff(room_id, pending.members, "joined", "left")
            )
        if pending.presence:
            await self._send(
                room_id, "presence:diff", _diff(room_id, pending.presence, "joins", "leaves")
            )

    async def _send(self, room_id: RoomId, event: str, payload: JsonObject) -> None:
        try:
            await self._flush(room_id, event, payload)
        except Exception:
            log.exception("coalesced_flush_failed", room_id=room_id, diff_event=event)

    async def flush_all(self) -> None:
        """Emit everything pending now (used at shutdown and by tests)."""
        for timer in self._timers.values():
            timer.cancel()
        await asyncio.gather(*(self._emit(room_id) for room_id in list(self._pending)))
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _diff(room_id: RoomId, changes: dict[UserId, bool], on_key: str, off_key: str) -> JsonObject:
    return {
        "room_id": room_id,
        on_key: [user for user, on in changes.items() if on],
        off_key: [user for user, on in changes.items() if not on],
    }

"""Counts chat messages handed to sockets (`switchboard_messages_total{direction="delivered"}`).

Each instance counts what its own sockets receive, so the sum over instances is the
cluster's deliveries. The count is taken where python-socketio's manager delivers locally.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import socketio

COUNTED_EVENT = "message:new"

Count = Callable[[int], None]


def local_recipients(
    manager: socketio.AsyncManager, namespace: str | None, room: object, skip: object
) -> int:
    """How many local sockets an emit to `room` reaches (minus the skipped sids)."""
    if not isinstance(room, str):
        return 0
    members = manager.rooms.get(namespace or "/", {}).get(room)
    if not members:
        return 0
    skipped: Collection[object] = (
        skip if isinstance(skip, list | tuple | set) else ([skip] if skip else [])
    )
    return len(members) - sum(1 for sid in skipped if sid in members)


class CountingManager(socketio.AsyncManager):  # type: ignore[misc]  # untyped library
    """The single-instance manager, counting delivered chat messages."""

    def __init__(self, count: Count) -> None:
        super().__init__()
        self._count = count

    async def emit(
        self,
        event: str,
        data: object,
        namespace: str | None,
        room: object = None,
        skip_sid: object = None,
        callback: object = None,
        to: object = None,
        **kwargs: object,
    ) -> None:
        """Deliver like python-socketio, then count `message:new` recipients."""
        target = to if to is not None else room
        await super().emit(
            event, data, namespace, room=target, skip_sid=skip_sid, callback=callback, **kwargs
        )
        if event == COUNTED_EVENT:
            self._count(local_recipients(self, namespace, target, skip_sid))

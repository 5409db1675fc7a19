"""Keeps the memory stores in a snapshot file: loads it at start, saves it every interval and
once more at a graceful stop. The file format is in `adapters/memory/snapshot.py`."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from adapters.memory.messages import MemoryMessageStore
from adapters.memory.notifications import MemoryNotificationStore
from adapters.memory.rooms import MemoryRoomRepository
from adapters.memory.snapshot import (
    SnapshotCounts,
    SnapshotError,
    capture,
    read_snapshot,
    restore,
    write_snapshot,
)
from application.logging import get_logger

log = get_logger("switchboard.snapshot")


class SnapshotKeeper:
    """Loads the memory stores from `path` at start; saves them every `interval_s` and at stop.

    A save copies the stores on the event loop (fast: references only) and writes the file in
    a worker thread. Saves never overlap. A failed periodic save is logged and retried at the
    next interval; the previous file stays intact.
    """

    def __init__(
        self,
        path: Path,
        interval_s: float,
        rooms: MemoryRoomRepository,
        messages: MemoryMessageStore,
        notifications: MemoryNotificationStore,
        now: Callable[[], datetime],
    ) -> None:
        self._path = path
        self._interval_s = interval_s
        self._rooms = rooms
        self._messages = messages
        self._notifications = notifications
        self._now = now
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def path(self) -> Path:
        """The snapshot file."""
        return self._path

    async def load(self) -> SnapshotCounts | None:
        """Restore the stores from the file if it exists (None if it does not).

        Raises `SnapshotError` for a file that cannot be used (never starts empty instead),
        and for a directory where no snapshot could be written later.
        """
        self._check_writable()
        if not self._path.exists():
            log.info("snapshot_absent", path=str(self._path))
            return None
        started = time.perf_counter()
        snapshot = await asyncio.to_thread(read_snapshot, self._path)
        restore(snapshot, self._rooms, self._messages, self._notifications)
        counts = snapshot.counts()
        log.info(
            "snapshot_loaded",
            path=str(self._path),
            written_at=snapshot.written_at.isoformat(),
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
            **_fields(counts),
        )
        return counts

    def _check_writable(self) -> None:
        """Fail at start, not at the first save, if the file cannot be written."""
        if self._path.is_dir():
            raise SnapshotError(f"{self._path} is a directory; give a file path")
        try:
            with tempfile.TemporaryFile(dir=self._path.parent):
                pass
        except OSError as exc:
            raise SnapshotError(
                f"cannot write snapshots in {self._path.parent}: {exc.strerror or exc}"
            ) from exc

    async def save(self) -> SnapshotCounts:
        """Write the stores' current state to the file (atomically); raises `SnapshotSaveError`."""
        async with self._lock:
            started = time.perf_counter()
            snapshot = capture(self._rooms, self._messages, self._notifications, self._now())
            copied = time.perf_counter()
            size = await asyncio.to_thread(write_snapshot, self._path, snapshot)
            counts = snapshot.counts()
            log.info(
                "snapshot_saved",
                path=str(self._path),
                bytes=size,
                copy_ms=round((copied - started) * 1000, 2),
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
                **_fields(counts),
            )
            return counts

    def start(self) -> None:
        """Start saving every interval on the running event loop."""
        self._stopping.clear()
        self._task = asyncio.get_running_loop().create_task(
            self._periodically(), name="snapshot-saver"
        )

    async def stop(self) -> SnapshotCounts:
        """Stop the periodic saves (letting a save in progress finish), then save once more."""
        self._stopping.set()
        if self._task is not None:
            task, self._task = self._task, None
            await asyncio.wait([task])
        return await self.save()

    async def _periodically(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._interval_s)
            if self._stopping.is_set():
                return
            try:
                await self.save()
            except Exception as exc:  # the next interval tries again; the old file is intact
                log.warning("snapshot_save_failed", path=str(self._path), error=str(exc))


def _fields(counts: SnapshotCounts) -> dict[str, int]:
    return {
        "rooms": counts.rooms,
        "memberships": counts.memberships,
        "messages": counts.messages,
        "idempotency_keys": counts.idempotency_keys,
        "notifications": counts.notifications,
        "unread": counts.unread,
    }

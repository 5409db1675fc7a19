"""Keeps presence right across instances: heartbeats renew this instance's connections, the
sweeper removes those of dead instances and announces their users' leaves.

The sweeper sleeps until the earliest expiry in the store (at most one heartbeat period),
so a dead instance's users leave within the TTL plus a fraction of a second, without a
periodic full scan. A store fault is logged and retried on the next beat; it never stops
the loops.
"""

from __future__ import annotations

import asyncio
import time

from application.logging import get_logger
from domain.ports import MetricsCollector
from domain.services import ConnectionManager, PresenceService

log = get_logger("switchboard.presence")

SWEEP_SLACK_S = 0.05
SWEEP_HOLD_MARGIN = 0.5  # of a heartbeat period


class PresenceKeeper:
    """Two background loops: heartbeat (renew + re-assert) and sweep (expire + announce)."""

    def __init__(
        self,
        connections: ConnectionManager,
        presence: PresenceService,
        metrics: MetricsCollector,
        heartbeat_s: float,
    ) -> None:
        self._connections = connections
        self._presence = presence
        self._metrics = metrics
        self._heartbeat_s = heartbeat_s
        self._tasks: list[asyncio.Task[None]] = []
        self._store_down = False
        self._sweep_after = 0.0  # monotonic time before which the sweeper holds off

    def start(self) -> None:
        """Start both loops on the running event loop."""
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._heartbeat_loop(), name="presence-heartbeat"),
            loop.create_task(self._sweep_loop(), name="presence-sweeper"),
        ]

    async def stop(self) -> None:
        """Cancel both loops and wait for them (a store client that swallows one
        cancellation is cancelled again)."""
        pending = set(self._tasks)
        self._tasks = []
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=1.0)

    async def beat(self) -> None:
        """One heartbeat: renew, announce re-registrations, refresh the online gauge."""
        for change in await self._connections.heartbeat():
            await self._presence.announce_reasserted(change)
        if self._store_down:
            # the store is back; every instance's live connections look expired until that
            # instance beats again: hold the sweeper off for one more period (+ margin)
            self._store_down = False
            self._sweep_after = time.monotonic() + self._heartbeat_s * (1 + SWEEP_HOLD_MARGIN)
            log.info("store_back_sweeper_held", for_s=self._heartbeat_s * (1 + SWEEP_HOLD_MARGIN))
        self._metrics.set_online_users(await self._connections.online_count())

    def sweeping_allowed(self) -> bool:
        """False while the store is down and for one heartbeat after it came back."""
        return not self._store_down and time.monotonic() >= self._sweep_after

    async def sweep(self) -> int:
        """One sweep: remove expired connections and announce the leaves; returns how many."""
        changes = await self._connections.sweep_expired()
        for change in changes:
            await self._presence.announce_expired(change)
        if changes:
            log.info("swept_expired_connections", count=len(changes))
        return len(changes)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_s)
            try:
                await self.beat()
            except Exception as exc:
                _reraise_if_cancelled()
                self._store_down = True
                log.warning("heartbeat_failed", error=type(exc).__name__)

    async def _sweep_loop(self) -> None:
        while True:
            try:
                delay = await self._connections.next_expiry_in()
            except Exception as exc:
                _reraise_if_cancelled()
                self._store_down = True
                log.warning("sweep_failed", error=type(exc).__name__)
                delay = None
            wait = (
                self._heartbeat_s
                if delay is None
                else min(delay + SWEEP_SLACK_S, self._heartbeat_s)
            )
            await asyncio.sleep(wait)
            if not self.sweeping_allowed():
                continue
            try:
                await self.sweep()
            except Exception as exc:
                _reraise_if_cancelled()
                self._store_down = True
                log.warning("sweep_failed", error=type(exc).__name__)


def _reraise_if_cancelled() -> None:
    """A library may turn our cancellation into an ordinary error: honour it anyway."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError

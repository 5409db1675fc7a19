"""python-socketio's Redis manager, resubscribing promptly after a Redis fault.

`AsyncRedisManager` backs off up to 60 s before it resubscribes after a fault, and every
cross-instance emit published meanwhile is lost for this instance. This subclass retries
every `max_backoff_s` (1 s by default) at most. Delivery stays at-most-once (Redis pub/sub):
clients recover anything missed from the store with `since_seq` / history.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import socketio

from adapters.socketio.delivery import COUNTED_EVENT, Count, fast_local_emit, local_recipients
from application.logging import get_logger

log = get_logger("switchboard.fanout")


class PromptRedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]  # untyped library
    """An `AsyncRedisManager` whose listener reconnects within about a second."""

    def __init__(
        self,
        url: str,
        *,
        channel: str,
        max_backoff_s: float = 1.0,
        count_delivered: Count | None = None,
        fast: bool = True,
    ) -> None:
        super().__init__(url, channel=channel)
        self.fast = fast
        self.max_backoff_s = max_backoff_s
        self.resubscriptions = 0
        self._count = count_delivered

    async def _handle_emit(self, message: dict[str, object]) -> None:
        """Deliver to local sockets (this instance's emits and other instances'): the fast
        path when no ack is asked, python-socketio's otherwise."""
        event = message.get("event")
        namespace = str(message.get("namespace") or "/")
        room, skip = message.get("room"), message.get("skip_sid")
        delivered = -1
        if (
            self.fast
            and isinstance(event, str)
            and message.get("callback") is None
            and not message.get("binary")
            and room is not None
        ):
            data = message.get("data")
            if isinstance(data, list):
                data = data[0] if len(data) == 1 else tuple(data)
            delivered = fast_local_emit(self, event, data, namespace, room, skip)
        if delivered < 0:
            await super()._handle_emit(message)
            delivered = local_recipients(self, namespace, room, skip)
        if self._count is not None and event == COUNTED_EVENT:
            self._count(delivered)

    async def _redis_listen_with_retries(self) -> AsyncIterator[object]:
        delay = 0.1
        subscribed = False
        while True:
            try:
                if not subscribed:
                    self._redis_connect()
                    await self.pubsub.subscribe(self.channel)
                    subscribed = True
                    if delay > 0.1:
                        self.resubscriptions += 1
                        log.info("fanout_resubscribed", channel=self.channel)
                    delay = 0.1
                async for message in self.pubsub.listen():
                    yield message
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("fanout_listen_failed", error=type(exc).__name__, retry_in_s=delay)
                subscribed = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)

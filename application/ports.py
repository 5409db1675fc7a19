"""Ports of the application ring: the transport the wire events go out through."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from application.json_types import JsonObject
from domain.model import Sid, UserId


@runtime_checkable
class Broadcaster(Protocol):
    """Sends wire events to transport channels (rooms), users and connections.

    Channels are named by `application.contract.wire` (`room:<id>`, `user:<id>`). A
    broadcaster never emits to a whole namespace.
    """

    async def to_channel(
        self,
        namespace: str,
        channel: str,
        event: str,
        payload: JsonObject,
        skip_sids: Sequence[Sid] = (),
    ) -> None:
        """Emit to every connection in a channel (on every instance), except `skip_sids`."""
        ...

    async def to_connection(
        self, namespace: str, sid: Sid, event: str, payload: JsonObject
    ) -> None:
        """Emit to one connection."""
        ...

    async def add_user_to_channel(self, namespace: str, user_id: UserId, channel: str) -> None:
        """Put every connection of the user on the namespace into the channel."""
        ...

    async def remove_user_from_channel(self, namespace: str, user_id: UserId, channel: str) -> None:
        """Take every connection of the user on the namespace out of the channel."""
        ...


@runtime_checkable
class ReadinessProbe(Protocol):
    """Tells whether one backing store answers, for `/readyz`."""

    name: str

    async def check(self) -> str:
        """`ok`, `degraded` (serving on a fallback) or a short reason it is not ready."""
        ...

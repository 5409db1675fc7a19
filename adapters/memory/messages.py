"""Messages in process memory: a list per room indexed by seq - 1."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime

import attrs

from domain.model import (
    AppendResult,
    ChatMessage,
    HistoryPage,
    MessageId,
    NewMessage,
    RoomId,
    UserId,
)

IdempotencyKey = tuple[RoomId, UserId, str]
"""`(room_id, author_id, client_msg_id)`: what makes a send idempotent."""


@attrs.frozen
class MessagesState:
    """A copy of a `MemoryMessageStore`: each room's log (seq 1 first) and the idempotency
    keys with the seq each one stands for."""

    logs: Mapping[RoomId, tuple[ChatMessage, ...]]
    idempotency: Mapping[IdempotencyKey, int]


class MemoryMessageStore:
    """Per-room message logs with an idempotency index on (room, author, client_msg_id)."""

    def __init__(self) -> None:
        self._logs: dict[RoomId, list[ChatMessage]] = defaultdict(list)
        self._by_id: dict[tuple[RoomId, MessageId], int] = {}
        self._by_client_id: dict[IdempotencyKey, int] = {}

    async def append(self, new: NewMessage) -> AppendResult:
        """Append with the next seq, or return the message stored under the same key."""
        key = (new.room_id, new.author_id, new.client_msg_id)
        log = self._logs[new.room_id]
        existing = self._by_client_id.get(key)
        if existing is not None:
            return AppendResult(message=log[existing - 1], created=False)
        message = ChatMessage(
            id=new.id,
            room_id=new.room_id,
            seq=len(log) + 1,
            author_id=new.author_id,
            text=new.text,
            client_msg_id=new.client_msg_id,
            created_at=new.created_at,
        )
        log.append(message)
        self._by_id[(new.room_id, new.id)] = message.seq
        self._by_client_id[key] = message.seq
        return AppendResult(message=message, created=True)

    async def get(self, room_id: RoomId, message_id: MessageId) -> ChatMessage | None:
        """One message, or None."""
        seq = self._by_id.get((room_id, message_id))
        return None if seq is None else self._logs[room_id][seq - 1]

    async def edit(
        self, room_id: RoomId, message_id: MessageId, text: str, at: datetime
    ) -> ChatMessage | None:
        """Replace the text; None if missing or deleted."""
        current = await self.get(room_id, message_id)
        if current is None or current.deleted:
            return None
        return self._replace(attrs.evolve(current, text=text, edited_at=at))

    async def tombstone(
        self, room_id: RoomId, message_id: MessageId, at: datetime
    ) -> ChatMessage | None:
        """Empty the text and mark deleted; None if missing."""
        current = await self.get(room_id, message_id)
        if current is None:
            return None
        if current.deleted:
            return current
        return self._replace(attrs.evolve(current, text="", deleted=True, edited_at=at))

    def _replace(self, message: ChatMessage) -> ChatMessage:
        self._logs[message.room_id][message.seq - 1] = message
        return message

    async def history(
        self,
        room_id: RoomId,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int,
    ) -> HistoryPage:
        """Ascending page after `after_seq`, else the last `limit` before `before_seq`."""
        log = self._logs.get(room_id, [])
        if after_seq is not None:
            start = max(after_seq, 0)
            end = len(log) if before_seq is None else min(len(log), max(before_seq - 1, 0))
            chunk = log[start:end]
            return HistoryPage(messages=tuple(chunk[:limit]), has_more=len(chunk) > limit)
        end = len(log) if before_seq is None else min(len(log), max(before_seq - 1, 0))
        start = max(end - limit, 0)
        return HistoryPage(messages=tuple(log[start:end]), has_more=start > 0)

    async def last_seq(self, room_id: RoomId) -> int:
        """The highest seq, 0 for an empty room."""
        return len(self._logs.get(room_id, ()))

    def export_state(self) -> MessagesState:
        """A copy of every non-empty log and idempotency key (taken without awaiting)."""
        return MessagesState(
            logs={room_id: tuple(log) for room_id, log in self._logs.items() if log},
            idempotency=dict(self._by_client_id),
        )

    def import_state(self, state: MessagesState) -> None:
        """Replace every log and idempotency key with `state` (logs gap-free from seq 1)."""
        self._logs = defaultdict(list, {room_id: list(log) for room_id, log in state.logs.items()})
        self._by_id = {
            (message.room_id, message.id): message.seq
            for log in state.logs.values()
            for message in log
        }
        self._by_client_id = dict(state.idempotency)

"""The bounded queue of commands issued while the client is not connected."""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections import deque

import attrs

from adapters.client.errors import QUEUE_FULL, QUEUE_TIMEOUT, NetworkError, SwitchboardError
from adapters.client.json_types import JsonObject


class CommandStatus(enum.Enum):
    """Where a queued command is."""

    QUEUED = "queued"
    SENDING = "sending"
    DONE = "done"


@attrs.define(eq=False)
class PendingCommand:
    """One command waiting to be sent: its raw ack lands in `result`."""

    namespace: str
    event: str
    payload: JsonObject
    retry_safe: bool = True
    result: asyncio.Future[object] = attrs.Factory(
        lambda: asyncio.get_running_loop().create_future()
    )
    status: CommandStatus = CommandStatus.QUEUED


@attrs.define
class CommandQueue:
    """FIFO, at most `max_size` commands, each waits at most `max_wait_s` to be sent."""

    max_size: int = 100
    max_wait_s: float = 30.0
    _items: deque[PendingCommand] = attrs.Factory(deque)

    def __len__(self) -> int:
        return len(self._items)

    def put(self, command: PendingCommand) -> None:
        """Queue at the end; raises `NetworkError(queue_full)` when full."""
        if len(self._items) >= self.max_size:
            raise NetworkError(
                QUEUE_FULL, f"{self.max_size} commands are already waiting for the connection"
            )
        command.status = CommandStatus.QUEUED
        self._items.append(command)

    def put_back(self, command: PendingCommand) -> None:
        """Return a command whose send was cut off to the head (it keeps its place)."""
        command.status = CommandStatus.QUEUED
        if command not in self._items:
            self._items.appendleft(command)

    def next(self) -> PendingCommand | None:
        """The oldest queued command, now marked as sending (stays in the queue until done)."""
        for command in self._items:
            if command.status is CommandStatus.QUEUED:
                command.status = CommandStatus.SENDING
                return command
        return None

    def complete(self, command: PendingCommand, result: object) -> None:
        """The command was answered: hand the raw ack to its waiter."""
        self._forget(command)
        if not command.result.done():
            command.result.set_result(result)

    def fail(self, command: PendingCommand, error: BaseException) -> None:
        """The command cannot be sent: raise `error` in its waiter."""
        self._forget(command)
        if not command.result.done():
            command.result.set_exception(error)

    def fail_all(self, error: SwitchboardError) -> None:
        """Fail every queued command (the client closed or gave up reconnecting)."""
        for command in list(self._items):
            self.fail(command, error)

    async def wait(self, command: PendingCommand) -> object:
        """Wait for the command's raw ack.

        If it was not sent within `max_wait_s` it leaves the queue and this raises
        `NetworkError(queue_timeout)`; once it is being sent, the send's own timeout applies.
        """
        try:
            return await asyncio.wait_for(asyncio.shield(command.result), self.max_wait_s)
        except TimeoutError:
            if command.status is CommandStatus.SENDING:
                return await command.result
            self.fail(
                command,
                NetworkError(
                    QUEUE_TIMEOUT,
                    f"not connected within {self.max_wait_s:g} s; {command.event} was not sent",
                ),
            )
            return await command.result

    def _forget(self, command: PendingCommand) -> None:
        command.status = CommandStatus.DONE
        with contextlib.suppress(ValueError):
            self._items.remove(command)

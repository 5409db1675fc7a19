"""The observable connection state machine of the SDK."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable

import attrs

from adapters.client.errors import SwitchboardError

log = logging.getLogger("switchboard.client")


class ConnectionState(enum.StrEnum):
    """Where the client's connection is."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    ERROR = "error"
    CLOSED = "closed"


ALLOWED: dict[ConnectionState, frozenset[ConnectionState]] = {
    ConnectionState.CLOSED: frozenset({ConnectionState.CONNECTING}),
    ConnectionState.CONNECTING: frozenset(
        {ConnectionState.CONNECTED, ConnectionState.ERROR, ConnectionState.CLOSED}
    ),
    ConnectionState.CONNECTED: frozenset({ConnectionState.RECONNECTING, ConnectionState.CLOSED}),
    ConnectionState.RECONNECTING: frozenset(
        {ConnectionState.CONNECTED, ConnectionState.ERROR, ConnectionState.CLOSED}
    ),
    ConnectionState.ERROR: frozenset({ConnectionState.CONNECTING, ConnectionState.CLOSED}),
}
"""Every transition the client makes; anything else is a bug."""


class InvalidTransition(RuntimeError):
    """A state change the machine does not allow (a bug in the caller)."""


@attrs.frozen
class StateChange:
    """One transition, with the error that caused it (for `error` and `reconnecting`)."""

    previous: ConnectionState
    current: ConnectionState
    error: SwitchboardError | None = None


StateListener = Callable[[StateChange], None]


@attrs.define
class StateMachine:
    """Holds the current state, checks transitions, tells listeners, keeps the history."""

    state: ConnectionState = ConnectionState.CLOSED
    history: list[ConnectionState] = attrs.Factory(lambda: [ConnectionState.CLOSED])
    _listeners: list[StateListener] = attrs.Factory(list)

    def can(self, target: ConnectionState) -> bool:
        """Is `target` reachable from the current state in one step?"""
        return target in ALLOWED[self.state]

    def to(self, target: ConnectionState, error: SwitchboardError | None = None) -> StateChange:
        """Move to `target` and tell every listener; raises `InvalidTransition` if not allowed."""
        if not self.can(target):
            raise InvalidTransition(f"{self.state} -> {target} is not allowed")
        change = StateChange(self.state, target, error)
        self.state = target
        self.history.append(target)
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:
                log.exception("state listener failed")
        return change

    def listen(self, listener: StateListener) -> Callable[[], None]:
        """Call `listener` on every change; returns a function that stops it."""
        self._listeners.append(listener)

        def stop() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return stop

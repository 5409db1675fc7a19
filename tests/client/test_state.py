"""The connection state machine: allowed transitions, listeners, history."""

from __future__ import annotations

import pytest

from adapters.client.errors import NetworkError
from adapters.client.state import (
    ALLOWED,
    ConnectionState,
    InvalidTransition,
    StateChange,
    StateMachine,
)

S = ConnectionState


def test_starts_closed() -> None:
    machine = StateMachine()

    assert machine.state is S.CLOSED
    assert machine.history == [S.CLOSED]


def test_a_full_life_with_a_reconnect() -> None:
    machine = StateMachine()
    changes: list[StateChange] = []
    machine.listen(changes.append)
    lost = NetworkError("disconnected", "gone")

    for target, error in [
        (S.CONNECTING, None),
        (S.CONNECTED, None),
        (S.RECONNECTING, lost),
        (S.CONNECTED, None),
        (S.CLOSED, None),
    ]:
        machine.to(target, error)

    assert machine.history == [
        S.CLOSED,
        S.CONNECTING,
        S.CONNECTED,
        S.RECONNECTING,
        S.CONNECTED,
        S.CLOSED,
    ]
    assert changes[2] == StateChange(S.CONNECTED, S.RECONNECTING, lost)
    assert [c.error for c in changes].count(None) == 4


def test_giving_up_then_trying_again() -> None:
    machine = StateMachine()
    for target in (S.CONNECTING, S.CONNECTED, S.RECONNECTING, S.ERROR, S.CONNECTING, S.ERROR):
        machine.to(target)

    assert machine.state is S.ERROR


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (S.CLOSED, S.CONNECTED),
        (S.CLOSED, S.RECONNECTING),
        (S.CONNECTING, S.RECONNECTING),
        (S.CONNECTED, S.CONNECTING),
        (S.CONNECTED, S.ERROR),
        (S.ERROR, S.CONNECTED),
        (S.ERROR, S.RECONNECTING),
        (S.RECONNECTING, S.CONNECTING),
        (S.CONNECTED, S.CONNECTED),
    ],
)
def test_transitions_outside_the_table_are_refused(start: S, target: S) -> None:
    machine = StateMachine(state=start, history=[start])

    with pytest.raises(InvalidTransition):
        machine.to(target)
    assert machine.state is start


def test_every_state_can_be_closed_except_closed_itself() -> None:
    assert all(S.CLOSED in ALLOWED[s] for s in S if s is not S.CLOSED)
    assert S.CLOSED not in ALLOWED[S.CLOSED]


def test_a_failing_listener_does_not_stop_the_others_and_stop_unsubscribes() -> None:
    machine = StateMachine()
    seen: list[S] = []

    def broken(_: StateChange) -> None:
        raise RuntimeError("boom")

    machine.listen(broken)
    stop = machine.listen(lambda change: seen.append(change.current))
    machine.to(S.CONNECTING)
    stop()
    stop()  # twice is harmless
    machine.to(S.CONNECTED)

    assert seen == [S.CONNECTING]
    assert machine.state is S.CONNECTED

"""The bounded queue of commands waiting for the connection."""

from __future__ import annotations

import asyncio

import pytest

from adapters.client.errors import NetworkError
from adapters.client.queue import CommandQueue, CommandStatus, PendingCommand


def command(n: int) -> PendingCommand:
    return PendingCommand("/chat", "message:send", {"n": n})


async def test_commands_leave_in_fifo_order() -> None:
    queue = CommandQueue(max_size=5, max_wait_s=1)
    commands = [command(n) for n in range(3)]
    for c in commands:
        queue.put(c)

    taken = [queue.next(), queue.next(), queue.next(), queue.next()]

    assert taken == [*commands, None]
    assert all(c.status is CommandStatus.SENDING for c in commands)
    assert len(queue) == 3  # sending ones stay until completed


async def test_a_full_queue_refuses_at_once() -> None:
    queue = CommandQueue(max_size=2, max_wait_s=1)
    queue.put(command(1))
    queue.put(command(2))

    with pytest.raises(NetworkError) as caught:
        queue.put(command(3))

    assert caught.value.code == "queue_full"
    assert len(queue) == 2


async def test_a_waiter_gets_the_raw_ack_when_completed() -> None:
    queue = CommandQueue(max_size=2, max_wait_s=1)
    c = command(1)
    queue.put(c)
    waiter = asyncio.create_task(queue.wait(c))

    sending = queue.next()
    assert sending is c
    queue.complete(c, {"ok": True, "data": {}})

    assert await waiter == {"ok": True, "data": {}}
    assert len(queue) == 0
    assert c.status is CommandStatus.DONE


async def test_a_command_not_sent_in_time_times_out_and_leaves_the_queue() -> None:
    queue = CommandQueue(max_size=2, max_wait_s=0.05)
    c = command(1)
    queue.put(c)

    with pytest.raises(NetworkError) as caught:
        await queue.wait(c)

    assert caught.value.code == "queue_timeout"
    assert len(queue) == 0
    assert queue.next() is None


async def test_a_command_being_sent_is_not_timed_out_by_the_queue() -> None:
    queue = CommandQueue(max_size=2, max_wait_s=0.02)
    c = command(1)
    queue.put(c)
    queue.next()
    waiter = asyncio.create_task(queue.wait(c))
    await asyncio.sleep(0.06)
    assert not waiter.done()

    queue.complete(c, "ack")

    assert await waiter == "ack"


async def test_put_back_keeps_the_place_at_the_head() -> None:
    queue = CommandQueue(max_size=5, max_wait_s=1)
    first, second = command(1), command(2)
    queue.put(first)
    queue.put(second)
    assert queue.next() is first

    queue.put_back(first)  # its send was cut off by a disconnect

    assert first.status is CommandStatus.QUEUED
    assert queue.next() is first
    assert queue.next() is second


async def test_put_back_of_a_forgotten_command_puts_it_at_the_head() -> None:
    queue = CommandQueue(max_size=5, max_wait_s=1)
    first, second = command(1), command(2)
    queue.put(second)
    queue.put_back(first)

    assert queue.next() is first


async def test_fail_all_raises_in_every_waiter() -> None:
    queue = CommandQueue(max_size=5, max_wait_s=1)
    commands = [command(n) for n in range(3)]
    for c in commands:
        queue.put(c)
    waiters = [asyncio.create_task(queue.wait(c)) for c in commands]
    await asyncio.sleep(0)

    queue.fail_all(NetworkError("closed", "bye"))

    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert [getattr(r, "code", None) for r in results] == ["closed"] * 3
    assert len(queue) == 0

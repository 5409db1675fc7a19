"""The in-memory GCRA limiter: bursts, the refill rate, retry_after_ms, forgetting keys."""

from __future__ import annotations

from adapters.ratelimit import gcra
from adapters.ratelimit.gcra import GcraRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_burst_then_the_refill_rate() -> None:
    clock = Clock()
    limiter = GcraRateLimiter({"send": "40 per 2 seconds"}, clock)
    assert [await limiter.hit("send", "alice") for _ in range(40)] == [None] * 40
    refused = await limiter.hit("send", "alice")
    assert refused == 50  # one more fits every 2 s / 40 = 50 ms
    assert await limiter.hit("send", "bob") is None  # keys are independent
    clock.now += 0.05
    assert await limiter.hit("send", "alice") is None
    assert await limiter.hit("send", "alice") is not None
    clock.now += 1.0  # 20 more drip in
    assert [await limiter.hit("send", "alice") for _ in range(20)] == [None] * 20
    assert await limiter.hit("send", "alice") is not None


async def test_a_steady_client_under_the_rate_is_never_limited() -> None:
    clock = Clock()
    limiter = GcraRateLimiter({"send": "40 per 2 seconds"}, clock)
    for _ in range(300):  # 10 per second for 30 s
        assert await limiter.hit("send", "alice") is None
        clock.now += 0.1


async def test_unknown_limit_names_are_not_limited() -> None:
    limiter = GcraRateLimiter({"send": "1 per minute"}, Clock())
    assert await limiter.hit("other", "alice") is None


async def test_drained_keys_are_forgotten() -> None:
    clock = Clock()
    limiter = GcraRateLimiter({"c": "5 per second"}, clock)
    for i in range(gcra.FORGET_EVERY - 1):
        await limiter.hit("c", f"user{i}")
    clock.now += 10
    await limiter.hit("c", "last")  # the FORGET_EVERY-th hit sweeps what has drained
    assert len(limiter._arrival) == 1

"""The RateLimiter port: GCRA in process memory, or in Redis for several instances."""

from adapters.ratelimit.gcra import GcraRateLimiter, RedisGcraRateLimiter

__all__ = ["GcraRateLimiter", "RedisGcraRateLimiter"]

"""The RateLimiter port on the `limits` library (memory or Redis storage)."""

from adapters.ratelimit.limits_limiter import LimitsRateLimiter

__all__ = ["LimitsRateLimiter"]

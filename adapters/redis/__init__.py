"""Redis adapters of every store port, and the Socket.IO Redis manager for several instances.

Every key lives under a configurable prefix; keys that change together share a hash tag
(`{u:<user>}`, `{r:<room>}`, `{rooms}`) so that a Redis Cluster could hold them. The key
schema is in docs/redis.md.
"""

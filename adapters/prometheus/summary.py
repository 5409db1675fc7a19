"""The JSON summary of `GET /api/v1/metrics`, read from the Prometheus registry.

Rates and latency percentiles are over the last minute: `sample()` (called every few
seconds by the server) keeps a short ring of counter snapshots, and a summary compares the
registry now with the oldest snapshot of the ring. Percentiles are interpolated within
histogram buckets, the way Prometheus' `histogram_quantile` does.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import attrs
from prometheus_client import CollectorRegistry

from domain.json_types import JsonObject, JsonValue

WINDOW_S = 60.0

BucketKey = tuple[str, str]  # (namespace, event)


@attrs.frozen
class _Snapshot:
    at: float
    commands: float
    buckets: dict[BucketKey, dict[float, float]]


def _read(registry: CollectorRegistry, at: float) -> tuple[_Snapshot, JsonObject]:
    connections: dict[str, JsonValue] = {}
    errors: dict[str, JsonValue] = {}
    online = 0.0
    commands = 0.0
    buckets: dict[BucketKey, dict[float, float]] = {}
    for family in registry.collect():
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "switchboard_connections":
                connections[labels["namespace"]] = int(sample.value)
            elif sample.name == "switchboard_online_users":
                online = sample.value
            elif sample.name == "switchboard_commands_total":
                commands += sample.value
            elif sample.name == "switchboard_errors_total":
                errors[labels["code"]] = int(sample.value)
            elif sample.name == "switchboard_command_duration_seconds_bucket":
                key = (labels["namespace"], labels["event"])
                buckets.setdefault(key, {})[float(labels["le"])] = sample.value
    facts: JsonObject = {
        "connections": connections,
        "online_users": int(online),
        "errors": errors,
    }
    return _Snapshot(at=at, commands=commands, buckets=buckets), facts


def quantile(q: float, cumulative: dict[float, float]) -> float | None:
    """The q-quantile of a cumulative histogram `{upper bound: count}` (None if empty)."""
    bounds = sorted(cumulative)
    if not bounds:
        return None
    total = cumulative[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = cumulative[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower  # above the last finite bucket: its lower edge, like Prometheus
            inside = count - below
            fraction = 0.0 if inside <= 0 else (rank - below) / inside
            return lower + (bound - lower) * fraction
        lower, below = bound, count
    return lower


class MetricsSummary:
    """Keeps a minute of snapshots and answers the dashboard summary."""

    def __init__(
        self, registry: CollectorRegistry, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._registry = registry
        self._clock = clock
        self._ring: deque[_Snapshot] = deque()

    def sample(self) -> None:
        """Remember the counters now (drop snapshots older than the window)."""
        snapshot, _ = _read(self._registry, self._clock())
        self._ring.append(snapshot)
        while len(self._ring) > 1 and snapshot.at - self._ring[0].at > WINDOW_S:
            self._ring.popleft()

    def summary(self) -> JsonObject:
        """Connections per namespace, online users, commands/s, p50/p95/p99 per event, errors."""
        now, facts = _read(self._registry, self._clock())
        base = self._ring[0] if self._ring else None
        elapsed = 0.0 if base is None else now.at - base.at
        # at least one second: just after a start the window is milliseconds long
        rate = (now.commands - base.commands) / max(elapsed, 1.0) if base else 0.0
        latency: dict[str, JsonValue] = {}
        for key, cumulative in sorted(now.buckets.items()):
            previous = base.buckets.get(key, {}) if base and elapsed > 0 else {}
            window = {le: count - previous.get(le, 0.0) for le, count in cumulative.items()}
            if not window or max(window.values()) <= 0:
                window = cumulative  # nothing in the window: fall back to all time
            namespace, event = key
            entry: JsonObject = {"count": int(max(window.values(), default=0.0))}
            for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
                value = quantile(q, window)
                entry[f"{name}_ms"] = None if value is None else round(value * 1000, 3)
            latency[f"{namespace} {event}"] = entry
        return {
            **facts,
            "commands_per_second": round(rate, 3),
            "window_s": round(elapsed, 1),
            "latency": latency,
        }

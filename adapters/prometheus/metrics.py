"""The `MetricsCollector` port on prometheus_client, on an injected `CollectorRegistry`.

Names and labels are part of wire contract v1; every name starts with `switchboard_`.
Label children are cached, so the hot path is one dict lookup and one increment.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class PrometheusMetrics:
    """Counters, gauges and a latency histogram for one server instance."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._connections = Gauge(
            "switchboard_connections",
            "Live Socket.IO connections of this instance",
            ["namespace"],
            registry=registry,
        )
        self._opened = Counter(
            "switchboard_connections_opened",
            "Connections accepted (handshake passed)",
            ["namespace"],
            registry=registry,
        )
        self._closed = Counter(
            "switchboard_connections_closed",
            "Connections closed",
            ["namespace"],
            registry=registry,
        )
        self._commands = Counter(
            "switchboard_commands",
            "Commands handled, by outcome (ok or an error code)",
            ["namespace", "event", "outcome"],
            registry=registry,
        )
        self._duration = Histogram(
            "switchboard_command_duration_seconds",
            "Time from receiving a command to its ack",
            ["namespace", "event"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._errors = Counter(
            "switchboard_errors", "Errors answered, by code", ["code"], registry=registry
        )
        self._messages = Counter(
            "switchboard_messages",
            "Chat messages stored (sent) and handed to sockets (delivered)",
            ["direction"],
            registry=registry,
        )
        self._rate_limited = Counter(
            "switchboard_rate_limited",
            "Commands and handshakes refused by a rate limit",
            ["event"],
            registry=registry,
        )
        self._online = Gauge(
            "switchboard_online_users",
            "Users with at least one /chat connection in the cluster (refreshed each heartbeat)",
            registry=registry,
        )
        self._slow = Counter(
            "switchboard_slow_consumer_disconnects",
            "Connections closed because their unsent output grew past the bound",
            registry=registry,
        )
        self._command_children: dict[tuple[str, str, str], Counter] = {}
        self._duration_children: dict[tuple[str, str], Histogram] = {}

    def increment_connections(self, namespace: str, delta: int) -> None:
        """Add to the live connections of a namespace; count opens and closes."""
        self._connections.labels(namespace).inc(delta)
        if delta > 0:
            self._opened.labels(namespace).inc(delta)
        else:
            self._closed.labels(namespace).inc(-delta)

    def increment_messages(self, direction: str, count: int = 1) -> None:
        """Count messages sent (stored) or delivered (to sockets)."""
        if count:
            self._messages.labels(direction).inc(count)

    def record_response_time(self, namespace: str, event: str, seconds: float) -> None:
        """Observe one command's latency."""
        key = (namespace, event)
        child = self._duration_children.get(key)
        if child is None:
            child = self._duration_children[key] = self._duration.labels(namespace, event)
        child.observe(seconds)

    def record_command(self, namespace: str, event: str, outcome: str) -> None:
        """Count one command."""
        key = (namespace, event, outcome)
        child = self._command_children.get(key)
        if child is None:
            child = self._command_children[key] = self._commands.labels(namespace, event, outcome)
        child.inc()

    def record_error(self, code: str) -> None:
        """Count one error by code."""
        self._errors.labels(code).inc()

    def record_rate_limited(self, event: str) -> None:
        """Count one refusal by a rate limit."""
        self._rate_limited.labels(event).inc()

    def record_slow_consumer_disconnect(self) -> None:
        """Count one slow-consumer disconnect."""
        self._slow.inc()

    def set_online_users(self, count: int) -> None:
        """Set the cluster's online users."""
        self._online.set(count)

    def value(self, name: str, **labels: str) -> float:
        """The current value of one sample (0 if it was never set): for tests and summaries."""
        found = self.registry.get_sample_value(name, labels)
        return 0.0 if found is None else found

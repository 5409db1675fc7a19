"""A MetricsCollector that keeps its counts in process memory (tests, and until scraped)."""

from __future__ import annotations

from collections import Counter, defaultdict

import attrs


@attrs.define
class MemoryMetrics:
    """Counters and observations as plain dicts, for tests and the embedded default."""

    connections: Counter[str] = attrs.Factory(Counter)
    connections_opened: Counter[str] = attrs.Factory(Counter)
    messages: Counter[str] = attrs.Factory(Counter)
    commands: Counter[tuple[str, str, str]] = attrs.Factory(Counter)
    durations: defaultdict[tuple[str, str], list[float]] = attrs.Factory(lambda: defaultdict(list))
    errors: Counter[str] = attrs.Factory(Counter)
    rate_limited: Counter[str] = attrs.Factory(Counter)
    slow_consumer_disconnects: int = 0
    online_users: int = 0

    def increment_connections(self, namespace: str, delta: int) -> None:
        """Add to the live connections of a namespace (and count opens)."""
        self.connections[namespace] += delta
        if delta > 0:
            self.connections_opened[namespace] += delta

    def increment_messages(self, direction: str, count: int = 1) -> None:
        """Count messages sent or delivered."""
        self.messages[direction] += count

    def record_response_time(self, namespace: str, event: str, seconds: float) -> None:
        """Keep one command duration."""
        self.durations[(namespace, event)].append(seconds)

    def record_command(self, namespace: str, event: str, outcome: str) -> None:
        """Count one command."""
        self.commands[(namespace, event, outcome)] += 1

    def record_error(self, code: str) -> None:
        """Count one error."""
        self.errors[code] += 1

    def record_rate_limited(self, event: str) -> None:
        """Count one rate-limited command."""
        self.rate_limited[event] += 1

    def record_slow_consumer_disconnect(self) -> None:
        """Count one slow-consumer disconnect."""
        self.slow_consumer_disconnects += 1

    def set_online_users(self, count: int) -> None:
        """Set the cluster's online users."""
        self.online_users = count

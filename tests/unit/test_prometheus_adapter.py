"""`PrometheusMetrics` (the MetricsCollector port on prometheus_client) and the JSON summary
of `GET /api/v1/metrics`: names and labels of the contract, counting, label caching,
`value`, the `quantile` math, and the one-minute window on an injected clock."""

from __future__ import annotations

import math

import attrs
import prometheus_client
import pytest
from prometheus_client import CollectorRegistry

from adapters.prometheus import PrometheusMetrics
from adapters.prometheus.metrics import LATENCY_BUCKETS
from adapters.prometheus.summary import WINDOW_S, MetricsSummary, quantile
from domain.json_types import JsonObject
from domain.ports import MetricsCollector

INF = float("inf")

CONTRACT: dict[str, tuple[str, frozenset[str]]] = {
    # sample name: (family type, label names)
    "switchboard_connections": ("gauge", frozenset({"namespace"})),
    "switchboard_connections_opened_total": ("counter", frozenset({"namespace"})),
    "switchboard_commands_total": ("counter", frozenset({"namespace", "event", "outcome"})),
    "switchboard_command_duration_seconds_count": (
        "histogram",
        frozenset({"namespace", "event"}),
    ),
    "switchboard_errors_total": ("counter", frozenset({"code"})),
    "switchboard_messages_total": ("counter", frozenset({"direction"})),
    "switchboard_rate_limited_total": ("counter", frozenset({"event"})),
    "switchboard_online_users": ("gauge", frozenset()),
    "switchboard_slow_consumer_disconnects_total": ("counter", frozenset()),
}
"""Every metric of wire contract v1, as the sample that carries its value."""


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> PrometheusMetrics:
    return PrometheusMetrics(registry)


def exercise(metrics: MetricsCollector) -> None:
    """Touch every method once, so that every labelled metric has a child."""
    metrics.increment_connections("/chat", 1)
    metrics.increment_messages("sent")
    metrics.record_response_time("/chat", "room:list", 0.003)
    metrics.record_command("/chat", "room:list", "ok")
    metrics.record_error("not_found")
    metrics.record_rate_limited("message:send")
    metrics.record_slow_consumer_disconnect()
    metrics.set_online_users(3)


def samples(registry: CollectorRegistry) -> dict[str, tuple[str, frozenset[str]]]:
    """Sample name -> (type of its family, its label names), over the whole registry."""
    found: dict[str, tuple[str, frozenset[str]]] = {}
    for family in registry.collect():
        for sample in family.samples:
            found[sample.name] = (family.type, frozenset(sample.labels) - {"le"})
    return found


# --- names, types, labels -------------------------------------------------------------------


def test_it_is_a_metrics_collector(metrics: PrometheusMetrics) -> None:
    assert isinstance(metrics, MetricsCollector)


def test_every_contract_metric_exists_with_its_type_and_labels(
    registry: CollectorRegistry, metrics: PrometheusMetrics
) -> None:
    exercise(metrics)

    found = samples(registry)

    for name, expected in CONTRACT.items():
        assert found.get(name) == expected, f"{name}: {found.get(name)} != {expected}"
    assert "switchboard_command_duration_seconds_bucket" in found
    assert "switchboard_command_duration_seconds_sum" in found


def test_every_name_starts_with_switchboard(
    registry: CollectorRegistry, metrics: PrometheusMetrics
) -> None:
    exercise(metrics)

    names = {family.name for family in registry.collect()} | set(samples(registry))

    assert names
    assert all(name.startswith("switchboard_") for name in names), sorted(names)


def test_metrics_live_on_the_injected_registry_only(
    registry: CollectorRegistry, metrics: PrometheusMetrics
) -> None:
    second = PrometheusMetrics(CollectorRegistry())  # a second app in the same process

    metrics.set_online_users(4)
    second.set_online_users(9)

    assert metrics.value("switchboard_online_users") == 4
    assert second.value("switchboard_online_users") == 9
    assert prometheus_client.REGISTRY.get_sample_value("switchboard_online_users") is None


def test_latency_buckets_are_increasing_and_cover_ms_to_seconds() -> None:
    assert list(LATENCY_BUCKETS) == sorted(set(LATENCY_BUCKETS))
    assert LATENCY_BUCKETS[0] <= 0.001
    assert LATENCY_BUCKETS[-1] >= 5.0


# --- counting -------------------------------------------------------------------------------


def test_connections_gauge_and_opened_and_closed_counters(metrics: PrometheusMetrics) -> None:
    metrics.increment_connections("/chat", 1)
    metrics.increment_connections("/chat", 1)
    metrics.increment_connections("/notifications", 1)
    metrics.increment_connections("/chat", -1)

    assert metrics.value("switchboard_connections", namespace="/chat") == 1
    assert metrics.value("switchboard_connections", namespace="/notifications") == 1
    assert metrics.value("switchboard_connections_opened_total", namespace="/chat") == 2
    assert metrics.value("switchboard_connections_closed_total", namespace="/chat") == 1
    assert metrics.value("switchboard_connections_closed_total", namespace="/notifications") == 0


def test_messages_by_direction(metrics: PrometheusMetrics) -> None:
    metrics.increment_messages("sent")
    metrics.increment_messages("delivered", 3)
    metrics.increment_messages("delivered", 2)
    metrics.increment_messages("delivered", 0)

    assert metrics.value("switchboard_messages_total", direction="sent") == 1
    assert metrics.value("switchboard_messages_total", direction="delivered") == 5


def test_a_zero_count_creates_no_series(
    registry: CollectorRegistry, metrics: PrometheusMetrics
) -> None:
    metrics.increment_messages("delivered", 0)

    assert registry.get_sample_value("switchboard_messages_total", {"direction": "delivered"}) is (
        None
    )


def test_commands_errors_rate_limits_slow_consumers_online(metrics: PrometheusMetrics) -> None:
    metrics.record_command("/chat", "room:list", "ok")
    metrics.record_command("/chat", "room:list", "ok")
    metrics.record_command("/chat", "room:list", "rate_limited")
    metrics.record_command("/notifications", "notification:list", "ok")
    metrics.record_error("rate_limited")
    metrics.record_rate_limited("room:list")
    metrics.record_rate_limited("handshake")
    metrics.record_slow_consumer_disconnect()
    metrics.set_online_users(7)
    metrics.set_online_users(5)

    def commands(namespace: str, event: str, outcome: str) -> float:
        return metrics.value(
            "switchboard_commands_total", namespace=namespace, event=event, outcome=outcome
        )

    assert commands("/chat", "room:list", "ok") == 2
    assert commands("/chat", "room:list", "rate_limited") == 1
    assert commands("/notifications", "notification:list", "ok") == 1
    assert commands("/notifications", "room:list", "ok") == 0
    assert metrics.value("switchboard_errors_total", code="rate_limited") == 1
    assert metrics.value("switchboard_rate_limited_total", event="room:list") == 1
    assert metrics.value("switchboard_rate_limited_total", event="handshake") == 1
    assert metrics.value("switchboard_slow_consumer_disconnects_total") == 1
    assert metrics.value("switchboard_online_users") == 5


def test_response_times_fill_the_histogram(metrics: PrometheusMetrics) -> None:
    for seconds in (0.0004, 0.003, 0.003, 0.2, 30.0):
        metrics.record_response_time("/chat", "message:send", seconds)

    def bucket(le: str) -> float:
        return metrics.value(
            "switchboard_command_duration_seconds_bucket",
            namespace="/chat",
            event="message:send",
            le=le,
        )

    assert (
        metrics.value(
            "switchboard_command_duration_seconds_count", namespace="/chat", event="message:send"
        )
        == 5
    )
    assert metrics.value(
        "switchboard_command_duration_seconds_sum", namespace="/chat", event="message:send"
    ) == pytest.approx(30.2064)
    assert bucket("0.0005") == 1
    assert bucket("0.0025") == 1
    assert bucket("0.005") == 3
    assert bucket("0.25") == 4
    assert bucket("10.0") == 4
    assert bucket("+Inf") == 5


def test_value_of_an_unknown_sample_is_zero(metrics: PrometheusMetrics) -> None:
    assert metrics.value("switchboard_no_such_metric") == 0.0
    assert metrics.value("switchboard_commands_total", namespace="/chat") == 0.0
    assert (
        metrics.value(
            "switchboard_commands_total", namespace="/chat", event="room:list", outcome="ok"
        )
        == 0.0
    )


# --- label caching --------------------------------------------------------------------------


@attrs.define
class CountingLabels:
    """Counts calls of a metric's `labels` (the slow path) while delegating to it."""

    metric: prometheus_client.Counter | prometheus_client.Histogram
    calls: int = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = self.metric.labels

        def counting(*values: str) -> prometheus_client.Counter | prometheus_client.Histogram:
            self.calls += 1
            return original(*values)

        monkeypatch.setattr(self.metric, "labels", counting)


def test_command_children_are_looked_up_once_per_label_set(
    metrics: PrometheusMetrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = CountingLabels(metrics._commands)
    spy.install(monkeypatch)

    for _ in range(5):
        metrics.record_command("/chat", "room:list", "ok")
    metrics.record_command("/chat", "room:list", "not_found")
    metrics.record_command("/chat", "room:list", "not_found")

    assert spy.calls == 2
    assert (
        metrics.value(
            "switchboard_commands_total", namespace="/chat", event="room:list", outcome="ok"
        )
        == 5
    )
    assert (
        metrics.value(
            "switchboard_commands_total", namespace="/chat", event="room:list", outcome="not_found"
        )
        == 2
    )


def test_duration_children_are_looked_up_once_per_label_set(
    metrics: PrometheusMetrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = CountingLabels(metrics._duration)
    spy.install(monkeypatch)

    for _ in range(4):
        metrics.record_response_time("/chat", "room:list", 0.001)
    metrics.record_response_time("/notifications", "notification:list", 0.001)

    assert spy.calls == 2
    assert (
        metrics.value(
            "switchboard_command_duration_seconds_count", namespace="/chat", event="room:list"
        )
        == 4
    )


# --- quantile -------------------------------------------------------------------------------


def test_quantile_of_nothing_is_none() -> None:
    assert quantile(0.5, {}) is None
    assert quantile(0.5, {0.1: 0.0, 1.0: 0.0, INF: 0.0}) is None


def test_quantile_interpolates_within_the_bucket_like_histogram_quantile() -> None:
    # 10 observations <= 0.1, 10 in (0.1, 0.2], none above
    cumulative = {0.1: 10.0, 0.2: 20.0, INF: 20.0}

    assert quantile(0.5, cumulative) == pytest.approx(0.1)
    assert quantile(0.25, cumulative) == pytest.approx(0.05)  # first bucket starts at 0
    assert quantile(0.75, cumulative) == pytest.approx(0.15)
    assert quantile(0.95, cumulative) == pytest.approx(0.19)
    assert quantile(0.99, cumulative) == pytest.approx(0.198)


def test_quantile_skips_empty_buckets() -> None:
    cumulative = {0.1: 0.0, 0.2: 0.0, 0.5: 10.0, 1.0: 10.0, INF: 10.0}

    assert quantile(0.5, cumulative) == pytest.approx(0.35)
    assert quantile(0.99, cumulative) == pytest.approx(0.497)


def test_quantile_above_the_last_finite_bucket_is_that_bucket_bound() -> None:
    cumulative = {0.1: 1.0, 10.0: 2.0, INF: 100.0}

    assert quantile(0.5, cumulative) == 10.0
    assert quantile(0.99, cumulative) == 10.0


def test_quantile_accepts_buckets_in_any_order() -> None:
    assert quantile(0.5, {INF: 4.0, 0.2: 4.0, 0.1: 2.0}) == pytest.approx(0.1)


def test_quantile_matches_the_buckets_of_real_observations(metrics: PrometheusMetrics) -> None:
    for _ in range(90):
        metrics.record_response_time("/chat", "room:list", 0.002)  # (0.001, 0.0025]
    for _ in range(10):
        metrics.record_response_time("/chat", "room:list", 0.2)  # (0.1, 0.25]
    cumulative = {
        (INF if le == INF else le): metrics.value(
            "switchboard_command_duration_seconds_bucket",
            namespace="/chat",
            event="room:list",
            le="+Inf" if le == INF else str(le),
        )
        for le in (*LATENCY_BUCKETS, INF)
    }

    p50 = quantile(0.5, cumulative)
    p99 = quantile(0.99, cumulative)

    assert p50 is not None
    assert 0.001 < p50 <= 0.0025
    assert p99 is not None
    assert 0.1 < p99 <= 0.25


# --- the summary and its one-minute window --------------------------------------------------


@attrs.define
class ManualClock:
    """A monotonic clock in seconds that moves only when told."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def latency_of(summary: JsonObject, key: str) -> JsonObject:
    latency = summary["latency"]
    assert isinstance(latency, dict), summary
    entry = latency[key]
    assert isinstance(entry, dict), latency
    return entry


def number(value: object) -> float:
    assert isinstance(value, int | float), value
    assert not isinstance(value, bool)
    return float(value)


def test_summary_shape_and_facts(registry: CollectorRegistry, metrics: PrometheusMetrics) -> None:
    clock = ManualClock()
    summary = MetricsSummary(registry, clock)
    summary.sample()
    metrics.increment_connections("/chat", 1)
    metrics.increment_connections("/chat", 1)
    metrics.increment_connections("/notifications", 1)
    metrics.set_online_users(2)
    metrics.record_error("not_found")
    metrics.record_error("not_found")
    metrics.record_error("validation_failed")
    metrics.record_command("/chat", "room:list", "ok")
    metrics.record_response_time("/chat", "room:list", 0.004)
    clock.advance(10)

    result = summary.summary()

    assert set(result) == {
        "connections",
        "online_users",
        "errors",
        "commands_per_second",
        "window_s",
        "latency",
    }
    assert result["connections"] == {"/chat": 2, "/notifications": 1}
    assert result["online_users"] == 2
    assert result["errors"] == {"not_found": 2, "validation_failed": 1}
    assert result["window_s"] == 10.0
    entry = latency_of(result, "/chat room:list")
    assert set(entry) == {"count", "p50_ms", "p95_ms", "p99_ms"}
    assert entry["count"] == 1
    assert 2.5 < number(entry["p50_ms"]) <= 5.0


def test_commands_per_second_over_the_time_since_the_oldest_sample(
    registry: CollectorRegistry, metrics: PrometheusMetrics
) -> None:
    clock = ManualClock()
    summary = MetricsSummary(registry, clock)
    summary.sample()
    for _ in range(30):
        metrics.record_command("/chat", "message:send", "ok")
    for _ in range(10):
        metrics.record_command("/notifications", "notification:list", "rate_limited")
    clock.advance(20)

    result = summary.summary()

    assert result["commands_per_second"] == 2.0
    assert result["window_s"] == 20.0


def test_without_any_sample_the_rate_is_zero(
    registry: CollectorRegistry, metrics: PrometheusMetrics
) -> None:
    summary = MetricsSummary(registry, ManualClock())
    metrics.record_command("/chat", "room:list", "ok")

    result = summary.summary()

    assert result["commands_per_second"] == 0.0
    assert result["window_s"] == 0.0


def test_samples_older_than_a_minute_leave_the_window(
    registry: CollectorRegistry, metrics: PrometheusMetrics
) -> None:
    clock = ManualClock()
    summary = MetricsSummary(registry, clock)
    summary.sample()  # t=0
    for _ in range(600):  # a burst long ago
        metrics.record_command("/chat", "room:list", "ok")
    for _ in range(14):  # one sample every 5 s, as the server does, up to t=70
        clock.advance(5)
        summary.sample()
    for _ in range(30):  # the last minute: 30 commands
        metrics.record_command("/chat", "room:list", "ok")

    result = summary.summary()

    assert result["window_s"] == WINDOW_S  # the oldest sample kept is t=10
    assert result["commands_per_second"] == 0.5


def test_latency_percentiles_cover_the_window_only(
    registry: CollectorRegistry, metrics: PrometheusMetrics
) -> None:
    clock = ManualClock()
    summary = MetricsSummary(registry, clock)
    for _ in range(1000):  # fast, long ago
        metrics.record_response_time("/chat", "message:send", 0.0008)
    summary.sample()
    clock.advance(WINDOW_S + 5)
    summary.sample()  # the first sample drops out of the window
    for _ in range(10):  # slow, now
        metrics.record_response_time("/chat", "message:send", 2.0)
    clock.advance(1)

    entry = latency_of(summary.summary(), "/chat message:send")

    assert entry["count"] == 10
    for name in ("p50_ms", "p95_ms", "p99_ms"):
        assert 1000.0 < number(entry[name]) <= 2500.0, entry


def test_latency_without_observations_in_the_window_falls_back_to_all_time(
    registry: CollectorRegistry, metrics: PrometheusMetrics
) -> None:
    clock = ManualClock()
    summary = MetricsSummary(registry, clock)
    for _ in range(4):
        metrics.record_response_time("/chat", "room:list", 0.02)
    summary.sample()
    clock.advance(30)

    entry = latency_of(summary.summary(), "/chat room:list")

    assert entry["count"] == 4
    assert 10.0 < number(entry["p50_ms"]) <= 25.0


def test_percentiles_are_ordered_and_in_milliseconds(
    registry: CollectorRegistry, metrics: PrometheusMetrics
) -> None:
    clock = ManualClock()
    summary = MetricsSummary(registry, clock)
    summary.sample()
    for index in range(200):
        metrics.record_response_time("/chat", "room:join", 0.0001 * (index + 1))  # 0.1..20 ms
    clock.advance(5)

    entry = latency_of(summary.summary(), "/chat room:join")
    p50, p95, p99 = (number(entry[k]) for k in ("p50_ms", "p95_ms", "p99_ms"))

    assert entry["count"] == 200
    assert 0 < p50 <= p95 <= p99 <= 25.0
    assert 5.0 <= p50 <= 10.0
    assert not math.isnan(p99)

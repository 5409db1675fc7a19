"""Figures and the side-by-side tables printed by the benchmark."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import attrs

Figure = float | int | str | None
Figures = dict[str, Figure]
"""One server's figures for one workload, by metric key."""


@attrs.frozen
class Metric:
    """A row of a table."""

    key: str
    label: str
    digits: int = 0


WORKLOADS: dict[str, tuple[str, tuple[Metric, ...]]] = {
    "connect_storm": (
        "Connect storm (authenticated /chat connections, a bounded number in flight)",
        (
            Metric("connections", "connections opened"),
            Metric("failed", "failed"),
            Metric("conn_per_s", "connections per second"),
            Metric("cpu_us_per_conn", "server CPU us per connection"),
            Metric("rss_kb_per_conn", "RSS KB per connection", 1),
            Metric("rss_mb_after", "server RSS MB after", 1),
            Metric("redis_commands_per_conn", "Redis commands per connection", 1),
            Metric("generator_cpu_us_per_conn", "generator CPU us per connection"),
        ),
    ),
    "one_room": (
        "One room, fixed send rate, one extra client sending (fan-out)",
        (
            Metric("room_size", "room members (sender included)"),
            Metric("messages_sent", "messages sent"),
            Metric("send_failures", "sends without an ok ack in 10 s"),
            Metric("expected", "deliveries expected"),
            Metric("delivered", "deliveries received"),
            Metric("loss", "loss (expected - received)"),
            Metric("cpu_us_per_delivery", "server CPU us per delivered message", 2),
            Metric("redis_cpu_us_per_delivery", "redis-server CPU us per delivered", 2),
            Metric("redis_commands_per_message", "Redis commands per message sent", 1),
            Metric("server_cpu_pct", "server CPU % of one core", 1),
            Metric("delivered_per_s", "delivered per second"),
            Metric("p50_ms", "latency p50 ms", 2),
            Metric("p99_ms", "latency p99 ms", 2),
            Metric("max_ms", "latency max ms", 2),
            Metric("ack_p50_ms", "send ack p50 ms", 2),
            Metric("ack_p99_ms", "send ack p99 ms", 2),
            Metric("generator_cpu_us_per_delivery", "generator CPU us per delivered", 2),
        ),
    ),
    "many_rooms": (
        "Many small rooms, steady traffic (each room a message every period)",
        (),  # the same rows as one_room (filled in below)
    ),
    "hold": (
        "Hold many connections (RSS per connection, idle cost)",
        (
            Metric("connections", "connections held"),
            Metric("failed", "failed"),
            Metric("conn_per_s", "connections per second"),
            Metric("rss_kb_per_conn", "RSS KB per connection", 1),
            Metric("rss_mb_after", "server RSS MB after", 1),
            Metric("idle_cpu_pct", "idle server CPU % of one core", 1),
        ),
    ),
}
WORKLOADS["many_rooms"] = (WORKLOADS["many_rooms"][0], WORKLOADS["one_room"][1])


def format_figure(value: Figure, digits: int) -> str:
    """A cell: numbers with thousands separators, n/a for missing."""
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return "n/a"
    if isinstance(value, int) or digits == 0:
        return f"{round(value):,}"
    return f"{value:,.{digits}f}"


def table(
    title: str,
    metrics: Sequence[Metric],
    columns: Mapping[str, Figures],
    notes: Sequence[str] = (),
) -> str:
    """A plain-text table: one row per metric, one column per server."""
    names = list(columns)
    rows = [["", *names]]
    for metric in metrics:
        if all(metric.key not in figures for figures in columns.values()):
            continue
        rows.append(
            [
                metric.label,
                *(format_figure(columns[n].get(metric.key), metric.digits) for n in names),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [f"== {title}"]
    for index, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])]
        cells += [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.extend(f"   {note}" for note in notes)
    return "\n".join(lines)


def percentile(sorted_values: Sequence[int], fraction: float) -> float | None:
    """The nearest-rank percentile of already sorted values (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])

"""The MetricsCollector port on prometheus_client, and the JSON summary for dashboards."""

from adapters.prometheus.metrics import PrometheusMetrics

__all__ = ["PrometheusMetrics"]

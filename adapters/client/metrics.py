"""Client-side metrics: time to connect, reconnections, round-trip time of acks."""

from __future__ import annotations

import attrs


@attrs.frozen
class ClientMetrics:
    """A snapshot of the client's connection metrics (seconds; None until measured)."""

    time_to_connect_s: float | None = None
    """How long the last successful connect or reconnect took, backoff included."""
    reconnect_count: int = 0
    """Successful reconnections since the client was created."""
    reconnect_attempts: int = 0
    """Reconnection attempts made (successful or not)."""
    last_rtt_s: float | None = None
    """Round-trip time of the last acknowledged command."""
    backoff_delays_s: tuple[float, ...] = ()
    """Every backoff delay waited so far, in order."""

"""What the case-store projection shows: Prometheus metrics and a status the API reads.

The API never asks Kafka anything on a request: ``/readyz`` and the ``X-Projection-Lag``
header read :meth:`ProjectionStatus.snapshot`, which the projection updates as it goes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LAG_HEADER = "X-Projection-Lag"

# states
STARTING, RUNNING, KAFKA_DOWN, STORE_DOWN, STOPPED = (
    "starting", "running", "kafka_unavailable", "store_unavailable", "stopped")


@dataclass(frozen=True, slots=True)
class Snapshot:
    state: str
    lag: int | None  # records not yet in the store, over the partitions this process reads
    updated_at: float  # wall clock of the last update

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "lag": self.lag}


class ProjectionStatus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snap = Snapshot(STARTING, None, time.time())

    def set(self, state: str | None = None, lag: int | None | bool = False) -> None:
        """Change the state and/or the lag (``lag=False`` keeps it)."""
        with self._lock:
            old = self._snap
            self._snap = Snapshot(state or old.state,
                                  old.lag if lag is False else lag,  # type: ignore[arg-type]
                                  time.time())

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snap


class ProjectionMetrics:
    """The projection's metrics in their own registry (served by ``canhgiac sink``, or
    registered into the API's registry by ``canhgiac serve``)."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.records = Counter("canhgiac_sink_records", "records read by the case-store "
                               "projection", ["topic", "outcome"], registry=r)
        self.lag = Gauge("canhgiac_sink_lag_records", "records not yet in the case store",
                         ["topic"], registry=r)
        self.store_errors = Counter("canhgiac_sink_store_errors", "failed case-store writes "
                                    "(retried with backoff)", ["error"], registry=r)
        self.store_up = Gauge("canhgiac_sink_store_up", "1 while the case store accepts "
                              "writes", registry=r)
        self.kafka_errors = Counter("canhgiac_sink_kafka_errors", "Kafka sessions that "
                                    "failed (reconnected with backoff)", ["error"], registry=r)
        self.stalls = Counter("canhgiac_sink_stalled_partitions", "partitions found stalled "
                              "and re-fetched", ["topic", "partition"], registry=r)
        self.batch_seconds = Histogram(
            "canhgiac_sink_batch_seconds", "time to write one batch and commit its offsets",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=r)
        self.store_up.set(1)


class ProjectionLagHeader:
    """Pure ASGI middleware: every ``/v1/`` response says how far behind the case store is
    (``X-Projection-Lag``: records not yet written, or ``unknown`` while Kafka is
    unreachable or the lag not yet measured)."""

    def __init__(self, app: Any, status: ProjectionStatus) -> None:
        self.app = app
        self.status = status

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith("/v1/"):
            await self.app(scope, receive, send)
            return

        async def send_with_lag(message: Any) -> None:
            if message["type"] == "http.response.start":
                lag = self.status.snapshot().lag
                message["headers"] = [*message.get("headers", []),
                                      (b"x-projection-lag",
                                       b"unknown" if lag is None else str(lag).encode())]
            await send(message)

        await self.app(scope, receive, send_with_lag)


def readiness(status: ProjectionStatus | None) -> dict[str, Any]:
    """The ``projection`` field of ``/readyz``: ``{"state", "lag"}``; state ``off`` when this
    process does not run the projection (``canhgiac sink`` runs it elsewhere)."""
    if status is None:
        return {"state": "off", "lag": None}
    return status.snapshot().as_dict()

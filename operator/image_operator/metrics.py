"""Prometheus metrics: reconciles per kind, cloud calls per provider and action, work in flight.

Served by `image-operator run` on `IMAGE_OPERATOR_METRICS_PORT` (the chart's metrics Service).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter(
    "imageops_reconciles_total",
    "Reconcile steps, by kind and result (ready, requeued, stalled, error).",
    ["kind", "result"],
)
RECONCILE_DURATION = Histogram(
    "imageops_reconcile_duration_seconds",
    "Wall time of one reconcile step, cloud calls included.",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RECONCILE_ERRORS = Counter(
    "imageops_reconcile_errors_total",
    "Reconcile steps that ended in an error condition, by kind and reason.",
    ["kind", "reason"],
)
CLOUD_REQUESTS = Counter(
    "imageops_cloud_requests_total",
    "Calls to cloud APIs, by provider type, action and outcome (ok or the error reason).",
    ["provider", "action", "outcome"],
)
CLOUD_LATENCY = Histogram(
    "imageops_cloud_request_duration_seconds",
    "Latency of cloud API calls, by provider type and action.",
    ["provider", "action"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CLOUD_ERRORS = Counter(
    "imageops_cloud_request_errors_total",
    "Failed cloud API calls, by provider type, action and error reason.",
    ["provider", "action", "reason"],
)
IN_FLIGHT = Gauge(
    "imageops_operations_in_flight",
    "Objects with cloud work in flight (Reconciling=True), by kind.",
    ["kind"],
)

_in_flight: dict[str, set[str]] = {}
_lock = threading.Lock()


def set_in_flight(kind: str, uid: str, busy: bool) -> None:
    """Record whether one object has work in flight; the gauge counts such objects."""
    with _lock:
        members = _in_flight.setdefault(kind, set())
        if busy:
            members.add(uid)
        else:
            members.discard(uid)
        IN_FLIGHT.labels(kind).set(len(members))


@contextmanager
def timed_reconcile(kind: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        RECONCILE_DURATION.labels(kind).observe(time.perf_counter() - start)

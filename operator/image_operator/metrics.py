"""Prometheus metrics: reconciles per kind, cloud calls per provider and action, work in flight,
objects per state, and whether this replica is the active one.

Served by `image-operator run` on `IMAGE_OPERATOR_METRICS_PORT` (the chart's metrics Service).
Every name here is listed in README ("Observability") and used by the chart's PrometheusRule and
Grafana dashboard (tests/integration/test_dashboard_metrics.py checks them against a scrape).
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

OBJECTS = Gauge(
    "imageops_objects",
    "Objects this replica watches, by kind, namespace, imageprovider (the ImageProvider the "
    "spec names; an ImageProvider under its own name; none for kinds without one) and condition "
    "(ready, in_progress, stalled, failed, paused, deleting, inactive, unknown).",
    ["kind", "namespace", "imageprovider", "condition"],
)
EVENTS_DROPPED = Counter(
    "imageops_events_dropped_total",
    "Normal events not posted because they came faster than settings.normalEventsPerSecond "
    "allows (the transition is still in the object's conditions and the log), by kind and "
    "reason.",
    ["kind", "reason"],
)
LEADER = Gauge(
    "imageops_leader",
    "1 while this replica is the active kopf peer of its shard (always with --standalone), 0 "
    "while it stands by: only the active replica reconciles and reports objects.",
    ["shard"],
)

_in_flight: dict[str, set[str]] = {}
_lock = threading.Lock()

#: The label values of one object in `imageops_objects`: kind, namespace, imageprovider,
#: condition.
ObjectLabels = tuple[str, str, str, str]


def set_in_flight(kind: str, uid: str, busy: bool) -> None:
    """Record whether one object has work in flight; the gauge counts such objects."""
    with _lock:
        members = _in_flight.setdefault(kind, set())
        if busy:
            members.add(uid)
        else:
            members.discard(uid)
        IN_FLIGHT.labels(kind).set(len(members))


class ObjectStates:
    """uid -> the labels it counts under in `imageops_objects`. Each object counts exactly once:
    a new state moves it from its old series to the new one, and a series that drops to zero is
    removed, so a namespace or provider that is gone leaves no series behind."""

    def __init__(self, gauge: Gauge = OBJECTS) -> None:
        self._gauge = gauge
        self._by_uid: dict[str, ObjectLabels] = {}
        self._counts: dict[ObjectLabels, int] = {}
        self._lock = threading.Lock()

    def observe(self, uid: str, labels: ObjectLabels | None) -> None:
        """Record the object's current labels; None: it is gone (deleted, or out of sight)."""
        with self._lock:
            old = self._by_uid.pop(uid, None)
            if old == labels:
                if labels is not None:
                    self._by_uid[uid] = labels
                return
            if old is not None:
                self._add(old, -1)
            if labels is not None:
                self._by_uid[uid] = labels
                self._add(labels, 1)

    def clear(self) -> None:
        """Forget every object: a replica that stands by sees none (kopf lists them all again,
        and so reports them anew, when it becomes active)."""
        with self._lock:
            for labels in self._counts:
                self._gauge.remove(*labels)
            self._by_uid.clear()
            self._counts.clear()

    def counts(self) -> dict[ObjectLabels, int]:
        with self._lock:
            return dict(self._counts)

    def _add(self, labels: ObjectLabels, delta: int) -> None:
        count = self._counts.get(labels, 0) + delta
        if count > 0:
            self._counts[labels] = count
            self._gauge.labels(*labels).set(count)
        else:
            self._counts.pop(labels, None)
            self._gauge.remove(*labels)


OBJECT_STATES = ObjectStates()


def clear_in_flight() -> None:
    """A replica that stands by has nothing in flight."""
    with _lock:
        for kind, members in _in_flight.items():
            members.clear()
            IN_FLIGHT.labels(kind).set(0)


@contextmanager
def timed_reconcile(kind: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        RECONCILE_DURATION.labels(kind).observe(time.perf_counter() - start)

"""`imageops_objects`: each watched object counted once, under the state its status shows, moved
on a change and dropped when it is deleted or the replica stands by."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Gauge

from image_operator import metrics
from image_operator.handlers import objectstate
from image_operator.metrics import ObjectStates


def _gauge() -> tuple[CollectorRegistry, Gauge]:
    registry = CollectorRegistry()
    gauge = Gauge(
        "imageops_objects",
        "test",
        ["kind", "namespace", "imageprovider", "condition"],
        registry=registry,
    )
    return registry, gauge


def _series(registry: CollectorRegistry) -> dict[tuple[str, ...], float]:
    return {
        tuple(
            sample.labels[k] for k in ("kind", "namespace", "imageprovider", "condition")
        ): sample.value
        for family in registry.collect()
        for sample in family.samples
    }


def _body(
    name: str,
    *,
    kind: str = "Image",
    ready: str | None = None,
    stalled: bool = False,
    reconciling: bool = False,
    provider: str | None = "argon",
    deleting: bool = False,
    paused: bool = False,
) -> dict[str, Any]:
    conditions = []
    if ready is not None:
        conditions.append({"type": "Ready", "status": ready})
    conditions.append({"type": "Stalled", "status": "True" if stalled else "False"})
    conditions.append({"type": "Reconciling", "status": "True" if reconciling else "False"})
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "uid": f"uid-{name}", "generation": 1}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-01T00:00:00Z"
    if paused:
        meta["annotations"] = {"imageops.io/paused": "true"}
    spec = {"providerRef": {"name": provider}} if provider else {}
    return {
        "kind": kind,
        "metadata": meta,
        "spec": spec,
        "status": {"observedGeneration": 1, "conditions": conditions},
    }


def test_a_state_change_moves_the_object_without_counting_it_twice() -> None:
    registry, gauge = _gauge()
    states = ObjectStates(gauge)
    states.observe("a", ("Image", "ns", "argon", "in_progress"))
    states.observe("b", ("Image", "ns", "argon", "in_progress"))
    states.observe("a", ("Image", "ns", "argon", "in_progress"))  # the same state again
    assert _series(registry) == {("Image", "ns", "argon", "in_progress"): 2}

    states.observe("a", ("Image", "ns", "argon", "ready"))
    assert _series(registry) == {
        ("Image", "ns", "argon", "in_progress"): 1,
        ("Image", "ns", "argon", "ready"): 1,
    }


def test_deletion_drops_the_object_and_an_empty_series_disappears() -> None:
    registry, gauge = _gauge()
    states = ObjectStates(gauge)
    states.observe("a", ("Image", "ns", "argon", "ready"))
    states.observe("b", ("Image", "ns", "argon", "ready"))
    states.observe("a", None)
    assert _series(registry) == {("Image", "ns", "argon", "ready"): 1}
    states.observe("b", None)
    states.observe("b", None)  # a second DELETED (a relist) is harmless
    assert _series(registry) == {}
    assert states.counts() == {}


def test_clear_forgets_every_object() -> None:
    registry, gauge = _gauge()
    states = ObjectStates(gauge)
    states.observe("a", ("Image", "ns", "argon", "ready"))
    states.observe("p", ("ImageProvider", "ns", "argon", "ready"))
    states.clear()
    assert _series(registry) == {}
    states.observe("a", ("Image", "ns", "argon", "stalled"))  # kopf lists it again
    assert _series(registry) == {("Image", "ns", "argon", "stalled"): 1}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (_body("r", ready="True"), ("Image", "ns", "argon", "ready")),
        (_body("s", ready="False", stalled=True), ("Image", "ns", "argon", "stalled")),
        (_body("w", ready="False", reconciling=True), ("Image", "ns", "argon", "in_progress")),
        (_body("d", ready="True", deleting=True), ("Image", "ns", "argon", "deleting")),
        (_body("p", ready="True", paused=True), ("Image", "ns", "argon", "paused")),
        (_body("f", ready="False"), ("Image", "ns", "argon", "failed")),
        (_body("u"), ("Image", "ns", "argon", "unknown")),
        (
            _body("argon", kind="ImageProvider", ready="True", provider=None),
            ("ImageProvider", "ns", "argon", "ready"),
        ),
        (
            _body("l", kind="CommunityListing", ready="True", provider=None),
            ("CommunityListing", "ns", "none", "ready"),
        ),
    ],
)
def test_labels_follow_the_status(body: dict[str, Any], expected: metrics.ObjectLabels) -> None:
    assert objectstate.labels(body) == expected


def test_watch_events_keep_the_process_gauge_true() -> None:
    """Through the handler kopf calls: a created, then Ready, then deleted Image."""
    metrics.OBJECT_STATES.clear()
    stalled = ("Image", "ns", "argon", "stalled")
    ready = ("Image", "ns", "argon", "ready")
    objectstate.seen({"type": None, "object": _body("x", ready="False", stalled=True)})
    objectstate.seen({"type": "ADDED", "object": _body("y", ready="True")})
    assert metrics.OBJECT_STATES.counts() == {stalled: 1, ready: 1}
    objectstate.seen({"type": "MODIFIED", "object": _body("x", ready="True")})
    assert metrics.OBJECT_STATES.counts() == {ready: 2}
    metrics.set_in_flight("Image", "uid-x", True)
    objectstate.seen({"type": "DELETED", "object": _body("x", ready="True", deleting=True)})
    assert metrics.OBJECT_STATES.counts() == {ready: 1}
    assert REGISTRY.get_sample_value("imageops_operations_in_flight", {"kind": "Image"}) == 0
    objectstate.seen({"type": "DELETED", "object": _body("y", ready="True")})
    assert metrics.OBJECT_STATES.counts() == {}

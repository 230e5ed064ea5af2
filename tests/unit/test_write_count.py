"""Writes per Image (issue 14): the finalizer and the write-ahead marker go in one patch, and an
image the cloud makes at once is Ready in the pass that created it (one status, one event)."""

from __future__ import annotations

from typing import Any

from kopf._cogs.structs import bodies, patches

from image_operator.api.common import ANNOTATION_PROVIDER_TYPE, FINALIZER
from image_operator.handlers.kinds import claim_patch, unclaimed
from image_operator.providers.model import CloudState
from tests.unit.test_image_reconciler import Harness, make_obj, reasons


def _body(**meta: Any) -> bodies.Body:
    raw: dict[str, Any] = {
        "apiVersion": "imageops.io/v1alpha1",
        "kind": "Image",
        "metadata": {"name": "x", "namespace": "ns", "resourceVersion": "7", **meta},
        "spec": {},
    }
    return bodies.Body(raw)  # type: ignore[arg-type]


def test_the_finalizer_and_the_marker_are_one_json_patch_and_kopf_adds_nothing_more() -> None:
    body = _body(finalizers=["other.example/keep"])
    patch = patches.Patch(body=body)
    patch.fns.append(claim_patch("argon"))
    # What kopf appends in the same cycle (processing.py: block_deletion), after ours.
    patch.fns.append(claim_patch(None))

    ops = patch.as_json_patch()

    assert sorted((op["op"], op["path"]) for op in ops) == [
        ("add", "/metadata/annotations"),
        ("add", "/metadata/finalizers/1"),
    ]
    added = {op["path"]: op["value"] for op in ops}
    assert added["/metadata/finalizers/1"] == FINALIZER  # appended: other finalizers kept
    assert added["/metadata/annotations"] == {ANNOTATION_PROVIDER_TYPE: "argon"}


def test_only_an_object_without_the_finalizer_and_not_being_deleted_is_claimed() -> None:
    assert unclaimed(_body())
    assert not unclaimed(_body(finalizers=[FINALIZER]))
    assert not unclaimed(_body(deletionTimestamp="2026-12-01T00:00:00Z"))


def test_with_the_marker_written_the_first_pass_writes_no_marker_of_its_own() -> None:
    h = Harness()
    fresh = make_obj()
    marked = make_obj(annotations={ANNOTATION_PROVIDER_TYPE: "fake"})

    assert h.reconciler.ahead(fresh, h.handle) == {"providerType": "fake"}
    assert h.reconciler.ahead(marked, h.handle) == {}


def test_a_marked_object_whose_provider_is_gone_waits_for_it_before_letting_go() -> None:
    """The marker says a create may have been sent: without the provider nothing can tell."""
    h = Harness()
    marked = make_obj(annotations={ANNOTATION_PROVIDER_TYPE: "fake"})
    gone = type(h.handle)("fake", None, None, problem="ImageProvider 'fake' not found")

    outcome = h.reconciler.finalize(marked, gone)
    never_sent = h.reconciler.finalize(make_obj(), gone)

    assert outcome.requeue_after is not None and not outcome.done
    assert never_sent.done


def test_an_image_the_cloud_makes_at_once_is_ready_in_the_creating_pass() -> None:
    h = Harness()
    h.provider.made_state = CloudState.AVAILABLE

    outcome = h.reconcile(make_obj())

    assert outcome.status["phase"] == "Ready"
    assert outcome.requeue_after is None
    assert reasons(outcome) == ["Ready"]  # one event: no "Creating" before it
    remote = [name for name, _ in h.provider.calls if name != "needs_update"]  # that one is local
    assert remote == ["find_image", "create_image"]


def test_a_cloud_that_refuses_duplicate_keys_is_asked_once_per_new_image() -> None:
    h = Harness()
    h.provider.create_refuses_duplicates = True

    h.reconcile(make_obj())

    remote = [name for name, _ in h.provider.calls if name != "needs_update"]
    assert remote == ["create_image"]


def test_its_image_made_by_a_lost_pass_is_found_on_the_conflict_not_made_twice() -> None:
    h = Harness()
    h.provider.create_refuses_duplicates = True
    obj = make_obj()
    earlier = h.provider.seed(obj.uid, spec=obj.spec, state=CloudState.PENDING)  # type: ignore[arg-type]

    outcome = h.reconcile(obj)

    assert outcome.status["externalID"] == earlier
    assert len(h.provider.images) == 1
    assert "Recovered" in reasons(outcome)

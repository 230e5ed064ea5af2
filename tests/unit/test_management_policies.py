"""spec.managementPolicies (reconcilers/image.py): an Image that may only observe never changes
the cloud, and each missing policy (Create, Update, Delete) forbids just its own calls."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from image_operator.api.common import ANNOTATION_EXTERNAL_ID, DeletionPolicy
from image_operator.api.image import ImageSpec, ManagementPolicy
from image_operator.api.provider import DriftPolicy
from image_operator.providers.model import CloudState
from image_operator.reconcilers import drift
from image_operator.reconcilers.image import ImageObject
from tests.unit.fakes import fingerprint
from tests.unit.test_image_reconciler import (
    Harness,
    after,
    cond,
    make_obj,
    make_ready,
    make_spec,
    reasons,
)

# Every FakeProvider call that changes the cloud.
MUTATING = {"create_image", "copy_within", "update_image", "delete_image"}
OBSERVE = ["Observe"]


def mutating(h: Harness) -> list[str]:
    return [name for name in h.provider.names() if name in MUTATING]


def spec_with(policies: list[str], **overrides: Any) -> ImageSpec:
    return make_spec(managementPolicies=policies, **overrides)


def observing(h: Harness, *, display: str = "transcode") -> tuple[ImageObject, str]:
    """An observe-only Image naming a cloud image someone else made (with another display
    name than the spec's, so the two differ)."""
    foreign = h.provider.seed("someone", spec=make_spec(displayName="made elsewhere"))
    obj = make_obj(
        spec=spec_with(OBSERVE, displayName=display),
        annotations={ANNOTATION_EXTERNAL_ID: foreign},
    )
    return obj, foreign


def test_default_is_every_policy() -> None:
    spec = make_spec()
    assert spec.management_policies == [ManagementPolicy.ALL]
    assert all(spec.allows(p) for p in ManagementPolicy)


def test_observe_only_mirrors_the_cloud_and_its_whole_life_makes_no_mutating_call() -> None:
    h = Harness()
    obj, foreign = observing(h)
    h.provider.advance(foreign, CloudState.CREATING, 40)

    first = h.reconcile(obj)
    assert first.status["externalID"] == foreign
    assert (first.status["cloudState"], first.status["progress"]) == ("Creating", 40)

    h.provider.advance(foreign, CloudState.AVAILABLE, 100)
    ready = h.reconcile(after(obj, first))
    ready_cond = cond(ready, "Ready")
    assert (ready_cond["status"], ready_cond["reason"]) == ("True", "Observed")
    # The spec's displayName differs from the cloud's: reported, never pushed.
    assert "no Update" in ready_cond["message"]
    assert h.provider.images[foreign].fingerprint == fingerprint(
        make_spec(displayName="made elsewhere")
    )

    gone = h.finalize(after(obj, ready))
    assert gone.done is True
    assert "Orphaned" in reasons(gone)
    assert foreign in h.provider.images and h.provider.images[foreign].state is CloudState.AVAILABLE
    assert mutating(h) == []


def test_observe_only_without_an_id_stalls_and_calls_nothing() -> None:
    h = Harness()
    outcome = h.reconcile(make_obj(spec=spec_with(OBSERVE)))

    stalled = cond(outcome, "Stalled")
    assert stalled["reason"] == "NothingToObserve"
    assert "spec.managementPolicies" in stalled["message"]
    assert ANNOTATION_EXTERNAL_ID in stalled["message"] and "spec.adopt" in stalled["message"]
    assert h.provider.calls == []


def test_observe_only_never_needs_the_provider_to_support_its_source() -> None:
    h = Harness()
    h.provider.operations = frozenset()  # could create from nothing at all
    obj, foreign = observing(h)

    outcome = h.reconcile(obj)

    assert outcome.status["externalID"] == foreign
    assert cond(outcome, "Ready")["status"] == "True"


def test_an_observed_image_deleted_outside_is_not_made_again() -> None:
    h = Harness()
    obj, foreign = observing(h)
    obj = after(obj, h.reconcile(obj))
    h.provider.vanish(foreign)

    outcome = h.reconcile(obj)

    stalled = cond(outcome, "Stalled")
    assert stalled["reason"] == "CloudImageGone" and foreign in stalled["message"]
    assert mutating(h) == []


def test_an_observed_failed_image_is_not_deleted_when_the_spec_changes() -> None:
    h = Harness()
    obj, foreign = observing(h)
    h.provider.advance(foreign, CloudState.FAILED, message="disk full")
    obj = after(obj, h.reconcile(obj))

    outcome = h.reconcile(replace(obj, generation=2))

    assert cond(outcome, "Stalled")["reason"] == "CloudFailed"
    assert mutating(h) == []


def test_observe_only_under_report_drift_keeps_mirroring_instead_of_stalling() -> None:
    h = Harness()
    h.handle = replace(h.handle, drift_policy=DriftPolicy.REPORT)
    obj, _ = observing(h)
    obj = after(obj, h.reconcile(obj))
    drift = {"detectedAt": "t", "generation": 1, "message": "modified outside"}
    obj = replace(obj, status={**obj.status, "drift": drift})

    outcome = h.reconcile(obj)

    assert cond(outcome, "Ready")["status"] == "True"
    assert mutating(h) == []


@pytest.mark.parametrize("policy", [DeletionPolicy.DELETE, DeletionPolicy.ORPHAN])
def test_without_delete_the_cloud_image_stays_whatever_the_deletion_policy(
    policy: DeletionPolicy,
) -> None:
    h = Harness()
    spec = spec_with(["Observe", "Create", "Update"])
    obj, external_id = make_ready(h, make_obj(spec=spec, deletion_policy=policy))

    gone = h.finalize(obj)

    assert gone.done is True
    assert h.provider.calls_to("delete_image") == []
    assert h.provider.images[external_id].state is CloudState.AVAILABLE
    assert any("no Delete" in e.message for e in gone.events if e.reason == "Orphaned")


def test_without_update_a_spec_change_is_reported_not_pushed() -> None:
    h = Harness()
    spec = spec_with(["Observe", "Create", "Delete"])
    obj, external_id = make_ready(h, make_obj(spec=spec))
    h.provider.reset_calls()

    changed = replace(obj, spec=spec_with(["Observe", "Create", "Delete"], displayName="new"))
    outcome = h.reconcile(replace(changed, generation=2))

    ready = cond(outcome, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Available")
    assert "spec.managementPolicies has no Update" in ready["message"]
    assert h.provider.calls_to("update_image") == []
    # Still managed otherwise: deletion deletes.
    h.finalize(after(changed, outcome))
    assert h.provider.calls_to("delete_image") == [(external_id,)]


def test_with_update_but_without_create_an_adopted_image_gets_the_spec() -> None:
    h = Harness()
    foreign = h.provider.seed("someone", spec=make_spec(displayName="made elsewhere"))
    obj = make_obj(
        spec=spec_with(["Observe", "Update"]), annotations={ANNOTATION_EXTERNAL_ID: foreign}
    )

    h.reconcile(obj)

    assert h.provider.calls_to("update_image") == [(foreign,)]
    assert h.provider.calls_to("create_image") == []


def _ready_body(external_id: str, policies: list[str], recorded: str | None) -> dict[str, Any]:
    spec = make_spec(managementPolicies=policies).model_dump(
        by_alias=True, exclude_none=True, mode="json"
    )
    status: dict[str, Any] = {
        "observedGeneration": 1,
        "externalID": external_id,
        "conditions": [{"type": "Ready", "status": "True"}],
    }
    if recorded is not None:
        status["drift"] = {"detectedAt": "t", "generation": 1, "message": recorded}
    return {
        "metadata": {"name": "img", "namespace": "default", "uid": "u", "generation": 1},
        "spec": spec,
        "status": status,
    }


@pytest.mark.parametrize(("policies", "reported_again"), [(OBSERVE, False), (["*"], True)])
def test_a_modification_on_record_is_reported_once_for_an_image_that_may_not_update(
    policies: list[str], reported_again: bool
) -> None:
    """An observe-only Image stays Ready beside a difference it may not correct: the resync
    reports it once per generation, not every interval. One that may update corrected the
    last report, so the same words again are news."""
    h = Harness()
    external_id = h.provider.seed("a", spec=make_spec(displayName="edited by hand"))
    first = drift.detect(
        drift.ready_images([_ready_body(external_id, policies, None)], "fake"),
        h.provider,
        h.observer,
        "fake provider",
    )
    assert [d.reason for d in first] == ["CloudImageModified"]

    h.clock.advance(60)
    again = drift.detect(
        drift.ready_images([_ready_body(external_id, policies, first[0].message)], "fake"),
        h.provider,
        h.observer,
        "fake provider",
    )

    assert bool(again) is reported_again

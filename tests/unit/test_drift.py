"""Drift of Ready Images (reconcilers/drift.py, handlers/diffbase.py, the Report policy in the
Image reconciler): judged from one batched describe, asked for through status.drift."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import kopf

from image_operator.api.provider import DriftPolicy
from image_operator.handlers.diffbase import PROGRESS_FIELD, DigestDiffBaseStorage
from image_operator.providers.model import CloudState
from image_operator.reconcilers import drift
from tests.unit.fakes import FakeImage
from tests.unit.test_image_reconciler import (
    UID,
    Harness,
    after,
    cond,
    make_ready,
    make_spec,
    reasons,
)


def _body(
    name: str, external_id: str, *, generation: int = 2, observed: int = 2, **extra: Any
) -> dict[str, Any]:
    spec = make_spec().model_dump(by_alias=True, exclude_none=True, mode="json")
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": UID,
            "generation": generation,
            **extra.pop("metadata", {}),
        },
        "spec": {**spec, "providerRef": {"name": extra.pop("provider", "fake")}},
        "status": {
            "observedGeneration": observed,
            "externalID": external_id,
            "conditions": [{"type": "Ready", "status": extra.pop("ready", "True")}],
        },
    }


def test_only_images_ready_for_their_current_spec_are_resynced() -> None:
    bodies = [
        _body("ready", "img-1"),
        _body("other-provider", "img-2", provider="another"),
        _body("changed", "img-3", generation=3),  # being reconciled: not news
        _body("not-ready", "img-4", ready="False"),
        _body("paused", "img-5", metadata={"annotations": {"imageops.io/paused": "true"}}),
        _body("deleting", "img-6", metadata={"deletionTimestamp": "2026-01-01T00:00:00Z"}),
    ]

    assert [i.name for i in drift.ready_images(bodies, "fake")] == ["ready"]


def test_deleted_modified_and_failed_images_are_found_in_one_batched_describe() -> None:
    h = Harness()
    spec = make_spec()
    kept = h.provider.seed("a", spec=spec)
    deleted = h.provider.seed("b", spec=spec)
    modified = h.provider.seed("c", spec=spec)
    failed = h.provider.seed("d", spec=spec)
    del h.provider.images[deleted]
    h.provider.images[modified].fingerprint = "changed by hand"
    h.provider.images[failed].state = CloudState.FAILED
    images = drift.ready_images(
        [_body(n, i) for n, i in [("a", kept), ("b", deleted), ("c", modified), ("d", failed)]],
        "fake",
    )
    h.provider.reset_calls()

    drifts = drift.detect(images, h.provider, h.observer, "fake provider")

    assert [(d.image.name, d.reason) for d in drifts] == [
        ("b", "CloudImageMissing"),
        ("c", "CloudImageModified"),
        ("d", "CloudImageState"),
    ]
    assert h.provider.calls_to("get_images") == [((kept, deleted, modified, failed),)]  # one batch
    assert "deleted outside the operator" in drifts[0].message


def test_a_deleted_image_is_created_again_under_correct() -> None:
    h = Harness()
    obj, external_id = make_ready(h)
    del h.provider.images[external_id]
    detected = {"detectedAt": "t", "generation": obj.generation, "message": "deleted outside"}

    outcome = h.reconcile(replace(obj, status={**obj.status, "drift": detected}))

    assert "CloudImageMissing" in reasons(outcome)
    assert outcome.status.get("externalID") is None  # forgotten: the next step creates anew
    assert cond(outcome, "Ready")["status"] == "False"


def test_report_policy_stalls_without_a_cloud_call_until_the_spec_changes() -> None:
    h = Harness()
    h.handle = replace(h.handle, drift_policy=DriftPolicy.REPORT)
    obj, external_id = make_ready(h)
    h.provider.images[external_id] = FakeImage(external_id, UID, CloudState.AVAILABLE, "hand")
    detected = {"detectedAt": "t", "generation": obj.generation, "message": "modified outside"}
    h.provider.reset_calls()

    outcome = h.reconcile(replace(obj, status={**obj.status, "drift": detected}))

    stalled = cond(outcome, "Stalled")
    assert stalled["reason"] == "Drifted"
    assert "modified outside" in stalled["message"] and "driftPolicy" in stalled["message"]
    assert h.provider.calls == []
    changed = after(replace(obj, generation=obj.generation + 1), outcome)
    applied = h.reconcile(replace(changed, status={**changed.status, "drift": detected}))
    assert h.provider.calls_to("update_image") != []
    assert condition_reason(applied) != "Drifted"


def condition_reason(outcome: Any) -> str | None:
    stalled = [c for c in outcome.status.get("conditions") or [] if c["type"] == "Stalled"]
    return stalled[0]["reason"] if stalled and stalled[0]["status"] == "True" else None


def test_a_drift_record_asks_kopf_for_a_reconcile() -> None:
    storage = DigestDiffBaseStorage(progress=kopf.StatusProgressStorage(field=PROGRESS_FIELD))
    body = _body("x", "img-1")
    plain = storage.build(body=kopf.Body(body))  # type: ignore[arg-type]
    noted = {**body, "status": {**body["status"], "drift": {"detectedAt": "t", "generation": 2}}}
    other = {**body, "status": {**body["status"], "phase": "Ready"}}

    assert storage.build(body=kopf.Body(noted)) != plain  # type: ignore[arg-type]
    assert storage.build(body=kopf.Body(other)) == plain  # type: ignore[arg-type]


def test_only_an_image_ready_for_its_spec_and_not_drifted_is_settled_at_start() -> None:
    from image_operator.handlers.kinds import settled

    ready = _body("a", "img-1")
    changed = _body("b", "img-2", generation=3)
    drifted = _body("c", "img-3")
    drifted["status"]["drift"] = {"generation": 2}
    deleting = _body("d", "img-4", metadata={"deletionTimestamp": "2026-01-01T00:00:00Z"})

    assert [settled(b) for b in (ready, changed, drifted, deleting)] == [True, False, False, False]

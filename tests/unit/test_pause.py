"""Pause, one rule for every kind: no cloud call, the Ready condition kept as it was, and a spec
changed while paused is not reported as observed — status.observedGeneration and the
conditions' observedGeneration stay at the last generation acted on, so kstatus reads the object
as InProgress and `kubectl wait` does not succeed on a spec that was never applied."""

from __future__ import annotations

from dataclasses import replace

from image_operator.api.common import ANNOTATION_PAUSED
from tests.unit import test_image_reconciler as images
from tests.unit import test_pipeline_reconciler as pipelines


def test_an_image_changed_while_paused_is_not_observed() -> None:
    h = images.Harness()
    obj, _ = images.make_ready(h)
    assert obj.status["observedGeneration"] == obj.generation == 1
    h.provider.reset_calls()

    paused = replace(obj, annotations={ANNOTATION_PAUSED: "true"}, generation=2)
    outcome = h.reconcile(paused)

    assert h.provider.calls == []
    assert outcome.status["observedGeneration"] == 1
    ready = images.cond(outcome, "Ready")
    assert (ready["status"], ready["observedGeneration"]) == ("True", 1)

    resumed = h.reconcile(images.after(paused, outcome, annotations={}))
    assert resumed.status["observedGeneration"] == 2  # acted on once the pause is lifted


def test_a_paused_image_that_never_was_made_claims_no_generation() -> None:
    h = images.Harness()
    outcome = h.reconcile(images.make_obj(annotations={ANNOTATION_PAUSED: "true"}))
    assert "observedGeneration" not in outcome.status
    assert images.cond(outcome, "Ready")["status"] == "False"


def test_a_paused_image_as_the_api_server_shows_it_before_any_write() -> None:
    # The CRD defaults status.observedGeneration to -1 until the operator writes it: the -1 is
    # "not observed", never copied into a condition (whose observedGeneration is >= 0).
    h = images.Harness()
    fresh = images.make_obj(
        annotations={ANNOTATION_PAUSED: "true"}, status={"observedGeneration": -1}
    )

    outcome = h.reconcile(fresh)

    assert outcome.status["phase"] == "Paused"
    assert "observedGeneration" not in outcome.status  # so the API server shows -1 again
    ready = images.cond(outcome, "Ready")
    assert ready["status"] == "False" and "observedGeneration" not in ready
    unpaused = h.reconcile(images.make_obj(status={"observedGeneration": -1}))
    assert unpaused.status["observedGeneration"] == 1


def test_a_paused_pipeline_keeps_ready_like_every_other_kind() -> None:
    h = pipelines.Harness()
    obj, outcome = h.settle(pipelines.make_obj())
    before = pipelines.ready(outcome)
    h.provider.calls.clear()

    paused = replace(obj, annotations={ANNOTATION_PAUSED: "true"}, generation=2)
    outcome = h.reconcile(paused)

    assert h.provider.calls == []
    assert outcome.status["phase"] == "Paused"
    assert outcome.status["observedGeneration"] == 1
    ready = pipelines.ready(outcome)
    assert (ready["status"], ready["reason"]) == (before["status"], before["reason"])

"""ImageReconciler against an in-memory cloud: status, conditions, events and the calls it makes."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from image_operator.api.common import ANNOTATION_EXTERNAL_ID, ANNOTATION_PAUSED, DeletionPolicy
from image_operator.api.image import ImageSpec
from image_operator.providers.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    Throttled,
    Transient,
)
from image_operator.providers.model import CloudState, Operation
from image_operator.providers.observer import ImageObserver
from image_operator.reconcilers import outcome as outcome_module
from image_operator.reconcilers.copy import CopySource
from image_operator.reconcilers.image import (
    ImageObject,
    ImageReconciler,
    copies_itself,
    spec_problem,
)
from image_operator.reconcilers.managed import Backoff, ProviderHandle
from image_operator.reconcilers.outcome import Event, Outcome, condition
from tests.unit.fakes import FakeClock, FakeProvider

UID = "6f1c2a8e-0000-4000-8000-00000000abcd"
POLL = 7.0
MAX_AGE = 5.0
BACKOFF = Backoff(base=2.0, maximum=60.0, provider_wait=11.0, spread=lambda: 1.0)


def make_spec(**overrides: Any) -> ImageSpec:
    raw: dict[str, Any] = {
        "providerRef": {"name": "fake"},
        "source": {"repository": {"image": "nvidia/cuda10.1:tensorflow_mgdc-test-v0.1"}},
        "displayName": "transcode",
        "description": "whole-file transcode",
        "price": "0",
        "command": ["python3 main.py --task_id={{inputs.task_id}}"],
        "inputs": [
            {
                "name": "task_id",
                "displayName": "Task ID",
                "kind": "input",
                "type": "string",
                "default": "-",
                "index": 0,
                "controls": "input",
            }
        ],
    }
    raw.update(overrides)
    return ImageSpec.model_validate(raw)


def make_obj(
    *,
    spec: ImageSpec | None = None,
    status: Mapping[str, Any] | None = None,
    generation: int = 1,
    annotations: Mapping[str, str] | None = None,
    spec_error: str | None = None,
    deletion_policy: DeletionPolicy = DeletionPolicy.DELETE,
    use_default_spec: bool = True,
) -> ImageObject:
    if spec is None and use_default_spec:
        spec = make_spec()
    return ImageObject(
        name="transcode",
        namespace="default",
        uid=UID,
        generation=generation,
        annotations=dict(annotations or {}),
        spec=spec,
        status=dict(status or {}),
        spec_error=spec_error,
        deletion_policy=deletion_policy,
    )


@dataclass
class Harness:
    provider: FakeProvider = field(default_factory=FakeProvider)
    clock: FakeClock = field(default_factory=FakeClock)
    reconciler: ImageReconciler = field(default_factory=lambda: ImageReconciler(BACKOFF))
    handle: ProviderHandle = field(init=False)

    def __post_init__(self) -> None:
        observer = ImageObserver(self.provider, max_age=MAX_AGE, clock=self.clock)
        self.handle = ProviderHandle("fake", self.provider, observer, poll_interval=POLL)

    @property
    def observer(self) -> ImageObserver:
        assert self.handle.observer is not None
        return self.handle.observer

    def reconcile(self, obj: ImageObject, attempt: int = 0, *, tick: bool = True) -> Outcome:
        """One reconcile, as after a requeue: by default time moves past the observer's cache."""
        if tick:
            self.clock.advance(POLL)
        return self.reconciler.reconcile(obj, self.handle, attempt)

    def finalize(self, obj: ImageObject, attempt: int = 0) -> Outcome:
        self.clock.advance(POLL)
        return self.reconciler.finalize(obj, self.handle, attempt)


def after(obj: ImageObject, outcome: Outcome, **changes: Any) -> ImageObject:
    """The object as the next reconcile sees it: the outcome's status written back."""
    return replace(obj, status=outcome.status, **changes)


def cond(outcome: Outcome, type_: str) -> dict[str, Any]:
    found = condition(outcome.status, type_)
    assert found is not None, f"no {type_} condition in {outcome.status.get('conditions')}"
    return found


def types(outcome: Outcome) -> set[str]:
    return {c["type"] for c in outcome.status.get("conditions") or []}


def reasons(outcome: Outcome) -> list[str]:
    return [event.reason for event in outcome.events]


@pytest.fixture(autouse=True)
def fake_now(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every condition write gets a new, distinct timestamp, so kept ones are visible."""
    seconds = itertools.count()

    def now() -> str:
        s = next(seconds)
        return f"2025-01-01T00:{s // 60:02d}:{s % 60:02d}Z"

    monkeypatch.setattr(outcome_module, "now_rfc3339", now)
    yield


@pytest.fixture
def h() -> Harness:
    return Harness()


def create(h: Harness, obj: ImageObject | None = None) -> tuple[ImageObject, str]:
    """First reconcile: the image is created; returns the object with that status and its ID."""
    obj = obj or make_obj()
    outcome = h.reconcile(obj)
    external_id = outcome.status["externalID"]
    return after(obj, outcome), external_id


def make_ready(h: Harness, obj: ImageObject | None = None) -> tuple[ImageObject, str]:
    obj, external_id = create(h, obj)
    h.provider.advance(external_id, CloudState.AVAILABLE, 100)
    outcome = h.reconcile(obj)
    assert outcome.status["phase"] == "Ready"
    return after(obj, outcome), external_id


# -- create -----------------------------------------------------------------------------------
def test_first_reconcile_looks_up_then_creates_once_and_records_the_id(h: Harness) -> None:
    obj = make_obj(generation=3)
    outcome = h.reconcile(obj)

    assert h.provider.calls == [("find_image", (UID,)), ("create_image", (UID,))]
    (external_id,) = h.provider.images
    assert h.provider.images[external_id].key == UID
    status = outcome.status
    assert status["externalID"] == external_id
    assert status["phase"] == "Creating"
    assert status["observedGeneration"] == 3
    assert status["providerType"] == "fake"
    assert status["cloudState"] == "Pending"
    assert "progress" not in status
    ready, reconciling = cond(outcome, "Ready"), cond(outcome, "Reconciling")
    assert (ready["status"], ready["reason"]) == ("False", "Creating")
    assert (reconciling["status"], reconciling["reason"]) == ("True", "Creating")
    assert (
        external_id in reconciling["message"] and "fake provider 'fake'" in reconciling["message"]
    )
    assert ready["observedGeneration"] == 3
    assert "Stalled" not in types(outcome)
    assert outcome.requeue_after == h.handle.poll_interval == POLL
    assert outcome.retrying is False
    assert outcome.events == [
        Event("Creating", f"fake provider 'fake' accepted image {external_id!r}")
    ]


def test_reconcile_does_not_mutate_the_status_it_was_given(h: Harness) -> None:
    status = {"phase": "Pending", "custom": "kept"}
    obj = make_obj(status=status)
    outcome = h.reconcile(obj)
    assert status == {"phase": "Pending", "custom": "kept"}
    assert outcome.status["custom"] == "kept"


def test_polling_reports_cloud_progress(h: Harness) -> None:
    obj, external_id = create(h)
    h.provider.advance(external_id, CloudState.CREATING, 40)
    h.provider.reset_calls()

    outcome = h.reconcile(obj)

    assert h.provider.calls == [("get_images", ((external_id,),))]
    assert outcome.status["progress"] == 40
    assert outcome.status["cloudState"] == "Creating"
    assert outcome.status["phase"] == "Creating"
    assert "(40%)" in cond(outcome, "Reconciling")["message"]
    assert cond(outcome, "Ready")["status"] == "False"
    assert outcome.requeue_after == POLL
    assert outcome.events == []  # polling is quiet

    h.provider.advance(external_id, CloudState.CREATING, 85)
    outcome = h.reconcile(after(obj, outcome))
    assert outcome.status["progress"] == 85


def test_available_image_becomes_ready_with_one_event(h: Harness) -> None:
    obj, external_id = create(h)
    h.provider.advance(external_id, CloudState.CREATING, 60)
    polling = h.reconcile(obj)
    obj = after(obj, polling)
    h.provider.advance(external_id, CloudState.AVAILABLE, None)
    h.provider.reset_calls()

    outcome = h.reconcile(obj)

    assert h.provider.names() == ["get_images", "needs_update"]
    status = outcome.status
    assert status["phase"] == "Ready"
    assert status["progress"] == 100
    assert status["cloudState"] == "Available"
    assert status["externalID"] == external_id
    ready = cond(outcome, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Available")
    assert external_id in ready["message"]
    assert types(outcome) == {"Ready"}  # Reconciling and Stalled absent (== False)
    assert outcome.requeue_after is None
    assert reasons(outcome) == ["Ready"]
    # Ready changed from False to True: a new transition time.
    assert ready["lastTransitionTime"] != cond(polling, "Ready")["lastTransitionTime"]

    # Later reconciles (resync, restarts): no new event, transition time kept.
    again = h.reconcile(after(obj, outcome))
    assert again.events == []
    assert again.status["phase"] == "Ready"
    assert cond(again, "Ready")["lastTransitionTime"] == ready["lastTransitionTime"]
    assert types(again) == {"Ready"}


def test_transition_times_kept_while_condition_status_stays(h: Harness) -> None:
    obj, external_id = create(h)
    created_ready = cond_of(obj, "Ready")
    created_reconciling = cond_of(obj, "Reconciling")
    h.provider.advance(external_id, CloudState.CREATING, 50)

    outcome = h.reconcile(obj)

    ready, reconciling = cond(outcome, "Ready"), cond(outcome, "Reconciling")
    # Both stayed as they were (False / True); reason and message may change, the time not.
    assert ready["status"] == "False"
    assert ready["lastTransitionTime"] == created_ready["lastTransitionTime"]
    assert reconciling["lastTransitionTime"] == created_reconciling["lastTransitionTime"]
    assert reconciling["message"] != created_reconciling["message"]  # now says 50%


def cond_of(obj: ImageObject, type_: str) -> dict[str, Any]:
    found = condition(dict(obj.status), type_)
    assert found is not None, f"no {type_} condition in {obj.status.get('conditions')}"
    return found


# -- crash recovery (idempotency) -------------------------------------------------------------
def test_image_with_our_key_is_recovered_not_created_again(h: Harness) -> None:
    # A create succeeded earlier but the operator died before writing the status.
    existing = h.provider.seed(UID, spec=make_spec(), state=CloudState.CREATING, progress=30)

    outcome = h.reconcile(make_obj())

    assert h.provider.calls == [("find_image", (UID,))]
    assert list(h.provider.images) == [existing]
    assert outcome.status["externalID"] == existing
    assert outcome.status["progress"] == 30
    assert outcome.status["phase"] == "Creating"
    assert reasons(outcome) == ["Recovered"]
    assert existing in outcome.events[0].message
    assert outcome.requeue_after == POLL


def test_create_conflict_is_resolved_by_lookup(h: Harness) -> None:
    # The lookup index lags: find misses the image, the create is refused as a duplicate.
    existing = h.provider.seed(UID, spec=make_spec(), state=CloudState.PENDING)
    h.provider.lag_next_find()

    outcome = h.reconcile(make_obj())

    assert h.provider.calls == [
        ("find_image", (UID,)),
        ("create_image", (UID,)),
        ("find_image", (UID,)),
    ]
    assert list(h.provider.images) == [existing]
    assert outcome.status["externalID"] == existing
    assert reasons(outcome) == ["Recovered"]
    assert cond(outcome, "Reconciling")["reason"] == "Creating"


def test_conflict_without_a_findable_image_is_retried(h: Harness) -> None:
    h.provider.seed(UID, spec=make_spec(), state=CloudState.PENDING)
    h.provider.lag_next_find(times=2)

    outcome = h.reconcile(make_obj())

    assert h.provider.names() == ["find_image", "create_image", "find_image"]
    assert "externalID" not in outcome.status
    assert outcome.retrying is True
    assert outcome.requeue_after == BACKOFF.delay(0)
    assert cond(outcome, "Reconciling")["reason"] == "CloudUnavailable"


# -- spec updates -----------------------------------------------------------------------------
def test_spec_change_on_available_image_is_pushed_once(h: Harness) -> None:
    obj, external_id = make_ready(h)
    changed = replace(obj, generation=2, spec=make_spec(displayName="transcode v2"))
    h.provider.reset_calls()

    outcome = h.reconcile(changed)

    assert h.provider.calls == [
        ("get_images", ((external_id,),)),
        ("needs_update", (external_id,)),
        ("update_image", (external_id,)),
    ]
    assert outcome.status["phase"] == "Updating"
    assert outcome.status["observedGeneration"] == 2
    reconciling = cond(outcome, "Reconciling")
    assert (reconciling["status"], reconciling["reason"]) == ("True", "Updating")
    assert cond(outcome, "Ready")["status"] == "False"
    assert outcome.requeue_after == POLL
    assert reasons(outcome) == ["Updated"]

    # The observer remembers the update's answer: a poll within max_age is served from it
    # (no cloud call) and sees the updated image, so no second update.
    h.provider.reset_calls()
    settled = h.reconcile(after(changed, outcome), tick=False)
    assert h.provider.calls == [("needs_update", (external_id,))]
    assert settled.status["phase"] == "Ready"
    assert reasons(settled) == ["Ready"]


def test_unchanged_spec_makes_no_update_call(h: Harness) -> None:
    obj, external_id = make_ready(h)
    h.provider.reset_calls()
    outcome = h.reconcile(obj)
    assert "update_image" not in h.provider.names()
    assert h.provider.calls_to("needs_update") == [(external_id,)]
    assert outcome.status["phase"] == "Ready"


def test_update_on_provider_without_update_is_stalled(h: Harness) -> None:
    provider = FakeProvider(operations={Operation.CREATE_FROM_REPOSITORY, Operation.DELETE})
    h = Harness(provider=provider)
    obj, _ = make_ready(h)
    changed = replace(obj, spec=make_spec(displayName="renamed"), generation=2)
    outcome = h.reconcile(changed)
    assert "update_image" not in provider.names()
    stalled = cond(outcome, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "Unsupported")
    assert "'fake'" in stalled["message"] and "update" in stalled["message"]
    assert outcome.requeue_after is None


# -- adoption ---------------------------------------------------------------------------------
def test_adoption_takes_over_an_existing_image(h: Harness) -> None:
    foreign = h.provider.seed("someone-else", spec=make_spec(), external_id="img-legacy")
    obj = make_obj(annotations={ANNOTATION_EXTERNAL_ID: foreign})

    outcome = h.reconcile(obj)

    assert "create_image" not in h.provider.names()
    assert "find_image" not in h.provider.names()
    assert h.provider.calls[0] == ("get_image", (foreign,))
    assert outcome.status["externalID"] == foreign
    assert outcome.status["phase"] == "Ready"
    assert cond(outcome, "Ready")["status"] == "True"
    assert reasons(outcome) == ["Adopted", "Ready"]
    assert foreign in outcome.events[0].message

    # Next time the adopted ID is simply polled; no second Adopted event.
    h.provider.reset_calls()
    again = h.reconcile(after(obj, outcome))
    assert h.provider.names() == ["get_images", "needs_update"]
    assert again.events == []


def test_adopting_a_missing_image_stalls_naming_id_and_annotation(h: Harness) -> None:
    obj = make_obj(annotations={ANNOTATION_EXTERNAL_ID: "img-nope"})

    outcome = h.reconcile(obj)

    assert h.provider.calls == [("get_image", ("img-nope",))]
    assert h.provider.images == {}
    assert "externalID" not in outcome.status
    assert outcome.status["phase"] == "Stalled"
    stalled = cond(outcome, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "AdoptionFailed")
    assert "'img-nope'" in stalled["message"]
    assert ANNOTATION_EXTERNAL_ID in stalled["message"]
    assert cond(outcome, "Ready")["reason"] == "AdoptionFailed"
    assert "Reconciling" not in types(outcome)
    assert outcome.requeue_after is None
    assert outcome.events[0].type == "Warning"
    assert reasons(outcome) == ["AdoptionFailed"]


# -- pause ------------------------------------------------------------------------------------
def test_paused_object_makes_no_calls_and_keeps_ready(h: Harness) -> None:
    obj, external_id = make_ready(h)
    ready_before = cond_of(obj, "Ready")
    h.provider.advance(external_id, CloudState.FAILED, message="disk lost")
    h.provider.reset_calls()

    paused = replace(obj, annotations={ANNOTATION_PAUSED: "True"}, generation=2)
    outcome = h.reconcile(paused)

    assert h.provider.calls == []
    assert outcome.status["phase"] == "Paused"
    assert outcome.status["externalID"] == external_id
    ready = cond(outcome, "Ready")
    assert {k: ready[k] for k in ("status", "reason", "message", "lastTransitionTime")} == {
        k: ready_before[k] for k in ("status", "reason", "message", "lastTransitionTime")
    }
    assert types(outcome) == {"Ready"}
    assert outcome.requeue_after is None
    assert outcome.events == []


def test_paused_before_any_create_makes_no_calls(h: Harness) -> None:
    outcome = h.reconcile(make_obj(annotations={ANNOTATION_PAUSED: "true"}))
    assert h.provider.calls == []
    assert outcome.status["phase"] == "Paused"
    ready = cond(outcome, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Paused")
    assert "externalID" not in outcome.status


def test_paused_annotation_other_than_true_does_not_pause(h: Harness) -> None:
    outcome = h.reconcile(make_obj(annotations={ANNOTATION_PAUSED: "false"}))
    assert h.provider.names() == ["find_image", "create_image"]
    assert outcome.status["phase"] == "Creating"


# -- invalid spec and unsupported sources -----------------------------------------------------
def test_undecodable_spec_stalls_with_the_decoder_message(h: Harness) -> None:
    message = "spec.displayName: String should have at least 1 character"
    obj = make_obj(spec_error=message, use_default_spec=False)

    outcome = h.reconcile(obj)

    assert h.provider.calls == []
    assert outcome.status["phase"] == "Stalled"
    stalled = cond(outcome, "Stalled")
    assert (stalled["status"], stalled["reason"], stalled["message"]) == (
        "True",
        "InvalidSpec",
        message,
    )
    ready = cond(outcome, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert outcome.requeue_after is None
    assert outcome.events == [Event("InvalidSpec", message, "Warning")]


def test_command_naming_an_undeclared_parameter_stalls(h: Harness) -> None:
    spec = make_spec(command=["run --task={{inputs.task_id}} --x={{inputs.x}}"])
    assert spec_problem(spec) is not None

    outcome = h.reconcile(make_obj(spec=spec))

    assert h.provider.calls == []
    stalled = cond(outcome, "Stalled")
    assert stalled["reason"] == "InvalidSpec"
    assert "inputs.x" in stalled["message"]
    assert "spec.command[0]" in stalled["message"]
    assert "task_id" in stalled["message"]  # names what is declared
    assert outcome.requeue_after is None


def test_valid_spec_has_no_problem() -> None:
    assert spec_problem(make_spec()) is None


def test_unsupported_source_stalls_naming_provider_type_and_operation() -> None:
    provider = FakeProvider(operations={Operation.IMPORT_URL, Operation.DELETE})
    h = Harness(provider=provider)

    outcome = h.reconcile(make_obj())

    assert provider.calls == []
    assert provider.images == {}
    stalled = cond(outcome, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "Unsupported")
    assert "'fake'" in stalled["message"]
    assert Operation.CREATE_FROM_REPOSITORY.value in stalled["message"]
    assert outcome.status["phase"] == "Stalled"
    assert outcome.requeue_after is None
    assert reasons(outcome) == ["Unsupported"]


# -- errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize("attempt", [0, 1, 3])
def test_transient_error_is_retried_with_backoff(h: Harness, attempt: int) -> None:
    h.provider.fail_next("create_image", Transient("argon answered 503"))

    outcome = h.reconcile(make_obj(), attempt)

    assert h.provider.names() == ["find_image", "create_image"]
    assert h.provider.images == {}
    assert outcome.retrying is True
    assert outcome.requeue_after == BACKOFF.delay(attempt)
    reconciling = cond(outcome, "Reconciling")
    assert (reconciling["status"], reconciling["reason"]) == ("True", "CloudUnavailable")
    assert "argon answered 503" in reconciling["message"]
    assert f"retrying in {BACKOFF.delay(attempt):.0f}s" in reconciling["message"]
    assert cond(outcome, "Ready")["status"] == "False"
    assert "Stalled" not in types(outcome)
    assert outcome.status["phase"] == "Pending"
    if attempt == 0:
        assert [(e.reason, e.type) for e in outcome.events] == [("CloudUnavailable", "Warning")]
    else:
        assert outcome.events == []


def test_backoff_grows_is_capped_and_jittered() -> None:
    backoff = Backoff(base=5.0, maximum=30.0)
    assert [backoff.ceiling(a) for a in range(6)] == [5, 10, 20, 30, 30, 30]
    assert backoff.ceiling(10_000) == 30.0
    delays = [backoff.delay(3) for _ in range(200)]
    assert all(15.0 <= d <= 30.0 for d in delays)  # half fixed, half random
    assert len({round(d, 3) for d in delays}) > 100  # objects failing together spread out
    low, high = Backoff(spread=lambda: 0.0), Backoff(spread=lambda: 0.999)
    assert (low.delay(0), round(high.delay(0), 2)) == (0.5, 1.0)  # the defaults: 1 s first


def test_transient_error_then_success_creates_once(h: Harness) -> None:
    h.provider.fail_next("find_image", Transient("timeout"))
    obj = make_obj()
    failed = h.reconcile(obj)
    assert failed.retrying is True
    outcome = h.reconcile(after(obj, failed), attempt=1)
    assert outcome.retrying is False
    assert h.provider.names() == ["find_image", "find_image", "create_image"]
    assert len(h.provider.images) == 1
    assert outcome.status["phase"] == "Creating"


def test_throttled_waits_at_least_retry_after(h: Harness) -> None:
    h.provider.fail_next("create_image", Throttled("slow down", retry_after=42.0))
    outcome = h.reconcile(make_obj())
    assert outcome.requeue_after is not None
    assert outcome.requeue_after >= 42.0
    assert outcome.retrying is True
    assert cond(outcome, "Reconciling")["reason"] == "Throttled"

    # A retry_after shorter than the backoff does not shorten it.
    h.provider.fail_next("create_image", Throttled("slow down", retry_after=0.5))
    outcome = h.reconcile(make_obj(), attempt=2)
    assert outcome.requeue_after == BACKOFF.delay(2)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (Forbidden("access key lacks images:create"), "PermissionDenied"),
        (InvalidInput("displayName contains forbidden characters"), "InvalidSpec"),
    ],
)
def test_non_retryable_errors_stall_without_requeue(
    h: Harness, error: Forbidden | InvalidInput, reason: str
) -> None:
    h.provider.fail_next("create_image", error)

    outcome = h.reconcile(make_obj())

    assert h.provider.names() == ["find_image", "create_image"]
    assert outcome.requeue_after is None
    assert outcome.retrying is False
    assert outcome.status["phase"] == "Stalled"
    stalled = cond(outcome, "Stalled")
    assert (stalled["status"], stalled["reason"], stalled["message"]) == (
        "True",
        reason,
        error.message,
    )
    assert cond(outcome, "Ready")["status"] == "False"
    assert "Reconciling" not in types(outcome)
    assert [(e.reason, e.type) for e in outcome.events] == [(reason, "Warning")]


def test_stalled_clears_once_the_cause_is_gone(h: Harness) -> None:
    h.provider.fail_next("create_image", Forbidden("denied"))
    obj = make_obj()
    stalled = h.reconcile(obj)
    assert "Stalled" in types(stalled)
    outcome = h.reconcile(after(obj, stalled, generation=2))
    assert "Stalled" not in types(outcome)
    assert outcome.status["phase"] == "Creating"
    assert outcome.status["observedGeneration"] == 2


def test_provider_unavailable_waits_with_its_problem_naming_the_field() -> None:
    problem = "ImageProvider 'fake' does not exist in namespace 'default'"
    handle = ProviderHandle("fake", problem=problem)
    reconciler = ImageReconciler(BACKOFF)

    outcome = reconciler.reconcile(make_obj(generation=4), handle)

    assert outcome.status["phase"] == "Pending"
    assert outcome.status["observedGeneration"] == 4
    reconciling = cond(outcome, "Reconciling")
    assert (reconciling["status"], reconciling["reason"], reconciling["message"]) == (
        "True",
        "WaitingForProvider",
        f"spec.providerRef: {problem}; work starts when it can be used",
    )
    ready = cond(outcome, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "WaitingForProvider")
    assert "Stalled" not in types(outcome)
    assert outcome.requeue_after == BACKOFF.provider_wait
    assert outcome.done is False
    assert outcome.events == []


def test_provider_unavailable_without_a_problem_names_the_provider() -> None:
    outcome = ImageReconciler(BACKOFF).reconcile(make_obj(), ProviderHandle("argon-prod"))
    assert "'argon-prod'" in cond(outcome, "Reconciling")["message"]


# -- cloud failure ----------------------------------------------------------------------------
def test_cloud_failure_stalls_then_a_spec_change_starts_over(h: Harness) -> None:
    obj, failed_id = create(h)
    h.provider.advance(failed_id, CloudState.FAILED, message="layer download failed")
    h.provider.reset_calls()

    failed = h.reconcile(obj)

    assert h.provider.names() == ["get_images"]
    assert failed.status["phase"] == "Failed"
    assert failed.status["cloudState"] == "Failed"
    assert failed.status["message"] == "layer download failed"
    stalled = cond(failed, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "CloudFailed")
    assert "layer download failed" in stalled["message"] and failed_id in stalled["message"]
    assert cond(failed, "Ready")["reason"] == "CloudFailed"
    assert "Reconciling" not in types(failed)
    assert failed.requeue_after is None
    assert [(e.reason, e.type) for e in failed.events] == [("CloudFailed", "Warning")]
    obj = after(obj, failed)

    # Same generation again (e.g. an operator restart): still Failed, nothing deleted.
    h.provider.reset_calls()
    again = h.reconcile(obj)
    assert "delete_image" not in h.provider.names()
    assert again.status["phase"] == "Failed"

    # The user edits the spec: the failed image is deleted and the ID cleared.
    obj = replace(obj, generation=2, spec=make_spec(displayName="transcode retry"))
    h.provider.reset_calls()
    restart = h.reconcile(obj)
    assert h.provider.calls == [("get_images", ((failed_id,),)), ("delete_image", (failed_id,))]
    assert "externalID" not in restart.status
    assert restart.status["phase"] == "Pending"
    assert restart.status["observedGeneration"] == 2
    assert cond(restart, "Reconciling")["reason"] == "Recreating"
    assert "Stalled" not in types(restart)
    assert restart.requeue_after is not None
    assert reasons(restart) == ["Recreating"]
    h.provider.finish_delete(failed_id)

    # Next reconcile creates a new image.
    h.provider.reset_calls()
    created = h.reconcile(after(obj, restart))
    assert h.provider.names() == ["find_image", "create_image"]
    assert created.status["externalID"] not in ("", failed_id)
    assert created.status["phase"] == "Creating"
    assert list(h.provider.images) == [created.status["externalID"]]


def test_failed_image_already_gone_on_restart_is_not_a_stall(h: Harness) -> None:
    obj, failed_id = create(h)
    h.provider.advance(failed_id, CloudState.FAILED, message="boom")
    obj = after(obj, h.reconcile(obj))
    # The cloud garbage-collects the failed image while the observer still remembers it
    # (no clock tick below: the next observe is served from the cache).
    h.provider.vanish(failed_id)

    outcome = h.reconcile(replace(obj, generation=2), tick=False)

    assert h.provider.calls_to("delete_image") == [(failed_id,)]
    assert "Stalled" not in types(outcome)
    assert "externalID" not in outcome.status
    assert cond(outcome, "Reconciling")["reason"] == "Recreating"


def test_spec_change_after_failure_survives_a_transient_error(h: Harness) -> None:
    obj, failed_id = create(h)
    h.provider.advance(failed_id, CloudState.FAILED, message="boom")
    obj = after(obj, h.reconcile(obj))
    obj = replace(obj, generation=2, spec=make_spec(displayName="retry"))
    h.provider.fail_next("delete_image", Transient("503"))
    retry = h.reconcile(obj)
    assert retry.retrying is True

    h.reconcile(after(obj, retry), attempt=1)

    assert h.provider.images[failed_id].state is CloudState.DELETING


# -- the cloud image vanished -----------------------------------------------------------------
def test_vanished_image_is_created_again(h: Harness) -> None:
    obj, old_id = make_ready(h)
    h.provider.vanish(old_id)
    h.provider.reset_calls()

    outcome = h.reconcile(obj)

    assert h.provider.names() == ["get_images"]
    assert "externalID" not in outcome.status
    assert "progress" not in outcome.status
    assert outcome.status["phase"] == "Pending"
    assert cond(outcome, "Ready")["status"] == "False"
    assert outcome.requeue_after is not None
    assert [(e.reason, e.type) for e in outcome.events] == [("CloudImageMissing", "Warning")]
    assert old_id in outcome.events[0].message

    h.provider.reset_calls()
    created = h.reconcile(after(obj, outcome))
    assert h.provider.names() == ["find_image", "create_image"]
    new_id = created.status["externalID"]
    assert new_id != old_id
    assert list(h.provider.images) == [new_id]
    assert reasons(created) == ["Creating"]


def test_vanished_adopted_image_stalls_instead_of_creating(h: Harness) -> None:
    foreign = h.provider.seed("someone-else", spec=make_spec(), external_id="img-legacy")
    obj = make_obj(annotations={ANNOTATION_EXTERNAL_ID: foreign})
    obj = after(obj, h.reconcile(obj))
    h.provider.vanish(foreign)
    h.provider.reset_calls()

    outcome = h.reconcile(obj)

    assert h.provider.names() == ["get_images"]
    stalled = cond(outcome, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "AdoptedImageGone")
    assert foreign in stalled["message"] and ANNOTATION_EXTERNAL_ID in stalled["message"]
    assert outcome.requeue_after is None
    assert outcome.status["phase"] == "Stalled"

    h.provider.reset_calls()
    h.reconcile(after(obj, outcome))
    assert "create_image" not in h.provider.names()


# -- finalize ---------------------------------------------------------------------------------
def test_orphan_policy_leaves_the_image(h: Harness) -> None:
    obj, external_id = make_ready(h)
    h.provider.reset_calls()
    outcome = h.finalize(replace(obj, deletion_policy=DeletionPolicy.ORPHAN))
    assert h.provider.calls == []
    assert outcome.done is True
    assert outcome.requeue_after is None
    assert h.provider.images[external_id].state is CloudState.AVAILABLE
    assert reasons(outcome) == ["Orphaned"]


def test_delete_policy_deletes_and_waits_until_gone(h: Harness) -> None:
    obj, external_id = make_ready(h)
    h.provider.reset_calls()

    first = h.finalize(obj)

    assert h.provider.calls == [("delete_image", (external_id,)), ("get_image", (external_id,))]
    assert first.done is False
    assert first.status["phase"] == "Deleting"
    assert first.requeue_after == POLL
    assert cond(first, "Reconciling")["reason"] == "Deleting"
    assert cond(first, "Ready")["status"] == "False"
    assert reasons(first) == ["Deleting"]
    obj = after(obj, first)

    # Still deleting: polled, not deleted a second time.
    h.provider.reset_calls()
    second = h.finalize(obj)
    assert h.provider.calls == [("get_image", (external_id,))]
    assert second.done is False
    assert second.status["phase"] == "Deleting"
    assert second.events == []
    obj = after(obj, second)

    h.provider.finish_delete(external_id)
    h.provider.reset_calls()
    gone = h.finalize(obj)
    assert h.provider.calls == [("get_image", (external_id,))]
    assert gone.done is True
    assert gone.requeue_after is None
    assert gone.status["phase"] == "Deleted"
    assert reasons(gone) == ["Deleted"]


def test_delete_of_an_already_missing_image_is_done(h: Harness) -> None:
    obj, external_id = make_ready(h)
    h.provider.vanish(external_id)
    h.provider.reset_calls()
    outcome = h.finalize(obj)
    assert h.provider.calls == [("delete_image", (external_id,))]
    assert outcome.done is True
    assert reasons(outcome) == ["Deleted"]


def test_finalize_finds_an_image_whose_id_never_reached_the_status(h: Harness) -> None:
    leaked = h.provider.seed(UID, spec=make_spec(), state=CloudState.CREATING)
    unrelated = h.provider.seed("other-uid", spec=make_spec())

    outcome = h.finalize(make_obj(status={"phase": "Pending"}))

    assert h.provider.calls == [
        ("find_image", (UID,)),
        ("delete_image", (leaked,)),
        ("get_image", (leaked,)),
    ]
    assert h.provider.images[leaked].state is CloudState.DELETING
    assert h.provider.images[unrelated].state is CloudState.AVAILABLE
    assert outcome.done is False
    assert outcome.status["externalID"] == leaked


def test_finalize_with_nothing_in_the_cloud_is_done(h: Harness) -> None:
    outcome = h.finalize(make_obj())
    assert h.provider.calls == [("find_image", (UID,))]
    assert outcome.done is True


def test_finalize_while_paused_waits_without_calls(h: Harness) -> None:
    obj, external_id = make_ready(h)
    h.provider.reset_calls()
    outcome = h.finalize(replace(obj, annotations={ANNOTATION_PAUSED: "true"}))
    assert h.provider.calls == []
    assert outcome.done is False
    assert outcome.requeue_after == BACKOFF.provider_wait
    assert ANNOTATION_PAUSED in cond(outcome, "Reconciling")["message"]
    assert h.provider.images[external_id].state is CloudState.AVAILABLE


def test_unpausing_during_deletion_deletes_the_image(h: Harness) -> None:
    obj, external_id = make_ready(h)
    paused = replace(obj, annotations={ANNOTATION_PAUSED: "true"})
    waiting = h.finalize(paused)
    assert waiting.done is False

    h.provider.reset_calls()
    outcome = h.finalize(after(paused, waiting, annotations={}))

    assert h.provider.calls == [("delete_image", (external_id,)), ("get_image", (external_id,))]
    assert h.provider.images[external_id].state is CloudState.DELETING
    assert outcome.done is False


def test_finalize_with_provider_unavailable_suggests_orphan(h: Harness) -> None:
    obj, external_id = make_ready(h)
    handle = ProviderHandle("fake", problem="ImageProvider 'fake' does not exist")
    h.provider.reset_calls()

    outcome = h.reconciler.finalize(obj, handle)

    assert h.provider.calls == []
    assert outcome.done is False
    assert outcome.requeue_after == BACKOFF.provider_wait
    message = cond(outcome, "Reconciling")["message"]
    assert "ImageProvider 'fake' does not exist" in message
    assert "deletionPolicy: Orphan" in message

    # When the provider is back, the delete is actually issued.
    again = h.finalize(after(obj, outcome))
    assert h.provider.calls_to("delete_image") == [(external_id,)]
    assert again.done is False


def test_the_provider_type_is_written_ahead_of_the_first_pass_that_can_reach_the_cloud(
    h: Harness,
) -> None:
    obj = make_obj()
    assert h.reconciler.ahead(obj, h.handle) == {"providerType": h.provider.type_name}
    missing = ProviderHandle("fake", problem="ImageProvider 'fake' does not exist")
    assert h.reconciler.ahead(obj, missing) == {}  # nothing can be sent: nothing to record
    paused = make_obj(annotations={ANNOTATION_PAUSED: "true"})
    assert h.reconciler.ahead(paused, h.handle) == {}
    recorded = make_obj(status={"providerType": h.provider.type_name})
    assert h.reconciler.ahead(recorded, h.handle) == {}  # once: no write on later passes


def test_deleting_an_image_that_never_reached_its_provider_lets_go() -> None:
    # The provider never existed: nothing was written ahead, so no create was ever sent, and
    # waiting for the provider (before: forever) would protect nothing.
    reconciler = ImageReconciler(BACKOFF)
    missing = ProviderHandle("nope", problem="ImageProvider 'nope' does not exist")
    waited = reconciler.reconcile(make_obj(), missing)

    outcome = reconciler.finalize(after(make_obj(), waited), missing)

    assert outcome.done is True and outcome.requeue_after is None
    assert [e.reason for e in outcome.events] == ["NothingToDelete"]
    assert "ImageProvider 'nope' does not exist" in outcome.events[0].message


@pytest.mark.parametrize(
    "status",
    [
        {"providerType": "fake"},  # a create may have been sent, its status write lost
        {"providerType": "fake", "externalID": "img-1"},
    ],
)
def test_deleting_an_image_whose_provider_was_usable_once_waits_for_it(
    status: dict[str, Any],
) -> None:
    reconciler = ImageReconciler(BACKOFF)
    missing = ProviderHandle("fake", problem="ImageProvider 'fake' does not exist")

    outcome = reconciler.finalize(make_obj(status=status), missing)

    assert outcome.done is False
    assert cond(outcome, "Reconciling")["reason"] == "WaitingForProvider"


def test_deleting_an_upload_image_waits_for_its_provider_even_if_the_operator_never_used_it() -> (
    None
):
    # `image-operator upload` makes the cloud image with the provider's keys, whatever the
    # operator saw: its status cannot prove that nothing was made.
    reconciler = ImageReconciler(BACKOFF)
    missing = ProviderHandle("fake", problem="ImageProvider 'fake' does not exist")
    upload = make_spec(source={"upload": {"format": "qcow2"}})

    outcome = reconciler.finalize(make_obj(spec=upload), missing)

    assert outcome.done is False
    assert cond(outcome, "Reconciling")["reason"] == "WaitingForProvider"


def test_non_retryable_delete_error_stalls_but_keeps_the_finalizer(h: Harness) -> None:
    obj, external_id = make_ready(h)
    h.provider.fail_next("delete_image", Forbidden("access key lacks images:delete"))

    outcome = h.finalize(obj)

    assert outcome.done is False
    stalled = cond(outcome, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "PermissionDenied")
    assert "images:delete" in stalled["message"]
    assert "deletionPolicy: Orphan" in stalled["message"]
    assert outcome.status["phase"] == "Deleting"
    assert outcome.requeue_after == BACKOFF.stalled_recheck  # the keys may be fixed meanwhile
    assert [(e.reason, e.type) for e in outcome.events] == [("PermissionDenied", "Warning")]
    assert h.provider.images[external_id].state is CloudState.AVAILABLE

    # Permissions fixed: the delete is retried, not skipped.
    h.provider.reset_calls()
    retried = h.finalize(after(obj, outcome), attempt=1)
    assert h.provider.calls == [("delete_image", (external_id,)), ("get_image", (external_id,))]
    assert "Stalled" not in types(retried)
    assert h.provider.images[external_id].state is CloudState.DELETING


def test_transient_delete_error_is_retried(h: Harness) -> None:
    obj, external_id = make_ready(h)
    h.provider.fail_next("delete_image", Transient("503"))

    outcome = h.finalize(obj)

    assert outcome.done is False
    assert outcome.retrying is True
    assert outcome.requeue_after == BACKOFF.delay(0)
    assert cond(outcome, "Reconciling")["reason"] == "CloudUnavailable"
    h.provider.reset_calls()
    h.finalize(after(obj, outcome), attempt=1)
    assert h.provider.calls_to("delete_image") == [(external_id,)]


# -- adoption while already managing an image; update racing a deletion ------------------------
def test_adopting_over_a_managed_image_stalls_instead_of_leaking_it(h: Harness) -> None:
    obj, own_id = make_ready(h)
    other = h.provider.seed("other-key", spec=make_spec(), external_id="someone-elses")
    h.provider.reset_calls()

    outcome = h.reconcile(replace(obj, annotations={"imageops.io/external-id": other}))

    assert h.provider.calls == []
    assert outcome.status["externalID"] == own_id
    stalled = cond(outcome, "Stalled")
    assert stalled["reason"] == "AdoptionConflict"
    assert own_id in stalled["message"] and other in stalled["message"]


def test_image_vanishing_during_update_is_retried_not_stalled(h: Harness) -> None:
    obj, external_id = make_ready(h)
    assert h.provider.images[external_id].state is CloudState.AVAILABLE
    h.provider.fail_next("update_image", NotFound("gone"))

    outcome = h.reconcile(replace(obj, generation=2, spec=make_spec(displayName="new name")))

    assert outcome.retrying is True
    assert "Stalled" not in types(outcome)
    assert cond(outcome, "Reconciling")["reason"] == "CloudUnavailable"
    assert "vanished during update" in cond(outcome, "Reconciling")["message"]


def test_a_copy_of_itself_stalls_naming_the_field_before_any_cloud_call() -> None:
    # It waited for itself to be Ready (WaitingForSource), forever.
    h = Harness()
    spec = make_spec(source={"image": {"imageRef": {"name": "transcode"}}})
    source = CopySource("transcode", provider_name="fake", problem=None)

    outcome = h.reconciler.reconcile(make_obj(spec=spec), h.handle, 0, source)

    stalled = cond(outcome, "Stalled")
    assert stalled["reason"] == "InvalidSpec"
    assert stalled["message"].startswith("spec.source.image.imageRef names this Image")
    assert "Reconciling" not in types(outcome)
    assert h.provider.calls == []
    other = make_spec(source={"image": {"imageRef": {"name": "another"}}})
    assert copies_itself("transcode", other) is None

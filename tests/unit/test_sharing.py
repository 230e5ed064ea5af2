"""`spec.sharing` through the Image reconciler against an in-memory cloud: the owner's member
set (added, removed, states and their times), the receiving side's acceptance, and providers
that cannot share."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from image_operator.api.common import ANNOTATION_EXTERNAL_ID, DeletionPolicy
from image_operator.api.image import ImageSpec
from image_operator.api.sharing import MAX_MEMBERS, MemberState
from image_operator.providers.instrumented import InstrumentedProvider
from image_operator.providers.model import CloudState
from image_operator.providers.sharing import MeasuredSharing
from image_operator.reconcilers import drift
from image_operator.reconcilers.image import ImageObject
from image_operator.reconcilers.outcome import Outcome
from image_operator.reconcilers.sharing import PENDING_RECHECK_SECONDS
from image_operator.statusview.command import view
from image_operator.statusview.kinds import parse_target
from image_operator.statusview.render import Style
from image_operator.statusview.tree import Snapshot
from tests.unit.fake_sharing import SharingFakeProvider
from tests.unit.fakes import FakeProvider
from tests.unit.test_image_reconciler import UID, Harness, cond, make_obj, make_spec, reasons


def _shared_obj(provider: FakeProvider, sharing: dict[str, Any] | None, **obj: Any) -> ImageObject:
    """An Image whose cloud image exists and is Available, with `spec.sharing`."""
    spec = make_spec(sharing=sharing) if sharing is not None else make_spec()
    external_id = provider.seed(UID, spec=spec, state=CloudState.AVAILABLE)
    return make_obj(spec=spec, status={"externalID": external_id}, **obj)


def _members(outcome: Outcome) -> list[tuple[str, str]]:
    return [(m["id"], m["state"]) for m in outcome.status.get("sharing") or []]


def _next(obj: ImageObject, outcome: Outcome, sharing: dict[str, Any] | None) -> ImageObject:
    spec = make_spec(sharing=sharing) if sharing is not None else make_spec()
    return replace(obj, status=outcome.status, spec=spec, generation=obj.generation + 1)


def members(*ids: str) -> dict[str, Any]:
    return {"members": [{"id": i} for i in ids]}


def _owner(*ids: str) -> tuple[SharingFakeProvider, Harness, ImageObject]:
    """A sharing cloud, its harness, and an Available Image sharing with `ids`."""
    cloud = SharingFakeProvider()
    return cloud, Harness(provider=cloud), _shared_obj(cloud, members(*ids))


def test_owner_shares_with_the_listed_members_and_reports_them_pending() -> None:
    cloud, h, obj = _owner("proj-b", "proj-a")

    outcome = h.reconcile(obj)

    external_id = obj.status["externalID"]
    assert cloud.calls_to("change_members") == [(external_id, ["proj-b", "proj-a"], [])]
    assert _members(outcome) == [("proj-a", "Pending"), ("proj-b", "Pending")]
    assert cond(outcome, "Ready")["status"] == "True"
    assert "SharingChanged" in reasons(outcome)


def test_a_member_accepting_shows_with_its_own_time_and_no_change_is_sent() -> None:
    cloud, h, obj = _owner("proj-a", "proj-b")
    first = h.reconcile(obj)
    external_id = obj.status["externalID"]
    cloud.respond(external_id, "proj-a", MemberState.ACCEPTED)
    cloud.reset_calls()

    second = h.reconcile(replace(obj, status=first.status))

    assert cloud.calls_to("change_members") == []
    assert _members(second) == [("proj-a", "Accepted"), ("proj-b", "Pending")]
    before = {m["id"]: m["lastTransitionTime"] for m in first.status["sharing"]}
    after = {m["id"]: m["lastTransitionTime"] for m in second.status["sharing"]}
    assert after["proj-b"] == before["proj-b"]  # unchanged state keeps its time
    assert after["proj-a"] is not None


def test_the_spec_is_the_whole_list_members_added_elsewhere_are_removed() -> None:
    cloud, h, obj = _owner("proj-a")
    external_id = obj.status["externalID"]
    cloud.shared[external_id] = {"console-added": MemberState.ACCEPTED}

    outcome = h.reconcile(obj)

    assert cloud.calls_to("change_members") == [(external_id, ["proj-a"], ["console-added"])]
    assert _members(outcome) == [("proj-a", "Pending")]


def test_an_empty_list_unshares_from_everyone() -> None:
    cloud, h, obj = _owner("proj-a")
    first = h.reconcile(obj)
    external_id = obj.status["externalID"]

    outcome = h.reconcile(_next(obj, first, {"members": []}))

    assert cloud.calls_to("change_members")[-1] == (external_id, [], ["proj-a"])
    assert cloud.shared[external_id] == {}
    assert outcome.status.get("sharing") is None
    assert cond(outcome, "Ready")["status"] == "True"


def test_removing_spec_sharing_takes_back_only_what_it_had_shared() -> None:
    cloud, h, obj = _owner("proj-a")
    first = h.reconcile(obj)
    external_id = obj.status["externalID"]
    cloud.shared[external_id]["later-by-hand"] = MemberState.PENDING

    outcome = h.reconcile(_next(obj, first, None))

    assert cloud.calls_to("change_members")[-1] == (external_id, [], ["proj-a"])
    assert cloud.shared[external_id] == {"later-by-hand": MemberState.PENDING}
    assert outcome.status.get("sharing") is None
    cloud.reset_calls()
    h.reconcile(_next(obj, outcome, None))
    assert "list_members" not in cloud.names()  # nothing recorded: sharing left alone


def test_an_image_without_sharing_makes_no_sharing_call() -> None:
    cloud = SharingFakeProvider()
    h = Harness(provider=cloud)

    outcome = h.reconcile(_shared_obj(cloud, None))

    assert cond(outcome, "Ready")["status"] == "True"
    assert not {"list_members", "change_members", "accept_shared"} & set(cloud.names())


def test_a_provider_that_cannot_share_stalls_unsupported_before_making_anything() -> None:
    cloud = FakeProvider()
    h = Harness(provider=cloud)

    outcome = h.reconcile(make_obj(spec=make_spec(sharing=members("proj-a"))))

    stalled = cond(outcome, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "Unsupported")
    assert stalled["message"].startswith("spec.sharing: provider type 'fake' cannot share")
    assert cond(outcome, "Ready")["status"] == "False"
    assert cloud.names() == []  # no cloud image left behind by an impossible spec


def test_an_image_shared_before_stalls_too_once_it_has_a_cloud_image() -> None:
    cloud = FakeProvider()
    h = Harness(provider=cloud)

    outcome = h.reconcile(_shared_obj(cloud, members("proj-a")))

    assert cond(outcome, "Stalled")["reason"] == "Unsupported"
    assert "get_images" not in cloud.names()


def test_a_member_id_the_cloud_cannot_take_stalls_before_any_call() -> None:
    cloud = SharingFakeProvider()
    h = Harness(provider=cloud)

    outcome = h.reconcile(make_obj(spec=make_spec(sharing=members("proj-a", "bad-one"))))

    stalled = cond(outcome, "Stalled")
    assert stalled["reason"] == "InvalidSpec"
    assert stalled["message"].startswith("spec.sharing.members: 'bad-one'")
    assert cloud.names() == []


def test_a_cloud_without_acceptance_reports_members_shared() -> None:
    cloud = SharingFakeProvider(acceptance=False)
    h = Harness(provider=cloud)

    outcome = h.reconcile(_shared_obj(cloud, members("1234567890")))

    assert _members(outcome) == [("1234567890", "Shared")]


def _receiver(cloud: SharingFakeProvider, **obj: Any) -> ImageObject:
    owner_spec = make_spec(displayName="the owner's name")
    external_id = cloud.seed("someone-else", spec=owner_spec, state=CloudState.AVAILABLE)
    cloud.shared[external_id] = {cloud.me: MemberState.PENDING}
    spec = make_spec(sharing={"accept": True}, deletionPolicy="Orphan")
    return make_obj(
        spec=spec,
        annotations={ANNOTATION_EXTERNAL_ID: external_id},
        deletion_policy=DeletionPolicy.ORPHAN,
        **obj,
    )


def test_the_receiving_side_adopts_and_accepts_and_never_updates_the_image() -> None:
    cloud = SharingFakeProvider()
    h = Harness(provider=cloud)
    obj = _receiver(cloud)
    external_id = obj.annotations[ANNOTATION_EXTERNAL_ID]

    outcome = h.reconcile(obj)

    assert cloud.calls_to("accept_shared") == [(external_id,)]
    assert cloud.shared[external_id][cloud.me] is MemberState.ACCEPTED
    assert "update_image" not in cloud.names()  # its spec differs, but the image is not its own
    ready = cond(outcome, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Accepted")
    assert _members(outcome) == [(cloud.me, "Accepted")]
    assert "Accepted" in reasons(outcome)


def test_accepting_without_adopting_stalls_naming_the_annotation() -> None:
    cloud = SharingFakeProvider()
    h = Harness(provider=cloud)
    spec = make_spec(sharing={"accept": True}, deletionPolicy="Orphan")
    external_id = cloud.seed(UID, spec=spec)

    outcome = h.reconcile(make_obj(spec=spec, status={"externalID": external_id}))

    stalled = cond(outcome, "Stalled")
    assert stalled["reason"] == "InvalidSpec"
    assert ANNOTATION_EXTERNAL_ID in stalled["message"]
    assert "accept_shared" not in cloud.names()


def test_sharing_is_metered_behind_the_instrumented_wrapper() -> None:
    sharer = InstrumentedProvider(SharingFakeProvider()).sharer
    assert isinstance(sharer, MeasuredSharing)
    assert InstrumentedProvider(FakeProvider()).sharer is None


@pytest.mark.parametrize(
    "sharing",
    [
        {"members": [{"id": f"p{i}"} for i in range(MAX_MEMBERS + 1)]},
        {"members": [{"id": "has/slash"}]},
        {"members": [{"id": "-leading-dash"}]},
        {"members": [{"id": "x" * 65}]},
        {"members": [{"account": "1"}]},
    ],
)
def test_bad_sharing_is_refused_by_the_model(sharing: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        make_spec(sharing=sharing)


def test_image_operator_status_shows_the_members_and_their_states() -> None:
    image = {
        "apiVersion": "imageops.io/v1alpha1",
        "kind": "Image",
        "metadata": {"name": "shared", "namespace": "demo", "generation": 1},
        "spec": {"providerRef": {"name": "glance"}, "source": {"upload": {"format": "qcow2"}}},
        "status": {
            "observedGeneration": 1,
            "externalID": "img-1",
            "sharing": [
                {"id": "proj-a", "state": "Accepted"},
                {"id": "proj-b", "state": "Pending"},
            ],
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "Available", "message": "ok"}
            ],
        },
    }
    now = datetime(2026, 12, 1, tzinfo=UTC)

    lines = view(Snapshot({"images": [image]}), parse_target(("img/shared",)), "demo", now, Style())

    assert any("shared with proj-a (Accepted), proj-b (Pending)" in line for line in lines), lines


def test_a_ready_image_with_a_pending_member_looks_again_later_and_not_once_all_answered() -> None:
    cloud, h, obj = _owner("proj-a")

    pending = h.reconcile(obj)

    assert pending.requeue_after == PENDING_RECHECK_SECONDS
    cloud.respond(obj.status["externalID"], "proj-a", MemberState.REJECTED)
    answered = h.reconcile(replace(obj, status=pending.status))
    assert _members(answered) == [("proj-a", "Rejected")]
    assert answered.requeue_after is None


def test_the_resync_never_calls_a_receiving_image_modified() -> None:
    """A member's Image never pushes its spec, so a spec unlike the image is no drift (under
    driftPolicy: Report it would stall the Image); an owner's Image with the same difference
    is reported."""
    cloud = SharingFakeProvider()
    h = Harness(provider=cloud)
    receiver = _receiver(cloud)  # its displayName differs from the shared image's
    assert receiver.spec is not None
    external_id = receiver.annotations[ANNOTATION_EXTERNAL_ID]
    owner = make_spec(sharing=members(cloud.me))  # differs from the image as much

    def body(name: str, spec: ImageSpec) -> dict[str, Any]:
        return {
            "metadata": {"name": name, "namespace": "default", "uid": UID, "generation": 1},
            "spec": spec.model_dump(by_alias=True, exclude_none=True, mode="json"),
            "status": {
                "observedGeneration": 1,
                "externalID": external_id,
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }

    images = drift.ready_images([body("member", receiver.spec), body("owner", owner)], "fake")
    found = drift.detect(images, cloud, h.observer, "fake provider")

    assert [(d.image.name, d.reason) for d in found] == [("owner", "CloudImageModified")]

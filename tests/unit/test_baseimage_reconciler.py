"""BaseImageReconciler against an in-memory ucloudstack: clone, wait, permission, delete."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import pytest

from image_operator.api.baseimage import BaseImageSpec
from image_operator.api.common import ANNOTATION_EXTERNAL_ID, ANNOTATION_PAUSED, DeletionPolicy
from image_operator.api.image import ImageSpec
from image_operator.providers.capabilities import BaseImageInfo, BaseImages
from image_operator.providers.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    Transient,
)
from image_operator.providers.model import CloudImage, CloudState
from image_operator.providers.observer import ImageObserver
from image_operator.reconcilers.baseimage import (
    BaseImageObject,
    BaseImageReconciler,
    SourceImage,
    spec_problem,
)
from image_operator.reconcilers.managed import Backoff, ProviderHandle
from image_operator.reconcilers.outcome import Outcome, condition
from tests.unit.fakes import FakeProvider

UID = "0b5e7a2c-0000-4000-8000-00000000beef"
POLL = 7.0
BACKOFF = Backoff(base=2.0, maximum=60.0, provider_wait=11.0, spread=lambda: 1.0)
CUSTOM_SPEC = ImageSpec.model_validate(
    {"providerRef": {"name": "stack"}, "displayName": "web", "source": {"vm": {"vmID": "vm-1"}}}
)


class FakeStack(FakeProvider, BaseImages):
    """FakeProvider plus ucloudstack's base-image calls. Base images live in `images` like
    custom ones (so get_image/delete see them) and carry DescribeImage's ImageType/ImageFrom."""

    type_name = "ucloudstack"

    def __init__(self) -> None:
        super().__init__()
        self.bases: dict[str, dict[str, Any]] = {}
        self.permission = "all"
        self._created = itertools.count(100)

    def custom(self, state: CloudState = CloudState.AVAILABLE) -> str:
        return self.seed(f"custom-{len(self.images)}", spec=CUSTOM_SPEC, state=state)

    def base(self, name: str, source: str, state: CloudState = CloudState.AVAILABLE) -> str:
        """A base image as an earlier clone (or someone else) left it."""
        external_id = self.seed(f"base-{name}", spec=CUSTOM_SPEC, state=state)
        self.bases[external_id] = {
            "ImageType": "Base",
            "ImageName": name,
            "ImageFrom": source,
            "CreateTime": next(self._created),
        }
        return external_id

    def _with_raw(self, image: CloudImage) -> CloudImage:
        raw = self.bases.get(image.external_id, {"ImageType": "Custom"})
        return image.model_copy(update={"raw": raw})

    def get_image(self, external_id: str) -> CloudImage:
        return self._with_raw(super().get_image(external_id))

    def get_images(self, external_ids: Iterable[str]) -> dict[str, CloudImage | None]:
        return {
            key: self._with_raw(image) if image else None
            for key, image in super().get_images(external_ids).items()
        }

    def clone_to_base_image(self, source_image_id: str, name: str) -> str:
        self._enter("clone_to_base_image", source_image_id, name)
        source = self._get(source_image_id)
        if source_image_id in self.bases or source.state is not CloudState.AVAILABLE:
            raise InvalidInput(f"image {source_image_id!r} is not an Available custom image")
        return self.base(name, source_image_id, CloudState.PENDING)

    def describe_base_images(self, image_ids: Iterable[str] | None = None) -> list[BaseImageInfo]:
        wanted = set(image_ids or [])
        self._enter("describe_base_images", tuple(sorted(wanted)))
        return [
            BaseImageInfo(image_id=key, name=meta["ImageName"], permission=self.permission)
            for key, meta in self.bases.items()
            if key in self.images and (not wanted or key in wanted)
        ]

    def delete_base_image(self, image_id: str) -> None:
        self._enter("delete_base_image", image_id)
        if image_id not in self.bases:
            self._get(image_id)  # NotFound if it does not exist at all
            raise InvalidInput(f"{image_id!r} is a Custom image: delete it with DeleteCustomImage")
        self._get(image_id).state = CloudState.DELETING

    def clone_source(self, image: CloudImage) -> str | None:
        return image.raw.get("ImageFrom")

    def find_clone(self, name: str, source_id: str) -> CloudImage | None:
        """As ucloudstack finds one: names from DescribeBaseImage, then one DescribeImage batch
        for ImageType/ImageFrom, the oldest match."""
        candidates = [info.image_id for info in self.describe_base_images() if info.name == name]
        found = [
            image
            for image in self.get_images(candidates).values()
            if image is not None and self.bases[image.external_id]["ImageFrom"] == source_id
        ]
        return min(found, key=lambda i: self.bases[i.external_id]["CreateTime"], default=None)


def make_spec(**source: Any) -> BaseImageSpec:
    return BaseImageSpec.model_validate(
        {"providerRef": {"name": "stack"}, "source": source, "name": "golden-base"}
    )


def make_obj(
    spec: BaseImageSpec | None = None,
    *,
    status: Mapping[str, Any] | None = None,
    annotations: Mapping[str, str] | None = None,
    source_image: SourceImage | None = None,
    policy: DeletionPolicy = DeletionPolicy.DELETE,
) -> BaseImageObject:
    return BaseImageObject(
        name="golden",
        namespace="team-a",
        uid=UID,
        generation=1,
        annotations=dict(annotations or {}),
        spec=spec,
        status=dict(status or {}),
        deletion_policy=policy,
        source_image=source_image,
    )


def make_handle(provider: FakeProvider | None, name: str = "stack") -> ProviderHandle:
    if provider is None:
        return ProviderHandle(name, problem=f"ImageProvider {name!r} does not exist")
    # max_age 0: every observe asks the cloud, so the tests see each state change at once.
    observer = ImageObserver(provider, max_age=0.0)
    return ProviderHandle(name, provider=provider, observer=observer, poll_interval=POLL)


def cond(outcome: Outcome, type_: str) -> dict[str, Any] | None:
    return condition(outcome.status, type_)


def reasons(outcome: Outcome) -> list[str]:
    return [event.reason for event in outcome.events]


def again(obj: BaseImageObject, outcome: Outcome) -> BaseImageObject:
    return replace(obj, status=outcome.status)


@pytest.fixture
def cloud() -> FakeStack:
    return FakeStack()


@pytest.fixture
def reconciler() -> BaseImageReconciler:
    return BaseImageReconciler(BACKOFF)


def test_clones_by_external_id_then_reports_ready_with_permission(
    cloud: FakeStack, reconciler: BaseImageReconciler
) -> None:
    source = cloud.custom()
    handle = make_handle(cloud)
    obj = make_obj(make_spec(externalID=source))

    first = reconciler.reconcile(obj, handle)

    base_id = first.status["externalID"]
    assert cloud.calls_to("clone_to_base_image") == [(source, "golden-base")]
    assert first.status["sourceExternalID"] == source
    assert first.status["phase"] == "Cloning"
    assert (cond(first, "Reconciling") or {}).get("reason") == "Cloning"
    assert (cond(first, "Ready") or {}).get("status") == "False"
    assert first.requeue_after == POLL and not first.done
    assert reasons(first) == ["Cloning"]

    cloud.advance(base_id, CloudState.AVAILABLE)
    second = reconciler.reconcile(again(obj, first), handle)

    assert second.status["phase"] == "Ready"
    assert second.status["permission"] == "all"
    ready = cond(second, "Ready") or {}
    assert ready.get("status") == "True" and ready.get("observedGeneration") == 1
    assert cond(second, "Reconciling") is None and cond(second, "Stalled") is None
    assert second.requeue_after is None
    assert reasons(second) == ["Ready"]
    assert len(cloud.calls_to("clone_to_base_image")) == 1

    # Settled: a further reconcile neither clones again nor repeats the Ready event.
    third = reconciler.reconcile(again(obj, second), handle)
    assert third.status["phase"] == "Ready" and reasons(third) == []
    assert len(cloud.calls_to("clone_to_base_image")) == 1


def test_image_ref_waits_for_the_image_then_clones_its_external_id(
    cloud: FakeStack, reconciler: BaseImageReconciler
) -> None:
    handle = make_handle(cloud)
    spec = make_spec(imageRef={"name": "web"})

    missing = reconciler.reconcile(make_obj(spec), handle)
    assert (cond(missing, "Reconciling") or {}).get("reason") == "WaitingForImage"
    assert "spec.source.imageRef.name" in (cond(missing, "Ready") or {})["message"]
    assert missing.requeue_after == POLL

    not_ready = SourceImage("stack", ready=False, external_id=None, message="image is making")
    waiting = reconciler.reconcile(make_obj(spec, source_image=not_ready), handle)
    message = (cond(waiting, "Reconciling") or {}).get("message", "")
    assert "not Ready yet (image is making)" in message
    assert cloud.calls_to("clone_to_base_image") == []

    source = cloud.custom()
    ready = SourceImage("stack", ready=True, external_id=source)
    cloned = reconciler.reconcile(make_obj(spec, source_image=ready), handle)
    assert cloud.calls_to("clone_to_base_image") == [(source, "golden-base")]
    assert cloned.status["sourceExternalID"] == source


def test_image_ref_in_another_provider_stalls(
    cloud: FakeStack, reconciler: BaseImageReconciler
) -> None:
    other = SourceImage("argon", ready=True, external_id="img-x")
    obj = make_obj(make_spec(imageRef={"name": "web"}), source_image=other)

    outcome = reconciler.reconcile(obj, make_handle(cloud))

    stalled = cond(outcome, "Stalled") or {}
    assert stalled.get("reason") == "ProviderMismatch"
    assert "'argon'" in stalled["message"] and "spec.providerRef" in stalled["message"]
    assert outcome.requeue_after is None
    assert cloud.calls == []
    # The Warning is posted once, not on every reconcile of the unchanged object.
    assert reasons(outcome) == ["ProviderMismatch"]
    assert reasons(reconciler.reconcile(again(obj, outcome), make_handle(cloud))) == []


def test_provider_of_another_type_stalls_unsupported(reconciler: BaseImageReconciler) -> None:
    fake = FakeProvider()
    outcome = reconciler.reconcile(make_obj(make_spec(externalID="img-1")), make_handle(fake))

    stalled = cond(outcome, "Stalled") or {}
    assert stalled.get("reason") == "Unsupported"
    assert "fake provider 'stack'" in stalled["message"]
    assert "'ucloudstack'" in stalled["message"]
    assert fake.calls == []


def test_missing_provider_waits(reconciler: BaseImageReconciler) -> None:
    outcome = reconciler.reconcile(make_obj(make_spec(externalID="img-1")), make_handle(None))
    assert (cond(outcome, "Reconciling") or {}).get("reason") == "WaitingForProvider"
    assert outcome.requeue_after == BACKOFF.provider_wait


def test_an_earlier_clone_is_recovered_by_name_and_source_not_cloned_twice(
    cloud: FakeStack, reconciler: BaseImageReconciler
) -> None:
    source, other_source = cloud.custom(), cloud.custom()
    cloud.base("golden-base", other_source)  # same name, other source: not ours
    cloud.base("golden-basement", source)  # Keyword-style near miss: not ours
    older = cloud.base("golden-base", source, CloudState.CREATING)
    cloud.base("golden-base", source)  # a newer duplicate: the oldest wins

    outcome = reconciler.reconcile(make_obj(make_spec(externalID=source)), make_handle(cloud))

    assert cloud.calls_to("clone_to_base_image") == []
    assert outcome.status["externalID"] == older
    assert reasons(outcome) == ["Recovered"]
    assert outcome.status["phase"] == "Cloning"


def test_clone_with_same_name_from_other_source_does_not_count(
    cloud: FakeStack, reconciler: BaseImageReconciler
) -> None:
    source, other_source = cloud.custom(), cloud.custom()
    theirs = cloud.base("golden-base", other_source)

    outcome = reconciler.reconcile(make_obj(make_spec(externalID=source)), make_handle(cloud))

    assert cloud.calls_to("clone_to_base_image") == [(source, "golden-base")]
    assert outcome.status["externalID"] != theirs


def test_adoption_takes_over_a_base_image_and_refuses_a_custom_one(
    cloud: FakeStack, reconciler: BaseImageReconciler
) -> None:
    source = cloud.custom()
    base = cloud.base("legacy", source)
    spec = make_spec(externalID=source)

    adopted = reconciler.reconcile(
        make_obj(spec, annotations={ANNOTATION_EXTERNAL_ID: base}), make_handle(cloud)
    )
    assert adopted.status["externalID"] == base
    assert adopted.status["sourceExternalID"] == source
    assert adopted.status["phase"] == "Ready" and adopted.status["permission"] == "all"
    assert "Adopted" in reasons(adopted)
    assert cloud.calls_to("clone_to_base_image") == []

    refused = reconciler.reconcile(
        make_obj(spec, annotations={ANNOTATION_EXTERNAL_ID: source}), make_handle(cloud)
    )
    stalled = cond(refused, "Stalled") or {}
    assert stalled.get("reason") == "AdoptionFailed"
    assert ANNOTATION_EXTERNAL_ID in stalled["message"]
    assert "externalID" not in refused.status

    conflict = reconciler.reconcile(
        make_obj(spec, status={"externalID": base}, annotations={ANNOTATION_EXTERNAL_ID: "x"}),
        make_handle(cloud),
    )
    assert (cond(conflict, "Stalled") or {}).get("reason") == "AdoptionConflict"


def test_paused_makes_no_cloud_calls(cloud: FakeStack, reconciler: BaseImageReconciler) -> None:
    obj = make_obj(make_spec(externalID=cloud.custom()), annotations={ANNOTATION_PAUSED: "true"})
    cloud.reset_calls()

    outcome = reconciler.reconcile(obj, make_handle(cloud))

    assert cloud.calls == []
    assert outcome.status["phase"] == "Paused"
    assert outcome.requeue_after is None


def test_failed_clone_stalls_with_the_cloud_reason(
    cloud: FakeStack, reconciler: BaseImageReconciler
) -> None:
    handle = make_handle(cloud)
    obj = make_obj(make_spec(externalID=cloud.custom()))
    first = reconciler.reconcile(obj, handle)
    cloud.advance(first.status["externalID"], CloudState.FAILED, message="disk copy failed")

    outcome = reconciler.reconcile(again(obj, first), handle)

    stalled = cond(outcome, "Stalled") or {}
    assert stalled.get("reason") == "CloudFailed" and "disk copy failed" in stalled["message"]


def test_transient_errors_retry_with_backoff_and_permanent_ones_stall(
    cloud: FakeStack, reconciler: BaseImageReconciler
) -> None:
    obj = make_obj(make_spec(externalID=cloud.custom()))
    cloud.fail_next("clone_to_base_image", Transient("the image is busy"))

    retry = reconciler.reconcile(obj, make_handle(cloud), attempt=2)
    assert retry.retrying and retry.requeue_after == BACKOFF.delay(2)
    assert (cond(retry, "Reconciling") or {}).get("reason") == "CloudUnavailable"
    assert "externalID" not in retry.status

    cloud.fail_next("clone_to_base_image", Forbidden("key pair may not act for CompanyID"))
    denied = reconciler.reconcile(obj, make_handle(cloud))
    assert (cond(denied, "Stalled") or {}).get("reason") == "PermissionDenied"
    assert denied.requeue_after is None


def test_a_source_id_the_cloud_does_not_know_stalls_naming_the_field(
    cloud: FakeStack, reconciler: BaseImageReconciler
) -> None:
    # The cloud's own words quote the value only (ucloudstack: "Image [x] not exists").
    obj = make_obj(make_spec(externalID="image-$(id)"))

    outcome = reconciler.reconcile(obj, make_handle(cloud))

    stalled = cond(outcome, "Stalled") or {}
    assert stalled.get("reason") == "NotFound"
    assert stalled.get("message") == (
        "fake cloud has no image 'image-$(id)' (image-$(id) is spec.source.externalID)"
    )


def test_a_base_image_deleted_behind_our_back_is_cloned_again(
    cloud: FakeStack, reconciler: BaseImageReconciler
) -> None:
    handle = make_handle(cloud)
    obj = make_obj(make_spec(externalID=cloud.custom()))
    first = reconciler.reconcile(obj, handle)
    cloud.vanish(first.status["externalID"])

    gone = reconciler.reconcile(again(obj, first), handle)
    assert "externalID" not in gone.status and "CloudImageMissing" in reasons(gone)

    recloned = reconciler.reconcile(again(obj, gone), handle)
    assert len(cloud.calls_to("clone_to_base_image")) == 2
    assert recloned.status["externalID"] != first.status["externalID"]


def test_delete_calls_delete_base_image_and_waits_until_gone(
    cloud: FakeStack, reconciler: BaseImageReconciler
) -> None:
    handle = make_handle(cloud)
    source = cloud.custom()
    base = cloud.base("golden-base", source)
    obj = make_obj(make_spec(externalID=source), status={"externalID": base})

    first = reconciler.finalize(obj, handle)
    assert cloud.calls_to("delete_base_image") == [(base,)]
    assert not first.done and first.requeue_after == POLL
    assert (cond(first, "Reconciling") or {}).get("reason") == "Deleting"

    # Still deleting: no second DeleteBaseImage.
    second = reconciler.finalize(again(obj, first), handle)
    assert not second.done and len(cloud.calls_to("delete_base_image")) == 1

    cloud.finish_delete(base)
    third = reconciler.finalize(again(obj, second), handle)
    assert third.done and "Deleted" in reasons(third)


def test_delete_finds_a_clone_whose_status_write_was_lost(
    cloud: FakeStack, reconciler: BaseImageReconciler
) -> None:
    source = cloud.custom()
    base = cloud.base("golden-base", source)
    obj = make_obj(make_spec(externalID=source))

    outcome = reconciler.finalize(obj, make_handle(cloud))

    assert cloud.calls_to("delete_base_image") == [(base,)]
    assert outcome.status["externalID"] == base and not outcome.done


def test_delete_of_an_already_gone_base_image_is_done(
    cloud: FakeStack, reconciler: BaseImageReconciler
) -> None:
    obj = make_obj(make_spec(externalID="img-src"), status={"externalID": "img-gone"})
    cloud.fail_next("delete_base_image", NotFound("no such image"))
    outcome = reconciler.finalize(obj, make_handle(cloud))
    assert outcome.done and "Deleted" in reasons(outcome)


def test_orphan_leaves_the_base_image(cloud: FakeStack, reconciler: BaseImageReconciler) -> None:
    base = cloud.base("golden-base", cloud.custom())
    obj = make_obj(
        make_spec(externalID="img-src"), status={"externalID": base}, policy=DeletionPolicy.ORPHAN
    )
    cloud.reset_calls()

    outcome = reconciler.finalize(obj, make_handle(cloud))

    assert outcome.done and reasons(outcome) == ["Orphaned"]
    assert cloud.calls == []
    assert cloud.images[base].state is CloudState.AVAILABLE


def test_delete_waits_while_paused_and_stalls_on_permanent_errors(
    cloud: FakeStack, reconciler: BaseImageReconciler
) -> None:
    base = cloud.base("golden-base", cloud.custom())
    spec = make_spec(externalID="img-src")
    paused = reconciler.finalize(
        make_obj(spec, status={"externalID": base}, annotations={ANNOTATION_PAUSED: "true"}),
        make_handle(cloud),
    )
    assert not paused.done and cloud.calls_to("delete_base_image") == []

    cloud.fail_next("delete_base_image", Forbidden("denied"))
    denied = reconciler.finalize(make_obj(spec, status={"externalID": base}), make_handle(cloud))
    stalled = cond(denied, "Stalled") or {}
    assert not denied.done and stalled.get("reason") == "PermissionDenied"
    assert "spec.deletionPolicy: Orphan" in stalled["message"]


def test_spec_problem_requires_exactly_one_source() -> None:
    both = BaseImageSpec.model_validate(
        {
            "providerRef": {"name": "stack"},
            "source": {"imageRef": {"name": "web"}, "externalID": "img-1"},
            "name": "golden-base",
        }
    )
    neither = BaseImageSpec.model_validate(
        {"providerRef": {"name": "stack"}, "source": {}, "name": "golden-base"}
    )
    assert spec_problem(both) == spec_problem(neither) is not None
    assert "imageRef" in (spec_problem(both) or "")
    assert spec_problem(make_spec(externalID="img-1")) is None

    outcome = BaseImageReconciler(BACKOFF).reconcile(make_obj(both), make_handle(FakeStack()))
    assert (cond(outcome, "Stalled") or {}).get("reason") == "InvalidSpec"


def test_the_source_is_written_ahead_of_a_pass_that_may_clone_it(
    cloud: FakeStack, reconciler: BaseImageReconciler
) -> None:
    handle = make_handle(cloud)
    by_id = make_obj(make_spec(externalID="img-src"))
    assert reconciler.ahead(by_id, handle) == {"sourceExternalID": "img-src"}
    recorded = make_obj(make_spec(externalID="img-src"), status={"sourceExternalID": "img-src"})
    assert reconciler.ahead(recorded, handle) == {}
    by_ref = make_spec(imageRef={"name": "web"})
    not_ready = SourceImage("stack", ready=False, external_id=None)
    assert reconciler.ahead(make_obj(by_ref, source_image=not_ready), handle) == {}
    ready = SourceImage("stack", ready=True, external_id="img-web")
    assert reconciler.ahead(make_obj(by_ref, source_image=ready), handle) == {
        "sourceExternalID": "img-web"
    }
    assert reconciler.ahead(by_id, make_handle(None)) == {}
    assert reconciler.ahead(by_id, make_handle(FakeProvider())) == {}  # cannot clone at all


def test_deleting_a_base_image_that_never_sent_a_clone_lets_go_without_its_provider(
    reconciler: BaseImageReconciler,
) -> None:
    obj = make_obj(make_spec(externalID="img-src"), status={"phase": "Pending"})

    outcome = reconciler.finalize(obj, make_handle(None))

    assert outcome.done is True
    assert reasons(outcome) == ["NothingToDelete"]


def test_deleting_a_base_image_whose_clone_may_have_been_sent_waits_for_its_provider(
    reconciler: BaseImageReconciler,
) -> None:
    # The source was written ahead: a clone may have been sent and its status write lost.
    status = {"phase": "Pending", "sourceExternalID": "img-src"}
    obj = make_obj(make_spec(externalID="img-src"), status=status)

    outcome = reconciler.finalize(obj, make_handle(None))

    assert outcome.done is False
    assert (cond(outcome, "Reconciling") or {}).get("reason") == "WaitingForProvider"

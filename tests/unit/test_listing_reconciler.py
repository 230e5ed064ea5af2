"""The CommunityListing reconciler against an in-memory CompShare: copy, publish, review,
new versions, idempotency after lost status writes, and withdrawal on deletion."""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from prometheus_client import REGISTRY

from image_operator.api.common import ANNOTATION_PAUSED, DeletionPolicy
from image_operator.api.image import ImageSpec
from image_operator.api.listing import COVER_INLINE_MAX, CommunityListingSpec, CoverSource
from image_operator.providers.compshare import cloud_name
from image_operator.providers.errors import Conflict, InvalidInput, NotFound, Transient
from image_operator.providers.instrumented import InstrumentedProvider
from image_operator.providers.model import CloudImage, CloudState, ImageRequest
from image_operator.providers.publishing import (
    Listing,
    MeasuredPublishing,
    Publication,
    PublicationState,
    Publishes,
    PublishRequest,
)
from image_operator.reconcilers import outcome as outcome_module
from image_operator.reconcilers.cover import picture_format
from image_operator.reconcilers.listing import (
    Cover,
    ListingObject,
    ListingReconciler,
    SourceImage,
    resolve_cover,
)
from image_operator.reconcilers.managed import Backoff, ProviderHandle
from image_operator.reconcilers.outcome import Outcome, condition
from tests.unit.fakes import FakeImage, FakeProvider

UID = "4f3ede4c-1111-2222-3333-444455556666"
POLL = 3.0
BACKOFF = Backoff(base=2.0, maximum=60.0, provider_wait=11.0, spread=lambda: 1.0)
SOURCE_ID = "img-source"
COVER = base64.b64encode(b"\x89PNG\r\n\x1a\n fake picture").decode()


class FakeCompShare(FakeProvider, Publishes):
    """FakeProvider plus CompShare's copy and community publication (the `Publishes`
    interface), with its rules: one version per image, a rejected image may be submitted
    again, version names unique per group, and terminating an image takes its version
    offline."""

    type_name = "compshare"

    def __init__(self) -> None:
        super().__init__()
        self.image_names: dict[str, str] = {}
        self.vm_made: set[str] = set()
        self.publications: dict[str, Publication] = {}
        self.groups: dict[str, list[str]] = {}
        self.published_fields: list[dict[str, Any]] = []
        self._groups = itertools.count(1)

    # -- test controls --
    def add_source(self, *, container: bool = True) -> None:
        self.images[SOURCE_ID] = FakeImage(SOURCE_ID, "source", CloudState.AVAILABLE, "")
        if not container:
            self.vm_made.add(SOURCE_ID)

    def review(self, image_id: str, state: PublicationState, reason: str | None = None) -> None:
        self.publications[image_id] = self.publications[image_id].model_copy(
            update={"state": state, "reason": reason}
        )

    # -- Publishes --
    def container_made(self, image: CloudImage) -> bool:
        return image.raw.get("Container") != "False"

    def publication_copy_name(self, request: ImageRequest) -> str:
        return cloud_name(request)

    # -- vendor methods --
    def get_image(self, external_id: str) -> CloudImage:
        self._enter("get_image", external_id)
        view = self._get(external_id).view()
        container = "False" if external_id in self.vm_made else "True"
        return view.model_copy(update={"raw": {"Container": container}})

    def find_image(self, request: ImageRequest) -> CloudImage | None:
        self._enter("find_image", request.name)
        wanted = cloud_name(request)
        for image_id, name in self.image_names.items():
            if name == wanted and image_id in self.images:
                return self.images[image_id].view()
        return None

    def delete_image(self, external_id: str) -> None:
        super().delete_image(external_id)
        if external_id in self.publications:
            self.review(external_id, PublicationState.OFFLINE)

    def copy_image(self, external_id: str, target_name: str | None = None) -> str:
        self._enter("copy_image", external_id, target_name)
        if self._get(external_id).state is not CloudState.AVAILABLE:
            raise InvalidInput("only an Available image can be copied")
        assert target_name
        if target_name in self.image_names.values():
            raise Conflict(f"an image named [{target_name}] already exists")
        image_id = self._new_id()
        self.images[image_id] = FakeImage(image_id, target_name, CloudState.CREATING, "")
        self.image_names[image_id] = target_name
        if external_id in self.vm_made:
            self.vm_made.add(image_id)
        return image_id

    def publish(self, image_id: str, request: PublishRequest) -> None:
        version_name, group_id = request.version_name, request.group_id
        community_image_name = request.community_image_name
        cover, price, tags = request.cover, request.price, request.tags
        self._enter("publish", image_id, version_name, group_id)
        if self._get(image_id).state is not CloudState.AVAILABLE:
            raise InvalidInput("only an Available image can be published")
        previous = self.publications.get(image_id)
        live = (PublicationState.IN_REVIEW, PublicationState.PUBLISHED)
        if previous is not None and previous.state in live:
            raise Conflict(f"image {image_id} is already {previous.state}")
        if group_id is not None and group_id not in self.groups:
            raise NotFound(f"group [{group_id}] not found")
        if group_id is not None and any(
            self.publications[i].version_name == version_name and self.publications[i].state in live
            for i in self.groups[group_id]
        ):
            raise Conflict(f"group [{group_id}] already has version {version_name}")
        if previous is not None:  # a rejected version is withdrawn when submitted again
            self.groups[previous.group_id].remove(image_id)
        group_id = group_id or f"group-{next(self._groups)}"
        self.groups.setdefault(group_id, []).append(image_id)
        self.publications[image_id] = Publication(
            image_id=image_id,
            group_id=group_id,
            version_name=version_name,
            state=PublicationState.IN_REVIEW,
            community_image_name=community_image_name,
        )
        self.published_fields.append(
            {"cover": cover, "price": price, "tags": tags, "name": community_image_name}
        )

    def describe_publication(self, image_id: str) -> Publication | None:
        self._enter("describe_publication", image_id)
        return self.publications.get(image_id)

    def describe_listing(self, group_id: str) -> Listing:
        self._enter("describe_listing", group_id)
        if group_id not in self.groups:
            raise NotFound(f"no group {group_id}")
        versions = [self.publications[i] for i in self.groups[group_id]]
        return Listing(
            group_id=group_id,
            name="listing",
            published=any(v.state is PublicationState.PUBLISHED for v in versions),
            versions=versions,
        )


def make_spec(**overrides: Any) -> CommunityListingSpec:
    raw: dict[str, Any] = {
        "imageRef": {"name": "ai-env"},
        "communityImageName": "我的AI环境",
        "versionName": "v1.0",
        "price": "0",
        "tags": ["深度学习", "PyTorch"],
    }
    raw.update(overrides)
    return CommunityListingSpec.model_validate(raw)


def make_obj(
    *,
    spec: CommunityListingSpec | None = None,
    generation: int = 1,
    annotations: Mapping[str, str] | None = None,
    deletion_policy: DeletionPolicy = DeletionPolicy.DELETE,
) -> ListingObject:
    return ListingObject(
        name="my-ai-env",
        namespace="default",
        uid=UID,
        generation=generation,
        annotations=dict(annotations or {}),
        spec=spec or make_spec(),
        status={},
        deletion_policy=deletion_policy,
    )


IMAGE_SPEC = ImageSpec.model_validate(
    {
        "providerRef": {"name": "cs"},
        "displayName": "AI env",
        "source": {"vm": {"vmID": "uhost-container1"}},
    }
)
SOURCE = SourceImage(
    name="ai-env",
    found=True,
    ready=True,
    external_id=SOURCE_ID,
    spec=IMAGE_SPEC,
    provider_name="cs",
)


@dataclass
class Harness:
    provider: FakeCompShare = field(default_factory=FakeCompShare)
    reconciler: ListingReconciler = field(default_factory=lambda: ListingReconciler(BACKOFF))
    handle: ProviderHandle = field(init=False)

    def __post_init__(self) -> None:
        self.provider.add_source()
        self.handle = ProviderHandle("cs", self.provider, poll_interval=POLL)

    def reconcile(
        self, obj: ListingObject, *, source: SourceImage = SOURCE, cover: Cover | None = None
    ) -> Outcome:
        return self.reconciler.reconcile(obj, source, cover or Cover(), self.handle)

    def copied(self, obj: ListingObject) -> tuple[ListingObject, str]:
        """Reconcile until the copy exists and is Available; returns it and the copy's ID."""
        outcome = self.reconcile(obj)
        image_id = outcome.status["externalID"]
        self.provider.advance(image_id, CloudState.AVAILABLE, 100)
        return after(obj, outcome), image_id

    def in_review(self, obj: ListingObject) -> tuple[ListingObject, str]:
        obj, image_id = self.copied(obj)
        outcome = self.reconcile(obj)
        assert outcome.status["phase"] == "InReview", outcome.status
        return after(obj, outcome), image_id


def after(obj: ListingObject, outcome: Outcome, **changes: Any) -> ListingObject:
    return replace(obj, status=outcome.status, **changes)


def cond(outcome: Outcome, type_: str) -> dict[str, Any]:
    found = condition(outcome.status, type_)
    assert found is not None, f"no {type_} condition in {outcome.status.get('conditions')}"
    return found


def reasons(outcome: Outcome) -> list[str]:
    return [event.reason for event in outcome.events]


@pytest.fixture(autouse=True)
def fake_now(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    seconds = itertools.count()

    def now() -> str:
        s = next(seconds)
        return f"2025-01-01T00:{s // 60:02d}:{s % 60:02d}Z"

    monkeypatch.setattr(outcome_module, "now_rfc3339", now)
    import image_operator.reconcilers.listing as listing_module

    monkeypatch.setattr(listing_module, "now_rfc3339", now)
    yield


@pytest.fixture
def h() -> Harness:
    return Harness()


# -- the main path ----------------------------------------------------------------------------
def test_copy_then_publish_then_review_ends_published_with_group_and_history(h: Harness) -> None:
    obj = make_obj()

    first = h.reconcile(obj)

    image_id = first.status["externalID"]
    expected_name = f"v1.0-my-ai-env-{UID.replace('-', '')[:8]}"
    assert h.provider.calls_to("copy_image") == [(SOURCE_ID, expected_name)]
    assert first.status["phase"] == "Copying"
    assert first.status["versions"] == [
        {"versionName": "v1.0", "state": "Copying", "imageID": image_id}
    ]
    assert first.requeue_after == POLL
    assert first.status["providerName"] == "cs"

    obj = after(obj, first)
    still_copying = h.reconcile(obj)
    assert still_copying.status["phase"] == "Copying"
    assert h.provider.calls_to("publish") == []

    h.provider.advance(image_id, CloudState.AVAILABLE, 100)
    submitted = h.reconcile(obj)
    assert h.provider.calls_to("publish") == [(image_id, "v1.0", None)]
    assert submitted.status["groupID"] == "group-1"
    assert cond(submitted, "Reconciling")["reason"] == "InReview"
    assert cond(submitted, "Ready")["status"] == "False"
    assert "Submitted" in reasons(submitted)

    obj = after(obj, submitted)
    h.provider.review(image_id, PublicationState.PUBLISHED)
    done = h.reconcile(obj)

    assert done.status["phase"] == "Published"
    assert cond(done, "Ready") | {"status": "True", "reason": "Published"} == cond(done, "Ready")
    assert condition(done.status, "Reconciling") is None
    assert done.requeue_after is None
    (version,) = done.status["versions"]
    assert (version["versionName"], version["state"], version["imageID"]) == (
        "v1.0",
        "Published",
        image_id,
    )
    assert version["submittedGeneration"] == 1 and version["submittedAt"]
    assert reasons(done) == ["Published"]
    assert h.provider.calls_to("publish") == [(image_id, "v1.0", None)]


def test_fields_and_cover_reach_the_publish_call(h: Harness) -> None:
    obj, _ = h.copied(make_obj())
    h.reconciler.reconcile(obj, SOURCE, Cover(value=COVER), h.handle)
    assert h.provider.published_fields == [
        {"cover": COVER, "price": "0", "tags": ["深度学习", "PyTorch"], "name": "我的AI环境"}
    ]


def test_a_lost_status_write_after_publish_does_not_submit_twice(h: Harness) -> None:
    obj, image_id = h.copied(make_obj())
    h.reconcile(obj)  # published, but the status write is lost: obj keeps the old status

    again = h.reconcile(obj)

    assert h.provider.calls_to("publish") == [(image_id, "v1.0", None)]
    assert "Recovered" in reasons(again)
    assert again.status["groupID"] == "group-1"
    assert again.status["versions"][0]["state"] == "InReview"


def test_a_lost_status_write_after_copy_finds_the_copy_by_name(h: Harness) -> None:
    obj = make_obj()
    first = h.reconcile(obj)  # copied, status write lost

    again = h.reconcile(obj)

    assert again.status["externalID"] == first.status["externalID"]
    assert len(h.provider.calls_to("copy_image")) == 2  # the second was refused by name
    assert len(h.provider.image_names) == 1
    assert "Recovered" in reasons(again)


# -- review outcomes --------------------------------------------------------------------------
def test_rejection_stalls_with_the_reviewers_reason_until_the_spec_changes(h: Harness) -> None:
    obj, image_id = h.in_review(make_obj())
    h.provider.review(image_id, PublicationState.REJECTED, "the cover shows a trademark")

    rejected = h.reconcile(obj)

    stalled = cond(rejected, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "Rejected")
    assert "the cover shows a trademark" in stalled["message"]
    assert "spec.communityImageName" in stalled["message"]
    assert rejected.status["phase"] == "Rejected"
    assert rejected.status["versions"][0]["reason"] == "the cover shows a trademark"
    assert reasons(rejected) == ["Rejected"]

    obj = after(obj, rejected)
    unchanged = h.reconcile(obj)
    assert cond(unchanged, "Stalled")["reason"] == "Rejected"
    assert reasons(unchanged) == []  # no second Warning for the same verdict
    assert len(h.provider.calls_to("publish")) == 1

    fixed = after(obj, unchanged, spec=make_spec(communityImageName="AI环境"), generation=2)
    resubmitted = h.reconcile(fixed)
    assert h.provider.calls_to("publish") == [
        (image_id, "v1.0", None),
        (image_id, "v1.0", "group-1"),  # again into the group the first submission made
    ]
    assert cond(resubmitted, "Reconciling")["reason"] == "InReview"
    assert condition(resubmitted.status, "Stalled") is None
    assert "reason" not in resubmitted.status["versions"][0]

    h.provider.review(image_id, PublicationState.PUBLISHED)
    published = h.reconcile(after(fixed, resubmitted))
    assert published.status["phase"] == "Published"


def test_a_new_version_name_publishes_a_new_copy_into_the_same_group(h: Harness) -> None:
    obj, first_id = h.in_review(make_obj())
    h.provider.review(first_id, PublicationState.PUBLISHED)
    obj = after(obj, h.reconcile(obj))

    v11 = after(obj, Outcome(status=dict(obj.status)), spec=make_spec(versionName="v1.1"))
    v11 = replace(v11, generation=2)
    copying = h.reconcile(v11)
    second_id = copying.status["externalID"]
    assert second_id != first_id
    assert h.provider.calls_to("copy_image")[-1] == (
        SOURCE_ID,
        f"v1.1-my-ai-env-{UID.replace('-', '')[:8]}",
    )
    h.provider.advance(second_id, CloudState.AVAILABLE, 100)
    submitted = h.reconcile(after(v11, copying))
    assert h.provider.calls_to("publish")[-1] == (second_id, "v1.1", "group-1")
    h.provider.review(second_id, PublicationState.PUBLISHED)

    done = h.reconcile(after(v11, submitted))

    assert done.status["groupID"] == "group-1"
    assert [(v["versionName"], v["state"]) for v in done.status["versions"]] == [
        ("v1.0", "Published"),
        ("v1.1", "Published"),
    ]
    assert h.provider.groups == {"group-1": [first_id, second_id]}


def test_polling_a_review_is_one_listing_call(h: Harness) -> None:
    obj, _ = h.in_review(make_obj())
    h.provider.reset_calls()

    polled = h.reconcile(obj)

    assert h.provider.names() == ["describe_listing"]
    assert polled.requeue_after == POLL


def test_a_given_group_that_does_not_exist_stalls_before_anything_is_copied(h: Harness) -> None:
    outcome = h.reconcile(make_obj(spec=make_spec(groupID="group-nope")))

    stalled = cond(outcome, "Stalled")
    assert stalled["reason"] == "GroupNotFound"
    assert "spec.groupID" in stalled["message"] and "group-nope" in stalled["message"]
    assert h.provider.names() == ["describe_listing"]  # read, never copied
    assert outcome.requeue_after is None  # nothing improves until the spec changes


def test_a_cover_problem_stalls_before_any_cloud_call_and_looking_again_costs_none(
    h: Harness,
) -> None:
    problem = Cover(problem="spec.cover.configMapKeyRef names no ConfigMap")
    outcome = h.reconcile(make_obj(), cover=problem)
    again = h.reconcile(after(make_obj(), outcome), cover=problem)

    assert cond(again, "Stalled")["reason"] == "InvalidCover"
    assert h.provider.calls == []


def test_a_failed_copy_is_deleted_and_the_stall_waits_for_a_change(h: Harness) -> None:
    outcome = h.reconcile(make_obj())
    image_id = outcome.status["externalID"]
    h.provider.advance(image_id, CloudState.FAILED, 0)

    stalled = h.reconcile(after(make_obj(), outcome))

    assert cond(stalled, "Stalled")["reason"] == "CopyFailed"
    assert stalled.requeue_after is None
    assert h.provider.calls_to("delete_image") == [(image_id,)]  # nothing left unaccounted for
    del h.provider.images[image_id], h.provider.image_names[image_id]  # terminated by now
    h.provider.reset_calls()
    again = h.reconcile(after(make_obj(generation=2), stalled))
    assert h.provider.calls_to("copy_image") != []
    assert again.status["externalID"] != image_id


def test_a_given_group_receives_the_first_version(h: Harness) -> None:
    h.provider.groups["group-old"] = []
    obj, image_id = h.copied(make_obj(spec=make_spec(groupID="group-old")))

    outcome = h.reconcile(obj)

    assert h.provider.calls_to("publish") == [(image_id, "v1.0", "group-old")]
    assert outcome.status["groupID"] == "group-old"


# -- preconditions ----------------------------------------------------------------------------
def test_missing_image_stalls_and_looks_again(h: Harness) -> None:
    outcome = h.reconcile(make_obj(), source=SourceImage(name="ai-env", found=False))
    stalled = cond(outcome, "Stalled")
    assert stalled["reason"] == "ImageNotFound"
    assert "spec.imageRef" in stalled["message"]
    assert outcome.requeue_after == BACKOFF.provider_wait
    assert h.provider.calls == []


def test_an_image_not_ready_yet_is_waited_for_not_failed(h: Harness) -> None:
    source = replace(SOURCE, ready=False)
    outcome = h.reconcile(make_obj(), source=source)
    # kstatus reads Reconciling as in progress; a Stalled here read as Failed (issue 10).
    assert cond(outcome, "Reconciling")["reason"] == "WaitingForImage"
    assert condition(outcome.status, "Stalled") is None
    assert outcome.requeue_after == BACKOFF.provider_wait
    assert h.provider.calls == []


def test_an_image_of_another_provider_type_is_unsupported() -> None:
    other = FakeProvider()
    outcome = ListingReconciler(BACKOFF).reconcile(
        make_obj(), SOURCE, Cover(), ProviderHandle("argon", other, poll_interval=POLL)
    )
    stalled = cond(outcome, "Stalled")
    assert stalled["reason"] == "Unsupported"
    assert "compshare" in stalled["message"] and "spec.imageRef" in stalled["message"]
    assert other.calls == []


def test_a_provider_that_does_not_publish_is_unsupported_behind_the_wrapper() -> None:
    other = FakeProvider()
    handle = ProviderHandle("argon", InstrumentedProvider(other), poll_interval=POLL)
    outcome = ListingReconciler(BACKOFF).reconcile(make_obj(), SOURCE, Cover(), handle)
    assert cond(outcome, "Stalled")["reason"] == "Unsupported"
    assert other.calls == []


def test_a_vm_made_image_is_refused_before_anything_is_copied() -> None:
    h = Harness()
    h.provider.vm_made.add(SOURCE_ID)
    outcome = h.reconcile(make_obj())
    stalled = cond(outcome, "Stalled")
    assert stalled["reason"] == "NotContainerImage"
    assert "container" in stalled["message"]
    assert h.provider.calls_to("copy_image") == []


def test_a_cover_problem_stalls_before_submitting(h: Harness) -> None:
    obj, _ = h.copied(make_obj())
    problem = Cover(problem="spec.cover.inline is bad")

    outcome = h.reconcile(obj, cover=problem)

    assert cond(outcome, "Stalled")["message"] == "spec.cover.inline is bad"
    assert outcome.requeue_after == BACKOFF.provider_wait  # a ConfigMap may appear later
    assert h.provider.calls_to("publish") == []


def test_a_published_version_stays_published_while_the_image_is_not_ready(h: Harness) -> None:
    obj, image_id = h.in_review(make_obj())
    h.provider.review(image_id, PublicationState.PUBLISHED)

    outcome = h.reconcile(obj, source=replace(SOURCE, ready=False))

    assert outcome.status["phase"] == "Published"
    assert cond(outcome, "Ready")["status"] == "True"


def test_paused_makes_no_calls(h: Harness) -> None:
    obj = make_obj(annotations={ANNOTATION_PAUSED: "true"})
    outcome = h.reconcile(obj)
    assert outcome.status["phase"] == "Paused"
    assert h.provider.calls == []


def test_invalid_spec_stalls() -> None:
    obj = replace(make_obj(), spec=None, spec_error="spec.versionName: must look like v1.0")
    outcome = Harness().reconcile(obj)
    assert cond(outcome, "Stalled")["message"] == "spec.versionName: must look like v1.0"


def test_a_transient_error_retries_with_backoff(h: Harness) -> None:
    h.provider.fail_next("copy_image", Transient("compshare is down"))
    outcome = h.reconciler.reconcile(make_obj(), SOURCE, Cover(), h.handle, attempt=2)
    assert outcome.retrying
    assert outcome.requeue_after == BACKOFF.delay(2)
    assert cond(outcome, "Reconciling")["reason"] == "CloudUnavailable"


def test_a_copy_deleted_behind_our_back_is_made_again(h: Harness) -> None:
    obj = make_obj()
    first = h.reconcile(obj)
    h.provider.vanish(first.status["externalID"])
    h.provider.image_names.clear()

    outcome = h.reconcile(after(obj, first))
    assert "CopyMissing" in reasons(outcome)
    again = h.reconcile(after(obj, outcome))
    assert again.status["externalID"] != first.status["externalID"]
    assert len(h.provider.calls_to("copy_image")) == 2


# -- cover ------------------------------------------------------------------------------------
def _cover(**raw: Any) -> CoverSource:
    return CoverSource.model_validate(raw)


def _nothing(name: str, key: str) -> str | None:
    return None


def test_cover_inline_is_passed_through() -> None:
    assert resolve_cover(_cover(inline=COVER), _nothing, _nothing) == Cover(value=COVER)


def test_cover_from_a_configmap_key_and_a_secret_key() -> None:
    def configmap(name: str, key: str) -> str | None:
        return COVER if (name, key) == ("covers", "ai.png") else None

    def secret(name: str, key: str) -> str | None:
        return COVER[:8] + "\n" + COVER[8:] if (name, key) == ("s", "k") else None

    from_cm = resolve_cover(
        _cover(configMapKeyRef={"name": "covers", "key": "ai.png"}), configmap, _nothing
    )
    from_secret = resolve_cover(_cover(secretKeyRef={"name": "s", "key": "k"}), _nothing, secret)
    assert from_cm == from_secret == Cover(value=COVER)


def test_a_missing_cover_key_names_the_field() -> None:
    cover = resolve_cover(
        _cover(configMapKeyRef={"name": "covers", "key": "ai.png"}), _nothing, _nothing
    )
    assert cover.value is None
    assert cover.problem is not None
    assert "spec.cover.configMapKeyRef" in cover.problem and "'covers'" in cover.problem


def test_a_cover_that_is_not_base64_or_too_big_is_refused() -> None:
    def text(name: str, key: str) -> str | None:
        return "not base64 at all!"

    def huge(name: str, key: str) -> str | None:
        return "A" * (COVER_INLINE_MAX + 4)

    ref = _cover(secretKeyRef={"name": "s", "key": "k"})
    not_b64 = resolve_cover(ref, _nothing, text).problem
    too_big = resolve_cover(ref, _nothing, huge).problem
    assert not_b64 is not None and "not Base64" in not_b64
    assert too_big is not None and f"at most {COVER_INLINE_MAX}" in too_big


def test_base64_that_is_not_a_picture_is_refused_saying_which_formats_are() -> None:
    # docs/troubleshooting.md: InvalidCover covers "not an image"; Base64 text was published.
    text = base64.b64encode(b"hello world").decode()
    problem = resolve_cover(_cover(inline=text), _nothing, _nothing).problem
    assert problem == (
        "spec.cover.inline is Base64, but what it encodes is not a picture: give a PNG, JPEG, "
        "GIF or WebP file, Base64-encoded"
    )


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"\x89PNG\r\n\x1a\n...", "PNG"),
        (b"\xff\xd8\xff\xe0...", "JPEG"),
        (b"GIF89a...", "GIF"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "WebP"),
        (b"\x89PNG fake", None),
        (b"RIFF\x00\x00\x00\x00WAVE", None),
    ],
)
def test_picture_formats_are_told_by_their_magic_bytes(data: bytes, kind: str | None) -> None:
    assert picture_format(data) == kind
    if kind is not None:
        cover = base64.b64encode(data).decode()
        assert resolve_cover(_cover(inline=cover), _nothing, _nothing) == Cover(value=cover)


# -- deletion ---------------------------------------------------------------------------------
def test_deletion_terminates_every_copy_to_withdraw_its_version(h: Harness) -> None:
    obj, first_id = h.in_review(make_obj())
    h.provider.review(first_id, PublicationState.PUBLISHED)
    obj = after(obj, h.reconcile(obj))
    v11 = replace(obj, spec=make_spec(versionName="v1.1"), generation=2)
    v11, second_id = h.in_review(v11)

    withdrawing = h.reconciler.finalize(v11, SOURCE, h.handle)

    assert sorted(h.provider.calls_to("delete_image")) == [(first_id,), (second_id,)]
    assert not withdrawing.done
    assert {v["state"] for v in withdrawing.status["versions"]} == {"Withdrawing"}
    assert h.provider.publications[first_id].state is PublicationState.OFFLINE
    h.provider.finish_delete(first_id)
    h.provider.finish_delete(second_id)

    done = h.reconciler.finalize(after(v11, withdrawing), SOURCE, h.handle)

    assert done.done
    assert len(h.provider.calls_to("delete_image")) == 2  # not sent again
    assert {v["state"] for v in done.status["versions"]} == {"Withdrawn"}
    assert "Withdrawn" in reasons(done)
    assert h.provider.images.keys() == {SOURCE_ID}  # the Image itself is not ours to delete


def test_deletion_finds_a_copy_whose_status_write_was_lost(h: Harness) -> None:
    obj = make_obj()
    first = h.reconcile(obj)  # copy made, status lost

    outcome = h.reconciler.finalize(obj, SOURCE, h.handle)

    assert h.provider.calls_to("delete_image") == [(first.status["externalID"],)]
    assert not outcome.done


def test_orphan_leaves_the_versions_published(h: Harness) -> None:
    obj, _ = h.in_review(make_obj())
    obj = replace(obj, deletion_policy=DeletionPolicy.ORPHAN)

    outcome = h.reconciler.finalize(obj, SOURCE, h.handle)

    assert outcome.done
    assert h.provider.calls_to("delete_image") == []
    assert "Orphaned" in reasons(outcome)


def test_deletion_waits_while_paused(h: Harness) -> None:
    obj, _ = h.in_review(make_obj())
    obj = replace(obj, annotations={ANNOTATION_PAUSED: "true"})
    outcome = h.reconciler.finalize(obj, SOURCE, h.handle)
    assert not outcome.done
    assert h.provider.calls_to("delete_image") == []


def test_deletion_without_anything_published_needs_no_provider() -> None:
    outcome = ListingReconciler(BACKOFF).finalize(
        make_obj(), None, ProviderHandle("", problem="no provider")
    )
    assert outcome.done


# -- behind the instrumenting wrapper -----------------------------------------------------------
def _cloud_requests(action: str) -> float:
    value = REGISTRY.get_sample_value(
        "imageops_cloud_requests_total",
        {"provider": FakeCompShare.type_name, "action": action, "outcome": "ok"},
    )
    return value or 0.0


def test_publishing_through_the_instrumented_provider_is_measured() -> None:
    """The operator hands reconcilers an `InstrumentedProvider`: the publish calls reach the
    fake through `MeasuredPublishing`, each one counted like the base calls."""
    fake = FakeCompShare()
    fake.add_source()
    instrumented = InstrumentedProvider(fake)
    assert isinstance(instrumented.publisher, MeasuredPublishing)
    handle = ProviderHandle("cs", instrumented, poll_interval=POLL)
    reconciler = ListingReconciler(BACKOFF)
    before = {a: _cloud_requests(a) for a in ("copy_image", "publish", "describe_publication")}
    obj = make_obj()

    copying = reconciler.reconcile(obj, SOURCE, Cover(), handle)
    image_id = copying.status["externalID"]
    fake.advance(image_id, CloudState.AVAILABLE, 100)
    submitted = reconciler.reconcile(after(obj, copying), SOURCE, Cover(), handle)

    assert fake.calls_to("publish") == [(image_id, "v1.0", None)]
    assert submitted.status["phase"] == "InReview"
    assert submitted.status["groupID"] == "group-1"
    assert _cloud_requests("copy_image") == before["copy_image"] + 1
    assert _cloud_requests("publish") == before["publish"] + 1
    assert _cloud_requests("describe_publication") == before["describe_publication"] + 2


def test_a_provider_that_cannot_be_used_is_waited_for_naming_the_field_that_leads_to_it() -> None:
    reconciler = ListingReconciler(BACKOFF)
    missing = ProviderHandle("cs", problem="ImageProvider 'cs' does not exist in namespace 'ns'")

    outcome = reconciler.reconcile(make_obj(), SOURCE, Cover(), missing)

    reconciling = condition(outcome.status, "Reconciling")
    assert reconciling is not None and reconciling["reason"] == "WaitingForProvider"
    assert reconciling["message"].startswith(
        "the ImageProvider of Image 'ai-env' (spec.imageRef): ImageProvider 'cs' does not exist"
    )

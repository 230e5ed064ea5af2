"""The `compshare` provider against the emulator: every SDK call it makes, every error mapping.

Lifecycles run on the emulator's manual clock (the provider itself keeps no time), so the
tests move time instead of sleeping.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from image_operator.api.image import ImageSpec
from image_operator.api.provider import ImageProviderSpec
from image_operator.providers.compshare import CompShareProvider, build, cloud_name
from image_operator.providers.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Throttled,
    Transient,
    Unsupported,
)
from image_operator.providers.factory import ProviderConfig, build_provider
from image_operator.providers.model import CloudState, ImageRequest, Operation
from image_operator.providers.publishing import PublicationState, PublishRequest
from image_operator.providers.ratelimit import TokenBucket
from image_operator_dev.emulator.clock import ManualClock
from tests.contract.test_compshare_emulator import (
    CONTAINER,
    MAKING,
    PRIVATE_KEY,
    PUBLIC_KEY,
    REGION,
    REVIEW,
    VM,
    ZONE,
    CompShare,
    StartCompShare,
    start_compshare,
)
from tests.loopback import LOOPBACK_ENDPOINTS

UID = "4f3ede4c-1111-2222-3333-444455556666"
COVER = base64.b64encode(b"\x89PNG\r\n\x1a\n cover").decode()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def start(tmp_path: Path, clock: ManualClock) -> Iterator[StartCompShare]:
    running: list[CompShare] = []

    def launch(**overrides: Any) -> CompShare:
        emulator = start_compshare(tmp_path / "state", clock, **overrides)
        running.append(emulator)
        return emulator

    yield launch
    for emulator in running:
        emulator.close()


@pytest.fixture
def cs(start: StartCompShare) -> CompShare:
    return start()


def provider(cs: CompShare, **overrides: Any) -> CompShareProvider:
    options: dict[str, Any] = {
        "endpoint": cs.url,
        "region": REGION,
        "zone": ZONE,
        "public_key": PUBLIC_KEY,
        "private_key": PRIVATE_KEY,
        **overrides,
    }
    return CompShareProvider(**options)


def request(
    name: str = "ai-env", uid: str = UID, instance: str = CONTAINER, **spec: Any
) -> ImageRequest:
    body = {
        "providerRef": {"name": "compshare"},
        "source": {"vm": {"vmID": instance}},
        "displayName": "AI environment",
        **spec,
    }
    return ImageRequest(
        idempotency_key=uid, name=name, namespace="ns", spec=ImageSpec.model_validate(body)
    )


def made(p: CompShareProvider, clock: ManualClock, req: ImageRequest | None = None) -> str:
    """An Available container image made through the provider."""
    image = p.create_image(req or request())
    clock.advance(MAKING)
    assert p.get_image(image.external_id).state is CloudState.AVAILABLE
    return image.external_id


# --- the Image lifecycle ---------------------------------------------------------------------


def test_probe_describes_the_zone(cs: CompShare) -> None:
    info = provider(cs).probe()
    assert info.startswith("compshare at http://127.0.0.1:")  # no user info, ever
    assert info.endswith(f"region {REGION}, zone {ZONE}: 0 custom images")


def test_create_from_an_instance_makes_an_image_named_with_the_key(
    cs: CompShare, clock: ManualClock
) -> None:
    p = provider(cs)
    req = request(description="PyTorch 2.1")

    created = p.create_image(req)

    assert created.external_id.startswith("compshareImage-")
    assert (created.state, created.progress) == (CloudState.CREATING, 0)
    stored = cs.describe(created.external_id)
    assert stored["Name"] == cloud_name(req) == "ai-env-4f3ede4c"
    assert stored["Description"] == "PyTorch 2.1"
    assert stored["Container"] == "True"
    clock.advance(MAKING * 0.3)
    assert p.get_image(created.external_id).progress == 30
    clock.advance(MAKING)
    available = p.get_image(created.external_id)
    assert (available.state, available.progress) == (CloudState.AVAILABLE, 100)
    assert not p.needs_update(req, available)


def test_a_long_kubernetes_name_still_fits_fifty_characters() -> None:
    req = request(name="a" * 60)
    assert cloud_name(req) == "a" * 41 + "-4f3ede4c"


def test_find_image_recovers_a_create_by_its_key(cs: CompShare) -> None:
    p = provider(cs)
    assert p.find_image(request()) is None
    created = p.create_image(request())

    found = p.find_image(request())

    assert found is not None and found.external_id == created.external_id
    with pytest.raises(Conflict) as again:
        p.create_image(request())
    assert again.value.vendor_code == "8103"
    assert cs.client.describe_comp_share_custom_images({"Zone": ZONE})["TotalCount"] == 1


def test_get_images_describes_many_in_one_call(cs: CompShare, clock: ManualClock) -> None:
    p = provider(cs)
    ids = [p.create_image(request(f"img{i}", uid=f"{i:08d}-x")).external_id for i in range(5)]
    clock.advance(MAKING)
    cs.reset_stats()

    described = p.get_images([*ids, "compshareImage-missing"])

    assert cs.calls() == 1
    assert described["compshareImage-missing"] is None
    assert {image.state for i in ids if (image := described[i])} == {CloudState.AVAILABLE}
    assert all(described[i] is not None for i in ids)


def test_get_images_asks_progress_only_for_images_being_made(
    cs: CompShare, clock: ManualClock
) -> None:
    p = provider(cs)
    done = made(p, clock, request("done", uid="00000001-x"))
    making = [p.create_image(request(f"m{i}", uid=f"1000000{i}-x")).external_id for i in range(2)]
    clock.advance(MAKING / 2)
    cs.reset_stats()

    described = p.get_images([done, *making])

    assert cs.calls() == 3  # one describe, one progress call per image still being made
    assert (image := described[done]) is not None and image.progress == 100
    assert [image.progress for m in making if (image := described[m])] == [50, 50]


def test_get_images_reads_further_pages_or_single_images_whichever_is_fewer(
    cs: CompShare, clock: ManualClock
) -> None:
    p = provider(cs)
    ids = []
    for index in range(230):  # three pages of 100, newest first
        ids.append(cs.make_image(f"img{index}"))
        clock.advance(0.001)
    clock.advance(MAKING)  # all Available: no progress calls muddle the count
    oldest, older, newest = ids[0], ids[1], ids[-1]

    cs.reset_stats()
    one = p.get_images([newest, oldest])
    single_calls = cs.calls()  # first page + one describe of `oldest` (2 pages were left)
    cs.reset_stats()
    two = p.get_images([newest, oldest, older, ids[2]])
    paged_calls = cs.calls()  # first page + the 2 remaining pages (3 images were missing)

    cs.reset_stats()
    gone = p.get_images(
        [newest, "compshareImage-gone1", "compshareImage-gone2", "compshareImage-gone3"]
    )
    confirmed_calls = cs.calls()  # 3 pages, then each absent image asked for by itself

    assert single_calls == 2
    assert paged_calls == 3
    assert confirmed_calls == 3 + 3
    assert [k for k, v in gone.items() if v is None] == [
        "compshareImage-gone1",
        "compshareImage-gone2",
        "compshareImage-gone3",
    ]
    assert all(one[i] is not None for i in (newest, oldest))
    assert all(two[i] is not None for i in (newest, oldest, older, ids[2]))


def test_update_pushes_the_description(cs: CompShare, clock: ManualClock) -> None:
    p = provider(cs)
    image_id = made(p, clock)
    changed = request(description="新描述")
    assert p.needs_update(changed, p.get_image(image_id))

    updated = p.update_image(image_id, changed)

    assert cs.describe(image_id)["Description"] == "新描述"
    assert not p.needs_update(changed, updated)
    assert p.needs_update(request(), updated)  # clearing it is a change too


def test_delete_then_gone(cs: CompShare, clock: ManualClock) -> None:
    p = provider(cs)
    image_id = made(p, clock)

    p.delete_image(image_id)

    assert p.get_images([image_id]) == {image_id: None}
    with pytest.raises(NotFound):
        p.get_image(image_id)
    with pytest.raises(NotFound):
        p.delete_image(image_id)


def test_a_failed_making_reports_the_reason(start: StartCompShare, clock: ManualClock) -> None:
    p = provider(start(fail_image_pattern="^broken"))
    image = p.create_image(request("broken"))
    clock.advance(MAKING)

    failed = p.get_image(image.external_id)

    assert failed.state is CloudState.FAILED
    assert failed.message is not None and "broken-4f3ede4c" in failed.message


def test_sources_other_than_an_instance_are_unsupported(cs: CompShare) -> None:
    p = provider(cs)
    from_repository = request(source={"repository": {"image": "library/busybox:1.36"}})

    with pytest.raises(Unsupported) as refused:
        p.require(Operation.CREATE_FROM_REPOSITORY)
    with pytest.raises(Unsupported, match=r"spec\.source\.repository"):
        p.create_image(from_repository)

    assert "compshare" in refused.value.message and "capture a VM" in refused.value.message
    assert cs.client.describe_comp_share_custom_images({"Zone": ZONE})["TotalCount"] == 0


def test_a_disk_or_an_unknown_instance_is_invalid(cs: CompShare) -> None:
    p = provider(cs)
    disk = request(source={"vm": {"vmID": CONTAINER, "diskID": "disk-1"}})

    with pytest.raises(InvalidInput, match=r"spec\.source\.vm\.diskID"):
        p.create_image(disk)
    with pytest.raises(InvalidInput, match=r"UHost \[uhost-nope\] not found"):
        p.create_image(request(instance="uhost-nope"))


def test_copy_makes_a_new_container_image(cs: CompShare, clock: ManualClock) -> None:
    p = provider(cs)
    source = made(p, clock)

    copy_id = p.copy_image(source, "ai-env-copy")

    assert p.get_image(copy_id).state is CloudState.CREATING
    clock.advance(MAKING)
    copied = p.get_image(copy_id)
    assert copied.state is CloudState.AVAILABLE
    assert copied.raw["Container"] == "True"
    with pytest.raises(Conflict):  # a retried copy with the same name makes no second one
        p.copy_image(source, "ai-env-copy")


def test_copy_within_names_the_copy_so_it_is_found_and_never_made_twice(
    cs: CompShare, clock: ManualClock
) -> None:
    p = provider(cs)
    source = made(p, clock)
    copy_request = request(
        name="ai-env-copy",
        uid="99999999-8888-4777-8666-555555555555",
        source={"image": {"imageRef": {"name": "ai-env"}}},
    )

    copied = p.copy_within(copy_request, source)

    assert copied.state is CloudState.CREATING and copied.progress == 0
    found = p.find_image(copy_request)
    assert found is not None and found.external_id == copied.external_id
    with pytest.raises(Conflict):
        p.copy_within(copy_request, source)
    clock.advance(MAKING)
    assert p.get_image(copied.external_id).raw["Name"] == cloud_name(copy_request)


# --- publication (seed 000) ------------------------------------------------------------------


def test_publish_with_every_seed_field_then_review_publishes(
    cs: CompShare, clock: ManualClock
) -> None:
    p = provider(cs)
    image_id = made(p, clock)
    assert p.describe_publication(image_id) is None

    p.publish(
        image_id,
        PublishRequest(
            community_image_name="我的AI环境",
            version_name="v1.0",
            version_desc="首次发布",
            price="1.5",
            cover=COVER,
            tags=["深度学习", "PyTorch"],
            description="预装PyTorch 2.1和CUDA 12.1",
            readme="# 使用说明",
            supported_gpu_types=["4090", "A100"],
            auto_start=True,
        ),
    )

    pending = p.describe_publication(image_id)
    assert pending is not None
    assert (pending.state, pending.version_name) == (PublicationState.IN_REVIEW, "v1.0")
    assert pending.group_id.startswith("group-") and pending.published_at is None
    clock.advance(REVIEW)
    published = p.describe_publication(image_id)
    assert published is not None and published.state is PublicationState.PUBLISHED
    assert published.published_at is not None
    assert published.community_image_name == "我的AI环境"
    raw = published.raw
    assert (raw["Price"], raw["Tags"], raw["VersionDesc"]) == (
        1.5,
        ["深度学习", "PyTorch"],
        "首次发布",
    )
    assert (raw["Readme"], raw["AutoStart"], raw["Description"]) == (
        "# 使用说明",
        True,
        "预装PyTorch 2.1和CUDA 12.1",
    )
    (dumped,) = cs.state()["groups"]
    assert dumped["Data"][0]["SupportedGpuTypes"] == ["4090", "A100"]
    # Publishing does not change the custom image the Image object manages.
    assert p.get_image(image_id).state is CloudState.AVAILABLE


def test_a_rejected_publication_carries_the_reason(
    start: StartCompShare, clock: ManualClock
) -> None:
    p = provider(start(reject_listing_pattern="广告", reject_reason="the readme is an advert"))
    image_id = made(p, clock)

    p.publish(image_id, PublishRequest(version_name="v1.0", community_image_name="广告镜像"))
    clock.advance(REVIEW)

    rejected = p.describe_publication(image_id)
    assert rejected is not None
    assert (rejected.state, rejected.reason) == (
        PublicationState.REJECTED,
        "the readme is an advert",
    )


def test_a_second_version_joins_the_listing(cs: CompShare, clock: ManualClock) -> None:
    p = provider(cs)
    first = made(p, clock, request("env-a"))
    p.publish(first, PublishRequest(version_name="v1.0", community_image_name="我的AI环境"))
    clock.advance(REVIEW)
    first_publication = p.describe_publication(first)
    assert first_publication is not None
    group_id = first_publication.group_id
    second = made(p, clock, request("env-b"))

    p.publish(
        second, PublishRequest(version_name="v1.1", group_id=group_id, version_desc="升级CUDA")
    )

    listing = p.describe_listing(group_id)
    assert (listing.name, listing.published) == ("我的AI环境", True)
    assert [(v.image_id, v.version_name, v.state) for v in listing.versions] == [
        (first, "v1.0", PublicationState.PUBLISHED),
        (second, "v1.1", PublicationState.IN_REVIEW),
    ]
    with pytest.raises(Conflict, match=r"already has version v1\.1"):
        p.publish(
            made(p, clock, request("env-c")), PublishRequest(version_name="v1.1", group_id=group_id)
        )


def test_publication_refusals_map_to_provider_errors(cs: CompShare, clock: ManualClock) -> None:
    p = provider(cs)
    vm_image = made(p, clock, request("vm", instance=VM))
    image_id = made(p, clock, request("ok", uid="00000010-x"))
    making = p.create_image(request("making", uid="00000009-x")).external_id

    with pytest.raises(InvalidInput, match="only images made from a container"):
        p.publish(vm_image, PublishRequest(version_name="v1.0"))
    with pytest.raises(InvalidInput, match="is Making"):
        p.publish(making, PublishRequest(version_name="v1.0"))
    with pytest.raises(InvalidInput, match=r"Params \[VersionName\] not available"):
        p.publish(image_id, PublishRequest(version_name="1.0"))
    with pytest.raises(InvalidInput, match=r"price '-1' must be a number ≥ 0"):
        p.publish(image_id, PublishRequest(version_name="v1.0", price="-1"))
    with pytest.raises(NotFound, match=r"Group \[group-nope\] not found"):
        p.publish(image_id, PublishRequest(version_name="v1.0", group_id="group-nope"))
    with pytest.raises(NotFound):
        p.describe_listing("group-nope")
    p.publish(image_id, PublishRequest(version_name="v1.0"))
    with pytest.raises(Conflict, match="already in review"):
        p.publish(image_id, PublishRequest(version_name="v1.0"))


def test_the_publisher_judges_container_images_and_names_copies(
    cs: CompShare, clock: ManualClock
) -> None:
    p = provider(cs)
    publisher = p.publisher
    assert publisher is p  # CompShareProvider declares Publishes
    container = made(p, clock, request("container"))
    vm_image = made(p, clock, request("vm", uid="00000011-x", instance=VM))

    assert publisher.container_made(p.get_image(container))
    assert not publisher.container_made(p.get_image(vm_image))
    copy_request = request("v1.0-my-listing", uid="00000012-x")
    assert publisher.publication_copy_name(copy_request) == cloud_name(copy_request)


# --- errors, limits, configuration -----------------------------------------------------------


def test_a_wrong_key_is_forbidden_and_the_message_holds_no_key(cs: CompShare) -> None:
    with pytest.raises(Forbidden) as refused:
        provider(cs, private_key="wrong-private-key").probe()

    assert "RetCode 171" in refused.value.message
    assert "wrong-private-key" not in refused.value.message
    assert PUBLIC_KEY not in refused.value.message


def test_throttling_is_throttled(cs: CompShare) -> None:
    cs.set_faults(throttle_rate=1.0, retry_after_seconds=3)
    with pytest.raises(Throttled) as throttled:
        provider(cs).probe()
    assert throttled.value.retryable and throttled.value.vendor_code == "429"


def test_outages_and_unreachable_endpoints_are_transient(cs: CompShare) -> None:
    cs.set_faults(error_rate=1.0)
    with pytest.raises(Transient, match="HTTP 503"):
        provider(cs).probe()
    with pytest.raises(Transient, match="unreachable"):
        provider(cs, endpoint="http://127.0.0.1:9", timeout=2).probe()


def test_every_call_waits_for_the_rate_limiter(cs: CompShare, clock: ManualClock) -> None:
    acquired: list[float] = []

    class CountingBucket(TokenBucket):
        def acquire(self) -> float:
            acquired.append(1.0)
            return super().acquire()

    p = provider(cs, limiter=CountingBucket(1000, 1000))
    image_id = made(p, clock)
    cs.reset_stats()
    acquired.clear()

    p.get_image(image_id)
    p.delete_image(image_id)

    assert len(acquired) == cs.calls() == 2


def test_the_factory_builds_it_from_an_image_provider(cs: CompShare) -> None:
    spec = ImageProviderSpec.model_validate(
        {
            "type": "compshare",
            "endpoint": cs.url,
            "region": REGION,
            "zone": ZONE,
            "credentialsSecretRef": {"name": "keys"},
            "rateLimit": {"requestsPerSecond": 5, "burst": 5},
        }
    )
    built = build_provider(
        spec, {"publicKey": PUBLIC_KEY, "privateKey": PRIVATE_KEY}, endpoints=LOOPBACK_ENDPOINTS
    )

    assert built.type_name == "compshare"
    assert "zone cn-wlcb-01" in built.probe()
    without_zone = spec.model_copy(update={"zone": None})
    with pytest.raises(InvalidInput, match=r"spec\.zone is required"):
        build(ProviderConfig(without_zone, {"publicKey": "p", "privateKey": "k"}))
    with pytest.raises(InvalidInput, match="privateKey"):
        build_provider(spec, {"publicKey": PUBLIC_KEY}, endpoints=LOOPBACK_ENDPOINTS)

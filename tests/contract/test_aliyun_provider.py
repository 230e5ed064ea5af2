"""The `aliyun` provider against the emulator: every SDK call it makes, and its error mapping."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from image_operator.api.image import ImageSpec
from image_operator.api.pipeline import ImagePipelineSpec
from image_operator.api.provider import ImageProviderSpec
from image_operator.providers.aliyun import AliyunProvider
from image_operator.providers.aliyun_images import UID_TAG, client_token, cloud_name, oss_location
from image_operator.providers.aliyun_pipelines import (
    AdvancedOptions,
    ImageOptions,
    ImportImageOptions,
    OssDisk,
    PipelineTag,
    PipelineTemplate,
)
from image_operator.providers.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Throttled,
    Transient,
    Unsupported,
)
from image_operator.providers.factory import build_provider
from image_operator.providers.model import CloudState, ImageRequest
from image_operator.providers.pipelines import PipelineBuild
from image_operator_dev.emulator.aliyun_testing import AliyunHarness, aliyun_config
from image_operator_dev.emulator.testing import poll_until
from tests.loopback import LOOPBACK_ENDPOINTS

REGION = "cn-hangzhou"
UID = "7d4b1a52-0c1e-4d8e-9f00-1234567890ab"
DISK = b"QFI\xfb" + b"\0" * 4096

Start = Callable[..., AliyunHarness]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    harnesses: list[AliyunHarness] = []

    def run(**aliyun: Any) -> AliyunHarness:
        harness = AliyunHarness(aliyun_config(tmp_path / "state", **aliyun))
        harnesses.append(harness)
        return harness

    yield run
    for harness in harnesses:
        harness.close()


@pytest.fixture
def aliyun(start: Start) -> AliyunHarness:
    return start()


def provider(
    aliyun: AliyunHarness, *, secret: str | None = None, region: str = REGION
) -> AliyunProvider:
    """Built the way the operator builds it: through the factory, from an ImageProvider spec."""
    spec = ImageProviderSpec.model_validate(
        {
            "type": "aliyun",
            "endpoint": aliyun.url,
            "region": region,
            "credentialsSecretRef": {"name": "aliyun-keys"},
        }
    )
    keys = {"accessKeyId": aliyun.key_id, "accessKeySecret": secret or aliyun.key_secret}
    built = build_provider(spec, keys, endpoints=LOOPBACK_ENDPOINTS)
    assert isinstance(built, AliyunProvider)
    return built


def url_request(url: str, *, name: str = "ubuntu", uid: str = UID, **spec: Any) -> ImageRequest:
    body: dict[str, Any] = {
        "providerRef": {"name": "ali"},
        "displayName": "Ubuntu 22.04",
        "source": {
            "url": {
                "url": url,
                "format": "qcow2",
                "os": {
                    "type": "Linux",
                    "distribution": "Ubuntu",
                    "version": "22.04",
                    "arch": "x86_64",
                },
            }
        },
        **spec,
    }
    return ImageRequest(
        idempotency_key=uid, name=name, namespace="ns", spec=ImageSpec.model_validate(body)
    )


def available(p: AliyunProvider, external_id: str) -> Any:
    return poll_until(
        lambda: p.get_image(external_id),
        lambda image: image.state is CloudState.AVAILABLE,
        deadline=10,
    )[-1]


# --- probe and configuration --------------------------------------------------------------------


def test_probe_reports_the_region(aliyun: AliyunHarness) -> None:
    info = provider(aliyun).probe()

    assert REGION in info
    assert aliyun.url in info


def test_probe_maps_bad_keys_and_regions(aliyun: AliyunHarness) -> None:
    with pytest.raises(Forbidden) as denied:
        provider(aliyun, secret="wrong-secret").probe()
    with pytest.raises(InvalidInput) as elsewhere:
        provider(aliyun, region="eu-central-1").probe()

    assert denied.value.vendor_code == "SignatureDoesNotMatch"
    assert "wrong-secret" not in denied.value.message
    assert aliyun.key_secret not in denied.value.message
    assert "eu-central-1" in elsewhere.value.message


def test_build_requires_a_region(aliyun: AliyunHarness) -> None:
    spec = ImageProviderSpec.model_validate(
        {"type": "aliyun", "endpoint": aliyun.url, "credentialsSecretRef": {"name": "k"}}
    )

    with pytest.raises(InvalidInput, match=r"spec\.region"):
        build_provider(
            spec, {"accessKeyId": "a", "accessKeySecret": "b"}, endpoints=LOOPBACK_ENDPOINTS
        )


# --- images -----------------------------------------------------------------------------------


def test_url_import_becomes_available_and_is_found_by_its_key(aliyun: AliyunHarness) -> None:
    p = provider(aliyun)
    url = aliyun.put_object("images", "ubuntu/22.04 server.qcow2", DISK)
    request = url_request(url, tags={"team": "ml"}, description="Ubuntu for the ML team")

    assert p.find_image(request) is None
    created = p.create_image(request)
    again = p.create_image(request)  # a retry after a lost answer: the ClientToken dedupes
    found = p.find_image(request)
    done = available(p, created.external_id)

    assert created.state is CloudState.PENDING
    assert again.external_id == created.external_id
    assert found is not None and found.external_id == created.external_id
    assert (done.progress, done.raw["ImageName"]) == (100, cloud_name(request))
    assert done.raw["ImageName"] == "ubuntu-7d4b1a52"
    stored = aliyun.images()[created.external_id]
    assert stored["Description"] == "Ubuntu for the ML team"
    assert (stored["Platform"], stored["OSType"], stored["Architecture"]) == (
        "Ubuntu",
        "linux",
        "x86_64",
    )
    mapping = stored["DiskDeviceMappings"]["DiskDeviceMapping"][0]
    assert (mapping["ImportOSSBucket"], mapping["ImportOSSObject"], mapping["Format"]) == (
        "images",
        "ubuntu/22.04 server.qcow2",
        "QCOW2",
    )
    tags = {t["TagKey"]: t["TagValue"] for t in stored["Tags"]["Tag"]}
    assert tags == {UID_TAG: UID, "team": "ml"}
    assert len(aliyun.images()) == 1
    assert not p.needs_update(request, done)


def test_changed_spec_under_the_same_key_is_a_conflict_resolved_by_lookup(
    aliyun: AliyunHarness,
) -> None:
    p = provider(aliyun)
    url = aliyun.put_object("images", "disk.qcow2", DISK)
    first = p.create_image(url_request(url))

    with pytest.raises(Conflict) as conflict:
        p.create_image(url_request(url, description="edited before the status was written"))

    assert conflict.value.vendor_code == "IdempotentParameterMismatch"
    found = p.find_image(url_request(url))
    assert found is not None and found.external_id == first.external_id


def test_get_images_describes_many_in_one_call(aliyun: AliyunHarness) -> None:
    p = provider(aliyun)
    url = aliyun.put_object("images", "disk.qcow2", DISK)
    ids = [
        p.create_image(
            url_request(url, name=f"img{i}", uid=f"{i:08d}-0000-4000-8000-0")
        ).external_id
        for i in range(5)
    ]
    before = aliyun.calls().get("DescribeImages", 0)

    found = p.get_images([*ids, "m-doesnotexist00000000"])

    assert aliyun.calls()["DescribeImages"] - before == 1
    assert {i for i, image in found.items() if image is not None} == set(ids)
    assert found["m-doesnotexist00000000"] is None
    with pytest.raises(NotFound):
        p.get_image("m-doesnotexist00000000")


def test_delete_waits_for_creation_then_removes(aliyun: AliyunHarness) -> None:
    p = provider(aliyun)
    url = aliyun.put_object("images", "disk.qcow2", DISK)
    image_id = p.create_image(url_request(url)).external_id

    with pytest.raises(Transient) as busy:
        p.delete_image(image_id)  # ECS refuses while the image is being made
    available(p, image_id)
    p.delete_image(image_id)

    assert busy.value.vendor_code == "IncorrectImageStatus"
    with pytest.raises(NotFound):
        p.get_image(image_id)
    with pytest.raises(NotFound):
        p.delete_image(image_id)
    assert p.find_image(url_request(url)) is None


def test_failed_import_is_reported_failed(start: Start) -> None:
    aliyun = start(fail_import_object_pattern="broken")
    p = provider(aliyun)
    url = aliyun.put_object("images", "broken.qcow2", DISK)

    image_id = p.create_image(url_request(url)).external_id
    seen = poll_until(
        lambda: p.get_image(image_id),
        lambda image: image.state is CloudState.FAILED,
        deadline=10,
    )

    assert seen[-1].message is not None and "CreateFailed" in seen[-1].message


def test_urls_that_are_not_oss_objects_are_refused(aliyun: AliyunHarness) -> None:
    p = provider(aliyun)

    with pytest.raises(InvalidInput, match="OSS") as not_oss:
        p.create_image(url_request("https://example.com/disk.qcow2"))
    with pytest.raises(InvalidInput, match="cn-beijing"):
        p.create_image(url_request("https://images.oss-cn-beijing.aliyuncs.com/disk.qcow2"))
    with pytest.raises(InvalidInput, match="iso"):
        p.create_image(
            url_request(aliyun.oss_url("images", "d.iso")).model_copy(
                update={
                    "spec": ImageSpec.model_validate(
                        {
                            "providerRef": {"name": "ali"},
                            "displayName": "iso",
                            "source": {
                                "url": {"url": aliyun.oss_url("images", "d.iso"), "format": "iso"}
                            },
                        }
                    )
                }
            )
        )
    with pytest.raises(InvalidInput) as missing:
        p.create_image(url_request(aliyun.oss_url("images", "not-uploaded.qcow2")))

    assert f"{aliyun.url}/oss/<bucket>/<object>" in not_oss.value.message
    assert missing.value.vendor_code == "InvalidOSSObject.NotFound"
    assert aliyun.images() == {}


def test_oss_urls_map_to_bucket_and_object() -> None:
    hosted = oss_location(
        "https://my-images.oss-cn-hangzhou.aliyuncs.com/a/b%20c.raw?Expires=1", None
    )
    internal = oss_location("https://my-images.oss-cn-hangzhou-internal.aliyuncs.com/x.vhd", None)
    private = oss_location("http://127.0.0.1:8080/oss/bkt/dir/disk.qcow2", "http://127.0.0.1:8080")

    assert (hosted.bucket, hosted.key, hosted.region) == ("my-images", "a/b c.raw", "cn-hangzhou")
    assert (internal.bucket, internal.key, internal.region) == ("my-images", "x.vhd", "cn-hangzhou")
    assert (private.bucket, private.key, private.region) == ("bkt", "dir/disk.qcow2", None)
    with pytest.raises(InvalidInput):
        oss_location("http://127.0.0.1:9999/oss/bkt/disk.qcow2", "http://127.0.0.1:8080")


def test_names_and_tokens_fit_ecs_rules() -> None:
    digit_first = url_request("https://b.oss-cn-hangzhou.aliyuncs.com/k", name="9lives")
    long_uid = "x" * 100

    assert cloud_name(digit_first) == "img-9lives-7d4b1a52"
    assert len(client_token("import", UID)) <= 64
    assert client_token("import", UID) == f"import-{UID}"
    assert len(client_token("pipeline", long_uid)) <= 64
    assert client_token("pipeline", long_uid) == client_token("pipeline", long_uid)


def test_other_sources_and_updates_are_unsupported(aliyun: AliyunHarness) -> None:
    p = provider(aliyun)
    repository = ImageRequest(
        idempotency_key=UID,
        name="app",
        namespace="ns",
        spec=ImageSpec.model_validate(
            {
                "providerRef": {"name": "ali"},
                "displayName": "app",
                "source": {"repository": {"image": "library/busybox:1.36"}},
            }
        ),
    )
    copy = ImageRequest(
        idempotency_key=UID,
        name="copy",
        namespace="ns",
        spec=ImageSpec.model_validate(
            {
                "providerRef": {"name": "ali"},
                "displayName": "copy",
                "source": {"image": {"imageRef": {"name": "ubuntu"}}},
            }
        ),
    )

    with pytest.raises(Unsupported, match="container repository"):
        p.create_image(repository)
    with pytest.raises(Unsupported, match=r"spec\.source\.image is made by copy_within"):
        p.create_image(copy)
    with pytest.raises(Unsupported, match="update"):
        p.update_image("m-x", repository)


def test_spec_tags_leave_room_for_the_key_tag(aliyun: AliyunHarness) -> None:
    p = provider(aliyun)
    url = aliyun.put_object("images", "disk.qcow2", DISK)

    with pytest.raises(InvalidInput, match="at most 19"):
        p.create_image(url_request(url, tags={f"k{i}": "v" for i in range(20)}))
    created = p.create_image(url_request(url, tags={f"k{i}": "v" for i in range(19)}))

    assert len(aliyun.images()[created.external_id]["Tags"]["Tag"]) == 20


def test_copy_image_into_the_provider_region(aliyun: AliyunHarness) -> None:
    beijing = provider(aliyun, region="cn-beijing")
    hangzhou = provider(aliyun)
    url = aliyun.put_object("images", "disk.qcow2", DISK)
    source = available(hangzhou, hangzhou.create_image(url_request(url)).external_id)
    request = url_request(url, name="ubuntu-bj", uid="11111111-2222-4333-8444-555555555555")

    copied = beijing.copy_image(request, source.external_id, source_region=REGION)
    again = beijing.copy_image(request, source.external_id, source_region=REGION)
    done = available(beijing, copied.external_id)

    assert again.external_id == copied.external_id
    assert done.raw["ImageName"] == cloud_name(request)
    assert beijing.find_image(request) is not None
    assert aliyun.images()[copied.external_id]["RegionId"] == "cn-beijing"
    with pytest.raises(NotFound):
        hangzhou.get_image(copied.external_id)  # it lives in the other region


def test_copy_within_the_region_is_tagged_and_found_again(aliyun: AliyunHarness) -> None:
    p = provider(aliyun)
    url = aliyun.put_object("images", "disk.qcow2", DISK)
    source = available(p, p.create_image(url_request(url)).external_id)
    request = url_request(
        url,
        name="ubuntu-copy",
        uid="22222222-2222-4333-8444-555555555555",
        description="the copy",
        source={"image": {"imageRef": {"name": "ubuntu"}}},
    )

    copied = p.copy_within(request, source.external_id)
    done = available(p, copied.external_id)

    stored = aliyun.images()[copied.external_id]
    assert (stored["RegionId"], stored["IsCopied"]) == (REGION, True)
    assert stored["Description"] == "the copy"
    assert done.raw["ImageName"] == cloud_name(request)
    found = p.find_image(request)  # by the UID tag: a lost answer is recovered, not redone
    assert found is not None and found.external_id == copied.external_id


def test_share_permission_in_batches_of_ten(aliyun: AliyunHarness) -> None:
    p = provider(aliyun)
    url = aliyun.put_object("images", "disk.qcow2", DISK)
    image_id = available(p, p.create_image(url_request(url)).external_id).external_id
    accounts = [10**10 + i for i in range(12)]
    before = aliyun.calls().get("ModifyImageSharePermission", 0)

    p.modify_image_share_permission(image_id, add_accounts=accounts)

    assert aliyun.calls()["ModifyImageSharePermission"] - before == 2
    assert aliyun.images()[image_id]["IsSelfShared"] == "True"
    p.modify_image_share_permission(image_id, remove_accounts=accounts)
    assert aliyun.images()[image_id]["IsSelfShared"] == "False"
    with pytest.raises(InvalidInput):
        p.modify_image_share_permission(image_id, add_accounts=["not-an-account"])


# --- error mapping ----------------------------------------------------------------------------


def test_throttling_and_outages_are_retryable(aliyun: AliyunHarness) -> None:
    p = provider(aliyun)

    aliyun.set_faults(throttle_rate=1.0, retry_after_seconds=3)
    with pytest.raises(Throttled) as throttled:
        p.get_images(["m-x"])
    aliyun.set_faults(error_rate=1.0)
    with pytest.raises(Transient) as unavailable:
        p.probe()
    aliyun.set_faults()
    url = aliyun.url
    aliyun.close()
    with pytest.raises(Transient) as unreachable:
        p.probe()

    assert (throttled.value.retry_after, throttled.value.vendor_code) == (3.0, "Throttling.User")
    assert unavailable.value.vendor_code == "ServiceUnavailable"
    assert "unreachable" in unreachable.value.message
    assert url not in unreachable.value.message


# --- pipelines --------------------------------------------------------------------------------

TEMPLATE = PipelineTemplate(
    base_image_type="IMAGE",
    base_image="aliyun_3_x64_20G_alibase_20240819.vhd",
    name="web-base",
    description="The web tier's base image",
    build_content="RUN yum install -y nginx",
    test_content="RUN nginx -v",
    to_region_ids=["cn-beijing", "cn-shanghai"],
    add_accounts=[1122334455],
    instance_type="ecs.g6.large",
    system_disk_size=40,
    internet_max_bandwidth_out=10,
    vswitch_id="vsw-bp67acfmxazb4p0001",
    delete_instance_on_failure=True,
    repair_mode="Standard",
    resource_group_id="rg-bp67acfmxazb4p0001",
    tags=[PipelineTag(key="team", value="web")],
    image_options=ImageOptions(
        image_name="web",
        image_family="web-base",
        description="Built by image-operator",
        nvme_support="auto",
        tags=[PipelineTag(key="built-by", value="image-operator")],
    ),
    advanced_options=AdvancedOptions(retain_cloud_assistant=True),
)


def test_pipeline_round_trip_and_idempotency(aliyun: AliyunHarness) -> None:
    p = provider(aliyun)
    token = client_token("pipeline", UID)

    pipeline_id = p.create_pipeline_from_template(TEMPLATE, client_token=token)
    again = p.create_pipeline_from_template(TEMPLATE, client_token=token)
    with pytest.raises(Conflict):
        p.create_pipeline_from_template(
            TEMPLATE.model_copy(update={"build_content": "RUN true"}), client_token=token
        )
    (info,) = p.describe_pipelines([pipeline_id])

    assert again == pipeline_id
    assert (info.name, info.base_image_type, info.base_image) == (
        "web-base",
        "IMAGE",
        TEMPLATE.base_image,
    )
    assert info.to_region_ids == ["cn-beijing", "cn-shanghai"]
    assert info.add_accounts == ["1122334455"]
    raw = info.raw
    assert raw["BuildContent"] == TEMPLATE.build_content
    assert raw["TestContent"] == TEMPLATE.test_content
    assert (raw["InstanceType"], raw["SystemDiskSize"], raw["InternetMaxBandwidthOut"]) == (
        "ecs.g6.large",
        40,
        10,
    )
    assert (raw["VSwitchId"], raw["RepairMode"]) == ("vsw-bp67acfmxazb4p0001", "Standard")
    assert raw["ResourceGroupId"] == "rg-bp67acfmxazb4p0001"
    assert raw["Tags"]["Tag"] == [{"TagKey": "team", "TagValue": "web"}]
    assert raw["ImageOptions"]["ImageFamily"] == "web-base"
    assert raw["ImageOptions"]["ImageFeatures"] == {"NvmeSupport": "auto"}
    assert raw["AdvancedOptions"] == {"RetainCloudAssistant": True}


def test_a_pipeline_build_through_the_interface(aliyun: AliyunHarness) -> None:
    """`create_pipeline` takes what the reconciler hands over: the spec, the object's name and
    a resolved base image ID; the template is the provider's to make."""
    p = provider(aliyun)
    pipelines = p.pipelines
    assert pipelines is p
    spec = ImagePipelineSpec.model_validate(
        {
            "providerRef": {"name": "ali"},
            "baseImage": {"imageRef": {"name": "golden"}},
            "buildContent": "RUN yum install -y nginx",
            "toRegionIDs": ["cn-beijing"],
        }
    )
    build = PipelineBuild(name="7web", spec=spec, base_image_id=TEMPLATE.base_image)
    token = pipelines.pipeline_client_token("pipeline", f"{UID}-g1")

    pipeline_id = pipelines.create_pipeline(build, client_token=token)
    assert pipelines.create_pipeline(build, client_token=token) == pipeline_id
    (info,) = pipelines.describe_pipelines([pipeline_id])

    assert (info.name, info.base_image_type, info.base_image) == (
        "ipl-7web",
        "IMAGE",
        TEMPLATE.base_image,
    )
    assert info.to_region_ids == ["cn-beijing"]
    assert info.raw["BuildContent"] == "RUN yum install -y nginx"


def test_pipeline_with_an_oss_base_image(aliyun: AliyunHarness) -> None:
    p = provider(aliyun)
    aliyun.put_object("images", "base.raw", DISK)
    template = PipelineTemplate(
        base_image_type="OSS",
        name="from-oss",
        import_image_options=ImportImageOptions(
            disks=[
                OssDisk(bucket="images", object="base.raw", format="RAW", disk_image_size_gib=20)
            ],
            os_type="linux",
            platform="Ubuntu",
            architecture="x86_64",
        ),
    )

    pipeline_id = p.create_pipeline_from_template(template, client_token="oss-1")
    execution_id = p.start_pipeline_execution(pipeline_id)
    done = poll_until(
        lambda: p.get_pipeline_execution(execution_id), lambda e: e.finished, deadline=10
    )[-1]

    assert done.status == "SUCCESS"
    assert done.targets[0].region_id == REGION and done.targets[0].image_id == done.image_id


def test_execution_success_with_every_target(aliyun: AliyunHarness) -> None:
    p = provider(aliyun)
    pipeline_id = p.create_pipeline_from_template(TEMPLATE, client_token="web-1")

    execution_id = p.start_pipeline_execution(pipeline_id, client_token="run-1")
    assert p.start_pipeline_execution(pipeline_id, client_token="run-1") == execution_id
    seen = poll_until(
        lambda: p.get_pipeline_execution(execution_id), lambda e: e.finished, deadline=10
    )
    done = seen[-1]

    assert done.status == "SUCCESS"
    assert {e.status for e in seen} <= {
        "PREPARING",
        "BUILDING",
        "TESTING",
        "DISTRIBUTING",
        "SUCCESS",
    }
    assert done.failed_targets == []
    regions = {t.region_id: t.image_id for t in done.targets if t.region_id}
    assert set(regions) == {REGION, "cn-beijing", "cn-shanghai"}
    assert regions[REGION] == done.image_id
    assert [t.account_id for t in done.targets if t.account_id] == ["1122334455"]
    beijing = provider(aliyun, region="cn-beijing")
    assert beijing.get_image(str(regions["cn-beijing"])).state is CloudState.AVAILABLE
    listed = p.describe_pipeline_executions(pipeline_id=pipeline_id, statuses=["SUCCESS"])
    assert [e.execution_id for e in listed] == [execution_id]


def test_execution_partition_success_names_the_failed_region(start: Start) -> None:
    aliyun = start(fail_distribution_regions=["cn-shanghai"])
    p = provider(aliyun)
    pipeline_id = p.create_pipeline_from_template(TEMPLATE, client_token="web-1")

    execution_id = p.start_pipeline_execution(pipeline_id)
    done = poll_until(
        lambda: p.get_pipeline_execution(execution_id), lambda e: e.finished, deadline=10
    )[-1]

    assert done.status == "PARTITION_SUCCESS"
    (failed,) = done.failed_targets
    assert failed.region_id == "cn-shanghai"
    assert failed.message is not None and "cn-shanghai" in failed.message
    assert {t.region_id for t in done.targets if t.succeeded and t.region_id} == {
        REGION,
        "cn-beijing",
    }
    assert done.error_info is not None and "cn-shanghai" in done.error_info


def test_cancel_and_delete_pipeline(start: Start) -> None:
    aliyun = start(building_seconds=30.0)
    p = provider(aliyun)
    pipeline_id = p.create_pipeline_from_template(TEMPLATE, client_token="web-1")
    execution_id = p.start_pipeline_execution(pipeline_id)

    with pytest.raises(Transient):
        p.delete_pipeline(pipeline_id)  # a run is in progress
    p.cancel_pipeline_execution(execution_id)
    done = poll_until(
        lambda: p.get_pipeline_execution(execution_id), lambda e: e.finished, deadline=10
    )[-1]
    p.delete_pipeline(pipeline_id)

    assert done.status == "CANCELLED"
    assert done.image_id is None
    assert p.describe_pipelines([pipeline_id]) == []
    with pytest.raises(NotFound):
        p.delete_pipeline(pipeline_id)
    with pytest.raises(NotFound):
        p.get_pipeline_execution("exec-doesnotexist000000")
    with pytest.raises(InvalidInput):
        p.cancel_pipeline_execution(execution_id)  # already finished


def test_invalid_template_is_invalid_input(aliyun: AliyunHarness) -> None:
    p = provider(aliyun)

    with pytest.raises(InvalidInput) as refused:
        p.create_pipeline_from_template(
            TEMPLATE.model_copy(update={"system_disk_size": 501}), client_token="bad-1"
        )

    assert refused.value.vendor_code == "InvalidSystemDiskSize.ValueNotSupported"
    assert "SystemDiskSize" in refused.value.message

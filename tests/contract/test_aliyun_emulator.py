"""Contract tests of the bundled emulator's Alibaba Cloud ECS API (seed 004 and the image calls).

The client is the vendor's SDK (`alibabacloud_ecs20140526`), as in production. Lifecycles are
checked with a manual clock (exact phases, no sleeping); signature edge cases are sent raw with
httpx, signed by the SDK's own signing function.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from alibabacloud_ecs20140526 import models as m  # type: ignore[import-untyped]
from alibabacloud_tea_openapi import exceptions as sdk_errors  # type: ignore[import-untyped]
from alibabacloud_tea_openapi.utils import Utils  # type: ignore[import-untyped]
from darabonba.request import DaraRequest  # type: ignore[import-untyped]

from image_operator_dev.emulator.aliyun_testing import AliyunHarness, aliyun_config
from image_operator_dev.emulator.clock import ManualClock
from image_operator_dev.emulator.config import AliyunSettings

REGION = "cn-hangzhou"
PUBLIC_IMAGE = "aliyun_3_x64_20G_alibase_20240819.vhd"
# 21 regions, so that 20 distribution targets can be valid and a 21st still exists.
REGIONS = [*AliyunSettings().regions, *(f"cn-test{i}" for i in range(1, 15))]
# Seed 004's example values (its masked IDs "****" made whole).
SEED_EXAMPLE: dict[str, Any] = {
    "region_id": "cn-hangzhou",
    "resource_group_id": "rg-bp67acfmxazb4p0001",
    "add_account": [1234567890],
    "to_region_id": ["cn-hangzhou"],
    "base_image_type": "IMAGE",
    "base_image": PUBLIC_IMAGE,
    "name": "testImagePipeline",
    "description": "This is description.",
    "image_name": "testImageName",
    "v_switch_id": "vsw-bp67acfmxazb4p0001",
    "instance_type": "ecs.g6.large",
    "system_disk_size": 40,
    "internet_max_bandwidth_out": 0,
    "delete_instance_on_failure": True,
    "build_content": "COMPONENT ic-bp12dvdzvr9k900001 COMPONENT "
    "acs:ecs:cn-hangzhou:1868916118600001:imagecomponent/ComponentName/1.*.*",
    "client_token": "123e4567-e89b-12d3-a456-426655440000",
    "repair_mode": "Standard",
    "image_family": "family",
    "test_content": "COMPONENT ic-bp12dvdzvr9k900001",
    "nvme_support": "auto",
}

Start = Callable[..., AliyunHarness]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """Start an emulator on the test's state dir; starting again after close is a restart."""
    harnesses: list[AliyunHarness] = []

    def run(*, clock: Any = None, **aliyun: Any) -> AliyunHarness:
        config = aliyun_config(tmp_path / "state", regions=REGIONS, **aliyun)
        harness = AliyunHarness(config, clock=clock) if clock else AliyunHarness(config)
        harnesses.append(harness)
        return harness

    yield run
    for harness in harnesses:
        harness.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def aliyun(start: Start, clock: ManualClock) -> AliyunHarness:
    return start(clock=clock)


def refused(call: Callable[[], Any], code: str, status: int = 400) -> dict[str, Any]:
    """Run an SDK call that must fail with `code`; returns the error body ECS sent."""
    with pytest.raises(sdk_errors.AlibabaCloudException) as info:
        call()
    error = info.value
    assert (error.code, error.status_code) == (code, status), error.data
    body = dict(error.data)
    assert {"RequestId", "HostId", "Code", "Message"} <= set(body)
    return body


def pipeline_request(**overrides: Any) -> m.CreateImagePipelineRequest:
    fields: dict[str, Any] = {
        "region_id": REGION,
        "base_image_type": "IMAGE",
        "base_image": PUBLIC_IMAGE,
        "name": "testImagePipeline",
    }
    fields.update(overrides)
    return m.CreateImagePipelineRequest(**{k: v for k, v in fields.items() if v is not None})


def executions(client: Any, execution_id: str) -> Any:
    body = client.describe_image_pipeline_executions(
        m.DescribeImagePipelineExecutionsRequest(region_id=REGION, execution_id=execution_id)
    ).body
    (row,) = body.image_pipeline_execution.image_pipeline_execution_set
    return row


def images_in(client: Any, region: str, **filters: Any) -> list[Any]:
    body = client.describe_images(
        m.DescribeImagesRequest(region_id=region, status="ALL", page_size=100, **filters)
    ).body
    return list(body.images.image or [])


def import_request(key: str = "disks/ubuntu.qcow2", **overrides: Any) -> m.ImportImageRequest:
    fields: dict[str, Any] = {
        "region_id": REGION,
        "image_name": "ubuntu-22",
        "disk_device_mapping": [
            m.ImportImageRequestDiskDeviceMapping(ossbucket="images", ossobject=key, format="QCOW2")
        ],
    }
    fields.update(overrides)
    return m.ImportImageRequest(**fields)


# --- signatures and the error format --------------------------------------------------------


@pytest.mark.parametrize("algorithm", [None, "v2"], ids=["ACS3-HMAC-SHA256", "HMAC-SHA1"])
def test_both_sdk_signatures_are_verified(aliyun: AliyunHarness, algorithm: str | None) -> None:
    body = (
        aliyun.client(signature_algorithm=algorithm)
        .describe_regions(m.DescribeRegionsRequest())
        .body
    )

    assert [r.region_id for r in body.regions.region] == REGIONS
    wrong = aliyun.client(key_secret="not-the-secret", signature_algorithm=algorithm)
    error = refused(
        lambda: wrong.describe_regions(m.DescribeRegionsRequest()), "SignatureDoesNotMatch"
    )
    assert "not-the-secret" not in error["Message"]


def test_unknown_access_key_is_refused(aliyun: AliyunHarness) -> None:
    stranger = aliyun.client(key_id="LTAI-unknown")

    refused(
        lambda: stranger.describe_regions(m.DescribeRegionsRequest()),
        "InvalidAccessKeyId.NotFound",
        404,
    )


def _signed_headers(
    aliyun: AliyunHarness,
    action: str,
    query: dict[str, str],
    *,
    date: datetime | None = None,
    version: str = "2014-05-26",
) -> dict[str, str]:
    """Headers of an ACS3 request signed with the SDK's own function."""
    empty = hashlib.sha256(b"").hexdigest()
    headers = {
        "host": aliyun.host,
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": (date or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": uuid.uuid4().hex,
        "x-acs-content-sha256": empty,
    }
    request = DaraRequest()
    request.method, request.pathname, request.query, request.headers = "POST", "/", query, headers
    headers["Authorization"] = Utils.get_authorization(
        request, "ACS3-HMAC-SHA256", empty, aliyun.key_id, aliyun.key_secret
    )
    return headers


def _post(aliyun: AliyunHarness, query: dict[str, str], headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{aliyun.url}/?{urlencode(query)}", headers=headers, timeout=10)


def test_raw_signature_rules(aliyun: AliyunHarness) -> None:
    query = {"RegionId": REGION}
    headers = _signed_headers(aliyun, "DescribeImages", query)
    assert _post(aliyun, query, headers).status_code == 200

    replayed = _post(aliyun, query, headers)
    tampered = _post(
        aliyun, {"RegionId": "cn-beijing"}, _signed_headers(aliyun, "DescribeImages", query)
    )
    stale = _post(
        aliyun,
        query,
        _signed_headers(
            aliyun, "DescribeImages", query, date=datetime.now(UTC) - timedelta(minutes=20)
        ),
    )
    unsigned = httpx.post(
        f"{aliyun.url}/?RegionId={REGION}", headers={"x-acs-action": "DescribeImages"}, timeout=10
    )
    unknown = _post(aliyun, query, _signed_headers(aliyun, "RunInstances", query))
    old_version = _post(
        aliyun, query, _signed_headers(aliyun, "DescribeImages", query, version="2016-03-14")
    )

    answers = {
        name: (r.status_code, r.json()["Code"])
        for name, r in {
            "replayed": replayed,
            "tampered": tampered,
            "stale": stale,
            "unsigned": unsigned,
            "unknown": unknown,
            "old_version": old_version,
        }.items()
    }
    assert answers == {
        "replayed": (400, "SignatureNonceUsed"),
        "tampered": (400, "SignatureDoesNotMatch"),
        "stale": (400, "InvalidTimeStamp.Expired"),
        "unsigned": (400, "IncompleteSignature"),
        "unknown": (404, "InvalidAction.NotFound"),
        "old_version": (400, "InvalidVersion"),
    }
    body = tampered.json()
    assert set(body) >= {"RequestId", "HostId", "Code", "Message", "Recommend"}
    assert body["HostId"] == aliyun.host


def test_faults_answer_in_alibaba_format(aliyun: AliyunHarness) -> None:
    client = aliyun.client()
    aliyun.set_faults(throttle_rate=1.0, retry_after_seconds=2)
    with pytest.raises(sdk_errors.ThrottlingException) as throttled:
        client.describe_regions(m.DescribeRegionsRequest())
    aliyun.set_faults(error_rate=1.0)
    with pytest.raises(sdk_errors.ServerException) as failed:
        client.describe_regions(m.DescribeRegionsRequest())

    assert (throttled.value.code, throttled.value.retry_after) == ("Throttling.User", 2000)
    assert (failed.value.status_code, failed.value.code) == (503, "ServiceUnavailable")


# --- CreateImagePipeline: seed 004's rules ------------------------------------------------


def test_seed_example_is_accepted_and_described_back(aliyun: AliyunHarness) -> None:
    client = aliyun.client()

    created = client.create_image_pipeline(m.CreateImagePipelineRequest(**SEED_EXAMPLE)).body

    assert created.image_pipeline_id.startswith("ip-")
    assert created.request_id
    (listed,) = client.describe_image_pipelines(
        m.DescribeImagePipelinesRequest(
            region_id=REGION, image_pipeline_id=[created.image_pipeline_id]
        )
    ).body.image_pipeline.image_pipeline_set
    assert listed.name == "testImagePipeline"
    assert listed.description == "This is description."
    assert listed.base_image == PUBLIC_IMAGE
    assert listed.build_content == SEED_EXAMPLE["build_content"]
    assert listed.test_content == SEED_EXAMPLE["test_content"]
    assert listed.to_region_ids.to_region_id == ["cn-hangzhou"]
    assert listed.add_accounts.add_account == ["1234567890"]
    assert (listed.instance_type, listed.system_disk_size) == ("ecs.g6.large", 40)
    assert (listed.internet_max_bandwidth_out, listed.delete_instance_on_failure) == (0, True)
    assert (listed.v_switch_id, listed.repair_mode) == (SEED_EXAMPLE["v_switch_id"], "Standard")
    assert (listed.image_name, listed.image_family, listed.nvme_support) == (
        "testImageName",
        "family",
        "auto",
    )
    assert listed.resource_group_id == SEED_EXAMPLE["resource_group_id"]


def test_limits_are_inclusive(aliyun: AliyunHarness) -> None:
    """Every limit's largest (and smallest) allowed value is accepted."""
    client = aliyun.client()
    at_limits = pipeline_request(
        name="镜" + "a" * 127,
        description="ab",
        build_content="R" * 16384,
        test_content="镜" * 5461,  # 16383 bytes of UTF-8
        to_region_id=REGIONS[1:21],
        add_account=list(range(1, 21)),
        system_disk_size=500,
        internet_max_bandwidth_out=100,
        tag=[m.CreateImagePipelineRequestTag(key=f"k{i}", value="v") for i in range(20)],
        client_token="t" * 64,
    )
    low = pipeline_request(
        name="ab", description="d" * 256, system_disk_size=20, internet_max_bandwidth_out=0
    )

    assert client.create_image_pipeline(at_limits).body.image_pipeline_id
    assert client.create_image_pipeline(low).body.image_pipeline_id


# (id, request fields, Code, HTTP status, what the Message must name)
REJECTIONS: list[tuple[str, dict[str, Any], str, int, str]] = [
    ("name-too-short", {"name": "a"}, "InvalidName.Malformed", 400, '"Name"'),
    ("name-too-long", {"name": "a" * 129}, "InvalidName.Malformed", 400, "2 to 128"),
    ("name-leading-digit", {"name": "1pipeline"}, "InvalidName.Malformed", 400, "start with"),
    ("name-url", {"name": "https://pipeline"}, "InvalidName.Malformed", 400, "https://"),
    ("name-bad-character", {"name": "my pipeline"}, "InvalidName.Malformed", 400, "may contain"),
    (
        "description-too-short",
        {"description": "d"},
        "InvalidDescription.Malformed",
        400,
        "2 to 256",
    ),
    (
        "description-too-long",
        {"description": "d" * 257},
        "InvalidDescription.Malformed",
        400,
        "2 to 256",
    ),
    (
        "description-url",
        {"description": "http://example.com"},
        "InvalidDescription.Malformed",
        400,
        "http://",
    ),
    (
        "build-content-16k",
        {"build_content": "R" * 16385},
        "InvalidBuildContent.LengthExceeded",
        400,
        '"BuildContent"',
    ),
    (
        "build-content-bytes",
        {"build_content": "镜" * 5462},
        "InvalidBuildContent.LengthExceeded",
        400,
        "16386",
    ),
    (
        "test-content-16k",
        {"test_content": "R" * 16385},
        "InvalidTestContent.LengthExceeded",
        400,
        '"TestContent"',
    ),
    (
        "to-regions-21",
        {"to_region_id": REGIONS[:21]},
        "InvalidToRegionId.LimitExceeded",
        400,
        "at most 20",
    ),
    (
        "to-region-unknown",
        {"to_region_id": ["mars-north-1"]},
        "InvalidToRegionId.NotFound",
        400,
        "mars-north-1",
    ),
    (
        "add-accounts-21",
        {"add_account": list(range(1, 22))},
        "InvalidAddAccount.LimitExceeded",
        400,
        "at most 20",
    ),
    (
        "add-account-not-a-number",
        {"add_account": ["acme"]},
        "InvalidAddAccount.Malformed",
        400,
        "acme",
    ),
    (
        "system-disk-19",
        {"system_disk_size": 19},
        "InvalidSystemDiskSize.ValueNotSupported",
        400,
        "20 to 500",
    ),
    (
        "system-disk-501",
        {"system_disk_size": 501},
        "InvalidSystemDiskSize.ValueNotSupported",
        400,
        "20 to 500",
    ),
    (
        "bandwidth-negative",
        {"internet_max_bandwidth_out": -1},
        "InvalidInternetMaxBandwidthOut.ValueNotSupported",
        400,
        "0 to 100",
    ),
    (
        "bandwidth-101",
        {"internet_max_bandwidth_out": 101},
        "InvalidInternetMaxBandwidthOut.ValueNotSupported",
        400,
        "0 to 100",
    ),
    (
        "base-image-type-enum",
        {"base_image_type": "SNAPSHOT"},
        "InvalidBaseImageType.ValueNotSupported",
        400,
        "IMAGE, IMAGE_FAMILY, OSS",
    ),
    (
        "base-image-type-missing",
        {"base_image_type": None},
        "MissingParameter",
        400,
        '"BaseImageType"',
    ),
    ("base-image-missing", {"base_image": None}, "MissingParameter", 400, '"BaseImage"'),
    (
        "base-image-unknown",
        {"base_image": "m-doesnotexist0000000"},
        "InvalidImageId.NotFound",
        404,
        "m-doesnotexist0000000",
    ),
    (
        "family-unknown",
        {"base_image_type": "IMAGE_FAMILY", "base_image": "nofamily"},
        "InvalidImageFamily.NotFound",
        404,
        "nofamily",
    ),
    (
        "oss-needs-import-options",
        {"base_image_type": "OSS", "base_image": None},
        "MissingParameter",
        400,
        '"ImportImageOptions"',
    ),
    (
        "tags-21",
        {"tag": [m.CreateImagePipelineRequestTag(key=f"k{i}") for i in range(21)]},
        "InvalidTagCount",
        400,
        "at most 20",
    ),
    (
        "tag-key-aliyun",
        {"tag": [m.CreateImagePipelineRequestTag(key="aliyun-owner")]},
        "InvalidTagKey.Malformed",
        400,
        "Tag.1.Key",
    ),
    (
        "client-token-65",
        {"client_token": "t" * 65},
        "InvalidClientToken.ValueNotSupported",
        400,
        "64",
    ),
    (
        "client-token-non-ascii",
        {"client_token": "令牌"},
        "InvalidClientToken.ValueNotSupported",
        400,
        "ASCII",
    ),
    ("region-missing", {"region_id": None}, "MissingParameter", 400, '"RegionId"'),
    (
        "region-unknown",
        {"region_id": "mars-north-1"},
        "InvalidRegionId.NotFound",
        404,
        "mars-north-1",
    ),
    (
        "instance-type",
        {"instance_type": "g6.large"},
        "InvalidInstanceType.ValueNotSupported",
        400,
        "g6.large",
    ),
    (
        "nvme-support-enum",
        {"nvme_support": "maybe"},
        "InvalidNvmeSupport.ValueNotSupported",
        400,
        "auto, supported, unsupported",
    ),
    (
        "repair-mode-enum",
        {"repair_mode": "Deep"},
        "InvalidRepairMode.ValueNotSupported",
        400,
        "Standard",
    ),
    (
        "image-name-prefix-65",
        {"image_options": m.CreateImagePipelineRequestImageOptions(image_name="a" * 65)},
        "InvalidImageName.Malformed",
        400,
        "ImageOptions.ImageName",
    ),
    (
        "image-family-acs",
        {"image_options": m.CreateImagePipelineRequestImageOptions(image_family="acs:mine")},
        "InvalidImageFamily.Malformed",
        400,
        "ImageOptions.ImageFamily",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "code", "status", "names"),
    [pytest.param(o, c, s, n, id=name) for name, o, c, s, n in REJECTIONS],
)
def test_create_image_pipeline_rejects(
    aliyun: AliyunHarness, overrides: dict[str, Any], code: str, status: int, names: str
) -> None:
    client = aliyun.client()

    error = refused(
        lambda: client.create_image_pipeline(pipeline_request(**overrides)), code, status
    )

    assert names in error["Message"]
    listed = client.describe_image_pipelines(m.DescribeImagePipelinesRequest(region_id=REGION))
    assert listed.body.total_count == 0  # nothing was created


def test_oss_base_image_takes_import_options(aliyun: AliyunHarness) -> None:
    client = aliyun.client()
    options = m.CreateImagePipelineRequestImportImageOptions(
        disk_device_mappings=[
            m.CreateImagePipelineRequestImportImageOptionsDiskDeviceMappings(
                ossbucket="images", ossobject="base.raw", format="RAW", disk_image_size=40
            )
        ],
        ostype="linux",
        platform="Ubuntu",
        architecture="arm64",
        boot_mode="UEFI",
    )

    created = client.create_image_pipeline(
        pipeline_request(base_image_type="OSS", base_image=None, import_image_options=options)
    ).body
    bad_format = refused(
        lambda: client.create_image_pipeline(
            pipeline_request(
                base_image_type="OSS",
                base_image=None,
                import_image_options=m.CreateImagePipelineRequestImportImageOptions(
                    disk_device_mappings=[
                        m.CreateImagePipelineRequestImportImageOptionsDiskDeviceMappings(
                            ossbucket="images", ossobject="base.iso", format="ISO"
                        )
                    ]
                ),
            )
        ),
        "InvalidDiskDeviceMapping.Format",
    )

    (listed,) = client.describe_image_pipelines(
        m.DescribeImagePipelinesRequest(region_id=REGION)
    ).body.image_pipeline.image_pipeline_set
    assert listed.image_pipeline_id == created.image_pipeline_id
    mapping = listed.import_image_options.disk_device_mappings.disk_device_mapping[0]
    assert (mapping.ossbucket, mapping.ossobject, mapping.format) == ("images", "base.raw", "RAW")
    assert listed.import_image_options.boot_mode == "UEFI"
    assert "ImportImageOptions.DiskDeviceMappings.1.Format" in bad_format["Message"]


def test_client_token_makes_create_idempotent(aliyun: AliyunHarness) -> None:
    client = aliyun.client()
    token = "5f0c0a3e-0000-4000-8000-000000000001"

    first = client.create_image_pipeline(pipeline_request(client_token=token)).body
    again = client.create_image_pipeline(pipeline_request(client_token=token)).body
    error = refused(
        lambda: client.create_image_pipeline(
            pipeline_request(client_token=token, description="changed")
        ),
        "IdempotentParameterMismatch",
    )
    other = client.create_image_pipeline(pipeline_request(client_token=token + "x")).body

    assert again.image_pipeline_id == first.image_pipeline_id
    assert other.image_pipeline_id != first.image_pipeline_id
    assert "ClientToken" in error["Message"]
    listed = client.describe_image_pipelines(m.DescribeImagePipelinesRequest(region_id=REGION))
    assert listed.body.total_count == 2


def test_describe_image_pipelines_pages(aliyun: AliyunHarness) -> None:
    client = aliyun.client()
    ids = [
        client.create_image_pipeline(pipeline_request(name=f"pipeline{i}")).body.image_pipeline_id
        for i in range(5)
    ]

    seen: list[str] = []
    token = None
    pages = 0
    while True:
        body = client.describe_image_pipelines(
            m.DescribeImagePipelinesRequest(region_id=REGION, max_results=2, next_token=token)
        ).body
        pages += 1
        seen += [p.image_pipeline_id for p in body.image_pipeline.image_pipeline_set]
        token = body.next_token
        if not token:
            break

    assert (seen, pages) == (ids, 3)
    by_name = client.describe_image_pipelines(
        m.DescribeImagePipelinesRequest(region_id=REGION, name="pipeline3")
    ).body.image_pipeline.image_pipeline_set
    assert [p.image_pipeline_id for p in by_name] == [ids[3]]


# --- executions -------------------------------------------------------------------------------


def test_execution_reaches_success_through_every_phase(
    aliyun: AliyunHarness, clock: ManualClock
) -> None:
    client = aliyun.client()
    pipeline_id = client.create_image_pipeline(
        pipeline_request(
            test_content="RUN test -f /etc/os-release",
            to_region_id=["cn-beijing", "cn-shanghai"],
            add_account=[1122334455],
            image_options=m.CreateImagePipelineRequestImageOptions(image_name="web"),
        )
    ).body.image_pipeline_id
    execution_id = client.start_image_pipeline_execution(
        m.StartImagePipelineExecutionRequest(region_id=REGION, image_pipeline_id=pipeline_id)
    ).body.execution_id

    statuses = []
    for step in (0.0, 0.2, 0.3, 0.2, 0.3):  # preparing, building, testing, distributing
        clock.advance(step)
        statuses.append(executions(client, execution_id).status)
    done = executions(client, execution_id)

    assert statuses == ["PREPARING", "BUILDING", "TESTING", "DISTRIBUTING", "SUCCESS"]
    assert done.image_id.startswith("m-")
    assert done.error_code is None
    assert f"built {done.image_id} in {REGION}" in done.message
    assert "shared with 1122334455" in done.message
    for region in ("cn-beijing", "cn-shanghai"):
        (copy,) = images_in(client, region)
        assert f"distributed to {region}: {copy.image_id}" in done.message
        assert (copy.status, copy.image_name) == ("Available", f"web_{execution_id}")
        assert copy.is_self_shared == "True"
    (built,) = images_in(client, REGION)
    assert built.image_id == done.image_id


def test_execution_partially_succeeds_naming_the_failed_region(
    start: Start, clock: ManualClock
) -> None:
    aliyun = start(clock=clock, fail_distribution_regions=["cn-shanghai"])
    client = aliyun.client()
    pipeline_id = client.create_image_pipeline(
        pipeline_request(to_region_id=["cn-beijing", "cn-shanghai"])
    ).body.image_pipeline_id
    execution_id = client.start_image_pipeline_execution(
        m.StartImagePipelineExecutionRequest(region_id=REGION, image_pipeline_id=pipeline_id)
    ).body.execution_id

    clock.advance(1.0)
    done = executions(client, execution_id)

    assert done.status == "PARTITION_SUCCESS"
    assert done.error_code == "DistributionPartiallyFailed"
    assert "cn-shanghai" in done.error_info
    assert "distribution to cn-shanghai failed" in done.message
    assert "distributed to cn-beijing: m-" in done.message
    assert images_in(client, "cn-shanghai") == []
    assert len(images_in(client, "cn-beijing")) == 1


def test_failed_share_is_a_partial_success_naming_the_account(
    start: Start, clock: ManualClock
) -> None:
    aliyun = start(clock=clock, fail_share_accounts=[99])
    client = aliyun.client()
    pipeline_id = client.create_image_pipeline(
        pipeline_request(add_account=[99, 1122334455])
    ).body.image_pipeline_id
    execution_id = client.start_image_pipeline_execution(
        m.StartImagePipelineExecutionRequest(region_id=REGION, image_pipeline_id=pipeline_id)
    ).body.execution_id

    clock.advance(1.0)
    done = executions(client, execution_id)

    assert (done.status, done.error_info) == (
        "PARTITION_SUCCESS",
        "distribution or sharing failed for: 99",
    )
    assert "sharing with 99 failed" in done.message
    assert "shared with 1122334455" in done.message


def test_oss_base_object_missing_fails_while_preparing(
    aliyun: AliyunHarness, clock: ManualClock
) -> None:
    client = aliyun.client()
    options = m.CreateImagePipelineRequestImportImageOptions(
        disk_device_mappings=[
            m.CreateImagePipelineRequestImportImageOptionsDiskDeviceMappings(
                ossbucket="images", ossobject="never-uploaded.raw"
            )
        ]
    )
    pipeline_id = client.create_image_pipeline(
        pipeline_request(base_image_type="OSS", base_image=None, import_image_options=options)
    ).body.image_pipeline_id
    execution_id = client.start_image_pipeline_execution(
        m.StartImagePipelineExecutionRequest(region_id=REGION, image_pipeline_id=pipeline_id)
    ).body.execution_id

    first = executions(client, execution_id).status
    clock.advance(0.2)
    done = executions(client, execution_id)

    assert (first, done.status, done.error_code) == (
        "PREPARING",
        "FAILED",
        "InvalidOSSObject.NotFound",
    )
    assert not done.image_id
    assert images_in(client, REGION) == []


@pytest.mark.parametrize(
    ("settings", "status", "code", "image_kept"),
    [
        ({"fail_build_pattern": "exit 1"}, "FAILED", "BuildFailed", False),
        ({"fail_test_pattern": "false"}, "TEST_FAILED", "TestFailed", True),
    ],
    ids=["build", "test"],
)
def test_execution_failures(
    start: Start,
    clock: ManualClock,
    settings: dict[str, Any],
    status: str,
    code: str,
    image_kept: bool,
) -> None:
    aliyun = start(clock=clock, **settings)
    client = aliyun.client()
    pipeline_id = client.create_image_pipeline(
        pipeline_request(
            build_content="RUN exit 1", test_content="RUN false", to_region_id=["cn-beijing"]
        )
    ).body.image_pipeline_id
    execution_id = client.start_image_pipeline_execution(
        m.StartImagePipelineExecutionRequest(region_id=REGION, image_pipeline_id=pipeline_id)
    ).body.execution_id

    clock.advance(2.0)
    done = executions(client, execution_id)

    assert (done.status, done.error_code) == (status, code)
    assert bool(done.image_id) is image_kept
    assert len(images_in(client, REGION)) == int(image_kept)
    assert images_in(client, "cn-beijing") == []  # nothing distributed


def test_cancel_stops_an_execution(aliyun: AliyunHarness, clock: ManualClock) -> None:
    client = aliyun.client()
    pipeline_id = client.create_image_pipeline(
        pipeline_request(to_region_id=["cn-beijing"])
    ).body.image_pipeline_id
    start_request = m.StartImagePipelineExecutionRequest(
        region_id=REGION, image_pipeline_id=pipeline_id
    )
    execution_id = client.start_image_pipeline_execution(start_request).body.execution_id
    clock.advance(0.3)  # building

    refused(
        lambda: client.start_image_pipeline_execution(start_request),
        "OperationDenied.ImagePipelineExecutionRunning",
        403,
    )
    refused(
        lambda: client.delete_image_pipeline(
            m.DeleteImagePipelineRequest(region_id=REGION, image_pipeline_id=pipeline_id)
        ),
        "OperationDenied.ImagePipelineExecutionRunning",
        403,
    )
    cancel = m.CancelImagePipelineExecutionRequest(region_id=REGION, execution_id=execution_id)
    client.cancel_image_pipeline_execution(cancel)
    cancelling = executions(client, execution_id).status
    clock.advance(0.2)
    cancelled = executions(client, execution_id)
    clock.advance(5.0)

    assert (cancelling, cancelled.status) == ("CANCELLING", "CANCELLED")
    assert executions(client, execution_id).status == "CANCELLED"
    assert images_in(client, REGION) == images_in(client, "cn-beijing") == []
    refused(
        lambda: client.cancel_image_pipeline_execution(cancel),
        "OperationDenied.ImagePipelineExecutionFinished",
        403,
    )
    client.delete_image_pipeline(
        m.DeleteImagePipelineRequest(region_id=REGION, image_pipeline_id=pipeline_id)
    )
    assert (
        client.describe_image_pipelines(
            m.DescribeImagePipelinesRequest(region_id=REGION)
        ).body.total_count
        == 0
    )


def test_start_is_idempotent_and_unknown_ids_are_not_found(
    aliyun: AliyunHarness, clock: ManualClock
) -> None:
    client = aliyun.client()
    pipeline_id = client.create_image_pipeline(pipeline_request()).body.image_pipeline_id
    start = m.StartImagePipelineExecutionRequest(
        region_id=REGION, image_pipeline_id=pipeline_id, client_token="run-1"
    )

    first = client.start_image_pipeline_execution(start).body.execution_id
    again = client.start_image_pipeline_execution(start).body.execution_id

    assert again == first
    refused(
        lambda: client.start_image_pipeline_execution(
            m.StartImagePipelineExecutionRequest(region_id=REGION, image_pipeline_id="ip-nope")
        ),
        "InvalidImagePipelineId.NotFound",
        404,
    )
    refused(
        lambda: client.cancel_image_pipeline_execution(
            m.CancelImagePipelineExecutionRequest(region_id=REGION, execution_id="exec-nope")
        ),
        "InvalidImagePipelineExecutionId.NotFound",
        404,
    )
    refused(
        lambda: client.describe_image_pipeline_executions(
            m.DescribeImagePipelineExecutionsRequest(region_id=REGION, status="DONE")
        ),
        "InvalidStatus.ValueNotSupported",
    )


def test_state_survives_a_restart(start: Start, clock: ManualClock) -> None:
    first = start(clock=clock)
    client = first.client()
    pipeline_id = client.create_image_pipeline(pipeline_request()).body.image_pipeline_id
    execution_id = client.start_image_pipeline_execution(
        m.StartImagePipelineExecutionRequest(region_id=REGION, image_pipeline_id=pipeline_id)
    ).body.execution_id
    assert executions(client, execution_id).status == "PREPARING"
    first.close()

    clock.advance(1.0)
    second = start(clock=clock)
    client = second.client()

    assert executions(client, execution_id).status == "SUCCESS"
    (listed,) = client.describe_image_pipelines(
        m.DescribeImagePipelinesRequest(region_id=REGION)
    ).body.image_pipeline.image_pipeline_set
    assert listed.image_pipeline_id == pipeline_id


# --- images -----------------------------------------------------------------------------------


def test_import_image_lifecycle(aliyun: AliyunHarness, clock: ManualClock) -> None:
    client = aliyun.client()
    aliyun.put_object("images", "disks/ubuntu.qcow2", b"QFI\xfb" + b"\0" * 2048)
    tag = m.ImportImageRequestTag(key="imageops.io/uid", value="uid-1")

    image_id = client.import_image(import_request(tag=[tag], client_token="imp-1")).body.image_id
    seen = []
    for step in (0.05, 0.152, 0.1, 0.2):  # import_seconds 0.5: Waiting until 0.1
        clock.advance(step)
        (image,) = images_in(client, REGION, image_id=image_id)
        seen.append((image.status, image.progress))
    default_view = client.describe_images(m.DescribeImagesRequest(region_id=REGION)).body
    again = client.import_image(import_request(tag=[tag], client_token="imp-1")).body.image_id

    assert seen == [
        ("Waiting", "0%"),
        ("Creating", "25%"),
        ("Creating", "50%"),
        ("Available", "100%"),
    ]
    assert [i.image_id for i in default_view.images.image] == [image_id]
    assert image.image_name == "ubuntu-22"
    mapping = image.disk_device_mappings.disk_device_mapping[0]
    assert (mapping.import_ossbucket, mapping.import_ossobject) == ("images", "disks/ubuntu.qcow2")
    assert [(t.tag_key, t.tag_value) for t in image.tags.tag] == [("imageops.io/uid", "uid-1")]
    assert again == image_id
    by_tag = images_in(
        client, REGION, tag=[m.DescribeImagesRequestTag(key="imageops.io/uid", value="uid-1")]
    )
    assert [i.image_id for i in by_tag] == [image_id]


def test_import_image_rules(aliyun: AliyunHarness) -> None:
    client = aliyun.client()
    aliyun.put_object("images", "disks/ubuntu.qcow2", b"disk")

    refused(
        lambda: client.import_image(import_request(key="disks/missing.qcow2")),
        "InvalidOSSObject.NotFound",
        404,
    )
    refused(
        lambda: client.import_image(import_request(image_name="aliyun-ubuntu")),
        "InvalidImageName.Malformed",
    )
    refused(
        lambda: client.import_image(import_request(description="x")), "InvalidDescription.Malformed"
    )
    refused(lambda: client.import_image(import_request(platform="Plan9")), "InvalidParameter")
    refused(
        lambda: client.import_image(
            import_request(
                disk_device_mapping=[
                    m.ImportImageRequestDiskDeviceMapping(
                        ossbucket="images", ossobject="disks/ubuntu.qcow2", format="ISO"
                    )
                ]
            )
        ),
        "InvalidDiskDeviceMapping.Format",
    )
    refused(lambda: client.import_image(import_request(disk_device_mapping=[])), "MissingParameter")
    refused(
        lambda: client.import_image(import_request(client_token="t" * 65)),
        "InvalidClientToken.ValueNotSupported",
    )
    refused(lambda: client.import_image(import_request(dry_run=True)), "DryRunOperation")
    assert images_in(client, REGION) == []


def test_import_from_a_bucket_in_another_region_is_refused(start: Start) -> None:
    aliyun = start(oss_bucket_regions={"bj-images": "cn-beijing"})
    client = aliyun.client()
    aliyun.put_object("bj-images", "disk.raw", b"disk")

    error = refused(
        lambda: client.import_image(
            import_request(
                disk_device_mapping=[
                    m.ImportImageRequestDiskDeviceMapping(
                        ossbucket="bj-images", ossobject="disk.raw"
                    )
                ]
            )
        ),
        "InvalidOSSBucket.RegionMismatch",
    )

    assert "cn-beijing" in error["Message"]


def test_failed_import_ends_create_failed(start: Start, clock: ManualClock) -> None:
    aliyun = start(clock=clock, fail_import_object_pattern="corrupt")
    client = aliyun.client()
    aliyun.put_object("images", "corrupt.qcow2", b"junk")

    image_id = client.import_image(import_request(key="corrupt.qcow2")).body.image_id
    clock.advance(0.5)
    (image,) = images_in(client, REGION, image_id=image_id)

    assert image.status == "CreateFailed"


def test_describe_images_batches_and_filters(aliyun: AliyunHarness, clock: ManualClock) -> None:
    client = aliyun.client()
    aliyun.put_object("images", "disks/ubuntu.qcow2", b"disk")
    ids = [
        client.import_image(import_request(image_name=f"img-{i}")).body.image_id for i in range(3)
    ]

    creating = client.describe_images(
        m.DescribeImagesRequest(region_id=REGION, image_id=",".join(ids))
    ).body
    every = images_in(client, REGION, image_id=",".join([*ids, "m-unknown000000000000"]))

    assert creating.total_count == 0  # ECS shows only Available images unless asked
    assert sorted(i.image_id for i in every) == sorted(ids)
    refused(
        lambda: client.describe_images(
            m.DescribeImagesRequest(
                region_id=REGION, image_id=",".join(f"m-{i}" for i in range(101))
            )
        ),
        "InvalidParameter",
    )
    refused(
        lambda: client.describe_images(m.DescribeImagesRequest(region_id=REGION, status="Gone")),
        "InvalidStatus.ValueNotSupported",
    )
    refused(
        lambda: client.describe_images(m.DescribeImagesRequest(region_id=REGION, page_size=101)),
        "InvalidParameter",
    )


def test_copy_share_and_delete(aliyun: AliyunHarness, clock: ManualClock) -> None:
    client = aliyun.client()
    aliyun.put_object("images", "disks/ubuntu.qcow2", b"disk")
    source = client.import_image(import_request()).body.image_id
    copy = m.CopyImageRequest(
        region_id=REGION,
        image_id=source,
        destination_region_id="cn-beijing",
        destination_image_name="ubuntu-copy",
        client_token="copy-1",
    )

    refused(lambda: client.copy_image(copy), "IncorrectImageStatus", 403)
    refused(
        lambda: client.delete_image(m.DeleteImageRequest(region_id=REGION, image_id=source)),
        "IncorrectImageStatus",
        403,
    )
    clock.advance(0.5)
    copied = client.copy_image(copy).body.image_id
    assert client.copy_image(copy).body.image_id == copied
    (in_beijing,) = images_in(client, "cn-beijing")
    share = m.ModifyImageSharePermissionRequest(
        region_id=REGION, image_id=source, add_account=["1122334455", "5544332211"]
    )
    client.modify_image_share_permission(share)
    (shared,) = images_in(client, REGION)
    refused(
        lambda: client.modify_image_share_permission(
            m.ModifyImageSharePermissionRequest(
                region_id=REGION, image_id=source, add_account=[str(10**9 + i) for i in range(11)]
            )
        ),
        "InvalidAccount.LimitExceeded",
    )
    client.delete_image(m.DeleteImageRequest(region_id=REGION, image_id=source))

    assert (in_beijing.image_id, in_beijing.status, in_beijing.is_copied) == (
        copied,
        "Waiting",
        True,
    )
    assert shared.is_self_shared == "True"
    assert images_in(client, REGION) == []
    refused(
        lambda: client.delete_image(m.DeleteImageRequest(region_id=REGION, image_id=source)),
        "InvalidImageId.NotFound",
        404,
    )


def test_oss_objects_round_trip(aliyun: AliyunHarness) -> None:
    url = aliyun.put_object("images", "a/b c.raw", b"payload")

    got = httpx.get(url, timeout=10)
    missing = httpx.get(aliyun.oss_url("images", "nope"), timeout=10)

    assert (got.status_code, got.content) == (200, b"payload")
    assert missing.status_code == 404
    assert missing.json()["Code"] == "NoSuchKey"
    assert aliyun.state()["oss"] == [
        {
            "Bucket": "images",
            "Key": "a/b c.raw",
            "Size": 7,
            "Sha256": hashlib.sha256(b"payload").hexdigest(),
        }
    ]

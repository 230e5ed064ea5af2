"""The aliyun provider's side of `BuildsPipelines` that needs no cloud: a `PipelineBuild`
becomes an ECS template, and its fingerprint (`status.templateHash`) is pinned.

The pinned values were computed by the code before `BuildsPipelines` (the reconciler's
`template_hash(build_template(...))`): existing ImagePipelines store them, and a different
value would make each of them replace its template after an upgrade."""

from __future__ import annotations

from typing import Any, cast

import pytest

from image_operator.api.pipeline import ImagePipelineSpec
from image_operator.providers.aliyun import AliyunProvider
from image_operator.providers.aliyun_pipelines import pipeline_template
from image_operator.providers.errors import InvalidInput
from image_operator.providers.pipelines import BuildsPipelines, PipelineBuild

SIMPLE: dict[str, Any] = {
    "providerRef": {"name": "ali"},
    "baseImage": {"id": "m-base"},
    "buildContent": "RUN echo hi",
    "toRegionIDs": ["cn-beijing", "cn-shanghai"],
    "addAccounts": [1122334455],
}
FULL: dict[str, Any] = {
    "providerRef": {"name": "ali"},
    "baseImage": {
        "oss": {
            "bucket": "images",
            "object": "u/22.qcow2",
            "format": "qcow2",
            "diskImageSizeGib": 40,
        }
    },
    "name": "golden",
    "description": "nightly golden image",
    "buildContent": "RUN echo hi",
    "testContent": "RUN true",
    "toRegionIDs": ["cn-beijing"],
    "addAccounts": [1122334455],
    "transit": {
        "instanceType": "ecs.g7.large",
        "systemDiskSize": 40,
        "internetMaxBandwidthOut": 5,
        "vSwitchID": "vsw-1",
        "deleteInstanceOnFailure": True,
    },
    "repairMode": "Standard",
    "resourceGroupID": "rg-1",
    "tags": [{"key": "team", "value": "infra"}, {"key": "bare"}],
    "imageOptions": {
        "imageName": "golden",
        "imageFamily": "fam",
        "description": "d",
        "nvmeSupport": "auto",
    },
}
REFERENCED: dict[str, Any] = {
    "providerRef": {"name": "ali"},
    "baseImage": {"imageRef": {"name": "golden"}},
    "buildContent": "RUN echo hi",
}
FAMILY: dict[str, Any] = {"providerRef": {"name": "ali"}, "baseImage": {"family": "acs:ubuntu"}}


def provider() -> AliyunProvider:
    # The fingerprint is local: no client is needed.
    return AliyunProvider(client=cast(Any, None), region="cn-hangzhou")


def build(raw: dict[str, Any], name: str = "nightly", base_id: str | None = None) -> PipelineBuild:
    spec = ImagePipelineSpec.model_validate(raw)
    return PipelineBuild(name=name, spec=spec, base_image_id=base_id)


def test_aliyun_declares_builds_pipelines() -> None:
    aliyun = provider()
    assert isinstance(aliyun, BuildsPipelines)
    assert aliyun.pipelines is aliyun


@pytest.mark.parametrize(
    ("pipeline", "fingerprint"),
    [
        (build(SIMPLE), "54150005a2c80a66"),
        (build(FULL, name="7nightly"), "56b5d6c494fbe694"),
        (build(REFERENCED, name="7nightly", base_id="m-golden"), "bb9abfbc0e555aed"),
        (build(FAMILY), "9e555e4ceaf1d7fa"),
    ],
    ids=["id", "oss-and-every-field", "resolved-ref-and-ipl-name", "family"],
)
def test_the_fingerprint_is_the_one_existing_objects_store(
    pipeline: PipelineBuild, fingerprint: str
) -> None:
    assert provider().pipeline_fingerprint(pipeline) == fingerprint


def test_a_build_becomes_the_ecs_template() -> None:
    template = pipeline_template(build(REFERENCED, name="7nightly", base_id="m-golden"))
    assert (template.base_image_type, template.base_image) == ("IMAGE", "m-golden")
    assert template.name == "ipl-7nightly"  # ECS names start with a letter

    template = pipeline_template(build(FULL))
    assert template.name == "golden"
    assert (template.base_image_type, template.base_image) == ("OSS", None)
    assert template.import_image_options is not None
    disk = template.import_image_options.disks[0]
    assert (disk.format, disk.disk_image_size_gib) == ("QCOW2", 40)
    assert template.vswitch_id == "vsw-1"
    assert [(t.key, t.value) for t in template.tags] == [("team", "infra"), ("bare", "")]

    template = pipeline_template(build(FAMILY))
    assert (template.base_image_type, template.base_image) == ("IMAGE_FAMILY", "acs:ubuntu")


def test_an_unbuildable_oss_format_is_invalid_input_naming_the_field() -> None:
    raw = {**SIMPLE, "baseImage": {"oss": {"bucket": "images", "object": "u.iso", "format": "iso"}}}
    with pytest.raises(InvalidInput) as caught:
        provider().pipeline_fingerprint(build(raw))
    assert caught.value.message == (
        "spec.baseImage.oss.format 'iso' cannot be built from: use one of raw, vhd, qcow2"
    )


def test_an_unresolved_reference_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="exactly one of id, family, oss"):
        provider().pipeline_fingerprint(build(REFERENCED))


def test_the_client_token_is_the_ecs_one() -> None:
    assert provider().pipeline_client_token("run", "abc-1") == "run-abc-1"
    long = provider().pipeline_client_token("pipeline", "x" * 80)
    assert len(long) <= 64 and long.startswith("pipeline-")

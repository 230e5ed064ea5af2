"""An ImagePipeline's ECS options against the emulator (issue 12): ImportImageOptions with data
disks and every setting, ImageOptions.ImageTags, AdvancedOptions and the repair options reach
CreateImagePipeline from the spec, and the emulator keeps them."""

from __future__ import annotations

from typing import Any

from image_operator.api.pipeline import ImagePipelineSpec
from image_operator.providers.pipelines import PipelineBuild
from image_operator_dev.emulator.aliyun_testing import AliyunHarness
from tests.contract import test_aliyun_provider as base
from tests.contract.test_aliyun_provider import DISK, UID, provider

start, aliyun = base.start, base.aliyun  # the provider tests' fixtures

RICH_PIPELINE: dict[str, Any] = {
    "providerRef": {"name": "ali"},
    "baseImage": {"oss": {"bucket": "images", "object": "sys.raw", "format": "raw"}},
    "importImageOptions": {
        "dataDisks": [
            {"bucket": "images", "object": "data1.raw", "format": "RAW", "diskImageSizeGib": 40},
            {"bucket": "images", "object": "data2.qcow2", "format": "qcow2"},
        ],
        "osType": "linux",
        "platform": "Ubuntu",
        "architecture": "arm64",
        "bootMode": "UEFI",
        "licenseType": "BYOL",
        "imageName": "imported-base",
        "description": "the imported base image",
        "retentionStrategy": "RetainNever",
        "retainImportedImage": False,
        "roleName": "AliyunECSImageImportDefaultRole",
        "features": {"nvmeSupport": "supported", "imdsSupport": "v2"},
        "tags": [{"key": "source", "value": "oss"}],
    },
    "imageOptions": {"imageName": "web", "tags": [{"key": "team", "value": "web"}]},
    "advancedOptions": {"imageNameSuffix": "disable", "retainCloudAssistant": True},
    "repairMode": "Customized",
    "repairItems": ["CloudInit"],
}


def test_every_option_of_an_oss_import_pipeline_reaches_the_template(
    aliyun: AliyunHarness,
) -> None:
    p = provider(aliyun)
    for name in ("sys.raw", "data1.raw", "data2.qcow2"):
        aliyun.put_object("images", name, DISK)
    spec = ImagePipelineSpec.model_validate(RICH_PIPELINE)

    pipeline_id = p.create_pipeline(PipelineBuild(name="rich", spec=spec), client_token=UID)

    (info,) = p.describe_pipelines([pipeline_id])
    raw = info.raw
    imported = raw["ImportImageOptions"]
    disks = imported["DiskDeviceMappings"]["DiskDeviceMapping"]
    assert [d["OSSObject"] for d in disks] == ["sys.raw", "data1.raw", "data2.qcow2"]
    assert [d.get("Format") for d in disks] == ["RAW", "RAW", "QCOW2"]
    assert disks[1]["DiskImageSize"] == 40
    assert {k: imported[k] for k in ("OSType", "Platform", "Architecture", "BootMode")} == {
        "OSType": "linux",
        "Platform": "Ubuntu",
        "Architecture": "arm64",
        "BootMode": "UEFI",
    }
    assert (imported["LicenseType"], imported["ImageName"]) == ("BYOL", "imported-base")
    assert (imported["RetentionStrategy"], imported["RetainImportedImage"]) == (
        "RetainNever",
        False,
    )
    assert imported["RoleName"] == "AliyunECSImageImportDefaultRole"
    assert imported["Features"] == {"NvmeSupport": "supported", "ImdsSupport": "v2"}
    assert imported["ImportImageTags"]["ImportImageTag"] == [{"Key": "source", "Value": "oss"}]
    assert raw["ImageOptions"]["ImageTags"]["ImageTag"] == [{"TagKey": "team", "TagValue": "web"}]
    assert raw["AdvancedOptions"] == {"ImageNameSuffix": "disable", "RetainCloudAssistant": True}
    assert (raw["RepairMode"], raw["RepairItems"]["RepairItem"]) == ("Customized", ["CloudInit"])

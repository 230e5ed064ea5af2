"""The parts of seed 004's CreateImagePipeline an `ImagePipeline` sets beyond the base image and
the transit instance: ImportImageOptions (an OSS import: data disks, OS, boot, licence, the
imported image's name and tags), AdvancedOptions and the repair options. Limits are ECS's."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from image_operator.api.base import ApiModel
from image_operator.api.common import (
    KEY_PATTERN,
    KEY_WORDS,
    TagKey,
    TagValue,
    cel,
    patterned,
)

#: ImportImageOptions.DiskDeviceMappings.N: N=1 is the system disk (spec.baseImage.oss), 2-17
#: are data disks.
MAX_DATA_DISKS = 16
MAX_REPAIR_ITEMS = 50
REPAIR_ITEM_PATTERN = r"^[A-Za-z0-9_.-]+$"

#: ImportImageOptions.Platform (ECS's list of distributions).
Platform = Literal[
    "Aliyun",
    "Anolis",
    "CentOS",
    "Ubuntu",
    "CoreOS",
    "SUSE",
    "Debian",
    "OpenSUSE",
    "FreeBSD",
    "RedHat",
    "Kylin",
    "UOS",
    "Fedora",
    "Fedora CoreOS",
    "CentOS Stream",
    "AlmaLinux",
    "Rocky Linux",
    "Gentoo",
    "Customized Linux",
    "Others Linux",
    "Windows Server 2022",
    "Windows Server 2019",
    "Windows Server 2016",
    "Windows Server 2012",
    "Windows Server 2008",
    "Windows Server 2003",
    "Other Windows",
]
# ECS image names: 2-128 characters, starting with a letter or Chinese character, of those,
# digits, '.', '_', '-' and ':' (and not starting with http:// or https://, which the leading
# letter already excludes only in part: the CEL rule says it).
_IMAGE_NAME_PATTERN = r"^[\p{Han}A-Za-z][\p{Han}A-Za-z0-9:_.-]*$"
_IMAGE_NAME_WORDS = (
    "must start with a letter or Chinese (Han) character and hold only those, digits, ':', "
    "'_', '.' and '-'"
)


class RepairMode(StrEnum):
    STANDARD = "Standard"
    ALL = "All"
    CUSTOMIZED = "Customized"


class RetentionStrategy(StrEnum):
    RETAIN_ONLY_SUCCESSFUL = "RetainOnlySuccessful"
    RETAIN_ONLY_FAILED = "RetainOnlyFailed"
    RETAIN_ALWAYS = "RetainAlways"
    RETAIN_NEVER = "RetainNever"


class PipelineTag(ApiModel):
    key: TagKey
    value: TagValue | None = None


class DataDisk(ApiModel):
    """One data disk of an OSS import (DiskDeviceMappings.N, N = 2-17)."""

    bucket: str = Field(min_length=3, max_length=63)
    object: str = patterned(
        KEY_PATTERN,
        "must be an object name of " + KEY_WORDS,
        max_length=1024,
        description="The object's name in the bucket.",
    )
    format: Literal["RAW", "VHD", "QCOW2", "raw", "vhd", "qcow2"] | None = Field(
        default=None, description="RAW, VHD or QCOW2 (any case)."
    )
    disk_image_size_gib: int | None = Field(default=None, ge=1, le=2048)


class ImportFeatures(ApiModel):
    nvme_support: Literal["auto", "supported", "unsupported"] | None = None
    imds_support: Literal["v1", "v2"] | None = Field(
        default=None, description="ImdsSupport: v1 or v2 (IMDSv2 only)."
    )


class ImportImageOptions(ApiModel):
    """ImportImageOptions of an OSS base image: the system disk is spec.baseImage.oss."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "!has(self.architecture) || self.architecture != 'arm64' "
                    "|| !has(self.bootMode) || self.bootMode != 'BIOS'",
                    "spec.importImageOptions.bootMode: arm64 images boot only in UEFI mode",
                    field_path=".bootMode",
                )
            ]
        }
    }

    data_disks: list[DataDisk] | None = Field(
        default=None,
        max_length=MAX_DATA_DISKS,
        description=f"Data disks (DiskDeviceMappings.2-17, at most {MAX_DATA_DISKS}).",
    )
    os_type: Literal["linux", "windows"] | None = Field(default=None, alias="osType")
    platform: Platform | None = None
    architecture: Literal["x86_64", "arm64"] | None = None
    boot_mode: Literal["BIOS", "UEFI"] | None = None
    license_type: Literal["Auto", "Aliyun", "BYOL"] | None = None
    image_name: str | None = patterned(
        _IMAGE_NAME_PATTERN,
        _IMAGE_NAME_WORDS,
        min_length=2,
        max_length=128,
        default=None,
        description="The imported image's name: 2-128 characters.",
    )
    description: str | None = Field(
        default=None,
        min_length=2,
        max_length=256,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!self.startsWith('http://') && !self.startsWith('https://')",
                    "must not start with http:// or https://",
                )
            ]
        },
    )
    retention_strategy: RetentionStrategy | None = Field(
        default=None,
        description="Whether the imported image is kept: RetainOnlySuccessful, "
        "RetainOnlyFailed, RetainAlways or RetainNever.",
    )
    retain_imported_image: bool | None = None
    role_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9.@_-]+$",
        description="The RAM role ECS assumes to read the OSS objects.",
    )
    features: ImportFeatures | None = None
    tags: list[PipelineTag] | None = Field(
        default=None, max_length=20, description="ImportImageTags (at most 20)."
    )


class AdvancedOptions(ApiModel):
    image_name_suffix: Literal["disable"] | None = Field(
        default=None,
        description="disable: the images keep ImageOptions.imageName without ECS's suffix.",
    )
    retain_cloud_assistant: bool | None = None

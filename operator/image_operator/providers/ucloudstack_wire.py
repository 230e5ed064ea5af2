"""The wire format of the `ucloudstack` IMAGE API (seed 003): the answers the provider decides
on (`ImageInfo`, `OSVersion`, `BaseImageWire`, `DownloadURL`), ImageStatus as a CloudState,
TagKeyValuePairs (Base64 key:value, the UID tag first) and the OS parameters of ImportImage and
UpdateImage. Used by `providers.ucloudstack`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from image_operator.api.image import ImageSpec, OsInfo
from image_operator.api.provideroptions import UCloudStackImageOptions
from image_operator.providers.model import CloudState, ImageRequest

SERVICE: Final = "ucloudstack"
UID_TAG: Final = "imageops.io/uid"

STATES: Final = {
    "WaitMaking": CloudState.PENDING,
    "Making": CloudState.CREATING,
    "Uploading": CloudState.CREATING,
    "Importing": CloudState.CREATING,
    "Available": CloudState.AVAILABLE,
    "MakeFailed": CloudState.FAILED,
    "UploadFailed": CloudState.FAILED,
    "Aborting": CloudState.DELETING,
    "Deleting": CloudState.DELETING,
}


class _Wire(BaseModel):
    # The API's own field names; fields we do not model are kept in CloudImage.raw.
    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)


class Tag(_Wire):
    key: str = Field(alias="Key")
    value: str = Field(default="", alias="Value")


class ImageInfo(_Wire):
    """The parts of DescribeImage's ImageInfo the provider decides on."""

    image_id: str = Field(alias="ImageID")
    image_name: str = Field(default="", alias="ImageName")
    image_type: str = Field(default="Custom", alias="ImageType")
    image_status: str = Field(default="", alias="ImageStatus")
    import_type: str = Field(default="", alias="ImportType")
    percent: int | None = Field(default=None, alias="PreparePrecent")
    reason: str = Field(default="", alias="Reason")
    tags: list[Tag] = Field(default_factory=list, alias="Tags")
    os_type: str = Field(default="", alias="OSType")
    os_name: str = Field(default="", alias="OSName")
    os_distribution: str = Field(default="", alias="OSDistribution")
    set_arch: str = Field(default="", alias="SetArch")
    create_time: int = Field(default=0, alias="CreateTime")
    support_qga: bool | None = Field(default=None, alias="SupportQGA")
    support_cloud_init: bool | None = Field(default=None, alias="SupportCloudInit")
    bootloader_type: str | None = Field(default=None, alias="BootloaderType")

    def tag(self, key: str) -> str | None:
        return next((tag.value for tag in self.tags if tag.key == key), None)


class OSVersion(_Wire):
    """One entry of DescribeImageOSVersions."""

    image_os_id: str = Field(alias="ImageOSID")
    os_type: str = Field(alias="OSType")
    set_arch: str = Field(alias="SetArch")
    os_distribution: str = Field(alias="OSDistribution")
    os_version: str = Field(alias="OSVersion")
    network_mode: str = Field(default="", alias="NetworkMode")
    remark: str = Field(default="", alias="Remark")
    status: str = Field(default="", alias="Status")

    def matches(self, os: OsInfo) -> bool:
        return (self.os_type, self.set_arch, self.os_distribution, self.os_version) == (
            os.type,
            os.arch,
            os.distribution,
            os.version,
        )


class BaseImageWire(_Wire):
    """One entry of DescribeBaseImage."""

    image_id: str = Field(alias="ImageID")
    name: str = Field(default="", alias="Name")
    description: str = Field(default="", alias="Description")
    region: str = Field(default="", alias="Region")
    permission: str = Field(default="", alias="Permission")
    create_time: int = Field(default=0, alias="CreateTime")
    update_time: int = Field(default=0, alias="UpdateTime")


class DownloadURL(BaseModel):
    model_config = ConfigDict(frozen=True)

    url: str
    expires_at: int  # Unix seconds (the API's ExpiredTime)


def encode_tag(key: str, value: str) -> str:
    """One TagKeyValuePairs element: base64(key):base64(value)."""
    encode = base64.b64encode
    return f"{encode(key.encode()).decode()}:{encode(value.encode()).decode()}"


def tag_pairs(idempotency_key: str, tags: Mapping[str, str] | None) -> list[str]:
    """TagKeyValuePairs: the idempotency tag first, then the spec's tags (sorted)."""
    extra = sorted((tags or {}).items())
    return [encode_tag(UID_TAG, idempotency_key)] + [
        encode_tag(key, value) for key, value in extra if key != UID_TAG
    ]


def image_tags(request: ImageRequest) -> list[str]:
    return tag_pairs(request.idempotency_key, request.spec.tags)


def os_of(spec: ImageSpec) -> OsInfo | None:
    source = spec.source
    if source.url is not None:
        return source.url.os
    if source.upload is not None:
        return source.upload.os
    return None


def os_params(os: OsInfo) -> dict[str, str]:
    return {
        "OSType": os.type,
        "SetArch": os.arch,
        "OSDistribution": os.distribution,
        "OSVersion": os.version,
    }


def fingerprint(info: ImageInfo) -> str:
    return "|".join((info.os_type, info.set_arch, info.os_distribution, info.os_name))


def os_differs(os: OsInfo, info: ImageInfo) -> bool:
    # ImageInfo has no OSVersion field: OSName reads "<distribution> <version> <arch>" (the
    # seed's example: "OpenEuler 22.03_SP4 x86_64"), so the version is one of its words.
    return (info.os_type, info.set_arch, info.os_distribution) != (
        os.type,
        os.arch,
        os.distribution,
    ) or os.version not in info.os_name.split()


def flag_params(options: UCloudStackImageOptions | None) -> dict[str, object]:
    """The flags spec.ucloudstack sets, as ImportImage / UpdateImage parameters (unset ones
    are not sent: the cloud keeps its default, or the image its value)."""
    if options is None:
        return {}
    params: dict[str, object] = {
        "SupportQGA": options.support_qga,
        "SupportCloudInit": options.support_cloud_init,
        "BootloaderType": options.bootloader_type.value if options.bootloader_type else None,
    }
    return {key: value for key, value in params.items() if value is not None}


def flags_differ(options: UCloudStackImageOptions | None, info: ImageInfo) -> list[str]:
    """The spec.ucloudstack fields whose value the image does not have."""
    have = {
        "SupportQGA": info.support_qga,
        "SupportCloudInit": info.support_cloud_init,
        "BootloaderType": (info.bootloader_type or "").lower() or None,
    }
    return [key for key, value in flag_params(options).items() if have[key] != value]

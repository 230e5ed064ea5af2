"""Provider-specific options: the request fields of one vendor's API that have no cloud-neutral
spec field. An `Image` groups them under a sub-object named after the provider type
(`spec.openstack`, `spec.ucloudstack`, `spec.argon`); an `ImageProvider` of type openstack
chooses its API dialect under `spec.openstack`. docs/seed-coverage.md maps each vendor request
parameter to the field that sets it.

The `Image`'s provider lives in another object, so admission cannot tell whether the options
match it: a provider refuses options meant for another type (`Provider.require_options`), which
stalls the Image naming the field.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, field_validator

from image_operator.api.base import ApiModel
from image_operator.api.common import JsonDict, cel, key_rules, no_control_characters

# -- openstack (seed 002: Glance v2 / Huawei IMS) ----------------------------------------------


class OpenStackApi(StrEnum):
    """Which operations an openstack provider uses."""

    GLANCE = "glance"  # all of Glance v2, interoperable import (web-download, glance-direct) too
    IMS = "ims"  # only the operations of the Huawei IMS OpenStack-native index (seed 002)


class OpenStackProviderOptions(ApiModel):
    """Options of an `ImageProvider` of type openstack."""

    api: OpenStackApi = Field(
        default=OpenStackApi.GLANCE,
        description="glance (default): every Glance v2 call, URL imports through Glance's "
        "interoperable import. ims: only the operations Huawei IMS's OpenStack-native index "
        "lists (create metadata, upload the file, show, list, update name/description/custom "
        "properties, tags, members, delete); a URL import stalls Unsupported, and the OS "
        "properties and spec.openstack's fields other than properties are set only at create.",
    )


class Visibility(StrEnum):
    PRIVATE = "private"
    SHARED = "shared"
    COMMUNITY = "community"
    PUBLIC = "public"


class ContainerFormat(StrEnum):
    BARE = "bare"
    OVF = "ovf"
    OVA = "ova"
    AKI = "aki"
    ARI = "ari"
    AMI = "ami"
    DOCKER = "docker"
    COMPRESSED = "compressed"


#: Glance's own image attributes and the properties the operator manages: a custom property
#: may not be named like one (Glance refuses some with 403, and the others would fight the
#: operator's own values).
RESERVED_PROPERTIES = (
    "id",
    "name",
    "status",
    "visibility",
    "protected",
    "os_hidden",
    "tags",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "size",
    "virtual_size",
    "container_format",
    "disk_format",
    "min_disk",
    "min_ram",
    "owner",
    "created_at",
    "updated_at",
    "file",
    "self",
    "schema",
    "locations",
    "direct_url",
    "stores",
    "description",
    "os_type",
    "os_distro",
    "os_version",
    "architecture",
)
#: Prefixes of properties Glance or the operator write themselves.
RESERVED_PROPERTY_PREFIXES = ("os_glance", "imageops.io", "owner_specified.")
PROPERTY_KEY_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$"
PROPERTY_KEY_MAX = 255  # Glance's property names are VARCHAR(255)
MAX_PROPERTIES = 64

PropertyKey = Annotated[
    str, Field(min_length=1, max_length=PROPERTY_KEY_MAX, pattern=PROPERTY_KEY_PATTERN)
]
PropertyValue = Annotated[str, Field(max_length=255)]


def _reserved_keys_rule() -> JsonDict:
    names = ", ".join(f"'{name}'" for name in RESERVED_PROPERTIES)
    prefixes = " && ".join(f"!k.startsWith('{p}')" for p in RESERVED_PROPERTY_PREFIXES)
    return cel(
        f"self.all(k, !(k in [{names}]) && {prefixes})",
        "spec.openstack.properties may not name a Glance image attribute or a property the "
        "operator sets ("
        + ", ".join(RESERVED_PROPERTIES)
        + ") nor start with "
        + ", ".join(RESERVED_PROPERTY_PREFIXES)
        + ": set those through their own spec fields",
    )


def _property_rules(schema: JsonDict) -> None:
    key_rules(
        "spec.openstack.properties",
        PROPERTY_KEY_PATTERN,
        "letters, digits, '_', '.', ':' and '-', starting with a letter, digit or '_'",
        max_length=PROPERTY_KEY_MAX,
    )(schema)
    rules = schema.setdefault("x-kubernetes-validations", [])
    assert isinstance(rules, list)
    rules.append(_reserved_keys_rule())


class OpenStackImageOptions(ApiModel):
    """Glance / IMS create-metadata fields (seed 002) beyond the cloud-neutral spec."""

    @field_validator("properties")
    @classmethod
    def _not_reserved(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for key in value or {}:
            if key in RESERVED_PROPERTIES or key.startswith(RESERVED_PROPERTY_PREFIXES):
                raise ValueError(
                    f"{key!r} is a Glance image attribute or a property the operator sets: "
                    "set it through its own spec field"
                )
        return value

    visibility: Visibility | None = Field(
        default=None,
        description="private (default), shared (visible to member projects), community or "
        "public (public usually needs an administrator).",
    )
    container_format: ContainerFormat | None = Field(
        default=None,
        description="container_format: bare (default), ovf, ova, aki, ari, ami, docker or "
        "compressed. Immutable: Glance refuses the change once the image holds data.",
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self == oldSelf",
                    "spec.openstack.containerFormat is immutable: Glance refuses the change "
                    "once the image holds data; delete and recreate the Image to change it",
                )
            ]
        },
    )
    min_disk_gib: int | None = Field(
        default=None,
        ge=0,
        le=1048576,
        alias="minDiskGiB",
        description="min_disk: the disk (GiB) an instance needs to boot the image.",
    )
    min_ram_mib: int | None = Field(
        default=None,
        ge=0,
        le=16777216,
        alias="minRamMiB",
        description="min_ram: the memory (MiB) an instance needs to boot the image.",
    )
    protected: bool | None = Field(
        default=None,
        description="protected: the image cannot be deleted while true (the operator's delete "
        "of a protected image fails until it is false).",
    )
    properties: dict[PropertyKey, PropertyValue] | None = Field(
        default=None,
        max_length=MAX_PROPERTIES,
        description=f"Custom image properties (at most {MAX_PROPERTIES}; keys of letters, "
        "digits, '_', '.', ':', '-', values up to 255 characters), e.g. hw_disk_bus: virtio.",
        json_schema_extra=_property_rules,
    )


# -- ucloudstack (seed 003: ImportImage / UpdateImage) ------------------------------------------


class BootloaderType(StrEnum):
    BIOS = "bios"
    UEFI = "uefi"


class UCloudStackImageOptions(ApiModel):
    """ImportImage / UpdateImage fields (seed 003) beyond the cloud-neutral spec. The image's
    `Secret` is no spec field: it comes from the ImageProvider's Secret (key imageSecret)."""

    image_size_gib: int | None = Field(
        default=None,
        ge=1,
        le=65536,
        alias="imageSizeGiB",
        description="ImageSize of a URL import (GiB, 1-65536); a local upload sends the file's "
        "own size.",
    )
    support_qga: bool | None = Field(
        default=None,
        alias="supportQGA",
        description="SupportQGA: the image runs qemu-guest-agent (updated in place).",
    )
    support_cloud_init: bool | None = Field(
        default=None,
        description="SupportCloudInit: the image runs cloud-init (updated in place).",
    )
    bootloader_type: BootloaderType | None = Field(
        default=None,
        description="BootloaderType: bios or uefi (updated in place); the cloud's default is bios.",
    )


# -- argon (seed 001) ---------------------------------------------------------------------------

#: Argon's image name is a path segment (seed 001's example: 普通整片转码): 1-253 characters,
#: no '/', not '.' or '..'.
ARGON_NAME_MAX = 253
ARGON_NAME_PATTERN = r"^[^/]+$"
#: Room the owner marker takes at the end of the Argon description when a name is chosen.
ARGON_OWNER_MARKER_ROOM = 64
ARGON_DESCRIPTION_MAX = 1024


class ArgonImageOptions(ApiModel):
    """Argon fields (seed 001) beyond the cloud-neutral spec."""

    @field_validator("name")
    @classmethod
    def _not_a_dot_segment(cls, value: str | None) -> str | None:
        if value in (".", ".."):
            raise ValueError("may not be '.' or '..' (the name is a URL path segment)")
        return value

    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=ARGON_NAME_MAX,
        pattern=ARGON_NAME_PATTERN,
        description="The Argon image name (unique in the Argon namespace; 1-253 characters, "
        "no '/', not '.' or '..'). Default: <object name>-<8 hex of the UID>. Immutable. With "
        "a chosen name the operator marks the image as its own at the end of the Argon "
        "description, and an image of that name it does not own stalls the Image.",
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self == oldSelf",
                    "spec.argon.name is immutable: an Argon image cannot be "
                    "renamed; delete and recreate the Image to change it",
                ),
                cel("self != '.' && self != '..'", "spec.argon.name may not be '.' or '..'"),
                *no_control_characters()["x-kubernetes-validations"],
            ]
        },
    )


#: The Image spec fields that hold provider options, each named after its provider type.
OPTION_FIELDS = ("openstack", "ucloudstack", "argon")


def argon_name_rules() -> list[JsonDict]:
    """ImageSpec-level CEL: spec.argon.name may be neither added nor removed after creation
    (the field's own rule sees only changes of a present value), and a chosen name leaves room
    for the owner marker in the description."""
    room = ARGON_DESCRIPTION_MAX - ARGON_OWNER_MARKER_ROOM
    return [
        cel(
            "(has(self.argon) && has(self.argon.name)) == "
            "(has(oldSelf.argon) && has(oldSelf.argon.name))",
            "spec.argon.name is immutable: it can be neither added nor removed after creation",
            field_path=".argon",
        ),
        cel(
            f"!has(self.argon) || !has(self.argon.name) || !has(self.description) "
            f"|| size(self.description) <= {room}",
            f"spec.description is at most {room} characters when spec.argon.name is set (the "
            "operator keeps its owner marker at the end of the Argon description)",
            field_path=".description",
        ),
    ]


__all__ = [
    "OPTION_FIELDS",
    "ArgonImageOptions",
    "BootloaderType",
    "ContainerFormat",
    "OpenStackApi",
    "OpenStackImageOptions",
    "OpenStackProviderOptions",
    "UCloudStackImageOptions",
    "Visibility",
]

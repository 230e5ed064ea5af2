"""The `CommunityListing` kind: a container Image published to a community marketplace."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from image_operator.api.base import ApiModel
from image_operator.api.common import (
    LABEL_PATTERN,
    LABEL_WORDS,
    ConfigMapKeySelector,
    DeletionPolicy,
    LocalObjectReference,
    ObjectStatus,
    Price,
    SecretKeySelector,
    cel,
    immutable,
    no_control_characters,
    pattern_in_words,
    patterned,
)
from image_operator.api.crdinfo import CrdInfo, PrinterColumn, standard_columns

VERSION_NAME_PATTERN = r"^v[0-9]+(\.[0-9]+){1,2}$"
COVER_INLINE_MAX = 1048576  # Base64 characters (~768 KiB of image)
# A community tag or a GPU type (seed 000: 深度学习, PyTorch; 4090, A100), at most 32 characters.
Label = Annotated[str, patterned(LABEL_PATTERN, "must be a label: " + LABEL_WORDS, max_length=32)]


class CoverSource(ApiModel):
    """The cover picture (Base64), inline or from a ConfigMap/Secret key; exactly one."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "[has(self.inline), has(self.configMapKeyRef), has(self.secretKeyRef)]"
                    ".filter(x, x).size() == 1",
                    "spec.cover must set exactly one of inline, configMapKeyRef, secretKeyRef",
                )
            ]
        }
    }

    inline: str | None = Field(
        default=None,
        max_length=COVER_INLINE_MAX,
        pattern=r"^[A-Za-z0-9+/]*={0,2}$",
        description="Base64 image data.",
    )
    config_map_key_ref: ConfigMapKeySelector | None = None
    secret_key_ref: SecretKeySelector | None = None


class CommunityListingSpec(ApiModel):
    image_ref: Annotated[
        LocalObjectReference, Field(json_schema_extra=immutable("spec.imageRef"))
    ] = Field(description="The container-made Image to publish; it must be Ready.")
    group_id: str | None = Field(
        default=None,
        alias="groupID",
        max_length=64,
        description="Existing listing group to add a version to (GroupId).",
    )
    community_image_name: str | None = Field(
        default=None,
        max_length=64,
        description="Display name in the community (CommunityImageName): any text without "
        "control characters.",
        json_schema_extra=no_control_characters(),
    )
    version_name: str = Field(
        min_length=1,
        max_length=32,
        pattern=VERSION_NAME_PATTERN,
        description="Version like v1.0 (or v1.0.1).",
        json_schema_extra=pattern_in_words(
            VERSION_NAME_PATTERN,
            "must be a version like v1.0 or v1.0.1: 'v', then two or three numbers "
            "separated by '.'",
        ),
    )
    version_desc: str | None = Field(
        default=None, max_length=512, description="What changed in this version (VersionDesc)."
    )
    price: Price | None = Field(default=None, description='Yuan per hour, "0" = free.')
    cover: CoverSource | None = None
    tags: list[Label] | None = Field(
        default=None,
        max_length=3,
        description='Tags, e.g. ["深度学习", "PyTorch"]; CompShare accepts at most 3.',
    )
    description: str | None = Field(
        default=None, max_length=1024, description="Description of the image (Description)."
    )
    readme: str | None = Field(default=None, max_length=65536, description="Rich-text readme.")
    supported_gpu_types: list[Label] | None = Field(
        default=None, max_length=32, description='e.g. ["4090", "A100"].'
    )
    auto_start: bool | None = Field(
        default=None, description="Whether the image supports auto-start (AutoStart)."
    )
    deletion_policy: DeletionPolicy = DeletionPolicy.DELETE


class ListingVersion(ApiModel):
    """One version this listing submitted, newest last."""

    version_name: str
    state: str = Field(
        description="Copying, InReview, Published, Rejected, Offline, Withdrawing or Withdrawn."
    )
    reason: str | None = Field(default=None, description="Why the review rejected it.")
    submitted_at: str | None = None
    image_id: str | None = Field(
        default=None,
        alias="imageID",
        description="The CompShare image published as this version: a copy of the Image, "
        "owned by the listing (an image can carry only one version).",
    )
    submitted_generation: int | None = Field(
        default=None,
        description="The metadata.generation whose spec was submitted; a rejected version is "
        "submitted again once the spec changes.",
    )


class CommunityListingStatus(ObjectStatus):
    group_id: str | None = Field(default=None, alias="groupID")
    provider_name: str | None = Field(
        default=None,
        description="The ImageProvider the versions were published through; kept so that "
        "deletion can withdraw them after the Image is gone.",
    )
    versions: list[ListingVersion] | None = None


class CommunityListing(ApiModel):
    crd: ClassVar[CrdInfo] = CrdInfo(
        kind="CommunityListing",
        plural="communitylistings",
        short_names=("cl",),
        description="The publication of a container Image to a community marketplace.",
        columns=(
            PrinterColumn("Version", "string", ".spec.versionName"),
            *standard_columns(),
        ),
    )

    spec: CommunityListingSpec
    status: CommunityListingStatus | None = None

"""The `BaseImage` kind: a base image cloned from a custom image (CloneCustomImageToBaseImage)."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from image_operator.api.base import ApiModel
from image_operator.api.common import (
    DeletionPolicy,
    LocalObjectReference,
    ObjectStatus,
    cel,
    immutable,
    immutable_rule,
)
from image_operator.api.crdinfo import CrdInfo, standard_columns
from image_operator.api.image import CloudName


class BaseImageSource(ApiModel):
    """The custom image to clone: an `Image` (waited on until Ready) or a cloud image ID."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "has(self.imageRef) != has(self.externalID)",
                    "spec.source must set exactly one of imageRef, externalID",
                ),
                immutable_rule("spec.source"),
            ]
        }
    }

    image_ref: LocalObjectReference | None = None
    external_id: str | None = Field(
        default=None,
        alias="externalID",
        min_length=1,
        max_length=64,
        description="SourceImageID of an existing custom image.",
    )


class BaseImageSpec(ApiModel):
    provider_ref: Annotated[
        LocalObjectReference, Field(json_schema_extra=immutable("spec.providerRef"))
    ]
    source: BaseImageSource
    name: CloudName = Field(
        description="DestImageName: 1-50 chars of CJK, letters, digits, '.', '_', '-'."
    )
    deletion_policy: DeletionPolicy = DeletionPolicy.DELETE


class BaseImageStatus(ObjectStatus):
    permission: str | None = Field(default=None, description="Tenants that may use it.")
    source_external_id: str | None = Field(default=None, alias="sourceExternalID")


class BaseImage(ApiModel):
    crd: ClassVar[CrdInfo] = CrdInfo(
        kind="BaseImage",
        plural="baseimages",
        short_names=("bimg",),
        description="A base image cloned from a custom image, with its tenant permission.",
        columns=standard_columns(),
    )

    spec: BaseImageSpec
    status: BaseImageStatus | None = None

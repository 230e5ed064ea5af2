"""The `ImagePipeline` kind: an image build template (ECS CreateImagePipeline) and its runs."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator

from image_operator.api.base import ApiModel
from image_operator.api.common import (
    KEY_PATTERN,
    KEY_WORDS,
    CloudId,
    DeletionPolicy,
    LocalObjectReference,
    ObjectStatus,
    cel,
    immutable,
    pattern_in_words,
    patterned,
)
from image_operator.api.crdinfo import CrdInfo, PrinterColumn, standard_columns
from image_operator.api.pipelineoptions import (
    MAX_REPAIR_ITEMS,
    REPAIR_ITEM_PATTERN,
    AdvancedOptions,
    ImportImageOptions,
    PipelineTag,
    RepairMode,
)

# Seed 004: Name starts with a letter or Chinese character, 2-128 chars of CJK, letters,
# digits, ':', '_', '.', '-'; neither Name nor Description may start with http:// or https://.
# The length is the field's min_length/max_length, so that a long name is refused as too long.
PIPELINE_NAME_PATTERN = r"^[\p{Han}A-Za-z][\p{Han}A-Za-z0-9:_.-]*$"
CONTENT_MAX = 16384  # BuildContent / TestContent: at most 16 KB
_PIPELINE_NAME_WORDS = (
    "must start with a letter or Chinese (Han) character and hold only those, digits, "
    "':', '_', '.' and '-'"
)
# ECS's IDs of a transit instance's vSwitch and of a resource group (seed 004: vsw-bp67acfmxazb4p,
# rg-bp67acfmxazb4p) and its instance types (ecs.g6.large): a prefix and lowercase letters and
# digits.
VSWITCH_PATTERN = r"^vsw-[a-z0-9]+$"
RESOURCE_GROUP_PATTERN = r"^rg-[a-z0-9]+$"
INSTANCE_TYPE_PATTERN = r"^ecs\.[a-z0-9-]+\.[a-z0-9]+$"
# ImageOptions.ImageName, a prefix of the images' names: the template name's characters, 2-64
# of them (ECS), and not starting with aliyun or acs: (ECS reserves those for its own images).
IMAGE_NAME_PREFIX_MAX = 64


class OssObject(ApiModel):
    bucket: str = Field(min_length=3, max_length=63)
    object: str = patterned(
        KEY_PATTERN,
        "must be an object name of " + KEY_WORDS,
        max_length=1024,
        description="The object's name in the bucket, e.g. images/ubuntu-22.04.qcow2.",
    )
    format: str | None = Field(default=None, max_length=16, description="e.g. qcow2, raw.")
    disk_image_size_gib: int | None = Field(default=None, ge=1, le=2048)


class BaseImageRef(ApiModel):
    """The image a build starts from; exactly one field is set."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "[has(self.id), has(self.family), has(self.oss), has(self.imageRef), "
                    "has(self.baseImageRef)].filter(x, x).size() == 1",
                    "spec.baseImage must set exactly one of id, family, oss, imageRef, "
                    "baseImageRef",
                )
            ]
        }
    }

    id: CloudId | None = Field(
        default=None,
        max_length=128,
        description="BaseImageType IMAGE: an image ID such as m-bp67acfmxazb4p or "
        "aliyun_3_x64_20G_alibase_20240819.vhd.",
    )
    family: str | None = Field(
        default=None, max_length=128, description="BaseImageType IMAGE_FAMILY."
    )
    oss: OssObject | None = Field(default=None, description="BaseImageType OSS (import).")
    image_ref: LocalObjectReference | None = Field(default=None, description="An Image.")
    base_image_ref: LocalObjectReference | None = Field(default=None, description="A BaseImage.")


class TransitInstance(ApiModel):
    """The pay-as-you-go instance the cloud builds on."""

    instance_type: str | None = patterned(
        INSTANCE_TYPE_PATTERN,
        "must be an ECS instance type like ecs.g6.large: 'ecs.', a family of lowercase "
        "letters, digits and '-', '.', and a size of lowercase letters and digits",
        max_length=64,
        default=None,
        description="e.g. ecs.g6.large",
    )
    system_disk_size: int | None = Field(default=None, ge=20, le=500, description="GiB, 20-500.")
    internet_max_bandwidth_out: int | None = Field(
        default=None, ge=0, le=100, description="Mbit/s, 0-100."
    )
    v_switch_id: str | None = patterned(
        VSWITCH_PATTERN,
        "must be a vSwitch ID: 'vsw-' and lowercase letters and digits",
        max_length=64,
        default=None,
        alias="vSwitchID",
        description="VSwitchId, e.g. vsw-bp67acfmxazb4p.",
    )
    delete_instance_on_failure: bool | None = None


Tag = PipelineTag


class ImageOptions(ApiModel):
    """Properties of the images the pipeline produces."""

    image_name: str | None = Field(
        default=None,
        min_length=2,
        max_length=IMAGE_NAME_PREFIX_MAX,
        pattern=PIPELINE_NAME_PATTERN,
        description=f"Name prefix: 2-{IMAGE_NAME_PREFIX_MAX} characters, starts with a letter "
        "or CJK character, not with aliyun or acs:.",
        json_schema_extra={
            "x-kubernetes-validations": [
                *pattern_in_words(PIPELINE_NAME_PATTERN, _PIPELINE_NAME_WORDS)[
                    "x-kubernetes-validations"
                ],
                cel(
                    "!self.startsWith('aliyun') && !self.startsWith('acs:')",
                    "must not start with aliyun or acs: (ECS keeps those for its own images)",
                ),
            ]
        },
    )
    image_family: str | None = Field(default=None, max_length=128)
    description: str | None = Field(default=None, max_length=256)
    nvme_support: Literal["auto", "supported", "unsupported"] | None = Field(
        default=None, description="NvmeSupport: auto, supported or unsupported."
    )
    tags: list[Tag] | None = Field(
        default=None, max_length=20, description="ImageTags of the images made (at most 20)."
    )


class ScheduleSpec(ApiModel):
    cron: str = Field(
        min_length=9,
        max_length=128,
        description="Five-field cron expression, e.g. 0 3 * * 1 (a sixth field counts seconds).",
    )
    time_zone: str = Field(default="UTC", max_length=64, description="IANA time zone name.")


class ConcurrencyPolicy(StrEnum):
    WAIT = "Wait"
    REPLACE = "Replace"


class OutputImages(ApiModel):
    """Make an `Image` (owned by the pipeline, adopting the run's image) for each run that
    built one, and keep the newest `retention` of them."""

    enabled: bool = False
    retention: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Keep the Images of the newest N runs; older ones are deleted (and their "
        "cloud images with them, per deletionPolicy).",
    )
    deletion_policy: DeletionPolicy = Field(
        default=DeletionPolicy.DELETE,
        description="The deletionPolicy of the Images made: Delete removes a retired run's "
        "cloud image, Orphan keeps it.",
    )


class ImagePipelineSpec(ApiModel):
    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "!has(self.importImageOptions) || has(self.baseImage.oss)",
                    "spec.importImageOptions applies only to an OSS base image "
                    "(spec.baseImage.oss)",
                    field_path=".importImageOptions",
                ),
                cel(
                    "!has(self.repairItems) || (has(self.repairMode) "
                    "&& self.repairMode == 'Customized')",
                    "spec.repairItems is accepted only with spec.repairMode Customized",
                    field_path=".repairItems",
                ),
            ]
        }
    }

    @field_validator("description")
    @classmethod
    def _description_not_url(cls, value: str | None) -> str | None:
        if value is not None and value.startswith(("http://", "https://")):
            raise ValueError("must not start with http:// or https://")
        return value

    provider_ref: Annotated[
        LocalObjectReference, Field(json_schema_extra=immutable("spec.providerRef"))
    ]
    name: str | None = Field(
        default=None,
        min_length=2,
        max_length=128,
        pattern=PIPELINE_NAME_PATTERN,
        json_schema_extra=pattern_in_words(PIPELINE_NAME_PATTERN, _PIPELINE_NAME_WORDS),
        description="Template Name: 2-128 chars, starts with a letter or CJK character; "
        "defaults to metadata.name.",
    )
    description: str | None = Field(
        default=None,
        min_length=2,
        max_length=256,
        description="2-256 characters, not starting with http:// or https://.",
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!self.startsWith('http://') && !self.startsWith('https://')",
                    "spec.description must not start with http:// or https://",
                )
            ]
        },
    )
    base_image: BaseImageRef
    build_content: str | None = Field(
        default=None, max_length=CONTENT_MAX, description="Build template (at most 16 KB)."
    )
    test_content: str | None = Field(
        default=None, max_length=CONTENT_MAX, description="Test template (at most 16 KB)."
    )
    to_region_ids: list[CloudId] | None = Field(
        default=None, max_length=20, alias="toRegionIDs", description="Distribute to (<= 20)."
    )
    add_accounts: list[Annotated[int, Field(ge=1)]] | None = Field(
        default=None, max_length=20, description="Share with account IDs (<= 20)."
    )
    transit: TransitInstance | None = None
    repair_mode: RepairMode | None = Field(
        default=None, description="RepairMode of the template: Standard, All or Customized."
    )
    repair_items: (
        list[Annotated[str, Field(min_length=1, max_length=64, pattern=REPAIR_ITEM_PATTERN)]] | None
    ) = Field(
        default=None,
        max_length=MAX_REPAIR_ITEMS,
        description="RepairItem: what RepairMode Customized repairs.",
    )
    import_image_options: ImportImageOptions | None = Field(
        default=None,
        description="The OSS import of spec.baseImage.oss: data disks, OS, boot mode, licence, "
        "the imported image's name, description, retention and tags.",
    )
    advanced_options: AdvancedOptions | None = Field(
        default=None,
        description="AdvancedOptions: imageNameSuffix (disable: no suffix on the images' "
        "names) and retainCloudAssistant.",
    )
    resource_group_id: str | None = patterned(
        RESOURCE_GROUP_PATTERN,
        "must be a resource group ID: 'rg-' and lowercase letters and digits",
        max_length=64,
        default=None,
        alias="resourceGroupID",
        description="Enterprise resource group (ResourceGroupId), e.g. rg-bp67acfmxazb4p.",
    )
    tags: list[Tag] | None = Field(
        default=None, max_length=20, description="Tags of the template (at most 20)."
    )
    image_options: ImageOptions | None = None
    schedule: ScheduleSpec | None = Field(
        default=None, description="Run on a cron schedule as well (in a time zone)."
    )
    concurrency_policy: ConcurrencyPolicy = Field(
        default=ConcurrencyPolicy.WAIT,
        description="One run at a time: Wait queues a newer trigger, Replace cancels the "
        "running execution first.",
    )
    runs_history_limit: int = Field(
        default=10, ge=1, le=100, description="How many runs status.runs keeps."
    )
    output_images: OutputImages | None = Field(
        default=None, description="Materialise each successful run's images as Image objects."
    )
    deletion_policy: DeletionPolicy = DeletionPolicy.DELETE


class TargetResult(ApiModel):
    region_id: str | None = Field(default=None, alias="regionID")
    account_id: int | None = Field(default=None, alias="accountID")
    image_id: str | None = Field(default=None, alias="imageID")
    status: str
    message: str | None = None


class PipelineRun(ApiModel):
    id: str
    sequence: int | None = Field(default=None, description="The run's number (1 = first).")
    phase: str
    trigger: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    reason: str | None = None
    targets: list[TargetResult] | None = None
    image_id: str | None = Field(
        default=None,
        alias="imageID",
        description="The image the run built in the provider's region.",
    )
    output_image: str | None = Field(
        default=None, description="The Image made for it (spec.outputImages)."
    )


class OutputImageStatus(ApiModel):
    name: str = Field(description="The Image object.")
    image_id: str = Field(alias="imageID", description="The cloud image it adopted.")
    run_id: str = Field(alias="runID", description="The run that built it.")


class ImagePipelineStatus(ObjectStatus):
    runs: list[PipelineRun] | None = None
    output_images: list[OutputImageStatus] | None = Field(
        default=None, description="The Images spec.outputImages keeps, oldest first."
    )
    last_run_id: str | None = Field(default=None, alias="lastRunID")
    next_schedule_time: str | None = None
    last_schedule_time: str | None = Field(
        default=None, description="The latest schedule time a run was due (or first seen)."
    )
    template_hash: str | None = Field(
        default=None, description="Fingerprint of the template externalID was created from."
    )
    template_generation: int | None = Field(
        default=None, description="The metadata.generation that created the current template."
    )
    run_sequence: int | None = Field(
        default=None, description="Runs started so far (the idempotency key of the next run)."
    )
    pending_trigger: str | None = Field(
        default=None, description="A trigger waiting for the running execution to finish."
    )
    last_manual_trigger: str | None = Field(
        default=None, description="The imageops.io/run annotation value last acted on."
    )


class ImagePipeline(ApiModel):
    crd: ClassVar[CrdInfo] = CrdInfo(
        kind="ImagePipeline",
        plural="imagepipelines",
        short_names=("ipl",),
        description="An image build template whose runs are recorded in status.",
        columns=(
            *standard_columns()[:2],
            PrinterColumn("Last Run", "string", ".status.lastRunID"),
            *standard_columns()[2:],
        ),
    )

    spec: ImagePipelineSpec
    status: ImagePipelineStatus | None = None

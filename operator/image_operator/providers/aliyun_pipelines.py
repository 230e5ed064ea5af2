"""ImagePipelines on ECS: the typed template of seed 004's CreateImagePipeline, the mapping of a
`PipelineBuild` onto it (`pipeline_template`), its fingerprint, its SDK request
(`pipeline_request`), and the per-target results parsed from an execution's Message.
`AliyunProvider` (`providers.aliyun`) makes the calls.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Final, Literal, cast

from alibabacloud_ecs20140526 import models as ecs  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field

from image_operator.api.pipeline import ImagePipelineSpec
from image_operator.providers.aliyun_images import sdk_tags
from image_operator.providers.errors import InvalidInput
from image_operator.providers.pipelines import (
    PipelineBuild,
    PipelineExecution,
    PipelineInfo,
    TargetResult,
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PipelineTag(_Model):
    key: str
    value: str = ""


class OssDisk(_Model):
    """One disk of ImportImageOptions: N=1 is the system disk, 2-17 data disks."""

    bucket: str
    object: str
    format: Literal["RAW", "VHD", "QCOW2"] | None = None
    disk_image_size_gib: int | None = None


class ImportImageOptions(_Model):
    """Seed 004 `ImportImageOptions` (required when BaseImageType is OSS)."""

    disks: list[OssDisk] = Field(min_length=1)
    os_type: Literal["linux", "windows"] | None = None
    platform: str | None = None
    architecture: Literal["x86_64", "arm64"] | None = None
    boot_mode: Literal["BIOS", "UEFI"] | None = None
    license_type: Literal["Auto", "Aliyun", "BYOL"] | None = None
    image_name: str | None = None
    description: str | None = None
    retention_strategy: str | None = None
    retain_imported_image: bool | None = None
    role_name: str | None = None
    nvme_support: str | None = None
    imds_support: str | None = None
    tags: list[PipelineTag] = Field(default_factory=list)


class ImageOptions(_Model):
    """Seed 004 `ImageOptions`: the images a run produces."""

    image_name: str | None = None
    image_family: str | None = None
    description: str | None = None
    nvme_support: Literal["auto", "supported", "unsupported"] | None = None
    tags: list[PipelineTag] = Field(default_factory=list)


class AdvancedOptions(_Model):
    image_name_suffix: Literal["disable"] | None = None
    retain_cloud_assistant: bool | None = None


class PipelineTemplate(_Model):
    """Every request field of seed 004's CreateImagePipeline (ClientToken is passed apart).

    Limits are the cloud's to judge (the emulator enforces them); this model only types them.
    """

    base_image_type: Literal["IMAGE", "IMAGE_FAMILY", "OSS"]
    base_image: str | None = None
    name: str | None = None
    description: str | None = None
    build_content: str | None = None
    test_content: str | None = None
    to_region_ids: list[str] = Field(default_factory=list)
    add_accounts: list[int] = Field(default_factory=list)
    instance_type: str | None = None
    system_disk_size: int | None = None
    internet_max_bandwidth_out: int | None = None
    vswitch_id: str | None = None
    delete_instance_on_failure: bool | None = None
    repair_mode: str | None = None
    repair_items: list[str] = Field(default_factory=list)
    resource_group_id: str | None = None
    tags: list[PipelineTag] = Field(default_factory=list)
    image_options: ImageOptions | None = None
    import_image_options: ImportImageOptions | None = None
    advanced_options: AdvancedOptions | None = None
    security_scan_mode: str | None = None
    # Deprecated by ECS in favour of ImageOptions, still part of the seed's request.
    image_name: str | None = None
    image_family: str | None = None
    nvme_support: str | None = None


OSS_FORMATS: Final = ("RAW", "VHD", "QCOW2")  # what an OSS base image can be built from


def pipeline_template(build: PipelineBuild) -> PipelineTemplate:
    """The ECS template for a build: `baseImage.id`, `family` and `oss` map onto BaseImageType
    IMAGE, IMAGE_FAMILY and OSS (with ImportImageOptions); a resolved `imageRef` or
    `baseImageRef` (`build.base_image_id`) is an IMAGE. Raises `InvalidInput` naming the field."""
    spec = build.spec
    base = spec.base_image
    import_options: ImportImageOptions | None = None
    base_type: Literal["IMAGE", "IMAGE_FAMILY", "OSS"]
    base_id: str | None
    if base.id is not None:
        base_type, base_id = "IMAGE", base.id
    elif base.family is not None:
        base_type, base_id = "IMAGE_FAMILY", base.family
    elif base.oss is not None:
        base_type, base_id = "OSS", None
        fmt = base.oss.format.upper() if base.oss.format else None
        if fmt is not None and fmt not in OSS_FORMATS:
            raise InvalidInput(
                f"spec.baseImage.oss.format {base.oss.format!r} cannot be built from: "
                f"use one of {', '.join(f.lower() for f in OSS_FORMATS)}"
            )
        system = OssDisk(
            bucket=base.oss.bucket,
            object=base.oss.object,
            format=cast(Any, fmt),
            disk_image_size_gib=base.oss.disk_image_size_gib,
        )
        import_options = _import_options(spec, system)
    elif build.base_image_id is not None:
        base_type, base_id = "IMAGE", build.base_image_id
    else:
        raise InvalidInput(
            "spec.baseImage must set exactly one of id, family, oss, imageRef, baseImageRef"
        )
    transit = spec.transit
    return PipelineTemplate(
        base_image_type=base_type,
        base_image=base_id,
        name=spec.name or _template_name(build.name),
        description=spec.description,
        build_content=spec.build_content,
        test_content=spec.test_content,
        to_region_ids=list(spec.to_region_ids or []),
        add_accounts=list(spec.add_accounts or []),
        instance_type=transit.instance_type if transit else None,
        system_disk_size=transit.system_disk_size if transit else None,
        internet_max_bandwidth_out=transit.internet_max_bandwidth_out if transit else None,
        vswitch_id=transit.v_switch_id if transit else None,
        delete_instance_on_failure=transit.delete_instance_on_failure if transit else None,
        repair_mode=spec.repair_mode.value if spec.repair_mode else None,
        repair_items=list(spec.repair_items or []),
        resource_group_id=spec.resource_group_id,
        tags=_tags(spec.tags),
        image_options=_image_options(spec),
        import_image_options=import_options,
        advanced_options=(
            AdvancedOptions(
                image_name_suffix=spec.advanced_options.image_name_suffix,
                retain_cloud_assistant=spec.advanced_options.retain_cloud_assistant,
            )
            if spec.advanced_options
            else None
        ),
    )


def _tags(tags: list[Any] | None) -> list[PipelineTag]:
    return [PipelineTag(key=tag.key, value=tag.value or "") for tag in tags or []]


def _import_options(spec: ImagePipelineSpec, system: OssDisk) -> ImportImageOptions:
    """ImportImageOptions: the system disk (spec.baseImage.oss), then spec.importImageOptions'
    data disks and settings."""
    o = spec.import_image_options
    if o is None:
        return ImportImageOptions(disks=[system])
    data = [
        OssDisk(
            bucket=disk.bucket,
            object=disk.object,
            format=cast(Any, disk.format.upper() if disk.format else None),
            disk_image_size_gib=disk.disk_image_size_gib,
        )
        for disk in o.data_disks or []
    ]
    features = o.features
    return ImportImageOptions(
        disks=[system, *data],
        os_type=o.os_type,
        platform=o.platform,
        architecture=o.architecture,
        boot_mode=o.boot_mode,
        license_type=o.license_type,
        image_name=o.image_name,
        description=o.description,
        retention_strategy=o.retention_strategy.value if o.retention_strategy else None,
        retain_imported_image=o.retain_imported_image,
        role_name=o.role_name,
        nvme_support=features.nvme_support if features else None,
        imds_support=features.imds_support if features else None,
        tags=_tags(o.tags),
    )


def _image_options(spec: ImagePipelineSpec) -> ImageOptions | None:
    options = spec.image_options
    if options is None:
        return None
    return ImageOptions(
        image_name=options.image_name,
        image_family=options.image_family,
        description=options.description,
        nvme_support=cast(Any, options.nvme_support),
        tags=_tags(options.tags),
    )


def _template_name(name: str) -> str:
    # ECS names start with a letter; Kubernetes names may start with a digit.
    return name if name[:1].isalpha() else f"ipl-{name}"


def template_hash(template: PipelineTemplate) -> str:
    """The pipeline fingerprint: sha256 of the template's JSON, 16 hex digits. Stored as
    `status.templateHash`, so it must not change for an unchanged template (a new value makes
    every existing ImagePipeline replace its template)."""
    return hashlib.sha256(template.model_dump_json().encode()).hexdigest()[:16]


_CLAUSES: Final = (
    (re.compile(r"built (?P<image>\S+) in (?P<region>\S+)"), "built"),
    (re.compile(r"distributed to (?P<region>\S+): (?P<image>\S+)"), "region-ok"),
    (re.compile(r"distribution to (?P<region>\S+) failed: (?P<why>.*)"), "region-failed"),
    (re.compile(r"shared with (?P<account>\d+)"), "account-ok"),
    (re.compile(r"sharing with (?P<account>\d+) failed: (?P<why>.*)"), "account-failed"),
)


def execution_targets(message: str | None) -> list[TargetResult]:
    """Per-region and per-account results from an execution's Message (see docs)."""
    targets = []
    for clause in (message or "").split("; "):
        for pattern, kind in _CLAUSES:
            match = pattern.fullmatch(clause.strip())
            if match is None:
                continue
            groups = match.groupdict()
            if kind in ("built", "region-ok"):
                targets.append(
                    TargetResult(
                        region_id=groups["region"], image_id=groups["image"], succeeded=True
                    )
                )
            elif kind == "region-failed":
                targets.append(
                    TargetResult(region_id=groups["region"], succeeded=False, message=groups["why"])
                )
            elif kind == "account-ok":
                targets.append(TargetResult(account_id=groups["account"], succeeded=True))
            else:
                targets.append(
                    TargetResult(
                        account_id=groups["account"], succeeded=False, message=groups["why"]
                    )
                )
            break
    return targets


def execution_from_row(row: Any) -> PipelineExecution:
    """One row of DescribeImagePipelineExecutions, with its per-target results."""
    return PipelineExecution(
        execution_id=str(row.execution_id),
        pipeline_id=str(row.image_pipeline_id),
        status=str(row.status),
        image_id=row.image_id or None,
        message=row.message,
        error_code=row.error_code,
        error_info=row.error_info,
        created_at=row.creation_time,
        modified_at=row.modified_time,
        targets=execution_targets(row.message),
    )


def pipeline_info_from_row(row: Any) -> PipelineInfo:
    """One row of DescribeImagePipelines."""
    return PipelineInfo(
        pipeline_id=str(row.image_pipeline_id),
        name=row.name,
        base_image_type=row.base_image_type,
        base_image=row.base_image,
        to_region_ids=list((row.to_region_ids.to_region_id if row.to_region_ids else None) or []),
        add_accounts=list((row.add_accounts.add_account if row.add_accounts else None) or []),
        created_at=row.creation_time,
        raw=row.to_map(),
    )


def pipeline_request(
    region: str, template: PipelineTemplate, token: str
) -> ecs.CreateImagePipelineRequest:
    t = template
    import_options = None
    if t.import_image_options is not None:
        o = t.import_image_options
        import_options = ecs.CreateImagePipelineRequestImportImageOptions(
            disk_device_mappings=[
                ecs.CreateImagePipelineRequestImportImageOptionsDiskDeviceMappings(
                    ossbucket=d.bucket,
                    ossobject=d.object,
                    format=d.format,
                    disk_image_size=d.disk_image_size_gib,
                )
                for d in o.disks
            ],
            ostype=o.os_type,
            platform=o.platform,
            architecture=o.architecture,
            boot_mode=o.boot_mode,
            license_type=o.license_type,
            image_name=o.image_name,
            description=o.description,
            retention_strategy=o.retention_strategy,
            retain_imported_image=o.retain_imported_image,
            role_name=o.role_name,
            features=(
                ecs.CreateImagePipelineRequestImportImageOptionsFeatures(
                    nvme_support=o.nvme_support, imds_support=o.imds_support
                )
                if o.nvme_support or o.imds_support
                else None
            ),
            import_image_tags=sdk_tags(
                ecs.CreateImagePipelineRequestImportImageOptionsImportImageTags,
                ((tag.key, tag.value) for tag in o.tags),
            )
            or None,
        )
    image_options = None
    if t.image_options is not None:
        io = t.image_options
        image_options = ecs.CreateImagePipelineRequestImageOptions(
            image_name=io.image_name,
            image_family=io.image_family,
            description=io.description,
            image_features=(
                ecs.CreateImagePipelineRequestImageOptionsImageFeatures(
                    nvme_support=io.nvme_support
                )
                if io.nvme_support
                else None
            ),
            image_tags=sdk_tags(
                ecs.CreateImagePipelineRequestImageOptionsImageTags,
                ((tag.key, tag.value) for tag in io.tags),
            )
            or None,
        )
    advanced = None
    if t.advanced_options is not None:
        advanced = ecs.CreateImagePipelineRequestAdvancedOptions(
            image_name_suffix=t.advanced_options.image_name_suffix,
            retain_cloud_assistant=t.advanced_options.retain_cloud_assistant,
        )
    return ecs.CreateImagePipelineRequest(
        region_id=region,
        client_token=token,
        name=t.name,
        description=t.description,
        base_image_type=t.base_image_type,
        base_image=t.base_image,
        build_content=t.build_content,
        test_content=t.test_content,
        to_region_id=t.to_region_ids or None,
        add_account=t.add_accounts or None,
        instance_type=t.instance_type,
        system_disk_size=t.system_disk_size,
        internet_max_bandwidth_out=t.internet_max_bandwidth_out,
        v_switch_id=t.vswitch_id,
        delete_instance_on_failure=t.delete_instance_on_failure,
        repair_mode=t.repair_mode,
        repair_item=t.repair_items or None,
        resource_group_id=t.resource_group_id,
        tag=sdk_tags(ecs.CreateImagePipelineRequestTag, ((tag.key, tag.value) for tag in t.tags))
        or None,
        image_options=image_options,
        import_image_options=import_options,
        advanced_options=advanced,
        image_security_options=(
            ecs.CreateImagePipelineRequestImageSecurityOptions(
                security_scan_mode=t.security_scan_mode
            )
            if t.security_scan_mode
            else None
        ),
        image_name=t.image_name,
        image_family=t.image_family,
        nvme_support=t.nvme_support,
    )

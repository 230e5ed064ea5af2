"""ECS image templates (seed 004, CreateImagePipeline) and their executions.

An execution goes PREPARING → BUILDING → TESTING (only with TestContent) → DISTRIBUTING (only
with ToRegionId or AddAccount) → SUCCESS, or PARTITION_SUCCESS when distribution to a region
(or sharing with an account) failed, FAILED when the build failed, TEST_FAILED when the test
did; CancelImagePipelineExecution makes it CANCELLING, then CANCELLED. Phases are derived from
the timestamps frozen in the execution when it started; the images it makes are stored at start
with the time they become visible (see aliyun_images), so nothing runs in the background.

`Message` reports the per-target results once distribution is over, as "; "-separated clauses:
`built <image> in <region>`, `distributed to <region>: <image>`,
`distribution to <region> failed: <reason>`, `shared with <account>`,
`sharing with <account> failed: <reason>`.
"""

from __future__ import annotations

import re
import time
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from image_operator_dev.emulator.aliyun_images import (
    BOOT_MODES,
    LICENSE_TYPES,
    OS_TYPES,
    PLATFORMS,
    ImageRecord,
    Images,
    make_times,
)
from image_operator_dev.emulator.aliyun_rules import (
    Tag,
    check_content,
    check_description,
    check_image_family,
    check_image_name,
    check_image_name_prefix,
    check_pipeline_name,
    client_token,
    new_id,
    region,
    tags,
    timestamp,
)
from image_operator_dev.emulator.aliyun_state import EXECUTION, IMAGE, PIPELINE, VENDOR, Context
from image_operator_dev.emulator.aliyun_wire import AliyunError, Params, invalid, missing
from image_operator_dev.emulator.store import JSONObject

BASE_IMAGE_TYPES: Final = ("IMAGE", "IMAGE_FAMILY", "OSS")
NVME_SUPPORT: Final = ("auto", "supported", "unsupported")
REPAIR_MODES: Final = ("Standard", "All", "Customized")
RETENTION_STRATEGIES: Final = (
    "RetainOnlySuccessful",
    "RetainOnlyFailed",
    "RetainAlways",
    "RetainNever",
)
PIPELINE_FORMATS: Final = ("RAW", "VHD", "QCOW2")
MAX_TARGETS: Final = 20  # ToRegionId.N and AddAccount.N: N is 1..20
MAX_IMPORT_DISKS: Final = 17
RUNNING: Final = frozenset({"PREPARING", "BUILDING", "TESTING", "DISTRIBUTING", "CANCELLING"})
EXECUTION_STATUSES: Final = (
    "PREPARING",
    "REPAIRING",
    "BUILDING",
    "TESTING",
    "DISTRIBUTING",
    "RELEASING",
    "SUCCESS",
    "PARTITION_SUCCESS",
    "FAILED",
    "TEST_FAILED",
    "CANCELLING",
    "CANCELLED",
)
_INSTANCE_TYPE = re.compile(r"ecs\.[a-z0-9-]+\.[a-z0-9]+")
_VSWITCH = re.compile(r"vsw-[a-z0-9]{1,40}")
_RESOURCE_GROUP = re.compile(r"rg-[a-z0-9]{1,40}")


class PipelineRecord(BaseModel):
    """One image template: the parameters as accepted, kept for DescribeImagePipelines."""

    model_config = ConfigDict(extra="forbid")

    # Orders objects made at the same (manual-clock) instant by when they were made.
    seq: int = Field(default_factory=time.time_ns)

    pipeline_id: str
    region: str
    created_at: float
    name: str
    description: str | None = None
    base_image_type: str
    base_image: str | None = None
    build_content: str | None = None
    test_content: str | None = None
    to_regions: list[str] = Field(default_factory=list)
    add_accounts: list[str] = Field(default_factory=list)
    instance_type: str | None = None
    system_disk_size: int = 40
    internet_max_bandwidth_out: int = 0
    vswitch_id: str | None = None
    delete_instance_on_failure: bool = True
    image_name: str | None = None
    image_family: str | None = None
    nvme_support: str | None = None
    repair_mode: str | None = None
    repair_items: list[str] = Field(default_factory=list)
    resource_group_id: str | None = None
    tags: list[Tag] = Field(default_factory=list)
    image_options: JSONObject = Field(default_factory=dict)
    import_image_options: JSONObject = Field(default_factory=dict)
    advanced_options: JSONObject = Field(default_factory=dict)
    image_security_options: JSONObject = Field(default_factory=dict)


FailPhase = Literal["PREPARING", "BUILDING", "TESTING"]


class ExecutionRecord(BaseModel):
    """One run of a template; its timeline is frozen when it starts."""

    model_config = ConfigDict(extra="forbid")

    # Orders objects made at the same (manual-clock) instant by when they were made.
    seq: int = Field(default_factory=time.time_ns)

    execution_id: str
    pipeline_id: str
    region: str
    created_at: float
    preparing: float
    building: float
    testing: float
    distributing: float
    cancelling: float
    cancel_requested_at: float | None = None
    fail_phase: FailPhase | None = None
    fail_code: str | None = None
    fail_message: str | None = None
    image_id: str
    region_images: dict[str, str] = Field(default_factory=dict)
    failed_regions: dict[str, str] = Field(default_factory=dict)
    shared_accounts: list[str] = Field(default_factory=list)
    failed_accounts: dict[str, str] = Field(default_factory=dict)
    tags: list[Tag] = Field(default_factory=list)

    @property
    def build_end(self) -> float:
        return self.created_at + self.preparing + self.building

    @property
    def test_end(self) -> float:
        return self.build_end + self.testing

    @property
    def end(self) -> float:
        """When the execution finishes if nobody cancels it."""
        if self.fail_phase == "PREPARING":
            return self.created_at + self.preparing
        if self.fail_phase == "BUILDING":
            return self.build_end
        if self.fail_phase == "TESTING":
            return self.test_end
        return self.test_end + self.distributing


class ExecutionState(BaseModel):
    status: str
    changed_at: float
    message: str
    error_code: str | None = None
    error_info: str | None = None
    image_visible: bool = False


def execution_state(record: ExecutionRecord, now: float) -> ExecutionState:
    """The status of an execution at `now`, from its frozen timeline."""
    cancel_at = record.cancel_requested_at
    if cancel_at is not None and cancel_at < record.end:
        done_at = cancel_at + record.cancelling
        if now < done_at:
            return ExecutionState(
                status="CANCELLING", changed_at=cancel_at, message="cancelling the execution"
            )
        return ExecutionState(
            status="CANCELLED",
            changed_at=done_at,
            message="the execution was cancelled",
            image_visible=cancel_at >= record.build_end,
        )
    start = record.created_at
    prep_end = start + record.preparing
    if now < prep_end:
        return ExecutionState(
            status="PREPARING", changed_at=start, message="preparing the transit instance"
        )
    if record.fail_phase == "PREPARING":
        return ExecutionState(
            status="FAILED",
            changed_at=prep_end,
            message=f"the execution failed while preparing: {record.fail_message}",
            error_code=record.fail_code,
            error_info=record.fail_message,
        )
    if now < record.build_end:
        return ExecutionState(
            status="BUILDING", changed_at=prep_end, message="running BuildContent"
        )
    if record.fail_phase == "BUILDING":
        return ExecutionState(
            status="FAILED",
            changed_at=record.build_end,
            message=f"the build failed: {record.fail_message}",
            error_code=record.fail_code,
            error_info=record.fail_message,
        )
    built = f"built {record.image_id} in {record.region}"
    if now < record.test_end:
        return ExecutionState(
            status="TESTING",
            changed_at=record.build_end,
            message=f"{built}; running TestContent",
            image_visible=True,
        )
    if record.fail_phase == "TESTING":
        return ExecutionState(
            status="TEST_FAILED",
            changed_at=record.test_end,
            message=f"{built}; the test failed: {record.fail_message}",
            error_code=record.fail_code,
            error_info=record.fail_message,
            image_visible=True,
        )
    if now < record.end:
        return ExecutionState(
            status="DISTRIBUTING",
            changed_at=record.test_end,
            message=f"{built}; distributing",
            image_visible=True,
        )
    clauses = [built]
    clauses += [f"distributed to {r}: {i}" for r, i in sorted(record.region_images.items())]
    clauses += [
        f"distribution to {r} failed: {why}" for r, why in sorted(record.failed_regions.items())
    ]
    clauses += [f"shared with {a}" for a in record.shared_accounts]
    clauses += [
        f"sharing with {a} failed: {why}" for a, why in sorted(record.failed_accounts.items())
    ]
    failures = [*sorted(record.failed_regions), *sorted(record.failed_accounts)]
    if failures:
        return ExecutionState(
            status="PARTITION_SUCCESS",
            changed_at=record.end,
            message="; ".join(clauses),
            error_code="DistributionPartiallyFailed",
            error_info=f"distribution or sharing failed for: {', '.join(failures)}",
            image_visible=True,
        )
    return ExecutionState(
        status="SUCCESS", changed_at=record.end, message="; ".join(clauses), image_visible=True
    )


def _tag_list(items: list[Tag], key: str = "TagKey", value: str = "TagValue") -> list[JSONObject]:
    return [{key: t.key, value: t.value} for t in items]


class Pipelines:
    """The template and execution actions; each returns the response body."""

    def __init__(self, ctx: Context, images: Images) -> None:
        self.ctx = ctx
        self.images = images

    # -- store --

    def load(self, region_id: str, pipeline_id: str) -> PipelineRecord:
        doc = self.ctx.store.get(VENDOR, PIPELINE, region_id, pipeline_id)
        if doc is None:
            raise AliyunError(
                404,
                "InvalidImagePipelineId.NotFound",
                f"The specified ImagePipelineId {pipeline_id!r} does not exist in region "
                f"{region_id}.",
            )
        return PipelineRecord.model_validate(doc)

    def executions(self, region_id: str) -> list[ExecutionRecord]:
        return [
            ExecutionRecord.model_validate(stored.doc)
            for stored in self.ctx.store.list_objects(VENDOR, EXECUTION, region_id)
        ]

    def load_execution(self, region_id: str, execution_id: str) -> ExecutionRecord:
        doc = self.ctx.store.get(VENDOR, EXECUTION, region_id, execution_id)
        if doc is None:
            raise AliyunError(
                404,
                "InvalidImagePipelineExecutionId.NotFound",
                f"The specified ExecutionId {execution_id!r} does not exist in region {region_id}.",
            )
        return ExecutionRecord.model_validate(doc)

    # -- CreateImagePipeline --

    def create_pipeline(self, p: Params) -> JSONObject:
        region_id = region(p, self.ctx.settings.regions)
        token = client_token(p)
        base_type = p.enum(
            "BaseImageType",
            BASE_IMAGE_TYPES,
            code="InvalidBaseImageType.ValueNotSupported",
            required=True,
        )
        assert base_type is not None
        name = p.text("Name", check=check_pipeline_name)
        fields: dict[str, Any] = {
            "region": region_id,
            "description": p.text("Description", check=check_description),
            "base_image_type": base_type,
            "base_image": p.text("BaseImage"),
            "build_content": p.text("BuildContent", check=check_content),
            "test_content": p.text("TestContent", check=check_content),
            **self._targets(p),
            **self._transit(p),
            "image_name": p.text("ImageName", check=check_image_name_prefix),
            "image_family": p.text("ImageFamily", check=check_image_family),
            "nvme_support": p.enum(
                "NvmeSupport", NVME_SUPPORT, code="InvalidNvmeSupport.ValueNotSupported"
            ),
            **self._repair(p),
            "resource_group_id": self._resource_group(p),
            "tags": tags(p),
            "image_options": self._image_options(p.sub("ImageOptions")),
            "advanced_options": self._advanced_options(p.sub("AdvancedOptions")),
            "image_security_options": {
                k: v
                for k, v in {
                    "SecurityScanMode": p.text("ImageSecurityOptions.SecurityScanMode")
                }.items()
                if v is not None
            },
            "import_image_options": self._base_image(p, region_id, base_type),
        }

        def create() -> JSONObject:
            pipeline_id = new_id("ip-")
            record = PipelineRecord(
                pipeline_id=pipeline_id,
                created_at=self.ctx.clock(),
                name=name or pipeline_id,
                **fields,
            )
            self.ctx.store.insert(VENDOR, PIPELINE, region_id, pipeline_id, record.model_dump())
            return {"ImagePipelineId": pipeline_id}

        return self.ctx.idempotent(
            region=region_id,
            action="CreateImagePipeline",
            token=token,
            params=p.flat(),
            create=create,
        )

    def _targets(self, p: Params) -> dict[str, list[str]]:
        """ToRegionId.N and AddAccount.N, N 1..20 (seed 004)."""
        regions = self.ctx.settings.regions
        to_regions = p.values("ToRegionId", MAX_TARGETS, code="InvalidToRegionId.LimitExceeded")
        for target in to_regions:
            if target not in regions:
                raise invalid(
                    "ToRegionId",
                    f"{target!r} is not a region; valid regions: {', '.join(regions)}",
                    "InvalidToRegionId.NotFound",
                )
        if len(set(to_regions)) != len(to_regions):
            raise invalid("ToRegionId", "regions must not repeat", "InvalidToRegionId.Duplicated")
        accounts = p.values("AddAccount", MAX_TARGETS, code="InvalidAddAccount.LimitExceeded")
        for account in accounts:
            if not account.isdigit() or int(account) >= 2**63:
                raise invalid(
                    "AddAccount",
                    f"{account!r} is not an account ID (an int64)",
                    "InvalidAddAccount.Malformed",
                )
        return {"to_regions": to_regions, "add_accounts": accounts}

    @staticmethod
    def _transit(p: Params) -> dict[str, Any]:
        """The transit instance: InstanceType, SystemDiskSize 20-500, bandwidth 0-100, …"""
        instance_type = p.text("InstanceType")
        if instance_type is not None and not _INSTANCE_TYPE.fullmatch(instance_type):
            raise invalid(
                "InstanceType",
                f"{instance_type!r} is not an instance type such as ecs.g6.large",
                "InvalidInstanceType.ValueNotSupported",
            )
        disk = p.integer(
            "SystemDiskSize", low=20, high=500, code="InvalidSystemDiskSize.ValueNotSupported"
        )
        bandwidth = p.integer(
            "InternetMaxBandwidthOut",
            low=0,
            high=100,
            code="InvalidInternetMaxBandwidthOut.ValueNotSupported",
        )
        vswitch = p.text("VSwitchId")
        if vswitch is not None and not _VSWITCH.fullmatch(vswitch):
            raise invalid(
                "VSwitchId", f"{vswitch!r} is not a vSwitch ID (vsw-…)", "InvalidVSwitchId.NotFound"
            )
        delete_on_failure = p.flag("DeleteInstanceOnFailure")
        return {
            "instance_type": instance_type,
            "system_disk_size": disk if disk is not None else 40,
            "internet_max_bandwidth_out": bandwidth or 0,
            "vswitch_id": vswitch,
            "delete_instance_on_failure": True if delete_on_failure is None else delete_on_failure,
        }

    @staticmethod
    def _repair(p: Params) -> dict[str, Any]:
        mode = p.enum("RepairMode", REPAIR_MODES, code="InvalidRepairMode.ValueNotSupported")
        items = p.values("RepairItem", 50)
        if items and mode != "Customized":
            raise invalid("RepairItem", "RepairItem is accepted only with RepairMode Customized")
        return {"repair_mode": mode, "repair_items": items}

    @staticmethod
    def _resource_group(p: Params) -> str | None:
        group = p.text("ResourceGroupId")
        if group is not None and not _RESOURCE_GROUP.fullmatch(group):
            raise invalid(
                "ResourceGroupId",
                f"{group!r} is not a resource group ID (rg-…)",
                "InvalidResourceGroup.NotFound",
            )
        return group

    def _base_image(self, p: Params, region_id: str, base_type: str) -> JSONObject:
        """Check BaseImage against BaseImageType; the ImportImageOptions when it is OSS."""
        base_image = p.text("BaseImage")
        if base_type == "OSS":
            if not p.has("ImportImageOptions"):
                raise missing("ImportImageOptions")
            return self._import_options(p.sub("ImportImageOptions"))
        if not base_image:
            raise missing("BaseImage")
        if p.has("ImportImageOptions"):
            raise invalid(
                "ImportImageOptions", "ImportImageOptions is accepted only with BaseImageType OSS"
            )
        now = self.ctx.clock()
        if base_type == "IMAGE" and not self.images.is_public_image(base_image):
            self.images.existing(region_id, base_image, now)  # InvalidImageId.NotFound
        if base_type == "IMAGE_FAMILY" and base_image not in self.images.families(region_id, now):
            raise AliyunError(
                404,
                "InvalidImageFamily.NotFound",
                f"The image family {base_image!r} does not exist in region {region_id}.",
            )
        return {}

    @staticmethod
    def _image_options(o: Params) -> JSONObject:
        result: JSONObject = {}
        if (value := o.text("ImageName", check=check_image_name_prefix)) is not None:
            result["ImageName"] = value
        if (value := o.text("ImageFamily", check=check_image_family)) is not None:
            result["ImageFamily"] = value
        if (value := o.text("Description", check=check_description)) is not None:
            result["Description"] = value
        nvme = o.enum(
            "ImageFeatures.NvmeSupport", NVME_SUPPORT, code="InvalidNvmeSupport.ValueNotSupported"
        )
        if nvme is not None:
            result["ImageFeatures"] = {"NvmeSupport": nvme}
        image_tags = tags(o, "ImageTags")
        if image_tags:
            result["ImageTags"] = {"ImageTag": _tag_list(image_tags)}
        return result

    @staticmethod
    def _advanced_options(o: Params) -> JSONObject:
        result: JSONObject = {}
        suffix = o.enum("ImageNameSuffix", ("disable",))
        if suffix is not None:
            result["ImageNameSuffix"] = suffix
        retain = o.flag("RetainCloudAssistant")
        if retain is not None:
            result["RetainCloudAssistant"] = retain
        return result

    @staticmethod
    def _import_options(o: Params) -> JSONObject:
        mappings = o.items(
            "DiskDeviceMappings", MAX_IMPORT_DISKS, code="InvalidDiskDeviceMapping.Count"
        )
        if not mappings:
            raise missing(o.name("DiskDeviceMappings.1.OSSBucket"))
        disks = []
        for mapping in mappings:
            disk: JSONObject = {
                "OSSBucket": mapping.required("OSSBucket"),
                "OSSObject": mapping.required("OSSObject"),
            }
            fmt = mapping.enum("Format", PIPELINE_FORMATS, code="InvalidDiskDeviceMapping.Format")
            if fmt is not None:
                disk["Format"] = fmt
            size = mapping.integer("DiskImageSize", low=1, high=2048)
            if size is not None:
                disk["DiskImageSize"] = size
            disks.append(disk)
        result: JSONObject = {"DiskDeviceMappings": {"DiskDeviceMapping": disks}}
        os_type = o.enum("OSType", OS_TYPES)
        architecture = o.enum("Architecture", ("x86_64", "arm64"))  # no i386 here
        boot_mode = o.enum("BootMode", BOOT_MODES)
        if architecture == "arm64" and boot_mode == "BIOS":
            raise invalid(
                o.name("BootMode"), "arm64 images boot only in UEFI mode", "InvalidBootMode"
            )
        simple: dict[str, Any] = {
            "OSType": os_type,
            "Platform": o.enum("Platform", PLATFORMS),
            "Architecture": architecture,
            "BootMode": boot_mode,
            "LicenseType": o.enum("LicenseType", LICENSE_TYPES),
            "ImageName": o.text("ImageName", check=check_image_name),
            "Description": o.text("Description", check=check_description),
            "RetentionStrategy": o.enum("RetentionStrategy", RETENTION_STRATEGIES),
            "RetainImportedImage": o.flag("RetainImportedImage"),
            "RoleName": o.text("RoleName"),
        }
        result.update({k: v for k, v in simple.items() if v is not None})
        features = {
            k: v
            for k, v in {
                "NvmeSupport": o.enum("Features.NvmeSupport", NVME_SUPPORT),
                "ImdsSupport": o.enum("Features.ImdsSupport", ("v1", "v2")),
            }.items()
            if v is not None
        }
        if features:
            result["Features"] = features
        import_tags = tags(o, "ImportImageTags")
        if import_tags:
            result["ImportImageTags"] = {"ImportImageTag": _tag_list(import_tags, "Key", "Value")}
        return result

    # -- DescribeImagePipelines / DeleteImagePipeline --

    def render_pipeline(self, r: PipelineRecord) -> JSONObject:
        body: JSONObject = {
            "ImagePipelineId": r.pipeline_id,
            "Name": r.name,
            "CreationTime": timestamp(r.created_at),
            "BaseImageType": r.base_image_type,
            "SystemDiskSize": r.system_disk_size,
            "InternetMaxBandwidthOut": r.internet_max_bandwidth_out,
            "DeleteInstanceOnFailure": r.delete_instance_on_failure,
            "ToRegionIds": {"ToRegionId": r.to_regions},
            "AddAccounts": {"AddAccount": r.add_accounts},
            "Tags": {"Tag": _tag_list(r.tags)},
            "RepairItems": {"RepairItem": r.repair_items},
        }
        optional = {
            "Description": r.description,
            "BaseImage": r.base_image,
            "BuildContent": r.build_content,
            "TestContent": r.test_content,
            "InstanceType": r.instance_type,
            "VSwitchId": r.vswitch_id,
            "ImageName": r.image_name,
            "ImageFamily": r.image_family,
            "NvmeSupport": r.nvme_support,
            "RepairMode": r.repair_mode,
            "ResourceGroupId": r.resource_group_id,
            "ImageOptions": r.image_options or None,
            "ImportImageOptions": r.import_image_options or None,
            "AdvancedOptions": r.advanced_options or None,
            "ImageSecurityOptions": r.image_security_options or None,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return body

    def describe_pipelines(self, p: Params) -> JSONObject:
        region_id = region(p, self.ctx.settings.regions)
        wanted = p.values("ImagePipelineId", 100)
        name = p.text("Name")
        group = p.text("ResourceGroupId")
        wanted_tags = tags(p)
        max_results = p.integer("MaxResults", low=1, high=500) or 50
        records = [
            PipelineRecord.model_validate(stored.doc)
            for stored in self.ctx.store.list_objects(VENDOR, PIPELINE, region_id)
        ]
        records = [
            r
            for r in records
            if (not wanted or r.pipeline_id in wanted)
            and (name is None or r.name == name)
            and (group is None or r.resource_group_id == group)
            and all(t in r.tags for t in wanted_tags)
        ]
        records.sort(key=lambda r: (r.created_at, r.seq))
        page, next_token = _page(records, p.text("NextToken"), max_results)
        return {
            "TotalCount": len(records),
            "MaxResults": max_results,
            "NextToken": next_token,
            "ImagePipeline": {"ImagePipelineSet": [self.render_pipeline(r) for r in page]},
        }

    def delete_pipeline(self, p: Params) -> JSONObject:
        region_id = region(p, self.ctx.settings.regions)
        pipeline_id = p.required("ImagePipelineId")
        self.load(region_id, pipeline_id)
        now = self.ctx.clock()
        for execution in self.executions(region_id):
            if execution.pipeline_id == pipeline_id and (
                execution_state(execution, now).status in RUNNING
            ):
                raise AliyunError(
                    403,
                    "OperationDenied.ImagePipelineExecutionRunning",
                    f"The image template {pipeline_id!r} has a running execution "
                    f"({execution.execution_id}); cancel it or wait until it finishes.",
                )
        self.ctx.store.delete(VENDOR, PIPELINE, region_id, pipeline_id)
        return {}

    # -- executions --

    def start_execution(self, p: Params) -> JSONObject:
        s = self.ctx.settings
        region_id = region(p, s.regions)
        pipeline_id = p.required("ImagePipelineId")
        token = client_token(p)
        execution_tags = tags(p)
        tags(p, "TemplateTag")
        pipeline = self.load(region_id, pipeline_id)

        def create() -> JSONObject:
            # Checked only for a new run: a retried call with its ClientToken gets its answer.
            now = self.ctx.clock()
            for execution in self.executions(region_id):
                if execution.pipeline_id == pipeline_id and (
                    execution_state(execution, now).status in RUNNING
                ):
                    raise AliyunError(
                        403,
                        "OperationDenied.ImagePipelineExecutionRunning",
                        f"The image template {pipeline_id!r} already has a running execution "
                        f"({execution.execution_id}).",
                    )
            return {"ExecutionId": self._start(pipeline, execution_tags)}

        return self.ctx.idempotent(
            region=region_id,
            action="StartImagePipelineExecution",
            token=token,
            params=p.flat(),
            create=create,
        )

    def _start(self, pipeline: PipelineRecord, execution_tags: list[Tag]) -> str:
        s = self.ctx.settings
        now = self.ctx.clock()
        execution_id = new_id("exec-")
        fail_phase: FailPhase | None = None
        fail_code = fail_message = None
        if pipeline.base_image_type == "OSS":
            for disk in pipeline.import_image_options["DiskDeviceMappings"]["DiskDeviceMapping"]:
                try:
                    self.images.require_object(
                        pipeline.region, disk["OSSBucket"], disk["OSSObject"], "the template"
                    )
                except AliyunError as exc:
                    fail_phase, fail_code, fail_message = "PREPARING", exc.code, exc.message
                    break
        if (
            fail_phase is None
            and s.fail_build_pattern
            and re.search(s.fail_build_pattern, pipeline.build_content or "")
        ):
            fail_phase, fail_code = "BUILDING", "BuildFailed"
            fail_message = "a BuildContent command exited non-zero (emulated: fail_build_pattern)"
        if (
            fail_phase is None
            and pipeline.test_content
            and s.fail_test_pattern
            and re.search(s.fail_test_pattern, pipeline.test_content)
        ):
            fail_phase, fail_code = "TESTING", "TestFailed"
            fail_message = "a TestContent command exited non-zero (emulated: fail_test_pattern)"
        distributes = bool(pipeline.to_regions or pipeline.add_accounts)
        record = ExecutionRecord(
            execution_id=execution_id,
            pipeline_id=pipeline.pipeline_id,
            region=pipeline.region,
            created_at=now,
            preparing=s.preparing_seconds,
            building=s.building_seconds,
            testing=s.testing_seconds if pipeline.test_content else 0.0,
            distributing=s.distributing_seconds if distributes else 0.0,
            cancelling=s.cancelling_seconds,
            fail_phase=fail_phase,
            fail_code=fail_code,
            fail_message=fail_message,
            image_id=new_id("m-"),
            tags=execution_tags,
        )
        if fail_phase not in ("PREPARING", "BUILDING", "TESTING"):
            for target in pipeline.to_regions:
                if target in s.fail_distribution_regions:
                    record.failed_regions[target] = (
                        f"InvalidRegion.Unavailable: copying the image to {target} failed "
                        "(emulated: fail_distribution_regions)"
                    )
                else:
                    record.region_images[target] = new_id("m-")
            for account in pipeline.add_accounts:
                if int(account) in s.fail_share_accounts:
                    record.failed_accounts[account] = (
                        f"InvalidAccount.NotFound: account {account} cannot receive shares "
                        "(emulated: fail_share_accounts)"
                    )
                else:
                    record.shared_accounts.append(account)
        self._materialise_images(pipeline, record)
        self.ctx.store.insert(VENDOR, EXECUTION, pipeline.region, execution_id, record.model_dump())
        return execution_id

    def _materialise_images(self, pipeline: PipelineRecord, record: ExecutionRecord) -> None:
        """Store the execution's images now, visible from the moment the timeline makes them."""
        if record.fail_phase in ("PREPARING", "BUILDING"):
            return
        options = pipeline.image_options
        prefix = options.get("ImageName") or pipeline.image_name or pipeline.name
        name = f"{prefix}_{record.execution_id}"[:128]
        if pipeline.advanced_options.get("ImageNameSuffix") == "disable":
            name = prefix
        image_tags = [
            Tag(key=t["TagKey"], value=t["TagValue"])
            for t in (options.get("ImageTags") or {}).get("ImageTag", [])
        ]
        family = options.get("ImageFamily") or pipeline.image_family
        shared = list(record.shared_accounts)
        base = ImageRecord(
            image_id=record.image_id,
            region=pipeline.region,
            name=name,
            description=options.get("Description"),
            source="pipeline",
            created_at=record.build_end,
            visible_from=record.build_end,
            waiting_until=record.build_end,
            ready_at=record.build_end,
            size_gib=pipeline.system_disk_size,
            image_family=family,
            tags=image_tags,
            shared_accounts=shared if record.distributing else [],
            execution_id=record.execution_id,
            disks=[],
        )
        self.images.save(base, new=True)
        if record.fail_phase == "TESTING":
            return
        for target, image_id in record.region_images.items():
            times = make_times(record.test_end, record.distributing)
            copy = base.model_copy(
                update={
                    "image_id": image_id,
                    "region": target,
                    "copied_from": f"{pipeline.region}/{record.image_id}",
                    "seq": time.time_ns(),
                    **times,
                }
            )
            self.images.save(copy, new=True)

    def describe_executions(self, p: Params) -> JSONObject:
        region_id = region(p, self.ctx.settings.regions)
        pipeline_id = p.text("ImagePipelineId")
        execution_id = p.text("ExecutionId")
        statuses_text = p.text("Status")
        statuses = None
        if statuses_text is not None:
            statuses = {v.strip() for v in statuses_text.split(",")}
            unknown = sorted(statuses - set(EXECUTION_STATUSES))
            if unknown:
                raise invalid(
                    "Status",
                    f"{', '.join(unknown)} is not an execution status; use a comma-separated "
                    f"list of {', '.join(EXECUTION_STATUSES)}",
                    "InvalidStatus.ValueNotSupported",
                )
        wanted_tags = tags(p)
        max_results = p.integer("MaxResults", low=1, high=500) or 50
        now = self.ctx.clock()
        rows = []
        for record in self.executions(region_id):
            if pipeline_id is not None and record.pipeline_id != pipeline_id:
                continue
            if execution_id is not None and record.execution_id != execution_id:
                continue
            if not all(t in record.tags for t in wanted_tags):
                continue
            state = execution_state(record, now)
            if statuses is not None and state.status not in statuses:
                continue
            rows.append((record, state))
        rows.sort(key=lambda row: (row[0].created_at, row[0].seq))
        page, next_token = _page(rows, p.text("NextToken"), max_results)
        return {
            "TotalCount": len(rows),
            "MaxResults": max_results,
            "NextToken": next_token,
            "ImagePipelineExecution": {
                "ImagePipelineExecutionSet": [self._render_execution(r, s) for r, s in page]
            },
        }

    @staticmethod
    def _render_execution(record: ExecutionRecord, state: ExecutionState) -> JSONObject:
        body: JSONObject = {
            "ExecutionId": record.execution_id,
            "ImagePipelineId": record.pipeline_id,
            "Status": state.status,
            "Message": state.message,
            "CreationTime": timestamp(record.created_at),
            "ModifiedTime": timestamp(state.changed_at),
            "ImageId": record.image_id if state.image_visible else "",
            "Tags": {"Tag": _tag_list(record.tags)},
        }
        if state.error_code is not None:
            body["ErrorCode"] = state.error_code
        if state.error_info is not None:
            body["ErrorInfo"] = state.error_info
        return body

    def cancel_execution(self, p: Params) -> JSONObject:
        region_id = region(p, self.ctx.settings.regions)
        execution_id = p.required("ExecutionId")
        tags(p, "TemplateTag")
        record = self.load_execution(region_id, execution_id)
        now = self.ctx.clock()
        state = execution_state(record, now)
        if state.status == "CANCELLING":
            return {}
        if state.status not in RUNNING:
            raise AliyunError(
                403,
                "OperationDenied.ImagePipelineExecutionFinished",
                f"The execution {execution_id!r} has already finished ({state.status}) and "
                "cannot be cancelled.",
            )
        record = record.model_copy(update={"cancel_requested_at": now})
        self.ctx.store.replace(VENDOR, EXECUTION, region_id, execution_id, record.model_dump())
        # Images the execution had not made yet never appear; copies still in flight are dropped.
        for image_region, image_id in [
            (record.region, record.image_id),
            *record.region_images.items(),
        ]:
            image = self.images.load(image_region, image_id)
            if image is not None and image.ready_at > now:
                self.ctx.store.delete(VENDOR, IMAGE, image_region, image_id)
        return {}

    def dump(self) -> tuple[list[JSONObject], list[JSONObject]]:
        now = self.ctx.clock()
        pipelines = [
            {
                "RegionId": stored.scope,
                **self.render_pipeline(PipelineRecord.model_validate(stored.doc)),
            }
            for stored in self.ctx.store.list_objects(VENDOR, PIPELINE)
        ]
        executions = []
        for stored in self.ctx.store.list_objects(VENDOR, EXECUTION):
            record = ExecutionRecord.model_validate(stored.doc)
            executions.append(
                {
                    "RegionId": stored.scope,
                    **self._render_execution(record, execution_state(record, now)),
                }
            )
        return pipelines, executions


def _page(items: list[Any], token: str | None, max_results: int) -> tuple[list[Any], str]:
    """NextToken paging: the token is the offset of the next page, opaque to clients."""
    offset = 0
    if token:
        if not token.isdigit() or int(token) > len(items):
            raise invalid(
                "NextToken",
                "it is not a token from a previous answer",
                "InvalidNextToken.Malformed",
            )
        offset = int(token)
    page = items[offset : offset + max_results]
    following = offset + max_results
    return page, str(following) if following < len(items) else ""

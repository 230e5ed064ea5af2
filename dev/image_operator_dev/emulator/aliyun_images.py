"""ECS custom images: ImportImage (from the emulated OSS), CopyImage, DescribeImages,
ModifyImageSharePermission, DeleteImage; and the emulated OSS objects they import.

Status and Progress are derived from stored timestamps when read (Waiting → Creating with a
rising Progress → Available, or CreateFailed), never advanced by a background task, so a
restart on the same state resumes exactly. Images made by pipeline executions are stored when
the execution starts with the time they become visible, so they too need no background work.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import time
from collections.abc import Iterable
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from image_operator_dev.emulator.aliyun_rules import (
    Tag,
    check_description,
    check_image_name,
    client_token,
    new_id,
    region,
    tags,
    timestamp,
)
from image_operator_dev.emulator.aliyun_state import IMAGE, OSS, VENDOR, Context
from image_operator_dev.emulator.aliyun_wire import AliyunError, Params, invalid, missing
from image_operator_dev.emulator.store import JSONObject

WAITING_SHARE: Final = 0.2  # share of an image's making time spent Waiting
FAIL_SHARE: Final = 0.5  # share of the making time after which a doomed image fails
GIB: Final = 1024**3

IMPORT_FORMATS: Final = ("RAW", "VHD", "QCOW2", "VMDK")
OS_TYPES: Final = ("linux", "windows")
ARCHITECTURES: Final = ("x86_64", "i386", "arm64")
BOOT_MODES: Final = ("BIOS", "UEFI")
LICENSE_TYPES: Final = ("Auto", "Aliyun", "BYOL")
PLATFORMS: Final = (
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
)
STATUSES: Final = ("Creating", "Waiting", "Available", "UnAvailable", "CreateFailed", "Deprecated")
MAX_DESCRIBE_IDS: Final = 100
MAX_DISKS: Final = 17
MAX_SHARE_PER_CALL: Final = 10
_BUCKET = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")


class Disk(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device: str
    type: Literal["system", "data"]
    size_gib: int
    format: str | None = None
    oss_bucket: str | None = None
    oss_object: str | None = None


class ImageRecord(BaseModel):
    """One custom image; times are epoch seconds."""

    model_config = ConfigDict(extra="forbid")

    # Orders objects made at the same (manual-clock) instant by when they were made.
    seq: int = Field(default_factory=time.time_ns)

    image_id: str
    region: str
    name: str
    description: str | None = None
    source: Literal["import", "copy", "pipeline"]
    created_at: float
    visible_from: float
    waiting_until: float
    ready_at: float
    fail_at: float | None = None
    size_gib: int
    os_type: str = "linux"
    platform: str = "Others Linux"
    architecture: str = "x86_64"
    boot_mode: str = "BIOS"
    license_type: str | None = None
    image_family: str | None = None
    disks: list[Disk] = Field(default_factory=list)
    tags: list[Tag] = Field(default_factory=list)
    shared_accounts: list[str] = Field(default_factory=list)
    is_public: bool = False
    copied_from: str | None = None
    execution_id: str | None = None


def make_times(now: float, seconds: float, *, fail: bool = False) -> dict[str, float | None]:
    """The lifecycle timestamps of an image whose making starts now and takes `seconds`."""
    return {
        "created_at": now,
        "visible_from": now,
        "waiting_until": now + seconds * WAITING_SHARE,
        "ready_at": now + seconds,
        "fail_at": now + seconds * FAIL_SHARE if fail else None,
    }


def status_of(record: ImageRecord, now: float) -> tuple[str, int] | None:
    """(Status, Progress %) at `now`, or None while the image is not visible yet."""
    if now < record.visible_from:
        return None

    def progress(at: float) -> int:
        span = record.ready_at - record.waiting_until
        if at < record.waiting_until or span <= 0:
            return 0
        return min(99, math.floor(100 * (at - record.waiting_until) / span))

    if record.fail_at is not None and now >= record.fail_at:
        return "CreateFailed", progress(record.fail_at)
    if now >= record.ready_at:
        return "Available", 100
    if now < record.waiting_until:
        return "Waiting", 0
    return "Creating", progress(now)


class OssObject(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bucket: str
    key: str
    size: int
    md5: str
    sha256: str
    uploaded_at: float
    content_b64: str


class Images:
    """The image actions; every method returns the response body (without RequestId)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # -- store --

    def load(self, region_id: str, image_id: str) -> ImageRecord | None:
        doc = self.ctx.store.get(VENDOR, IMAGE, region_id, image_id)
        return None if doc is None else ImageRecord.model_validate(doc)

    def save(self, record: ImageRecord, *, new: bool = False) -> None:
        doc = record.model_dump()
        if new:
            self.ctx.store.insert(VENDOR, IMAGE, record.region, record.image_id, doc)
        else:
            self.ctx.store.replace(VENDOR, IMAGE, record.region, record.image_id, doc)

    def visible(
        self, region_id: str, now: float, ids: Iterable[str] | None = None
    ) -> list[tuple[ImageRecord, str, int]]:
        """The region's images that exist at `now`, with their status and progress; only those
        of `ids` when given (read by key: k IDs cost O(k) whatever is stored)."""
        stored_images = (
            self.ctx.store.list_objects(VENDOR, IMAGE, region_id)
            if ids is None
            else self.ctx.store.get_many(VENDOR, IMAGE, region_id, ids)
        )
        found = []
        for stored in stored_images:
            record = ImageRecord.model_validate(stored.doc)
            state = status_of(record, now)
            if state is not None:
                found.append((record, *state))
        return found

    def existing(self, region_id: str, image_id: str, now: float) -> tuple[ImageRecord, str]:
        record = self.load(region_id, image_id)
        state = status_of(record, now) if record is not None else None
        if record is None or state is None:
            raise AliyunError(
                404,
                "InvalidImageId.NotFound",
                f"The specified ImageId {image_id!r} does not exist in region {region_id}.",
            )
        return record, state[0]

    def is_public_image(self, image_id: str) -> bool:
        return image_id in self.ctx.settings.public_images

    def families(self, region_id: str, now: float) -> set[str]:
        own = {r.image_family for r, _, _ in self.visible(region_id, now) if r.image_family}
        return own | set(self.ctx.settings.public_image_families)

    # -- rendering --

    def render(self, record: ImageRecord, status: str, progress: int) -> JSONObject:
        body: JSONObject = {
            "ImageId": record.image_id,
            "ImageName": record.name,
            "Status": status,
            "Progress": f"{progress}%",
            "CreationTime": timestamp(record.created_at),
            "Size": record.size_gib,
            "OSType": record.os_type,
            "Platform": record.platform,
            "Architecture": record.architecture,
            "BootMode": record.boot_mode,
            "ImageOwnerAlias": "self",
            "ImageOwnerId": self.ctx.settings.account_id,
            "IsCopied": record.copied_from is not None,
            "IsSelfShared": "True" if record.shared_accounts else "False",
            "IsPublic": record.is_public,
            "IsSubscribed": False,
            "IsSupportCloudinit": True,
            "IsSupportIoOptimized": True,
            "Usage": "none",
            "Tags": {"Tag": [{"TagKey": t.key, "TagValue": t.value} for t in record.tags]},
            "DiskDeviceMappings": {
                "DiskDeviceMapping": [
                    {
                        "Device": disk.device,
                        "Type": disk.type,
                        "Size": str(disk.size_gib),
                        "Format": disk.format or "",
                        "ImportOSSBucket": disk.oss_bucket or "",
                        "ImportOSSObject": disk.oss_object or "",
                        "Progress": f"{progress}%",
                    }
                    for disk in record.disks
                ]
            },
        }
        if record.description is not None:
            body["Description"] = record.description
        if record.image_family is not None:
            body["ImageFamily"] = record.image_family
        return body

    # -- OSS --

    def bucket_region(self, bucket: str) -> str:
        return self.ctx.settings.oss_bucket_regions.get(bucket, self.ctx.settings.regions[0])

    def put_object(self, bucket: str, key: str, content: bytes) -> OssObject:
        if not _BUCKET.fullmatch(bucket):
            raise invalid(
                "bucket",
                "a bucket name is 3-63 lowercase letters, digits and hyphens, starting and "
                "ending with a letter or digit",
                "InvalidBucketName",
            )
        if not key or len(key.encode()) > 1023:
            raise invalid("object", "an object key is 1-1023 bytes of UTF-8", "InvalidObjectName")
        obj = OssObject(
            bucket=bucket,
            key=key,
            size=len(content),
            md5=hashlib.md5(content).hexdigest(),  # noqa: S324 - OSS's ETag is an MD5
            sha256=hashlib.sha256(content).hexdigest(),
            uploaded_at=self.ctx.clock(),
            content_b64=base64.b64encode(content).decode(),
        )
        doc = obj.model_dump()
        if not self.ctx.store.insert(VENDOR, OSS, bucket, key, doc):
            self.ctx.store.replace(VENDOR, OSS, bucket, key, doc)
        return obj

    def get_object(self, bucket: str, key: str) -> OssObject | None:
        doc = self.ctx.store.get(VENDOR, OSS, bucket, key)
        return None if doc is None else OssObject.model_validate(doc)

    def delete_object(self, bucket: str, key: str) -> bool:
        return self.ctx.store.delete(VENDOR, OSS, bucket, key)

    def require_object(self, region_id: str, bucket: str, key: str, where: str) -> OssObject:
        """The OSS object an import reads; it must exist in a bucket of the image's region."""
        obj = self.get_object(bucket, key)
        if obj is None:
            raise AliyunError(
                404,
                "InvalidOSSObject.NotFound",
                f"The OSS object {key!r} in bucket {bucket!r} named by {where} does not exist.",
            )
        bucket_region = self.bucket_region(bucket)
        if bucket_region != region_id:
            raise AliyunError(
                400,
                "InvalidOSSBucket.RegionMismatch",
                f"The OSS bucket {bucket!r} is in region {bucket_region}; ECS imports only from "
                f"buckets in the image's region ({region_id}).",
            )
        return obj

    # -- actions --

    def describe_images(self, p: Params) -> JSONObject:
        region_id = region(p, self.ctx.settings.regions)
        now = self.ctx.clock()
        ids_text = p.text("ImageId")
        wanted: set[str] | None = None
        if ids_text is not None:
            ids = [i.strip() for i in ids_text.split(",") if i.strip()]
            if len(ids) > MAX_DESCRIBE_IDS:
                raise invalid(
                    "ImageId",
                    f"at most {MAX_DESCRIBE_IDS} comma-separated image IDs are accepted "
                    f"(got {len(ids)})",
                )
            wanted = set(ids)
        statuses = self._statuses(p.text("Status"))
        owner = p.enum("ImageOwnerAlias", ("system", "self", "others", "marketplace"))
        name_filter = p.text("ImageName")
        family = p.text("ImageFamily")
        wanted_tags = tags(p)
        page_number = p.integer("PageNumber", low=1) or 1
        page_size = p.integer("PageSize", low=1, high=100) or 10
        dry_run = p.flag("DryRun")
        if dry_run:
            raise _dry_run()

        matches = []
        # Only the account's own images exist in the emulator: owners other than self see none.
        if owner in (None, "self"):
            for record, status, progress in self.visible(region_id, now, wanted):
                if statuses is not None and status not in statuses:
                    continue
                if name_filter and name_filter not in record.name:
                    continue
                if family and record.image_family != family:
                    continue
                if wanted_tags and not all(t in record.tags for t in wanted_tags):
                    continue
                matches.append((record, status, progress))
        matches.sort(key=lambda m: (-m[0].created_at, -m[0].seq))
        page = matches[(page_number - 1) * page_size : page_number * page_size]
        return {
            "RegionId": region_id,
            "TotalCount": len(matches),
            "PageNumber": page_number,
            "PageSize": page_size,
            "Images": {"Image": [self.render(*m) for m in page]},
        }

    @staticmethod
    def _statuses(text: str | None) -> set[str] | None:
        if text is None:
            return {"Available"}  # ECS's default: only Available images
        values = [v.strip() for v in text.split(",")]
        if values == ["ALL"]:
            return None
        unknown = [v for v in values if v not in STATUSES]
        if unknown or not values:
            raise invalid(
                "Status",
                f"{', '.join(unknown) or 'an empty value'} is not a status; use a comma-separated "
                f"list of {', '.join(STATUSES)}, or ALL alone",
                "InvalidStatus.ValueNotSupported",
            )
        return set(values)

    def import_image(self, p: Params) -> JSONObject:
        region_id = region(p, self.ctx.settings.regions)
        token = client_token(p)
        name = p.text("ImageName", check=check_image_name)
        description = p.text("Description", check=check_description)
        os_type = p.enum("OSType", OS_TYPES) or "linux"
        default_platform = "Others Linux" if os_type == "linux" else "Other Windows"
        platform = p.enum("Platform", PLATFORMS) or default_platform
        architecture = p.enum("Architecture", ARCHITECTURES) or "x86_64"
        boot_mode = p.enum("BootMode", BOOT_MODES) or (
            "UEFI" if architecture == "arm64" else "BIOS"
        )
        if architecture == "arm64" and boot_mode != "UEFI":
            raise invalid("BootMode", "arm64 images boot only in UEFI mode", "InvalidBootMode")
        license_type = p.enum("LicenseType", LICENSE_TYPES)
        image_tags = tags(p)
        mappings = p.items("DiskDeviceMapping", MAX_DISKS, code="InvalidDiskDeviceMapping.Count")
        if not mappings:
            raise missing("DiskDeviceMapping.1.OSSBucket")
        disks: list[Disk] = []
        objects = []
        for index, mapping in enumerate(mappings):
            bucket = mapping.required("OSSBucket")
            key = mapping.required("OSSObject")
            fmt = mapping.text("Format")
            if fmt is not None and fmt.upper() not in IMPORT_FORMATS:
                raise invalid(
                    mapping.name("Format"),
                    f"{fmt!r} is not one of {', '.join(IMPORT_FORMATS)}",
                    "InvalidDiskDeviceMapping.Format",
                )
            size = mapping.integer("DiskImageSize", low=1, high=2048) or mapping.integer(
                "DiskImSize", low=1, high=2048
            )
            obj = self.require_object(region_id, bucket, key, mapping.name("OSSObject"))
            objects.append(obj)
            size_gib = size or max(1, math.ceil(obj.size / GIB))
            if size_gib * GIB < obj.size:
                raise invalid(
                    mapping.name("DiskImageSize"),
                    f"{size_gib} GiB is smaller than the image file ({obj.size} bytes)",
                    "InvalidDiskImageSize.TooSmall",
                )
            disks.append(
                Disk(
                    device=f"/dev/xvd{chr(ord('a') + index)}",
                    type="system" if index == 0 else "data",
                    size_gib=size_gib,
                    format=fmt.upper() if fmt else "QCOW2",
                    oss_bucket=bucket,
                    oss_object=key,
                )
            )
        if p.flag("DryRun"):
            raise _dry_run()

        def create() -> JSONObject:
            now = self.ctx.clock()
            pattern = self.ctx.settings.fail_import_object_pattern
            doomed = pattern is not None and any(re.search(pattern, o.key) for o in objects)
            image_id = new_id("m-")
            record = ImageRecord(
                image_id=image_id,
                region=region_id,
                name=name or f"import-{image_id}",
                description=description,
                source="import",
                size_gib=disks[0].size_gib,
                os_type=os_type,
                platform=platform,
                architecture=architecture,
                boot_mode=boot_mode,
                license_type=license_type,
                disks=disks,
                tags=image_tags,
                **make_times(now, self.ctx.settings.import_seconds, fail=doomed),
            )
            self.save(record, new=True)
            return {"ImageId": image_id, "RegionId": region_id, "TaskId": new_id("t-")}

        return self.ctx.idempotent(
            region=region_id, action="ImportImage", token=token, params=p.flat(), create=create
        )

    def copy_image(self, p: Params) -> JSONObject:
        region_id = region(p, self.ctx.settings.regions)
        image_id = p.required("ImageId")
        destination = region(p, self.ctx.settings.regions, key="DestinationRegionId")
        token = client_token(p)
        name = p.text("DestinationImageName", check=check_image_name)
        description = p.text("DestinationDescription", check=check_description)
        image_tags = tags(p)
        p.flag("Encrypted")
        now = self.ctx.clock()
        source, status = self.existing(region_id, image_id, now)
        if status != "Available":
            raise _incorrect_status(image_id, status, "copied")
        if p.flag("DryRun"):
            raise _dry_run()

        def create() -> JSONObject:
            new_image = new_id("m-")
            record = source.model_copy(
                update={
                    "image_id": new_image,
                    "region": destination,
                    "name": name or source.name,
                    "description": description if description is not None else source.description,
                    "source": "copy",
                    "tags": image_tags,
                    "shared_accounts": [],
                    "is_public": False,
                    "copied_from": f"{region_id}/{image_id}",
                    "execution_id": None,
                    "seq": time.time_ns(),
                    **make_times(self.ctx.clock(), self.ctx.settings.copy_seconds),
                }
            )
            self.save(record, new=True)
            return {"ImageId": new_image}

        return self.ctx.idempotent(
            region=region_id, action="CopyImage", token=token, params=p.flat(), create=create
        )

    def modify_share_permission(self, p: Params) -> JSONObject:
        region_id = region(p, self.ctx.settings.regions)
        image_id = p.required("ImageId")
        add = p.values("AddAccount", MAX_SHARE_PER_CALL, code="InvalidAccount.LimitExceeded")
        remove = p.values("RemoveAccount", MAX_SHARE_PER_CALL, code="InvalidAccount.LimitExceeded")
        for name, accounts in (("AddAccount", add), ("RemoveAccount", remove)):
            for account in accounts:
                if not account.isdigit():
                    raise invalid(
                        name,
                        f"{account!r} is not an account ID (digits)",
                        "InvalidAccount.Malformed",
                    )
                if account == str(self.ctx.settings.account_id):
                    raise invalid(
                        name,
                        "an image cannot be shared with its own account",
                        "InvalidAccount.Forbidden",
                    )
        is_public = p.flag("IsPublic")
        p.text("LaunchPermission")
        now = self.ctx.clock()
        record, status = self.existing(region_id, image_id, now)
        if status != "Available":
            raise _incorrect_status(image_id, status, "shared")
        if p.flag("DryRun"):
            raise _dry_run()
        shared = [a for a in record.shared_accounts if a not in remove]
        shared += [a for a in add if a not in shared]
        update: JSONObject = {"shared_accounts": shared}
        if is_public is not None:
            update["is_public"] = is_public
        self.save(record.model_copy(update=update))
        return {}

    def delete_image(self, p: Params) -> JSONObject:
        region_id = region(p, self.ctx.settings.regions)
        image_id = p.required("ImageId")
        p.flag("Force")
        now = self.ctx.clock()
        _, status = self.existing(region_id, image_id, now)
        if status in ("Waiting", "Creating"):
            raise _incorrect_status(image_id, status, "deleted")
        if p.flag("DryRun"):
            raise _dry_run()
        # Deleting also ends the image's sharing; ECS deletes custom images at once.
        self.ctx.store.delete(VENDOR, IMAGE, region_id, image_id)
        return {}


def _incorrect_status(image_id: str, status: str, verb: str) -> AliyunError:
    return AliyunError(
        403,
        "IncorrectImageStatus",
        f"The image {image_id!r} is {status} and cannot be {verb} now; wait until it is "
        "Available" + (" or CreateFailed." if verb == "deleted" else "."),
    )


def _dry_run() -> AliyunError:
    return AliyunError(
        400, "DryRunOperation", "Request validation has been passed with DryRun flag set."
    )

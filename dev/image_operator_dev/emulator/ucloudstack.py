"""The ucloudstack IMAGE API (seed 003): UCloud-style signed RPC plus S3-style data routes.

All 13 actions of the seed are served on `POST /` (form-encoded, signed as the SDK signs;
see `ucloud_rpc`). Two data routes stand in for the region's S3 service the seed points at:

    PUT /s3/{Bucket}/{ImageID}?uploadId=<UploadID>&partNumber=<N>   one part of a Local import
    GET /s3/download?<DownloadQuery>                                 what GetImageDownloadURL signs

Lifecycles (making, cloning, importing, aborting, deleting) are derived from stored timestamps
when read, as Argon's are, so a restart on the same state directory loses nothing. A Remote
import really downloads its `LoadURL` (a background task that records its progress and is
restarted from scratch when the emulator restarts mid-download). Image files, upload parts
and downloads live as files under the state directory (or a temporary one).
See docs/emulator.md for the contract and how ambiguous seed points were read.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import math
import re
import secrets
import shutil
import struct
import tempfile
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Final, Literal
from urllib.parse import urlencode, urlsplit
from xml.sax.saxutils import escape

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from image_operator_dev.emulator.clock import Clock
from image_operator_dev.emulator.config import (
    UCloudStackAccount,
    UCloudStackOSVersion,
    UCloudStackSettings,
)
from image_operator_dev.emulator.store import JSONObject, Store
from image_operator_dev.emulator.ucloud_rpc import (
    ActionSpec,
    RetCode,
    RpcDispatcher,
    RpcError,
    RpcParams,
    missing,
    not_available,
    plumbing_error_response,
)
from image_operator_dev.emulator.vendor import ErrorKind, VendorService

KIND_IMAGE: Final = "image"
KIND_UPLOAD: Final = "upload"
UPLOAD_SCOPE: Final = "-"  # upload IDs are random and global; the record names its region

GIB: Final = 1024**3
CHUNK: Final = 64 * 1024
MAX_PART_NUMBER: Final = 10_000
MAX_PAGE: Final = 100
DEFAULT_PAGE: Final = 10

# Share of a making/cloning time spent in WaitMaking, and the share after which a doomed
# image fails (as Argon's lifecycle does).
WAIT_SHARE: Final = 0.2
FAIL_SHARE: Final = 0.6
# PreparePrecent of an import: the transfer fills 0-49, importing 50-99, Available is 100.
TRANSFER_SPAN: Final = 50
PROGRESS_SAVE_SECONDS: Final = 1.0

QCOW2_MAGIC: Final = b"QFI\xfb"
ISO_MAGIC_OFFSET: Final = 0x8001
ISO_MAGIC: Final = b"CD001"

# 1-50 characters of CJK ideographs, ASCII letters, digits, ".", "_" and "-" (seed).
NAME_PATTERN: Final = re.compile(
    r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1fA-Za-z0-9._-]{1,50}"
)
NAME_RULE: Final = (
    "must be 1-50 characters of Chinese characters, letters, digits, '.', '_' and '-'"
)
DESCRIPTION_MAX: Final = 100
VM_ID_PATTERN: Final = re.compile(r"vm-[A-Za-z0-9]{1,60}")
DISK_ID_PATTERN: Final = re.compile(r"disk-[A-Za-z0-9]{1,58}")
URL_MAX: Final = 2048

IMAGE_TYPES: Final = ("Base", "Custom")
IMAGE_FORMATS: Final = ("qcow2", "iso")
IMPORT_TYPES: Final = ("Remote", "Local")
BOOTLOADERS: Final = ("bios", "uefi")
OS_FIELDS: Final = ("OSType", "SetArch", "OSDistribution", "OSVersion")


class ImageRetCode(IntEnum):
    """The IMAGE service's own RetCodes (the common ones are in `ucloud_rpc.RetCode`)."""

    IMAGE_NOT_FOUND = 8010  # no such image for this tenant (or it is gone)
    UPLOAD_NOT_FOUND = 8011  # no such multipart upload for this image
    IMAGE_BUSY = 8020  # the image is in a state that will change by itself; retry later
    IMAGE_STATE = 8021  # the image's type or state never allows this action
    UPLOAD_INVALID = 8030  # the uploaded parts cannot be completed into an image


class Status:
    """ImageStatus words."""

    WAIT_MAKING = "WaitMaking"
    MAKING = "Making"
    AVAILABLE = "Available"
    MAKE_FAILED = "MakeFailed"
    ABORTING = "Aborting"
    UPLOADING = "Uploading"
    IMPORTING = "Importing"
    UPLOAD_FAILED = "UploadFailed"
    DELETING = "Deleting"


IN_PROGRESS: Final = frozenset(
    {Status.WAIT_MAKING, Status.MAKING, Status.UPLOADING, Status.IMPORTING, Status.ABORTING}
)
FAILED: Final = frozenset({Status.MAKE_FAILED, Status.UPLOAD_FAILED})


# --- stored records ------------------------------------------------------------------------


class Transfer(BaseModel):
    """The bytes of an import: a Remote download or a Local upload's completion."""

    model_config = ConfigDict(extra="forbid")

    received: int = 0
    total: int | None = None
    done_at: float | None = None
    error: str | None = None
    error_percent: int = 0


class ImageRecord(BaseModel):
    """What the store keeps per image; timestamps are epoch seconds."""

    model_config = ConfigDict(extra="forbid")

    image_id: str
    region: str
    company_id: int
    project_id: str
    name: str
    description: str = ""
    image_type: Literal["Custom", "Base"]
    image_format: Literal["qcow2", "iso"]
    origin: Literal["vm", "clone", "remote", "local"]
    image_from: str
    tags: list[tuple[str, str]] = Field(default_factory=list)
    os_type: str
    set_arch: str
    os_distribution: str
    os_version: str
    support_qga: bool = False
    support_cloud_init: bool = False
    bootloader_type: Literal["bios", "uefi"] = "bios"
    encrypted: bool = False
    image_size_gib: int = 0
    size_given: bool = False
    permission: str | None = None
    created_at: float
    updated_at: float
    # Making / cloning (origin vm, clone): frozen per image when it starts.
    started_at: float
    work_seconds: float
    fail_reason: str | None = None
    # Imports (origin remote, local).
    load_url: str | None = None
    upload_id: str | None = None
    bucket: str | None = None
    transfer: Transfer | None = None
    # Endings.
    aborting_since: float | None = None
    abort_seconds: float = 0.0
    deleting_since: float | None = None
    deletion_seconds: float = 0.0
    # The image file, once there is one.
    file_sha256: str | None = None
    file_bytes: int | None = None

    def gone(self, now: float) -> bool:
        if self.deleting_since is not None and now >= self.deleting_since + self.deletion_seconds:
            return True
        return self.aborting_since is not None and now >= self.aborting_since + self.abort_seconds


class PartRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    size: int
    md5: str
    sha256: str


class UploadRecord(BaseModel):
    """An open multipart upload of a Local import."""

    model_config = ConfigDict(extra="forbid")

    upload_id: str
    image_id: str
    region: str
    company_id: int
    bucket: str
    created_at: float
    parts: dict[str, PartRecord] = Field(default_factory=dict)  # part number → part


@dataclass(frozen=True, slots=True)
class StatusView:
    status: str
    percent: int
    reason: str = ""


def image_status(record: ImageRecord, now: float) -> StatusView:
    """ImageStatus, PreparePrecent and Reason at `now`, from the stored timestamps."""
    # Aborting and Deleting keep the progress the image had when they began.
    ending = record.deleting_since if record.deleting_since is not None else record.aborting_since
    view = _work_status(record, now if ending is None else min(now, ending))
    if record.deleting_since is not None:
        return StatusView(Status.DELETING, view.percent, view.reason)
    if record.aborting_since is not None:
        return StatusView(Status.ABORTING, view.percent)
    return view


def _work_status(record: ImageRecord, now: float) -> StatusView:
    if record.transfer is not None:
        return _import_status(record, record.transfer, now)
    elapsed = max(0.0, now - record.started_at)
    total = record.work_seconds
    waiting = total * WAIT_SHARE

    def percent_at(t: float) -> int:
        if t < waiting or total <= waiting:
            return 0
        return min(99, math.floor(100 * (t - waiting) / (total - waiting)))

    if record.fail_reason is not None and elapsed >= total * FAIL_SHARE:
        return StatusView(Status.MAKE_FAILED, percent_at(total * FAIL_SHARE), record.fail_reason)
    if elapsed >= total and record.fail_reason is None:
        return StatusView(Status.AVAILABLE, 100)
    if elapsed < waiting:
        return StatusView(Status.WAIT_MAKING, 0)
    return StatusView(Status.MAKING, percent_at(elapsed))


def _import_status(record: ImageRecord, transfer: Transfer, now: float) -> StatusView:
    if transfer.error is not None:
        return StatusView(Status.UPLOAD_FAILED, transfer.error_percent, transfer.error)
    if transfer.done_at is None:
        share = transfer.received / transfer.total if transfer.total else 0.0
        return StatusView(Status.UPLOADING, min(TRANSFER_SPAN - 1, math.floor(50 * share)))
    elapsed = max(0.0, now - transfer.done_at)
    if elapsed >= record.work_seconds:
        return StatusView(Status.AVAILABLE, 100)
    share = elapsed / record.work_seconds
    return StatusView(Status.IMPORTING, TRANSFER_SPAN + min(49, math.floor(50 * share)))


# --- image files ---------------------------------------------------------------------------


def synthetic_qcow2(virtual_bytes: int) -> bytes:
    """A qcow2 v3 header describing an empty disk of `virtual_bytes`: what an image made
    from a VM holds in the emulator (it has no real disk to copy)."""
    # magic, version, backing file offset/size, cluster bits, size, crypt method, L1 size,
    # L1 offset, refcount table offset/clusters, snapshots count/offset (72 bytes).
    return struct.pack(
        ">4sIQIIQIIQQIIQ", QCOW2_MAGIC, 3, 0, 0, 16, virtual_bytes, 0, 0, 0, 0, 0, 0, 0
    )


def inspect_image_file(path: Path, image_format: str) -> tuple[str | None, int]:
    """(why the file is not an image of that format, or None; its virtual size in bytes)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(32)
        if image_format == "qcow2":
            if len(head) < 32 or head[:4] != QCOW2_MAGIC:
                return "the file is not a qcow2 image (no QFI\\xfb magic at offset 0)", 0
            version = struct.unpack(">I", head[4:8])[0]
            if version not in (2, 3):
                return f"the file is a qcow2 image of unsupported version {version}", 0
            return None, int(struct.unpack(">Q", head[24:32])[0])
        handle.seek(ISO_MAGIC_OFFSET)
        if handle.read(len(ISO_MAGIC)) != ISO_MAGIC:
            return "the file is not an ISO 9660 image (no CD001 at offset 32769)", 0
        return None, size


class ImageFiles:
    """Where image files and upload parts live on disk."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "uploads").mkdir(parents=True, exist_ok=True)

    def image(self, image_id: str) -> Path:
        return self.root / "images" / image_id

    def incoming(self, image_id: str) -> Path:
        return self.root / "images" / f"{image_id}.part"

    def upload_dir(self, upload_id: str) -> Path:
        return self.root / "uploads" / upload_id

    def part(self, upload_id: str, number: int) -> Path:
        return self.upload_dir(upload_id) / f"{number:05d}"

    def drop_image(self, image_id: str) -> None:
        for path in (self.image(image_id), self.incoming(image_id)):
            path.unlink(missing_ok=True)

    def drop_upload(self, upload_id: str) -> None:
        shutil.rmtree(self.upload_dir(upload_id), ignore_errors=True)

    def clear(self) -> None:
        for sub in ("images", "uploads"):
            shutil.rmtree(self.root / sub, ignore_errors=True)
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def leftovers(self) -> list[str]:
        """Every file under the root, relative; for tests that check nothing is orphaned."""
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file())


# --- validation helpers ----------------------------------------------------------------------


def _name(params: RpcParams, field: str) -> str:
    value = params.require(field)
    if not NAME_PATTERN.fullmatch(value):
        raise not_available(field, f"{NAME_RULE} (got {value!r})")
    return value


def _description(params: RpcParams, field: str) -> str:
    value = params.get(field) or ""
    if len(value) > DESCRIPTION_MAX:
        raise not_available(
            field, f"must be at most {DESCRIPTION_MAX} characters long (got {len(value)})"
        )
    lowered = value.lower()
    if "http://" in lowered or "https://" in lowered:
        raise not_available(field, "must not contain http:// or https://")
    return value


def _b64_text(part: str) -> str | None:
    try:
        raw = base64.b64decode(part, validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    # Only the canonical encoding (with padding), as the seed's example shows.
    return text if base64.b64encode(raw).decode("ascii") == part else None


def _tags(params: RpcParams) -> list[tuple[str, str]]:
    tags: list[tuple[str, str]] = []
    seen: set[str] = set()
    for index, pair in enumerate(params.items("TagKeyValuePairs")):
        field = f"TagKeyValuePairs.{index}"
        key_b64, colon, value_b64 = pair.partition(":")
        key = _b64_text(key_b64) if colon else None
        value = _b64_text(value_b64) if colon else None
        if key is None or value is None or not key:
            raise not_available(
                field,
                "must be base64(key):base64(value), each part standard Base64 with padding of "
                f"UTF-8 text and the key not empty, e.g. dGVzdA==:dGVzdC0x (got {pair!r})",
            )
        if key in seen:
            raise not_available(field, f"repeats the tag key {key!r}")
        seen.add(key)
        tags.append((key, value))
    return tags


def _pattern(params: RpcParams, field: str, pattern: re.Pattern[str], example: str) -> str | None:
    value = params.get(field)
    if value is not None and not pattern.fullmatch(value):
        raise not_available(field, f"must look like {example} (got {value!r})")
    return value


def _page(params: RpcParams) -> tuple[int, int]:
    # The seed swaps the two descriptions (Limit "offset", Offset "page size"); they are read
    # as everywhere else in UCloud's API: Limit is the page size, Offset the rows skipped.
    limit = params.integer(
        "Limit",
        default=DEFAULT_PAGE,
        ge=1,
        le=MAX_PAGE,
        hint=f"; Limit is the page size (default {DEFAULT_PAGE}), Offset the rows skipped",
    )
    offset = params.integer(
        "Offset",
        default=0,
        ge=0,
        hint="; Offset is the number of rows skipped, Limit the page size",
    )
    assert limit is not None and offset is not None
    return limit, offset


def _service_error(code: ImageRetCode, message: str) -> RpcError:
    return RpcError(int(code), message)


# --- the service ---------------------------------------------------------------------------


class UCloudStackService(VendorService):
    """Serves the seed-003 IMAGE actions and the S3-style data routes on one port."""

    name = "ucloudstack"

    def __init__(
        self,
        settings: UCloudStackSettings,
        store: Store,
        clock: Clock,
        *,
        data_dir: Path | None = None,
    ) -> None:
        super().__init__(store, clock)
        self.settings = settings
        self._accounts = {account.public_key: account for account in settings.accounts}
        self._companies = {account.company_id: account for account in settings.accounts}
        self._catalogue = {entry.image_os_id: entry for entry in settings.os_versions}
        self._fail_vm = re.compile(settings.fail_vm_pattern) if settings.fail_vm_pattern else None
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        if data_dir is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="ucloudstack-emulator-")
            root = Path(self._scratch.name)
        else:
            root = data_dir / "ucloudstack-files"
        self.files = ImageFiles(root)
        self._transfers: dict[str, asyncio.Task[None]] = {}
        self.rpc = RpcDispatcher(self._private_key_of)
        self._register_actions()

    # -- plumbing --

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/", self.rpc.handle)
        app.router.add_get("/", self.rpc.handle, allow_head=False)
        app.router.add_get("/s3/download", self.download, allow_head=False)
        app.router.add_put("/s3/{bucket}/{image_id}", self.upload_part)
        app.on_shutdown.append(self._on_shutdown)

    def error_response(
        self, kind: ErrorKind, message: str, *, retry_after: int | None = None
    ) -> web.Response:
        return plumbing_error_response(kind, message, retry_after=retry_after)

    def _private_key_of(self, public_key: str) -> str | None:
        account = self._accounts.get(public_key)
        return account.private_key if account else None

    async def _on_shutdown(self, _app: web.Application) -> None:
        await self._stop_transfers()
        if self._scratch is not None:
            self._scratch.cleanup()

    async def _stop_transfers(self) -> None:
        tasks = list(self._transfers.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._transfers.clear()

    def _register_actions(self) -> None:
        register = self.rpc.register
        company = {"CompanyID"}
        register(
            ActionSpec(
                "CreateCustomImage",
                required={"Region", "ImageName", "TagKeyValuePairs", "VMID"},
                optional={*company, "ImageDescription", "ProjectID", "StorageSetType", "DiskID"},
                lists={"TagKeyValuePairs"},
            ),
            self.create_custom_image,
        )
        # The seed marks ImageID optional for these three; without it they have nothing to act
        # on, so the emulator asks for it (220) like for any required parameter.
        for action, handler in (
            ("AbortCustomImage", self.abort_custom_image),
            ("DeleteCustomImage", self.delete_custom_image),
            ("DeleteBaseImage", self.delete_base_image),
        ):
            register(ActionSpec(action, required={"Region", "ImageID"}, optional=company), handler)
        register(
            ActionSpec(
                "CloneCustomImageToBaseImage",
                required={"Region", "DestImageName", "SourceImageID"},
                optional=company,
            ),
            self.clone_custom_image,
        )
        register(
            ActionSpec(
                "DescribeImage",
                required={"Region"},
                optional={
                    *company,
                    "ProjectIDs",
                    "Keyword",
                    "Limit",
                    "Offset",
                    "ImageIDs",
                    "ImageType",
                    "ImageFormat",
                },
                lists={"ProjectIDs", "ImageIDs"},
            ),
            self.describe_image,
        )
        register(
            ActionSpec(
                "DescribeBaseImage", required={"Region"}, optional={"ImageIDs"}, lists={"ImageIDs"}
            ),
            self.describe_base_image,
        )
        register(
            ActionSpec(
                "ImportImage",
                required={
                    "Region",
                    "CompanyID",
                    "TagKeyValuePairs",
                    "ImageName",
                    "ImageFormat",
                    *OS_FIELDS,
                    "ImportType",
                },
                optional={
                    "ProjectID",
                    "ImageDescription",
                    "LoadURL",
                    "ImageSize",
                    "SupportQGA",
                    "SupportCloudInit",
                    "Secret",
                    "BootloaderType",
                },
                lists={"TagKeyValuePairs"},
            ),
            self.import_image,
        )
        register(
            ActionSpec(
                "CompleteImageMultipartUpload",
                required={"Region", "ImageID", "UploadID"},
                optional=company,
            ),
            self.complete_upload,
        )
        register(
            ActionSpec(
                "AbortImageMultipartUpload",
                required={"Region", "CompanyID", "ImageID"},
                optional={"UploadID"},
            ),
            self.abort_upload,
        )
        register(
            ActionSpec("GetImageDownloadURL", required={"Region", "ImageID"}),
            self.get_download_url,
        )
        register(
            ActionSpec(
                "DescribeImageOSVersions",
                required={"Region"},
                optional={*company, "ImageOSIDs", "Limit", "Offset"},
                lists={"ImageOSIDs"},
            ),
            self.describe_os_versions,
        )
        register(
            ActionSpec(
                "UpdateImage",
                required={"Region", "CompanyID", "ImageID", *OS_FIELDS},
                optional={"SupportQGA", "SupportCloudInit", "BootloaderType"},
            ),
            self.update_image,
        )

    # -- request context --

    def _account(self, params: RpcParams) -> UCloudStackAccount:
        return self._accounts[params.public_key]

    def _region(self, params: RpcParams) -> str:
        region = params.require("Region")
        if region not in self.settings.regions:
            accepted = ", ".join(self.settings.regions)
            raise not_available("Region", f"unknown region {region!r}; accepted: {accepted}")
        return region

    def _company(self, params: RpcParams) -> UCloudStackAccount:
        """The caller's account; a CompanyID, when sent, must be that account's."""
        account = self._account(params)
        company = params.integer("CompanyID", ge=1)
        if company is not None and company != account.company_id:
            raise RpcError(
                RetCode.PERMISSION_DENIED,
                f"Permission denied: this key pair may not act for CompanyID {company}",
            )
        return account

    def _project(self, params: RpcParams, account: UCloudStackAccount) -> str:
        project = params.get("ProjectID")
        if project is None:
            return next(iter(account.projects))
        if project not in account.projects:
            raise not_available(
                "ProjectID", f"{project!r} is not a project of CompanyID {account.company_id}"
            )
        return project

    def _os(self, params: RpcParams) -> UCloudStackOSVersion:
        wanted = tuple(params.require(name) for name in OS_FIELDS)
        for entry in self._catalogue.values():
            have = (entry.os_type, entry.set_arch, entry.os_distribution, entry.os_version)
            if have == wanted and entry.status == "Ready":
                return entry
        shown = "/".join(wanted)
        raise not_available(
            "OSVersion",
            f"no Ready entry of DescribeImageOSVersions has OSType/SetArch/OSDistribution/"
            f"OSVersion {shown}",
        )

    # -- state --

    def _load(self, region: str, image_id: str, now: float) -> ImageRecord | None:
        doc = self.store.get(self.name, KIND_IMAGE, region, image_id)
        return None if doc is None else self._live(doc, now)

    def _live(self, doc: JSONObject, now: float) -> ImageRecord | None:
        """The stored image, or None (and forgotten) if its ending has finished."""
        record = ImageRecord.model_validate(doc)
        if record.gone(now):
            # Lazy collection: the ending finished while nobody was looking.
            self._forget(record)
            return None
        transfer = record.transfer
        if (
            record.origin == "remote"
            and transfer
            and transfer.done_at is None
            and not transfer.error
        ):
            self._ensure_transfer(record)
        return record

    def _forget(self, record: ImageRecord) -> None:
        self.store.delete(self.name, KIND_IMAGE, record.region, record.image_id)
        self.files.drop_image(record.image_id)
        if record.upload_id is not None:
            self.store.delete(self.name, KIND_UPLOAD, UPLOAD_SCOPE, record.upload_id)
            self.files.drop_upload(record.upload_id)

    def _save(self, record: ImageRecord) -> bool:
        return self.store.replace(
            self.name, KIND_IMAGE, record.region, record.image_id, record.model_dump()
        )

    def _owned(self, params: RpcParams, field: str = "ImageID") -> tuple[ImageRecord, float]:
        region = self._region(params)
        account = self._company(params)
        image_id = params.require(field)
        now = self.clock()
        record = self._load(region, image_id, now)
        if record is None or record.company_id != account.company_id:
            raise _service_error(
                ImageRetCode.IMAGE_NOT_FOUND, f"Image [{image_id}] not exists in {region}"
            )
        return record, now

    def _images(
        self, region: str, company_id: int, now: float, ids: Iterable[str] = ()
    ) -> list[ImageRecord]:
        """The company's images in a region; only those of `ids` when some are given (read by
        key: a describe of k IDs costs O(k) whatever is stored)."""
        wanted = set(ids)
        stored_images = (
            self.store.get_many(self.name, KIND_IMAGE, region, wanted)
            if wanted
            else self.store.list_objects(self.name, KIND_IMAGE, region)
        )
        records = []
        for stored in stored_images:
            record = self._live(stored.doc, now)
            if record is not None and record.company_id == company_id:
                records.append(record)
        return records

    def _new_image_id(self, region: str) -> str:
        alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
        while True:
            image_id = "image-" + "".join(secrets.choice(alphabet) for _ in range(14))
            if self.store.get(self.name, KIND_IMAGE, region, image_id) is None:
                return image_id

    def _insert(self, record: ImageRecord) -> None:
        if not self.store.insert(
            self.name, KIND_IMAGE, record.region, record.image_id, record.model_dump()
        ):
            raise RpcError(RetCode.SERVICE_ERROR, "image ID collision; retry")

    # -- rendering --

    def render(self, record: ImageRecord, now: float) -> JSONObject:
        """The seed's ImageInfo."""
        view = image_status(record, now)
        account = self._companies.get(record.company_id)
        return {
            "Name": record.name,
            "Remark": record.description,
            "Region": record.region,
            "RegionAlias": self.settings.regions.get(record.region, record.region),
            "CompanyID": record.company_id,
            "CompanyName": account.company_name if account else "",
            "Email": account.email if account else "",
            "ProjectID": record.project_id,
            "ProjectName": account.projects.get(record.project_id, "") if account else "",
            "Reason": view.reason,
            "CreateTime": int(record.created_at),
            "UpdateTime": int(record.updated_at),
            "Tags": [{"Key": key, "Value": value} for key, value in record.tags],
            "ImageName": record.name,
            "ImageDescription": record.description,
            "Remarkable": True,
            "ImageID": record.image_id,
            "ImageType": record.image_type,
            "ImageFormat": record.image_format,
            "ImageStatus": view.status,
            "ImageSize": record.image_size_gib,
            "OSType": record.os_type,
            "OSName": f"{record.os_distribution} {record.os_version} {record.set_arch}",
            "OSDistribution": record.os_distribution,
            "SetArch": record.set_arch,
            "CanVGPU": False,
            "SupportHotplug": False,
            "PreparePrecent": view.percent,
            "SupportQGA": record.support_qga,
            "SupportCloudInit": record.support_cloud_init,
            "Encrypted": record.encrypted,
            "ImportType": {"remote": "Remote", "local": "Local"}.get(record.origin, ""),
            "BootloaderType": record.bootloader_type,
            "BoundVMSetIDs": [],
            "BoundVMIDs": [],
            "ImageFrom": record.image_from,
        }

    @staticmethod
    def render_base(record: ImageRecord) -> JSONObject:
        """The seed's BaseImageInfo."""
        return {
            "Region": record.region,
            "ImageID": record.image_id,
            "Name": record.name,
            "Description": record.description,
            "CreateTime": int(record.created_at),
            "UpdateTime": int(record.updated_at),
            "Permission": record.permission or "",
        }

    # -- actions: making from a VM --

    async def create_custom_image(self, params: RpcParams) -> JSONObject:
        region = self._region(params)
        account = self._company(params)
        name = _name(params, "ImageName")
        description = _description(params, "ImageDescription")
        project = self._project(params, account)
        tags = _tags(params)
        vm_id = _pattern(params, "VMID", VM_ID_PATTERN, "vm-7rli7wr5jpk8h5")
        disk_id = _pattern(params, "DiskID", DISK_ID_PATTERN, "disk-2frgtg4354")
        storage_set = params.get("StorageSetType")
        if storage_set is not None and storage_set not in self.settings.storage_sets:
            accepted = ", ".join(self.settings.storage_sets) or "none"
            raise not_available(
                "StorageSetType", f"unknown storage set {storage_set!r}; accepted: {accepted}"
            )
        assert vm_id is not None  # required, checked by the dispatcher
        os_entry = self._catalogue[self.settings.vm_os_id]
        now = self.clock()
        fail_reason = None
        if self._fail_vm is not None and self._fail_vm.search(vm_id):
            fail_reason = (
                f"making the image from {vm_id} failed: 存储集群空间不足 (emulated: the VMID "
                "matches the emulator's fail_vm_pattern)"
            )
        record = ImageRecord(
            image_id=self._new_image_id(region),
            region=region,
            company_id=account.company_id,
            project_id=project,
            name=name,
            description=description,
            image_type="Custom",
            image_format="qcow2",
            origin="vm",
            image_from=disk_id or f"{vm_id}-boot",
            tags=tags,
            os_type=os_entry.os_type,
            set_arch=os_entry.set_arch,
            os_distribution=os_entry.os_distribution,
            os_version=os_entry.os_version,
            support_qga=True,
            support_cloud_init=True,
            image_size_gib=self.settings.vm_disk_gib,
            created_at=now,
            updated_at=now,
            started_at=now,
            work_seconds=self.settings.making_seconds,
            fail_reason=fail_reason,
        )
        content = synthetic_qcow2(self.settings.vm_disk_gib * GIB)
        self.files.image(record.image_id).write_bytes(content)
        record.file_bytes = len(content)
        record.file_sha256 = hashlib.sha256(content).hexdigest()
        self._insert(record)
        return {"ImageID": record.image_id}

    async def abort_custom_image(self, params: RpcParams) -> JSONObject:
        record, now = self._owned(params)
        view = image_status(record, now)
        if record.origin != "vm":
            raise _service_error(
                ImageRetCode.IMAGE_STATE,
                f"Image [{record.image_id}] is not being made from a VM; only such an image "
                "can be aborted",
            )
        if view.status == Status.ABORTING:
            return {}
        if view.status not in (Status.WAIT_MAKING, Status.MAKING):
            raise _service_error(
                ImageRetCode.IMAGE_STATE,
                f"Image [{record.image_id}] is {view.status}; only a WaitMaking or Making "
                "image can be aborted",
            )
        record.aborting_since = now
        record.abort_seconds = self.settings.abort_seconds
        record.updated_at = now
        self._end_or_save(record, now)
        return {}

    def _end_or_save(self, record: ImageRecord, now: float) -> None:
        if record.gone(now):
            self._forget(record)
        else:
            self._save(record)

    def _deletable(self, record: ImageRecord, view: StatusView, action: str) -> bool:
        """Whether to start deleting (False: already deleting); raises why not otherwise."""
        if view.status == Status.DELETING:
            return False
        if view.status in (Status.AVAILABLE, *FAILED):
            return True
        if view.status == Status.ABORTING:
            hint = "it is being aborted and will be gone shortly"
        elif record.origin == "vm" and view.status in (Status.WAIT_MAKING, Status.MAKING):
            hint = "abort it first with AbortCustomImage"
        elif record.origin == "local" and view.status == Status.UPLOADING:
            hint = "abort the upload first with AbortImageMultipartUpload"
        else:
            hint = "wait until it is Available"
        raise _service_error(
            ImageRetCode.IMAGE_BUSY,
            f"Image [{record.image_id}] is {view.status} and cannot be deleted by {action} "
            f"now: {hint}",
        )

    async def delete_custom_image(self, params: RpcParams) -> JSONObject:
        return self._delete(params, "Custom", "DeleteCustomImage", "DeleteBaseImage")

    async def delete_base_image(self, params: RpcParams) -> JSONObject:
        return self._delete(params, "Base", "DeleteBaseImage", "DeleteCustomImage")

    def _delete(self, params: RpcParams, image_type: str, action: str, other: str) -> JSONObject:
        record, now = self._owned(params)
        if record.image_type != image_type:
            raise _service_error(
                ImageRetCode.IMAGE_STATE,
                f"Image [{record.image_id}] is a {record.image_type} image: delete it with {other}",
            )
        if self._deletable(record, image_status(record, now), action):
            record.deleting_since = now
            record.deletion_seconds = self.settings.deletion_seconds
            record.updated_at = now
            self._end_or_save(record, now)
        return {}

    async def clone_custom_image(self, params: RpcParams) -> JSONObject:
        source, now = self._owned(params, "SourceImageID")
        name = _name(params, "DestImageName")
        view = image_status(source, now)
        if source.image_type != "Custom":
            raise _service_error(
                ImageRetCode.IMAGE_STATE,
                f"Image [{source.image_id}] is a {source.image_type} image; only a Custom image "
                "can be cloned to a base image",
            )
        if view.status != Status.AVAILABLE:
            code = (
                ImageRetCode.IMAGE_BUSY if view.status in IN_PROGRESS else ImageRetCode.IMAGE_STATE
            )
            raise _service_error(
                code,
                f"Image [{source.image_id}] is {view.status}; only an Available image can be "
                "cloned",
            )
        clone = source.model_copy(
            update={
                "image_id": self._new_image_id(source.region),
                "name": name,
                "image_type": "Base",
                "origin": "clone",
                "image_from": source.image_id,
                "tags": [],
                "permission": self.settings.base_image_permission,
                "created_at": now,
                "updated_at": now,
                "started_at": now,
                "work_seconds": self.settings.clone_seconds,
                "fail_reason": None,
                "load_url": None,
                "upload_id": None,
                "bucket": None,
                "transfer": None,
            }
        )
        shutil.copyfile(self.files.image(source.image_id), self.files.image(clone.image_id))
        self._insert(clone)
        return {"DestImageID": clone.image_id}

    # -- actions: describing --

    async def describe_image(self, params: RpcParams) -> JSONObject:
        region = self._region(params)
        account = self._company(params)
        image_type = params.choice("ImageType", IMAGE_TYPES)
        image_format = params.choice("ImageFormat", IMAGE_FORMATS)
        keyword = (params.get("Keyword") or "").lower()
        limit, offset = _page(params)
        projects = set(params.items("ProjectIDs"))
        wanted = set(params.items("ImageIDs"))
        now = self.clock()
        matches = [
            record
            for record in self._images(region, account.company_id, now, wanted)
            if (not projects or record.project_id in projects)
            and (not wanted or record.image_id in wanted)
            and (image_type is None or record.image_type == image_type)
            and (image_format is None or record.image_format == image_format)
            and (
                not keyword or keyword in record.name.lower() or keyword in record.image_id.lower()
            )
        ]
        # Newest first, as consoles list them; the ID breaks ties so pages never overlap.
        matches.sort(key=lambda r: (-r.created_at, r.image_id))
        page = matches[offset : offset + limit]
        return {"TotalCount": len(matches), "Infos": [self.render(r, now) for r in page]}

    async def describe_base_image(self, params: RpcParams) -> JSONObject:
        region = self._region(params)
        account = self._account(params)
        wanted = set(params.items("ImageIDs"))
        now = self.clock()
        records = [
            record
            for record in self._images(region, account.company_id, now, wanted)
            if record.image_type == "Base" and (not wanted or record.image_id in wanted)
        ]
        records.sort(key=lambda r: (-r.created_at, r.image_id))
        return {"TotalCount": len(records), "Infos": [self.render_base(r) for r in records]}

    async def describe_os_versions(self, params: RpcParams) -> JSONObject:
        self._region(params)
        self._company(params)
        limit, offset = _page(params)
        wanted = set(params.items("ImageOSIDs"))
        entries = [e for e in self.settings.os_versions if not wanted or e.image_os_id in wanted]
        return {
            "TotalCount": len(entries),
            "Infos": [
                {
                    "ImageOSID": entry.image_os_id,
                    "OSType": entry.os_type,
                    "SetArch": entry.set_arch,
                    "OSDistribution": entry.os_distribution,
                    "OSVersion": entry.os_version,
                    "NetworkMode": entry.network_mode,
                    "Remark": entry.remark,
                    "Status": entry.status,
                }
                for entry in entries[offset : offset + limit]
            ],
        }

    # -- actions: updating --

    async def update_image(self, params: RpcParams) -> JSONObject:
        record, now = self._owned(params)
        os_entry = self._os(params)
        qga = params.boolean("SupportQGA")
        cloud_init = params.boolean("SupportCloudInit")
        bootloader = params.choice("BootloaderType", BOOTLOADERS)
        view = image_status(record, now)
        if view.status != Status.AVAILABLE:
            code = (
                ImageRetCode.IMAGE_BUSY if view.status in IN_PROGRESS else ImageRetCode.IMAGE_STATE
            )
            raise _service_error(
                code,
                f"Image [{record.image_id}] is {view.status}; only an Available image can be "
                "updated",
            )
        record.os_type = os_entry.os_type
        record.set_arch = os_entry.set_arch
        record.os_distribution = os_entry.os_distribution
        record.os_version = os_entry.os_version
        if qga is not None:
            record.support_qga = qga
        if cloud_init is not None:
            record.support_cloud_init = cloud_init
        if bootloader is not None:
            record.bootloader_type = bootloader  # type: ignore[assignment]
        record.updated_at = max(now, record.updated_at)
        self._save(record)
        return {}

    # -- actions: importing --

    async def import_image(self, params: RpcParams) -> JSONObject:
        region = self._region(params)
        account = self._company(params)
        project = self._project(params, account)
        tags = _tags(params)
        name = _name(params, "ImageName")
        description = _description(params, "ImageDescription")
        image_format = params.choice("ImageFormat", IMAGE_FORMATS, required=True)
        import_type = params.choice("ImportType", IMPORT_TYPES, required=True)
        os_entry = self._os(params)
        size = params.integer("ImageSize", ge=1, le=64 * 1024)
        qga = params.boolean("SupportQGA")
        cloud_init = params.boolean("SupportCloudInit")
        bootloader = params.choice("BootloaderType", BOOTLOADERS) or "bios"
        secret = params.text("Secret", max_length=128)
        load_url = self._load_url(params, import_type)
        assert image_format is not None and import_type is not None
        now = self.clock()
        image_id = self._new_image_id(region)
        upload_id = None
        if import_type == "Local":
            upload_id = (
                base64.urlsafe_b64encode(f"{uuid.uuid4()}.{uuid.uuid4()}x{time.time_ns()}".encode())
                .decode("ascii")
                .rstrip("=")
            )
        record = ImageRecord(
            image_id=image_id,
            region=region,
            company_id=account.company_id,
            project_id=project,
            name=name,
            description=description,
            image_type="Custom",
            image_format=image_format,
            origin="remote" if import_type == "Remote" else "local",
            image_from=load_url if load_url else "Local Upload",
            tags=tags,
            os_type=os_entry.os_type,
            set_arch=os_entry.set_arch,
            os_distribution=os_entry.os_distribution,
            os_version=os_entry.os_version,
            support_qga=bool(qga),
            support_cloud_init=bool(cloud_init),
            bootloader_type=bootloader,
            # The image key itself is never stored: only that there is one.
            encrypted=bool(secret),
            image_size_gib=size or 0,
            size_given=size is not None,
            created_at=now,
            updated_at=now,
            started_at=now,
            work_seconds=self.settings.import_seconds,
            load_url=load_url,
            upload_id=upload_id,
            bucket=self.settings.bucket,
            transfer=Transfer(),
        )
        self._insert(record)
        body: JSONObject = {"ImageID": image_id, "Bucket": self.settings.bucket}
        if upload_id is not None:
            upload = UploadRecord(
                upload_id=upload_id,
                image_id=image_id,
                region=region,
                company_id=account.company_id,
                bucket=self.settings.bucket,
                created_at=now,
            )
            self.store.insert(self.name, KIND_UPLOAD, UPLOAD_SCOPE, upload_id, upload.model_dump())
            self.files.upload_dir(upload_id).mkdir(parents=True, exist_ok=True)
            body["UploadID"] = upload_id
        else:
            self._ensure_transfer(record)
        return body

    def _load_url(self, params: RpcParams, import_type: str | None) -> str | None:
        url = params.text("LoadURL", max_length=URL_MAX)
        if import_type == "Local":
            if url is not None:
                raise not_available("LoadURL", "is only for ImportType Remote")
            return None
        if url is None:
            raise missing("LoadURL")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise not_available("LoadURL", f"must be an http:// or https:// URL (got {url!r})")
        if parts.hostname not in self.settings.import_allowed_hosts:
            allowed = ", ".join(self.settings.import_allowed_hosts) or "none"
            raise not_available(
                "LoadURL",
                f"the emulator downloads only from its import_allowed_hosts ({allowed}); "
                f"got host {parts.hostname!r}",
            )
        return url

    def _ensure_transfer(self, record: ImageRecord) -> None:
        """Run the download of a Remote import unless it already runs in this process."""
        task = self._transfers.get(record.image_id)
        if task is not None and not task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # read outside the server (no loop): resumes on the next read
            return
        assert record.load_url is not None
        image_id = record.image_id
        task = loop.create_task(self._download(record.region, image_id, record.load_url))
        self._transfers[image_id] = task

        def finished(done: asyncio.Task[None]) -> None:
            if self._transfers.get(image_id) is done:
                del self._transfers[image_id]

        task.add_done_callback(finished)

    def _update_transfer(self, region: str, image_id: str, **changes: object) -> bool:
        """Apply `changes` to the stored transfer; False if the image is gone meanwhile."""
        doc = self.store.get(self.name, KIND_IMAGE, region, image_id)
        if doc is None:
            return False
        record = ImageRecord.model_validate(doc)
        assert record.transfer is not None
        record.transfer = record.transfer.model_copy(update=changes)
        return self._save(record)

    async def _download(self, region: str, image_id: str, url: str) -> None:
        incoming = self.files.incoming(image_id)
        limit = self.settings.max_image_bytes
        self._update_transfer(region, image_id, received=0, total=None)
        received = 0
        try:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)
            # trust_env=False: no proxy from the environment stands between us and LoadURL;
            # no redirects: they could lead outside import_allowed_hosts.
            async with (
                aiohttp.ClientSession(timeout=timeout, trust_env=False) as session,
                session.get(url, allow_redirects=False) as response,
            ):
                if response.status != 200:
                    self._fail_transfer(
                        region, image_id, f"downloading LoadURL answered HTTP {response.status}"
                    )
                    return
                total = response.content_length
                if total is not None and total > limit:
                    self._fail_transfer(
                        region, image_id, f"the file at LoadURL is larger than {limit} bytes"
                    )
                    return
                self._update_transfer(region, image_id, total=total)
                loop = asyncio.get_running_loop()
                saved_at, saved_share = loop.time(), 0
                with incoming.open("wb") as out:
                    async for chunk in response.content.iter_chunked(CHUNK):
                        received += len(chunk)
                        if received > limit:
                            self._fail_transfer(
                                region,
                                image_id,
                                f"the file at LoadURL is larger than {limit} bytes",
                            )
                            return
                        out.write(chunk)
                        # Stored whenever the visible percentage moves (at most 50 writes),
                        # or now and then when the size is unknown.
                        share = TRANSFER_SPAN * received // total if total else 0
                        if share != saved_share or loop.time() - saved_at >= PROGRESS_SAVE_SECONDS:
                            saved_at, saved_share = loop.time(), share
                            if not self._update_transfer(region, image_id, received=received):
                                return  # the image was forgotten (state cleared)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self._fail_transfer(
                region, image_id, f"downloading LoadURL failed: {type(exc).__name__}: {exc}"
            )
            return
        self._finish_file(region, image_id, incoming, received)

    def _finish_file(self, region: str, image_id: str, path: Path, size: int) -> str | None:
        """Verify an arrived image file and make the image Importing; the error, if any."""
        doc = self.store.get(self.name, KIND_IMAGE, region, image_id)
        if doc is None:
            path.unlink(missing_ok=True)
            return None
        record = ImageRecord.model_validate(doc)
        problem, virtual = inspect_image_file(path, record.image_format)
        if problem is not None:
            if record.origin == "remote":
                self._fail_transfer(region, image_id, problem)
            path.unlink(missing_ok=True)
            return problem
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1024 * 1024), b""):
                digest.update(block)
        path.replace(self.files.image(image_id))
        now = self.clock()
        record.file_sha256 = digest.hexdigest()
        record.file_bytes = size
        if not record.size_given:
            record.image_size_gib = max(1, math.ceil(virtual / GIB))
        record.transfer = Transfer(received=size, total=size, done_at=now)
        record.updated_at = now
        self._save(record)
        return None

    def _fail_transfer(self, region: str, image_id: str, reason: str) -> None:
        self.files.incoming(image_id).unlink(missing_ok=True)
        doc = self.store.get(self.name, KIND_IMAGE, region, image_id)
        if doc is None:
            return
        record = ImageRecord.model_validate(doc)
        percent = image_status(record, self.clock()).percent
        self._update_transfer(region, image_id, error=reason, error_percent=percent)

    def _upload_of(self, record: ImageRecord, upload_id: str | None) -> UploadRecord:
        if record.origin != "local":
            raise _service_error(
                ImageRetCode.IMAGE_STATE,
                f"Image [{record.image_id}] was not imported with ImportType Local",
            )
        doc = (
            self.store.get(self.name, KIND_UPLOAD, UPLOAD_SCOPE, record.upload_id)
            if record.upload_id
            else None
        )
        if doc is None:
            raise _service_error(
                ImageRetCode.UPLOAD_NOT_FOUND,
                f"Image [{record.image_id}] has no open multipart upload (completed or aborted)",
            )
        if upload_id is not None and upload_id != record.upload_id:
            raise _service_error(
                ImageRetCode.UPLOAD_NOT_FOUND,
                f"UploadID does not belong to Image [{record.image_id}]",
            )
        return UploadRecord.model_validate(doc)

    async def complete_upload(self, params: RpcParams) -> JSONObject:
        record, _ = self._owned(params)
        upload = self._upload_of(record, params.require("UploadID"))
        numbers = sorted(int(n) for n in upload.parts)
        if not numbers:
            raise _service_error(ImageRetCode.UPLOAD_INVALID, "no part has been uploaded")
        if numbers != list(range(1, len(numbers) + 1)):
            absent = sorted(set(range(1, numbers[-1] + 1)) - set(numbers))
            raise _service_error(
                ImageRetCode.UPLOAD_INVALID,
                f"parts must be numbered 1..N without gaps; missing part(s) "
                f"{', '.join(map(str, absent))}",
            )
        minimum = self.settings.min_part_bytes
        small = [n for n in numbers[:-1] if upload.parts[str(n)].size < minimum]
        if small:
            raise _service_error(
                ImageRetCode.UPLOAD_INVALID,
                f"every part but the last must be at least {minimum} bytes; part(s) "
                f"{', '.join(map(str, small))} are smaller",
            )
        total = sum(part.size for part in upload.parts.values())
        if total > self.settings.max_image_bytes:
            raise _service_error(
                ImageRetCode.UPLOAD_INVALID,
                f"the parts hold {total} bytes, more than the {self.settings.max_image_bytes} "
                "an image may have",
            )
        assembled = self.files.incoming(record.image_id)
        with assembled.open("wb") as out:
            for number in numbers:
                with self.files.part(upload.upload_id, number).open("rb") as part:
                    shutil.copyfileobj(part, out, 1024 * 1024)
        problem = self._finish_file(record.region, record.image_id, assembled, total)
        if problem is not None:
            # The upload stays open: its parts can be replaced, or it can be aborted.
            raise _service_error(ImageRetCode.UPLOAD_INVALID, f"{problem} ({record.image_format})")
        self.store.delete(self.name, KIND_UPLOAD, UPLOAD_SCOPE, upload.upload_id)
        self.files.drop_upload(upload.upload_id)
        return {}

    async def abort_upload(self, params: RpcParams) -> JSONObject:
        record, _ = self._owned(params)
        upload = self._upload_of(record, params.get("UploadID"))
        # Nothing stays behind: the parts, the upload and the image it was to become.
        self._forget(record)
        self.files.drop_upload(upload.upload_id)
        return {}

    # -- actions: downloading --

    async def get_download_url(self, params: RpcParams) -> JSONObject:
        record, now = self._owned(params)
        view = image_status(record, now)
        if view.status != Status.AVAILABLE:
            code = (
                ImageRetCode.IMAGE_BUSY if view.status in IN_PROGRESS else ImageRetCode.IMAGE_STATE
            )
            raise _service_error(
                code,
                f"Image [{record.image_id}] is {view.status}; only an Available image "
                "can be downloaded",
            )
        account = self._account(params)
        expires = int(now) + self.settings.download_url_seconds
        query = urlencode(
            {
                "ImageID": record.image_id,
                "Region": record.region,
                "UCloudPublicKey": account.public_key,
                "Expires": str(expires),
                "Signature": _download_signature(
                    account.private_key, record.region, record.image_id, expires
                ),
            }
        )
        return {"Info": {"DownloadQuery": query, "ExpiredTime": expires}}

    # -- S3-style data routes --

    async def download(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        resource = request.path
        fields = ("ImageID", "Region", "UCloudPublicKey", "Expires", "Signature")
        absent = [name for name in fields if not query.get(name)]
        if absent:
            return s3_error(403, "AccessDenied", f"the query lacks {', '.join(absent)}", resource)
        account = self._accounts.get(query["UCloudPublicKey"])
        if account is None:
            return s3_error(403, "InvalidAccessKeyId", "the public key is not known", resource)
        try:
            expires = int(query["Expires"])
        except ValueError:
            return s3_error(403, "AccessDenied", "Expires must be an integer", resource)
        expected = _download_signature(
            account.private_key, query["Region"], query["ImageID"], expires
        )
        if not hmac.compare_digest(expected.encode(), query["Signature"].encode()):
            return s3_error(
                403,
                "SignatureDoesNotMatch",
                "the signature does not match the query; use the DownloadQuery as returned",
                resource,
            )
        now = self.clock()
        if now > expires:
            return s3_error(403, "AccessDenied", "Request has expired", resource)
        record = self._load(query["Region"], query["ImageID"], now)
        path = self.files.image(query["ImageID"])
        if (
            record is None
            or record.company_id != account.company_id
            or image_status(record, now).status != Status.AVAILABLE
            or not path.exists()
        ):
            return s3_error(
                404, "NoSuchKey", "the image does not exist or is not Available", resource
            )
        return web.FileResponse(
            path,
            headers={
                "Content-Type": "application/octet-stream",
                "ETag": f'"{record.file_sha256}"',
            },
        )

    async def upload_part(self, request: web.Request) -> web.StreamResponse:
        bucket = request.match_info["bucket"]
        image_id = request.match_info["image_id"]
        resource = request.path
        upload_id = request.query.get("uploadId", "")
        number_text = request.query.get("partNumber", "")
        if not number_text.isdigit() or not 1 <= int(number_text) <= MAX_PART_NUMBER:
            return s3_error(
                400,
                "InvalidArgument",
                f"partNumber must be an integer from 1 to {MAX_PART_NUMBER}",
                resource,
            )
        number = int(number_text)
        upload = self._open_upload(upload_id)
        if upload is None or upload.image_id != image_id:
            return s3_error(404, "NoSuchUpload", "the upload does not exist or has ended", resource)
        if upload.bucket != bucket:
            return s3_error(
                404, "NoSuchBucket", f"the upload is in bucket {upload.bucket}", resource
            )
        expected_md5 = request.headers.get("Content-MD5")
        expected_sha = request.headers.get("x-amz-content-sha256")
        if expected_sha == "UNSIGNED-PAYLOAD":
            expected_sha = None
        md5 = hashlib.md5()  # noqa: S324 - S3's Content-MD5/ETag, not for security
        sha = hashlib.sha256()
        size = 0
        limit = self.settings.max_part_bytes
        staging = self.files.upload_dir(upload_id) / f"{number:05d}.{uuid.uuid4().hex}.tmp"
        try:
            with staging.open("wb") as out:
                async for chunk in request.content.iter_chunked(CHUNK):
                    size += len(chunk)
                    if size > limit:
                        return s3_error(
                            413,
                            "EntityTooLarge",
                            f"a part may hold at most {limit} bytes",
                            resource,
                        )
                    md5.update(chunk)
                    sha.update(chunk)
                    out.write(chunk)
            if size == 0:
                return s3_error(400, "EntityTooSmall", "a part must not be empty", resource)
            if expected_md5 is not None:
                try:
                    sent = base64.b64decode(expected_md5, validate=True)
                except binascii.Error:
                    return s3_error(
                        400, "InvalidDigest", "Content-MD5 must be Base64 of an MD5", resource
                    )
                if not hmac.compare_digest(sent, md5.digest()):
                    return s3_error(
                        400, "BadDigest", "the Content-MD5 does not match the part", resource
                    )
            if expected_sha is not None and not hmac.compare_digest(
                expected_sha.lower(), sha.hexdigest()
            ):
                return s3_error(
                    400,
                    "XAmzContentSHA256Mismatch",
                    "the x-amz-content-sha256 does not match the part",
                    resource,
                )
            # The upload may have been aborted while the body streamed in.
            upload = self._open_upload(upload_id)
            if upload is None:
                return s3_error(404, "NoSuchUpload", "the upload ended meanwhile", resource)
            staging.replace(self.files.part(upload_id, number))
        finally:
            staging.unlink(missing_ok=True)
        upload.parts[str(number)] = PartRecord(
            size=size, md5=md5.hexdigest(), sha256=sha.hexdigest()
        )
        self.store.replace(self.name, KIND_UPLOAD, UPLOAD_SCOPE, upload_id, upload.model_dump())
        return web.Response(status=200, headers={"ETag": f'"{md5.hexdigest()}"'})

    def _open_upload(self, upload_id: str) -> UploadRecord | None:
        if not upload_id:
            return None
        doc = self.store.get(self.name, KIND_UPLOAD, UPLOAD_SCOPE, upload_id)
        return None if doc is None else UploadRecord.model_validate(doc)

    # -- admin --

    def dump_state(self) -> JSONObject:
        now = self.clock()
        images = []
        for stored in self.store.list_objects(self.name, KIND_IMAGE):
            record = self._load(stored.scope, stored.name, now)
            if record is not None:
                images.append(self.render(record, now))
        uploads = [
            {
                "UploadID": upload.upload_id,
                "ImageID": upload.image_id,
                "Bucket": upload.bucket,
                "Parts": [
                    {"PartNumber": int(n), "Size": p.size, "ETag": p.md5}
                    for n, p in sorted(upload.parts.items(), key=lambda item: int(item[0]))
                ],
            }
            for upload in (
                UploadRecord.model_validate(stored.doc)
                for stored in self.store.list_objects(self.name, KIND_UPLOAD)
            )
        ]
        return {"images": images, "uploads": uploads, "files": self.files.leftovers()}

    def clear_state(self) -> int:
        for task in self._transfers.values():
            task.cancel()
        self._transfers.clear()
        self.files.clear()
        return super().clear_state()


def _download_signature(private_key: str, region: str, image_id: str, expires: int) -> str:
    message = f"GET\n{region}\n{image_id}\n{expires}".encode()
    return hmac.new(private_key.encode(), message, hashlib.sha256).hexdigest()


def s3_error(status: int, code: str, message: str, resource: str) -> web.Response:
    """An error of the S3-style data routes, in S3's XML format."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"<Resource>{escape(resource)}</Resource><RequestId>{uuid.uuid4()}</RequestId></Error>"
    )
    return web.Response(status=status, text=body, content_type="application/xml")


__all__ = [
    "ImageRecord",
    "ImageRetCode",
    "Status",
    "UCloudStackService",
    "UploadRecord",
    "image_status",
    "inspect_image_file",
    "synthetic_qcow2",
]

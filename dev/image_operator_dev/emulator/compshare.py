"""UCloud CompShare (seed 000): UCloud's signed RPC over custom images and their publication.

Every call is one action (`Action=PublishCompShareImage`, …) sent to `/` as a form (POST, what
the SDK sends) or a query string (GET), signed the way `ucloud-sdk-python3` signs it. The
envelope (reading the wire, the signature check with the SDK's own `Credential.verify_ac`,
UCloud's answer format `{"RetCode": ..., "Message": ..., "Action": "<Action>Response"}`) is the
shared `ucloud_rpc` module's; this module declares CompShare's actions, their typed parameters
and their state.

The seed documents `PublishCompShareImage`; the other actions (make a custom image from an
instance, describe it, its making progress, copy, update, terminate, describe the community
listing groups) follow the SDK's `ucompshare` service, which is the client the provider uses.
Lifecycles (making, review) are derived from stored timestamps when read, never advanced by a
background task, so a restart on the same state loses nothing. See docs/emulator.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from image_operator_dev.emulator.clock import Clock
from image_operator_dev.emulator.config import CompShareSettings
from image_operator_dev.emulator.store import JSONObject, Store
from image_operator_dev.emulator.ucloud_rpc import (
    RetCode,
    RpcError,
    missing,
    not_available,
    plumbing_error_response,
    read_wire_params,
    rpc_error_response,
    rpc_response,
    verify_signature,
)
from image_operator_dev.emulator.vendor import ErrorKind, VendorService

IMAGE_KIND: Final = "image"
GROUP_KIND: Final = "group"

# CompShare's own errors. The real codes are not published; these are the emulator's, and the
# provider maps each of them explicitly (docs/emulator.md lists them).
RET_IMAGE_NOT_FOUND: Final = 8101
RET_INSTANCE_NOT_FOUND: Final = 8102
RET_IMAGE_NAME_EXISTS: Final = 8103
RET_IMAGE_STATE: Final = 8104
RET_VM_IMAGE: Final = 8105
RET_GROUP_NOT_FOUND: Final = 8106
RET_VERSION_EXISTS: Final = 8107
RET_ALREADY_PUBLISHED: Final = 8108

# seed 000: "VersionName … 必须符合版本号格式(如 v1.0)"; the CommunityListing CRD uses the same.
VERSION_NAME_PATTERN: Final = re.compile(r"v[0-9]+(\.[0-9]+){1,2}", re.ASCII)
# Seed 003 states the UCloud-family naming rule (1-50 chars of CJK, letters, digits, . _ -);
# the SDK only says a custom image name must not repeat within the account.
IMAGE_NAME_PATTERN: Final = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fffA-Za-z0-9._-]{1,50}")
_INTEGER = re.compile(r"-?[0-9]{1,18}", re.ASCII)
_LIST_KEY = re.compile(r"(0|[1-9][0-9]{0,3})", re.ASCII)

# The SDK documents "最多支持3个标签" for PublishCompShareImage and UpdateCompShareImage.
MAX_TAGS: Final = 3
MAX_COVER_CHARS: Final = 1024 * 1024  # Base64 characters, as the CommunityListing CRD allows
MAX_LIMIT: Final = 100
DEFAULT_LIMIT: Final = 20
IMAGE_SIZE_MB: Final = 20480
FAIL_SHARE: Final = 0.5  # share of the making time after which a doomed image fails


def _shown(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


# --- parameters ----------------------------------------------------------------------------

Kind = Literal["str", "int", "float", "bool", "list", "object"]
Check = Callable[[Any], str | None]  # returns why the value is refused, or None


@dataclass(frozen=True)
class Param:
    """One request parameter: its wire type, whether it is required, and its rule."""

    kind: Kind = "str"
    required: bool = False
    check: Check | None = None
    fields: Mapping[str, Param] = field(default_factory=dict)  # for kind "object"


def _length(low: int, high: int) -> Check:
    def check(value: str) -> str | None:
        if not low <= len(value) <= high:
            return f"must be {low}-{high} characters long (got {len(value)})"
        return None

    return check


def _items(most: int, longest: int) -> Check:
    def check(values: list[str]) -> str | None:
        if len(values) > most:
            return f"at most {most} items are accepted (got {len(values)})"
        for index, value in enumerate(values):
            if not 1 <= len(value) <= longest:
                return f"item {index} must be 1-{longest} characters long (got {_shown(value)})"
        return None

    return check


def _image_name(value: str) -> str | None:
    if not IMAGE_NAME_PATTERN.fullmatch(value):
        return (
            "must be 1-50 characters of Chinese characters, letters, digits, '.', '_' or '-' "
            f"(got {_shown(value)})"
        )
    return None


def _version_name(value: str) -> str | None:
    if not VERSION_NAME_PATTERN.fullmatch(value):
        return f"must be a version number like v1.0 or v1.0.1 (got {_shown(value)})"
    return None


def _price(value: float) -> str | None:
    if value < 0:
        return f"must be a number ≥ 0, 0 meaning free (got {_shown(value)})"
    return None


def _base64(value: str) -> str | None:
    if len(value) > MAX_COVER_CHARS:
        return f"must be at most {MAX_COVER_CHARS} Base64 characters (got {len(value)})"
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return "must be Base64-encoded image data"
    if not decoded:
        return "must not be empty"
    return None


def _visibility(value: int) -> str | None:
    return None if value in (0, 1) else f"must be 0 (private) or 1 (public) (got {value})"


def _limit(value: int) -> str | None:
    return None if 0 < value <= MAX_LIMIT else f"must be 1-{MAX_LIMIT} (got {value})"


def _offset(value: int) -> str | None:
    return None if value >= 0 else f"must be ≥ 0 (got {value})"


IMAGE_ID = Param(required=True, check=_length(1, 64))
# Softwares of CreateCompShareCustomImage, as the SDK's request model sends them.
SOFTWARES = Param(
    kind="object",
    fields={
        "Application": Param(kind="list", check=_items(32, 64)),
        "CUDAVersion": Param(check=_length(1, 32)),
        "Framework": Param(check=_length(1, 64)),
        "FrameworkVersion": Param(check=_length(1, 32)),
    },
)
TAGS = Param(kind="list", check=_items(MAX_TAGS, 32))


@dataclass(frozen=True)
class Action:
    """One RPC action: its parameters besides the common ones, and whether Zone is needed."""

    params: Mapping[str, Param]
    zone: Literal["required", "optional"]


ACTIONS: Final[Mapping[str, Action]] = {
    "CreateCompShareCustomImage": Action(
        {
            "Name": Param(required=True, check=_image_name),
            "UHostId": Param(required=True, check=_length(1, 64)),
            "Description": Param(check=_length(0, 1024)),
            "Softwares": SOFTWARES,
        },
        zone="required",
    ),
    "DescribeCompShareCustomImages": Action(
        {
            "CompShareImageId": Param(check=_length(1, 64)),
            "Limit": Param(kind="int", check=_limit),
            "Offset": Param(kind="int", check=_offset),
        },
        zone="required",
    ),
    "GetCompShareImageCreateProgress": Action({"CompShareImageId": IMAGE_ID}, zone="required"),
    "CopyCompShareCustomImage": Action(
        {"CompShareImageId": IMAGE_ID, "TargetImageName": Param(check=_image_name)},
        zone="optional",
    ),
    "UpdateCompShareImage": Action(
        {
            "CompShareImageId": IMAGE_ID,
            "Cover": Param(check=_base64),
            "Description": Param(check=_length(0, 1024)),
            "Framework": Param(check=_length(0, 64)),
            "Readme": Param(check=_length(0, 65536)),
            "Softwares": Param(check=_length(0, 1024)),
            "Tags": TAGS,
            "Visibility": Param(kind="int", check=_visibility),
        },
        zone="required",
    ),
    "TerminateCompShareCustomImage": Action({"CompShareImageId": IMAGE_ID}, zone="required"),
    # Seed 000, field by field. Zone is not in the seed; the SDK's typed method sends it.
    "PublishCompShareImage": Action(
        {
            "CompShareImageId": IMAGE_ID,
            "GroupId": Param(check=_length(1, 64)),
            "CommunityImageName": Param(check=_length(1, 64)),
            "VersionName": Param(required=True, check=_version_name),
            "VersionDesc": Param(check=_length(0, 512)),
            "Price": Param(kind="float", check=_price),
            "Cover": Param(check=_base64),
            "Tags": TAGS,
            "Description": Param(check=_length(0, 1024)),
            "Readme": Param(check=_length(0, 65536)),
            "SupportedGpuTypes": Param(kind="list", check=_items(32, 32)),
            "AutoStart": Param(kind="bool"),
        },
        zone="optional",
    ),
    "DescribeSelfCommunityImages": Action(
        {"CompShareImageId": Param(check=_length(1, 64)), "GroupId": Param(check=_length(1, 64))},
        zone="required",
    ),
}
# Parameters every action takes (besides Action, PublicKey and Signature).
COMMON: Final = {"Region": Param(required=True), "ProjectId": Param(check=_length(1, 64))}


def _convert(name: str, param: Param, raw: str) -> Any:
    """A scalar wire value as the parameter's type, or `RpcError` 230 saying why not."""
    if param.kind == "int":
        if not _INTEGER.fullmatch(raw):
            raise not_available(name, f"must be an integer (got {_shown(raw)})")
        return int(raw)
    if param.kind == "float":
        try:
            number = float(raw)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise not_available(name, f"must be a number (got {_shown(raw)})")
        return number
    if param.kind == "bool":
        # The SDK's encoder sends booleans as true/false; its typed AutoStart (a Str field)
        # sends str(True) = "True". Both spellings are the same boolean.
        if raw.lower() not in ("true", "false"):
            raise not_available(name, f"must be true or false (got {_shown(raw)})")
        return raw.lower() == "true"
    return raw


def parse_params(
    flat: Mapping[str, str], spec: Mapping[str, Param], prefix: str = ""
) -> tuple[dict[str, Any], list[str]]:
    """Typed values of the flat wire parameters (`Tags.0`, `Softwares.Framework`) per `spec`.

    Returns the values and the missing required names; refuses (230) unknown parameters, bad
    types and values that break a rule. Unknown parameters are refused although the real
    gateway may ignore them: a misspelt optional field must surface in tests, not vanish.
    """
    grouped: dict[str, dict[str, str]] = {}
    for key, wire in flat.items():
        head, dot, rest = key.partition(".")
        grouped.setdefault(head, {})[rest if dot else ""] = wire
    unknown = sorted(set(grouped) - set(spec))
    if unknown:
        accepted = ", ".join(f"{prefix}{name}" for name in spec)
        raise not_available(
            f"{prefix}{unknown[0]}", f"this action accepts no such parameter; accepted: {accepted}"
        )
    values: dict[str, Any] = {}
    missing: list[str] = []
    for name, param in spec.items():
        full = f"{prefix}{name}"
        parts = grouped.get(name)
        if parts is None:
            if param.required:
                missing.append(full)
            continue
        if param.kind == "list":
            if "" in parts or not all(_LIST_KEY.fullmatch(index) for index in parts):
                raise not_available(full, f"send an array as {full}.0, {full}.1, …")
            indices = sorted(int(index) for index in parts)
            if indices != list(range(len(indices))):
                raise not_available(full, f"array indices must run 0, 1, 2, … (got {indices})")
            value: Any = [parts[str(index)] for index in indices]
        elif param.kind == "object":
            if "" in parts:
                raise not_available(full, f"send an object as {full}.<Field>")
            value, inner_missing = parse_params(parts, param.fields, f"{full}.")
            missing.extend(inner_missing)
        else:
            if set(parts) != {""}:
                raise not_available(f"{full}.{next(k for k in parts if k)}", "is not a field")
            raw = parts[""]
            if raw == "" and param.required:
                missing.append(full)
                continue
            value = _convert(full, param, raw)
        if param.check is not None:
            problem = param.check(value)
            if problem is not None:
                raise not_available(full, problem)
        values[name] = value
    return values, missing


# --- stored state -----------------------------------------------------------------------------


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImageRecord(_Record):
    """A custom image; timestamps are seconds since the epoch."""

    image_id: str
    account: str
    region: str
    zone: str
    name: str
    description: str = ""
    container: bool
    source: str  # the instance it was made from, or the image it was copied from
    created_at: float
    # Frozen when the making starts, so a restart with other settings does not move it.
    making_seconds: float
    fail_reason: str | None = None
    tags: list[str] = []
    cover: str | None = None
    readme: str | None = None
    softwares: JSONObject = {}
    group_id: str | None = None


class VersionRecord(_Record):
    """One publication of an image into a listing group (seed 000's fields)."""

    image_id: str
    version_name: str
    version_desc: str | None = None
    community_image_name: str
    price: float = 0.0
    cover: str | None = None
    tags: list[str] = []
    description: str | None = None
    readme: str | None = None
    supported_gpu_types: list[str] = []
    auto_start: bool = False
    submitted_at: float
    review_seconds: float
    reject_reason: str | None = None  # decided at submission, revealed when the review ends
    offline_at: float | None = None  # the image was terminated


class GroupRecord(_Record):
    """A community listing: the versions published under one GroupId."""

    group_id: str
    account: str
    region: str
    created_at: float
    versions: list[VersionRecord] = []


MakingStatus = Literal["Making", "Available", "UnAvailable"]
VersionStatus = Literal["Reviewing", "Available", "UnAvailable", "Offline"]


@dataclass(frozen=True, slots=True)
class Making:
    status: MakingStatus
    progress: float  # 0-100
    remaining: float  # seconds


def making_state(record: ImageRecord, now: float) -> Making:
    """Where the making of an image is at `now`, from its stored timestamps."""
    elapsed = max(0.0, now - record.created_at)
    total = record.making_seconds
    if record.fail_reason is not None:
        fail_at = total * FAIL_SHARE
        if elapsed >= fail_at:
            return Making("UnAvailable", 100 * FAIL_SHARE, 0.0)
    elif elapsed >= total:
        return Making("Available", 100.0, 0.0)
    progress = math.floor(1000 * elapsed / total) / 10 if total > 0 else 0.0
    return Making("Making", min(progress, 99.9), total - elapsed)


def version_status(version: VersionRecord, now: float) -> VersionStatus:
    if version.offline_at is not None:
        return "Offline"
    if now < version.submitted_at + version.review_seconds:
        return "Reviewing"
    return "UnAvailable" if version.reject_reason is not None else "Available"


def account_of(public_key: str) -> str:
    """The account a key pair belongs to; derived so state dumps never show the key."""
    return "org-" + hashlib.sha256(public_key.encode("utf-8")).hexdigest()[:10]


@dataclass(frozen=True)
class Call:
    """One authenticated call: who, where, and its typed parameters."""

    action: str
    account: str
    region: str
    zone: str | None
    params: dict[str, Any]


# --- the service -------------------------------------------------------------------------------


class CompShareService(VendorService):
    """Serves the CompShare actions on `/` of one port."""

    name = "compshare"

    def __init__(self, settings: CompShareSettings, store: Store, clock: Clock) -> None:
        super().__init__(store, clock)
        self.settings = settings
        self._fail_pattern = _compile(settings.fail_image_pattern)
        self._reject_pattern = _compile(settings.reject_listing_pattern)
        self._handlers: dict[str, Callable[[Call], JSONObject]] = {
            "CreateCompShareCustomImage": self._create_image,
            "DescribeCompShareCustomImages": self._describe_images,
            "GetCompShareImageCreateProgress": self._progress,
            "CopyCompShareCustomImage": self._copy_image,
            "UpdateCompShareImage": self._update_image,
            "TerminateCompShareCustomImage": self._terminate_image,
            "PublishCompShareImage": self._publish,
            "DescribeSelfCommunityImages": self._describe_groups,
        }

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/", self.handle)
        app.router.add_get("/", self.handle, allow_head=False)

    def error_response(
        self, kind: ErrorKind, message: str, *, retry_after: int | None = None
    ) -> web.Response:
        return plumbing_error_response(kind, message, retry_after=retry_after)

    # -- the one route --

    async def handle(self, request: web.Request) -> web.Response:
        action = ""
        try:
            flat = await read_wire_params(request)
            action = flat.get("Action", "")
            call = self._authenticate(flat)
            # No await from here on: each action's read-check-write is atomic on this loop.
            body = self._handlers[call.action](call)
        except RpcError as error:
            return rpc_error_response(action, error)
        return rpc_response(action, body)

    def _authenticate(self, flat: dict[str, str]) -> Call:
        """The action, then the signature (the SDK's own code checks it), then the
        parameters: the gateway's order, as in the other UCloud-style vendor."""
        params = dict(flat)
        action_name = params.pop("Action", "")
        if not action_name:
            raise RpcError(RetCode.MISSING_ACTION, "Missing Action")
        action = ACTIONS.get(action_name)
        if action is None:
            raise RpcError(RetCode.ACTION_NOT_FOUND, f"Action [{action_name}] not found")
        public_key = verify_signature(flat, self.settings.keys.get)
        del params["PublicKey"], params["Signature"]
        spec = {**COMMON, "Zone": Param(required=action.zone == "required"), **action.params}
        values, absent = parse_params(params, spec)
        if absent:
            raise missing(*absent)
        region = str(values.pop("Region"))
        zones = self.settings.regions.get(region)
        if zones is None:
            raise not_available("Region", f"{_shown(region)} is not a region of this endpoint")
        zone = values.pop("Zone", None)
        if zone is not None and zone not in zones:
            raise not_available("Zone", f"{_shown(zone)} is not a zone of region {region}")
        values.pop("ProjectId", None)  # one project per account in the emulator
        return Call(action_name, account_of(public_key), region, zone, values)

    # -- state helpers --

    @staticmethod
    def _scope(account: str, region: str) -> str:
        return f"{account}/{region}"

    def _image(self, call: Call, image_id: str, *, in_zone: bool = True) -> ImageRecord:
        """The account's image in the call's region (and zone, when the call names one and
        `in_zone`: a copy's Zone is where the copy goes, not where the source is)."""
        doc = self.store.get(
            self.name, IMAGE_KIND, self._scope(call.account, call.region), image_id
        )
        record = None if doc is None else ImageRecord.model_validate(doc)
        if record is None or (in_zone and call.zone is not None and record.zone != call.zone):
            where = f" in zone {call.zone}" if in_zone and call.zone else ""
            raise RpcError(RET_IMAGE_NOT_FOUND, f"CompShareImage [{image_id}] not found{where}")
        return record

    def _images(self, account: str, region: str | None = None) -> list[ImageRecord]:
        records = [
            ImageRecord.model_validate(stored.doc)
            for stored in self.store.list_objects(self.name, IMAGE_KIND)
            if stored.scope.startswith(f"{account}/")
        ]
        return [r for r in records if region is None or r.region == region]

    def _save_image(self, record: ImageRecord) -> None:
        scope = self._scope(record.account, record.region)
        if not self.store.replace(
            self.name, IMAGE_KIND, scope, record.image_id, record.model_dump()
        ):
            self.store.insert(self.name, IMAGE_KIND, scope, record.image_id, record.model_dump())

    def _group(self, call: Call, group_id: str) -> GroupRecord:
        doc = self.store.get(
            self.name, GROUP_KIND, self._scope(call.account, call.region), group_id
        )
        if doc is None:
            raise RpcError(RET_GROUP_NOT_FOUND, f"Group [{group_id}] not found")
        return GroupRecord.model_validate(doc)

    def _groups(self, account: str, region: str) -> list[GroupRecord]:
        return [
            GroupRecord.model_validate(stored.doc)
            for stored in self.store.list_objects(
                self.name, GROUP_KIND, self._scope(account, region)
            )
        ]

    def _save_group(self, group: GroupRecord) -> None:
        scope = self._scope(group.account, group.region)
        if not self.store.replace(self.name, GROUP_KIND, scope, group.group_id, group.model_dump()):
            self.store.insert(self.name, GROUP_KIND, scope, group.group_id, group.model_dump())

    def _check_name_free(self, account: str, name: str) -> None:
        if any(image.name == name for image in self._images(account)):
            raise RpcError(
                RET_IMAGE_NAME_EXISTS, f"an image named [{name}] already exists in this account"
            )

    def _fail_reason(self, name: str) -> str | None:
        if self._fail_pattern is None or not self._fail_pattern.search(name):
            return None
        return (
            f"making image {name} failed: the instance's disk could not be captured (emulated: "
            "the name matches the emulator's fail_image_pattern)"
        )

    def _new_image(self, call: Call, **fields: Any) -> ImageRecord:
        record = ImageRecord(
            image_id=f"compshareImage-{uuid.uuid4().hex[:12]}",
            account=call.account,
            region=call.region,
            created_at=self.clock(),
            making_seconds=self.settings.making_seconds,
            fail_reason=self._fail_reason(fields["name"]),
            **fields,
        )
        self._save_image(record)
        return record

    # -- rendering --

    def render_image(self, record: ImageRecord, now: float) -> JSONObject:
        """A custom image as DescribeCompShareCustomImages shows it (the SDK's CompShareImage)."""
        state = making_state(record, now)
        version = self._version_of(record)
        published = version is not None and version_status(version, now) == "Available"
        item: JSONObject = {
            "CompShareImageId": record.image_id,
            "Name": record.name,
            "Description": record.description,
            "Status": state.status,
            "Container": "True" if record.container else "False",
            "ImageType": "Custom",
            "IsOfficial": False,
            "CreateTime": int(record.created_at),
            "Size": IMAGE_SIZE_MB,
            "Tags": list(record.tags),
            "Visibility": 1 if published else 0,
            "Owner": {"AccountId": record.account, "AccountName": record.account},
            "Softwares": _softwares(record.softwares),
        }
        if record.cover is not None:
            item["Cover"] = _cover_url(record.cover)
        if record.readme is not None:
            item["Readme"] = record.readme
        if state.status == "UnAvailable" and record.fail_reason is not None:
            item["FailedReason"] = record.fail_reason
        if version is not None and record.group_id is not None:
            item["GroupId"] = record.group_id
            item["VersionName"] = version.version_name
            if version.version_desc is not None:
                item["VersionDesc"] = version.version_desc
        return item

    def _version_of(self, record: ImageRecord) -> VersionRecord | None:
        if record.group_id is None:
            return None
        doc = self.store.get(
            self.name, GROUP_KIND, self._scope(record.account, record.region), record.group_id
        )
        if doc is None:
            return None
        group = GroupRecord.model_validate(doc)
        return next((v for v in group.versions if v.image_id == record.image_id), None)

    @staticmethod
    def render_version(group: GroupRecord, version: VersionRecord, now: float) -> JSONObject:
        """One version of a listing as DescribeSelfCommunityImages shows it."""
        status = version_status(version, now)
        item: JSONObject = {
            "CompShareImageId": version.image_id,
            "GroupId": group.group_id,
            "Name": version.community_image_name,
            "VersionName": version.version_name,
            "Status": status,
            "Container": "True",
            "ImageType": "Community",
            "ImageOwnerAlias": "Community",
            "CreateTime": int(version.submitted_at),
            "Price": version.price,
            "ImageCharge": version.price > 0,
            "Tags": list(version.tags),
            "AutoStart": version.auto_start,
            # Not in the SDK's response model (its typed describe drops it); shown for tests.
            "SupportedGpuTypes": list(version.supported_gpu_types),
            "Visibility": 1 if status == "Available" else 0,
            "Owner": {"AccountId": group.account, "AccountName": group.account},
        }
        if version.version_desc is not None:
            item["VersionDesc"] = version.version_desc
        if version.description is not None:
            item["Description"] = version.description
        if version.readme is not None:
            item["Readme"] = version.readme
        if version.cover is not None:
            item["Cover"] = _cover_url(version.cover)
        if status == "Available":
            item["PubTime"] = int(version.submitted_at + version.review_seconds)
        if status == "UnAvailable":
            # The SDK's model has no field for a review's verdict; FailedReason carries it.
            item["FailedReason"] = version.reject_reason
        return item

    def render_group(self, group: GroupRecord, now: float) -> JSONObject:
        versions = [self.render_version(group, v, now) for v in group.versions]
        published = [v for v in versions if v["Status"] == "Available"]
        # The listing shows the newest published version's name; before any, the first one's.
        shown = published[-1] if published else versions[0] if versions else {}
        return {
            "GroupId": group.group_id,
            "ImageName": shown.get("Name", ""),
            "ImageDesc": shown.get("Description", ""),
            "Status": "Available" if published else "UnAvailable",
            "CreatedCount": 0,
            "FavoritesCount": 0,
            "ImageUseTime": 0,
            "IsFavorite": False,
            "RecommendCount": 0,
            "Data": versions,
        }

    # -- actions --

    def _create_image(self, call: Call) -> JSONObject:
        p = call.params
        kind = self.settings.instances.get(p["UHostId"])
        if kind is None:
            raise RpcError(RET_INSTANCE_NOT_FOUND, f"UHost [{p['UHostId']}] not found")
        self._check_name_free(call.account, p["Name"])
        assert call.zone is not None  # required for this action
        record = self._new_image(
            call,
            zone=call.zone,
            name=p["Name"],
            description=p.get("Description", ""),
            container=kind == "container",
            source=p["UHostId"],
            softwares=p.get("Softwares", {}),
        )
        return {"CompShareImageId": record.image_id}

    def _describe_images(self, call: Call) -> JSONObject:
        p = call.params
        now = self.clock()
        if "CompShareImageId" in p:
            # One image by key: a describe by ID costs O(1) whatever the account holds.
            doc = self.store.get(
                self.name, IMAGE_KIND, self._scope(call.account, call.region), p["CompShareImageId"]
            )
            candidates = [] if doc is None else [ImageRecord.model_validate(doc)]
        else:
            candidates = self._images(call.account, call.region)
        images = [r for r in candidates if r.zone == call.zone]
        images.sort(key=lambda r: (-r.created_at, r.image_id))  # newest first, stable
        offset = p.get("Offset", 0)
        limit = p.get("Limit", DEFAULT_LIMIT)
        page = images[offset : offset + limit]
        return {
            "ImageSet": [self.render_image(r, now) for r in page],
            "TotalCount": len(images),
        }

    def _progress(self, call: Call) -> JSONObject:
        record = self._image(call, call.params["CompShareImageId"])
        state = making_state(record, self.clock())
        return {
            "Process": state.progress,
            "RemainingDuration": str(math.ceil(state.remaining)),
            "TotalDuration": str(math.ceil(record.making_seconds)),
        }

    def _copy_image(self, call: Call) -> JSONObject:
        p = call.params
        source = self._image(call, p["CompShareImageId"], in_zone=False)
        status = making_state(source, self.clock()).status
        if status != "Available":
            raise RpcError(
                RET_IMAGE_STATE,
                f"CompShareImage [{source.image_id}] is {status}; only an Available image can "
                "be copied",
            )
        name = p.get("TargetImageName") or self._copy_name(call.account, source.name)
        self._check_name_free(call.account, name)
        record = self._new_image(
            call,
            zone=call.zone or source.zone,
            name=name,
            description=source.description,
            container=source.container,
            source=source.image_id,
            softwares=source.softwares,
        )
        return {"NewCompShareImageId": record.image_id}

    def _copy_name(self, account: str, name: str) -> str:
        taken = {image.name for image in self._images(account)}
        for n in range(1, 1000):
            suffix = f"-copy{n}" if n > 1 else "-copy"
            candidate = name[: 50 - len(suffix)] + suffix
            if candidate not in taken:
                return candidate
        raise RpcError(RET_IMAGE_NAME_EXISTS, f"no free name for a copy of [{name}]")

    def _update_image(self, call: Call) -> JSONObject:
        p = call.params
        record = self._image(call, p["CompShareImageId"])
        # Framework, Softwares and Visibility are checked but change nothing here: visibility
        # follows the publication's review, and the software list is fixed at making time.
        update = {
            key: p[wire]
            for key, wire in (
                ("description", "Description"),
                ("cover", "Cover"),
                ("readme", "Readme"),
                ("tags", "Tags"),
            )
            if wire in p
        }
        self._save_image(record.model_copy(update=update))
        return {}

    def _terminate_image(self, call: Call) -> JSONObject:
        record = self._image(call, call.params["CompShareImageId"])
        if record.group_id is not None:
            # A published (or in-review) version goes offline with its image.
            group = self._group(call, record.group_id)
            now = self.clock()
            versions = [
                v.model_copy(update={"offline_at": now})
                if v.image_id == record.image_id and v.offline_at is None
                else v
                for v in group.versions
            ]
            self._save_group(group.model_copy(update={"versions": versions}))
        self.store.delete(
            self.name, IMAGE_KIND, self._scope(call.account, call.region), record.image_id
        )
        return {}

    def _publish(self, call: Call) -> JSONObject:
        p = call.params
        now = self.clock()
        record = self._image(call, p["CompShareImageId"])
        if not record.container:
            raise RpcError(
                RET_VM_IMAGE,
                f"CompShareImage [{record.image_id}] was made from a virtual machine; only "
                "images made from a container can be published to the community",
            )
        status = making_state(record, now).status
        if status != "Available":
            raise RpcError(
                RET_IMAGE_STATE,
                f"CompShareImage [{record.image_id}] is {status}; only an Available image can "
                "be published",
            )
        previous = self._version_of(record)
        if previous is not None and version_status(previous, now) in ("Reviewing", "Available"):
            state = "in review" if version_status(previous, now) == "Reviewing" else "published"
            raise RpcError(
                RET_ALREADY_PUBLISHED,
                f"CompShareImage [{record.image_id}] is already {state} as version "
                f"{previous.version_name} of group [{record.group_id}]",
            )
        target = self._group(call, p["GroupId"]) if "GroupId" in p else None
        if target is not None:
            clash = next(
                (
                    v
                    for v in target.versions
                    if v.version_name == p["VersionName"]
                    and version_status(v, now) in ("Reviewing", "Available")
                ),
                None,
            )
            if clash is not None:
                raise RpcError(
                    RET_VERSION_EXISTS,
                    f"group [{target.group_id}] already has version {clash.version_name} "
                    f"(CompShareImage [{clash.image_id}]); choose another VersionName",
                )
        # Every check passed: from here on the request changes state.
        if previous is not None and record.group_id is not None:
            # A rejected (or offline) version is withdrawn when its image is submitted again.
            old = self._group(call, record.group_id)
            old = old.model_copy(
                update={"versions": [v for v in old.versions if v.image_id != record.image_id]}
            )
            self._save_group(old)
            if target is not None and target.group_id == old.group_id:
                target = old
        group = target or GroupRecord(
            group_id=f"group-{uuid.uuid4().hex[:12]}",
            account=call.account,
            region=call.region,
            created_at=now,
        )
        listing_name = p.get("CommunityImageName") or self._listing_name(group, now) or record.name
        reject = self._reject_pattern is not None and self._reject_pattern.search(listing_name)
        version = VersionRecord(
            image_id=record.image_id,
            version_name=p["VersionName"],
            version_desc=p.get("VersionDesc"),
            community_image_name=listing_name,
            price=p.get("Price", 0.0),
            cover=p.get("Cover"),
            tags=p.get("Tags", []),
            description=p.get("Description"),
            readme=p.get("Readme"),
            supported_gpu_types=p.get("SupportedGpuTypes", []),
            auto_start=p.get("AutoStart", False),
            submitted_at=now,
            review_seconds=self.settings.review_seconds,
            reject_reason=self.settings.reject_reason if reject else None,
        )
        self._save_group(group.model_copy(update={"versions": [*group.versions, version]}))
        self._save_image(record.model_copy(update={"group_id": group.group_id}))
        return {}

    def _listing_name(self, group: GroupRecord, now: float) -> str | None:
        shown = self.render_group(group, now)
        return str(shown["ImageName"]) or None

    def _describe_groups(self, call: Call) -> JSONObject:
        p = call.params
        now = self.clock()
        groups = self._groups(call.account, call.region)
        if "GroupId" in p:
            groups = [g for g in groups if g.group_id == p["GroupId"]]
        if "CompShareImageId" in p:
            groups = [
                g for g in groups if any(v.image_id == p["CompShareImageId"] for v in g.versions)
            ]
        groups.sort(key=lambda g: (g.created_at, g.group_id))
        rendered = [self.render_group(g, now) for g in groups]
        return {
            "ImageSetGroup": rendered,
            "TotalCount": sum(len(g["Data"]) for g in rendered),
            "AvailableTotalCount": sum(1 for g in rendered if g["Status"] == "Available"),
        }

    # -- admin --

    def dump_state(self) -> JSONObject:
        now = self.clock()
        images = []
        for stored in self.store.list_objects(self.name, IMAGE_KIND):
            record = ImageRecord.model_validate(stored.doc)
            images.append(
                {"Region": record.region, "Zone": record.zone, **self.render_image(record, now)}
            )
        groups = []
        for stored in self.store.list_objects(self.name, GROUP_KIND):
            group = GroupRecord.model_validate(stored.doc)
            groups.append({"Region": group.region, **self.render_group(group, now)})
        return {"images": images, "groups": groups}


def _compile(pattern: str | None) -> re.Pattern[str] | None:
    return re.compile(pattern) if pattern is not None else None


def _softwares(stored: JSONObject) -> JSONObject:
    # The request model says Application, the response model Applications.
    shown = {k: v for k, v in stored.items() if k != "Application"}
    if "Application" in stored:
        shown["Applications"] = stored["Application"]
    return shown


def _cover_url(cover: str) -> str:
    # The API answers a cover URL, not the Base64 it was sent; the digest makes the emulator's
    # URL change exactly when the picture does.
    digest = hashlib.sha256(cover.encode("ascii", "replace")).hexdigest()
    return f"https://compshare.emulator.invalid/covers/{digest}.png"


__all__ = [
    "ACTIONS",
    "CompShareService",
    "GroupRecord",
    "ImageRecord",
    "VersionRecord",
    "making_state",
    "parse_params",
    "version_status",
]

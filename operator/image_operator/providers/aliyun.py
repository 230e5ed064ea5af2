"""The `aliyun` provider: Alibaba Cloud ECS through its official SDK, `alibabacloud_ecs20140526`.

Images: an `Image` with a `url` source is imported with ImportImage from OSS (the URL names the
bucket and object, see `oss_location`); `copy_image` copies a known image ID with CopyImage
(the Image reconciler does not resolve a source `Image` to its cloud ID yet, so `image`
sources are not offered through `create_image`). Every create carries a `ClientToken` derived
from the Kubernetes UID and the tag `imageops.io/uid=<UID>`; `find_image` looks the tag up, so
a create whose answer was lost is found again instead of repeated. Polls describe up to 100
images per DescribeImages call.

Pipelines (seed 004): typed methods for the ImagePipeline controller: create (every seed field,
ClientToken), start, describe executions (with per-region and per-account results), cancel,
delete, describe; and image share permissions.

The SDK signs (ACS3-HMAC-SHA256), serialises and parses; this module only maps the operator's
model onto its request models and its errors onto the provider error set (`_provider_error`).
SDK retries stay off: the reconcilers own retrying, with backoff.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar, cast
from urllib.parse import unquote, urlsplit

from alibabacloud_ecs20140526 import models as ecs  # type: ignore[import-untyped]
from alibabacloud_ecs20140526.client import Client as EcsClient  # type: ignore[import-untyped]
from alibabacloud_tea_openapi import exceptions as sdk_errors  # type: ignore[import-untyped]
from alibabacloud_tea_openapi.utils_models import Config  # type: ignore[import-untyped]
from darabonba.exceptions import (  # type: ignore[import-untyped]
    UnretryableException,
    ValidateException,
)
from darabonba.runtime import RuntimeOptions  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field
from Tea.exceptions import ValidateException as TeaValidateException  # type: ignore[import-untyped]

from image_operator.api.image import ImageFormat, UrlSource
from image_operator.api.pipeline import ImagePipelineSpec
from image_operator.providers.base import (
    CREATE_OPERATION,
    CloudImage,
    CloudState,
    ImageRequest,
    Operation,
    Provider,
)
from image_operator.providers.capabilities import CopiesWithin
from image_operator.providers.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ProviderError,
    Throttled,
    Transient,
    Unsupported,
)
from image_operator.providers.pipelines import (
    BuildsPipelines,
    PipelineBuild,
    PipelineExecution,
    PipelineInfo,
    TargetResult,
)
from image_operator.providers.ratelimit import TokenBucket

if TYPE_CHECKING:
    from image_operator.providers.factory import ProviderConfig

T = TypeVar("T")

UID_TAG: Final = "imageops.io/uid"
MAX_TAGS: Final = 20
DESCRIBE_BATCH: Final = 100  # ImageIds per DescribeImages call (ECS's limit)
SHARE_BATCH: Final = 10  # AddAccount.N / RemoveAccount.N per ModifyImageSharePermission
MAX_CLIENT_TOKEN: Final = 64

_STATES: Final = {
    "Waiting": CloudState.PENDING,
    "Creating": CloudState.CREATING,
    "Available": CloudState.AVAILABLE,
    "Deprecated": CloudState.AVAILABLE,
    "CreateFailed": CloudState.FAILED,
    "UnAvailable": CloudState.FAILED,
}
_FORMATS: Final = {
    ImageFormat.QCOW2: "QCOW2",
    ImageFormat.RAW: "RAW",
    ImageFormat.VHD: "VHD",
    ImageFormat.VMDK: "VMDK",
}
_ARCHITECTURES: Final = {
    "amd64": "x86_64",
    "x86_64": "x86_64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "i386": "i386",
    "i686": "i386",
}

# Vendor codes, by what they mean to a reconciler.
_NOT_FOUND: Final = frozenset(
    {
        "InvalidImageId.NotFound",
        "InvalidImagePipelineId.NotFound",
        "InvalidImagePipelineExecutionId.NotFound",
    }
)
_CONFLICT: Final = frozenset({"IdempotentParameterMismatch", "Idempotence.SignatureMismatch"})
_FORBIDDEN_PREFIXES: Final = (
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidSecurityToken",
    "InvalidTimeStamp",
    "Forbidden",
    "NoPermission",
)
# The object is busy (being made, a run in progress): the same call succeeds later.
_BUSY: Final = frozenset(
    {
        "IncorrectImageStatus",
        "SignatureNonceUsed",
        "OperationDenied.ImagePipelineExecutionRunning",
    }
)


# --- mapping the operator's model onto ECS ---------------------------------------------------


@dataclass(frozen=True)
class OssLocation:
    bucket: str
    key: str
    region: str | None  # known for OSS's own URLs, None for a private endpoint's


_OSS_HOST = re.compile(
    r"(?P<bucket>[a-z0-9][a-z0-9-]{1,61}[a-z0-9])\.oss-(?P<region>[a-z0-9-]+?)"
    r"(?:-internal)?\.aliyuncs\.com"
)


def oss_location(url: str, endpoint: str | None) -> OssLocation:
    """The OSS bucket and object an import URL names.

    ECS imports only from OSS, by bucket and object. Accepted:
    - OSS's virtual-hosted URLs: `https://<bucket>.oss-<region>[-internal].aliyuncs.com/<key>`;
    - path-style on the provider's own endpoint: `<spec.endpoint>/oss/<bucket>/<key>` (the
      bundled emulator serves OSS there; so could a private deployment).
    A query string (e.g. a presigned URL's) is ignored: ECS reads the object with its role.
    """
    parsed = urlsplit(url)
    key = unquote(parsed.path.lstrip("/"))
    match = _OSS_HOST.fullmatch((parsed.hostname or "").lower())
    if match and key:
        return OssLocation(match["bucket"], key, match["region"])
    if endpoint:
        base = urlsplit(endpoint)
        if (parsed.scheme, parsed.netloc) == (base.scheme, base.netloc) and parsed.path.startswith(
            "/oss/"
        ):
            bucket, _, object_key = parsed.path.removeprefix("/oss/").partition("/")
            if bucket and object_key:
                return OssLocation(bucket, unquote(object_key), None)
    raise InvalidInput(
        "spec.source.url.url must name an OSS object, which is all ECS can import: "
        "https://<bucket>.oss-<region>.aliyuncs.com/<object>"
        + (f" or {endpoint.rstrip('/')}/oss/<bucket>/<object>" if endpoint else "")
    )


def cloud_name(request: ImageRequest) -> str:
    """ECS ImageName: the Kubernetes name plus the UID prefix, made to fit ECS's rules (2-128
    characters starting with a letter, not aliyun/acs:); Kubernetes names may start with a
    digit, so those get an `img-` prefix."""
    base = request.name
    if not base[:1].isalpha() or base.startswith("aliyun"):
        base = f"img-{base}"
    return f"{base[:110]}-{request.idempotency_key.replace('-', '')[:8]}"


def client_token(purpose: str, key: str) -> str:
    """A ClientToken (ASCII, at most 64 characters) for one purpose of one object."""
    token = f"{purpose}-{key}"
    if len(token) <= MAX_CLIENT_TOKEN and token.isascii():
        return token
    return f"{purpose[:20]}-{hashlib.sha256(key.encode()).hexdigest()[:40]}"


def _uid_tag(request: ImageRequest) -> tuple[str, str]:
    return (UID_TAG, request.idempotency_key)


def _image_tags(request: ImageRequest) -> list[tuple[str, str]]:
    user = request.spec.tags or {}
    if len(user) >= MAX_TAGS:
        raise InvalidInput(
            f"spec.tags has {len(user)} tags; ECS images take at most {MAX_TAGS} and the "
            f"operator adds {UID_TAG}, so give at most {MAX_TAGS - 1}"
        )
    return [_uid_tag(request), *sorted(user.items())]


# --- pipelines: the typed boundary for the ImagePipeline controller --------------------------


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
        import_options = ImportImageOptions(
            disks=[
                OssDisk(
                    bucket=base.oss.bucket,
                    object=base.oss.object,
                    format=cast(Any, fmt),
                    disk_image_size_gib=base.oss.disk_image_size_gib,
                )
            ]
        )
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
        repair_mode=spec.repair_mode,
        resource_group_id=spec.resource_group_id,
        tags=[PipelineTag(key=tag.key, value=tag.value or "") for tag in spec.tags or []],
        image_options=_image_options(spec),
        import_image_options=import_options,
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


def _tags(model: Any, items: Iterable[tuple[str, str]]) -> list[Any]:
    return [model(key=key, value=value) for key, value in items]


def _pipeline_request(
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
            import_image_tags=_tags(
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
            image_tags=_tags(
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
        tag=_tags(ecs.CreateImagePipelineRequestTag, ((tag.key, tag.value) for tag in t.tags))
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


# --- errors -----------------------------------------------------------------------------------


def _provider_error(action: str, exc: Exception) -> ProviderError:
    """The one place where SDK and ECS errors become provider errors (messages carry no keys)."""
    if isinstance(exc, ValidateException | TeaValidateException):
        return InvalidInput(f"aliyun ECS {action}: the SDK refused the request: {exc}")
    if isinstance(exc, UnretryableException):
        inner = getattr(exc, "inner_exception", None)
        # The inner exception's text can hold the request URL; its type says enough.
        return Transient(
            f"aliyun ECS {action}: the endpoint is unreachable "
            f"({type(inner).__name__ if inner is not None else 'no response'})"
        )
    if not isinstance(exc, sdk_errors.AlibabaCloudException):
        return Transient(f"aliyun ECS {action}: unexpected {type(exc).__name__}")
    data = exc.data if isinstance(exc.data, dict) else {}
    code = str(exc.code or data.get("Code") or "Unknown")
    text = str(data.get("Message") or "no message")
    request_id = data.get("RequestId") or exc.request_id
    message = f"aliyun ECS {action} answered {code}: {text}"
    if request_id:
        message += f" (request {request_id})"
    status = exc.status_code or 0
    if isinstance(exc, sdk_errors.ThrottlingException) or code.startswith("Throttling"):
        retry_after_ms = getattr(exc, "retry_after", None)
        return Throttled(
            message,
            vendor_code=code,
            retry_after=retry_after_ms / 1000 if retry_after_ms else None,
        )
    if code in _NOT_FOUND:
        return NotFound(message, vendor_code=code)
    if code in _CONFLICT:
        return Conflict(message, vendor_code=code)
    if code.startswith(_FORBIDDEN_PREFIXES):
        return Forbidden(message, vendor_code=code)
    if code in _BUSY or status >= 500:
        return Transient(message, vendor_code=code)
    return InvalidInput(message, vendor_code=code)


# --- the provider -----------------------------------------------------------------------------


class AliyunProvider(Provider, CopiesWithin, BuildsPipelines):
    type_name = "aliyun"
    operations = frozenset({Operation.IMPORT_URL, Operation.COPY, Operation.DELETE})

    def __init__(
        self,
        *,
        client: EcsClient,
        region: str,
        endpoint: str | None = None,
        limiter: TokenBucket | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.region = region
        self.endpoint = endpoint
        self._client = client
        self._limiter = limiter
        self._runtime = RuntimeOptions(
            read_timeout=int(timeout * 1000), connect_timeout=int(min(timeout, 10.0) * 1000)
        )

    def _call(self, action: str, method: Callable[[Any, Any], Any], request: Any) -> Any:
        """One SDK call (its `…_with_options` method): rate-limited, errors mapped."""
        if self._limiter is not None:
            self._limiter.acquire()
        try:
            return method(request, self._runtime).body
        except Exception as exc:
            raise _provider_error(action, exc) from None

    # -- images --

    def _cloud_image(self, image: Any) -> CloudImage:
        status = str(image.status or "")
        state = _STATES.get(status, CloudState.CREATING)
        progress = None
        if isinstance(image.progress, str) and image.progress.rstrip("%").isdigit():
            progress = min(100, int(image.progress.rstrip("%")))
        message = None
        if state is CloudState.FAILED:
            message = f"ECS reports the image as {status}"
        return CloudImage(
            external_id=str(image.image_id),
            state=state,
            progress=progress,
            message=message,
            raw=image.to_map(),
        )

    def _describe(self, **fields: Any) -> list[Any]:
        request = ecs.DescribeImagesRequest(
            region_id=self.region,
            image_owner_alias="self",
            status="ALL",  # ECS shows only Available images unless asked
            page_size=DESCRIBE_BATCH,
            **fields,
        )
        images: list[Any] = []
        page = 1
        while True:
            request.page_number = page
            body = self._call("DescribeImages", self._client.describe_images_with_options, request)
            batch = list((body.images.image if body.images else None) or [])
            images += batch
            if len(batch) < DESCRIBE_BATCH or len(images) >= (body.total_count or 0):
                return images
            page += 1

    def probe(self) -> str:
        body = self._call(
            "DescribeRegions",
            self._client.describe_regions_with_options,
            ecs.DescribeRegionsRequest(),
        )
        regions = [r.region_id for r in ((body.regions.region if body.regions else None) or [])]
        if self.region not in regions:
            raise InvalidInput(
                f"spec.region {self.region!r} is not an ECS region of this endpoint; "
                f"available: {', '.join(regions)}"
            )
        where = self.endpoint or "the public ECS endpoint"
        return f"aliyun ECS at {where}: region {self.region} ({len(regions)} regions)"

    def create_image(self, request: ImageRequest) -> CloudImage:
        source = request.spec.source
        self.require(CREATE_OPERATION[source.kind()])
        if source.url is None:
            # A copy needs its source's image ID, which only the reconciler knows.
            raise Unsupported(
                f"provider type aliyun creates images from spec.source.url; an Image with "
                f"spec.source.{source.kind()} is made by copy_within, not create_image"
            )
        return self.import_image(request, source.url)

    def import_image(self, request: ImageRequest, url: UrlSource) -> CloudImage:
        """ImportImage from the OSS object `url` names; idempotent by ClientToken."""
        location = oss_location(url.url, self.endpoint)
        if location.region is not None and location.region != self.region:
            raise InvalidInput(
                f"spec.source.url.url is in OSS region {location.region}, but ECS imports only "
                f"from the provider's region ({self.region}): copy the object there"
            )
        fmt = _FORMATS.get(url.format)
        if fmt is None:
            raise InvalidInput(
                f"ECS cannot import {url.format.value} files; use qcow2, raw, vhd or vmdk"
            )
        os_info = url.os
        call = ecs.ImportImageRequest(
            region_id=self.region,
            client_token=client_token("import", request.idempotency_key),
            image_name=cloud_name(request),
            description=request.spec.description,
            disk_device_mapping=[
                ecs.ImportImageRequestDiskDeviceMapping(
                    ossbucket=location.bucket, ossobject=location.key, format=fmt
                )
            ],
            ostype=os_info.type.lower() if os_info else None,
            platform=os_info.distribution if os_info else None,
            architecture=_ARCHITECTURES.get(os_info.arch, os_info.arch) if os_info else None,
            tag=_tags(ecs.ImportImageRequestTag, _image_tags(request)),
        )
        body = self._call("ImportImage", self._client.import_image_with_options, call)
        return CloudImage(external_id=str(body.image_id), state=CloudState.PENDING, progress=0)

    def copy_image(
        self, request: ImageRequest, source_image_id: str, source_region: str | None = None
    ) -> CloudImage:
        """CopyImage of a known image into this provider's region; idempotent by ClientToken,
        and the copy carries the request's UID tag, so `find_image` finds it too."""
        call = ecs.CopyImageRequest(
            region_id=source_region or self.region,
            image_id=source_image_id,
            destination_region_id=self.region,
            destination_image_name=cloud_name(request),
            destination_description=request.spec.description,
            client_token=client_token("copy", request.idempotency_key),
            tag=_tags(ecs.CopyImageRequestTag, _image_tags(request)),
        )
        body = self._call("CopyImage", self._client.copy_image_with_options, call)
        return CloudImage(external_id=str(body.image_id), state=CloudState.PENDING, progress=0)

    def copy_within(self, request: ImageRequest, source_external_id: str) -> CloudImage:
        """`spec.source.image` naming an image of this provider: a same-region CopyImage."""
        self.require(Operation.COPY)
        return self.copy_image(request, source_external_id)

    def find_image(self, request: ImageRequest) -> CloudImage | None:
        key, value = _uid_tag(request)
        found = self._describe(tag=[ecs.DescribeImagesRequestTag(key=key, value=value)])
        if not found:
            return None
        images = [self._cloud_image(image) for image in found]
        # A failed attempt and a later good one may both carry the key: prefer the good one.
        images.sort(key=lambda image: image.state is CloudState.FAILED)
        return images[0]

    def get_image(self, external_id: str) -> CloudImage:
        found = self.get_images([external_id]).get(external_id)
        if found is None:
            raise NotFound(f"aliyun ECS has no image {external_id!r} in region {self.region}")
        return found

    def get_images(self, external_ids: Iterable[str]) -> dict[str, CloudImage | None]:
        wanted = list(dict.fromkeys(external_ids))
        result: dict[str, CloudImage | None] = dict.fromkeys(wanted)
        for start in range(0, len(wanted), DESCRIBE_BATCH):
            batch = wanted[start : start + DESCRIBE_BATCH]
            for image in self._describe(image_id=",".join(batch)):
                cloud = self._cloud_image(image)
                if cloud.external_id in result:
                    result[cloud.external_id] = cloud
        return result

    def needs_update(self, request: ImageRequest, current: CloudImage) -> bool:
        # Name and description are fixed at import; nothing else of the spec lives in ECS.
        return False

    def update_image(self, external_id: str, request: ImageRequest) -> CloudImage:
        self.require(Operation.UPDATE)
        raise AssertionError("unreachable: aliyun does not offer updates")  # pragma: no cover

    def delete_image(self, external_id: str) -> None:
        self.require(Operation.DELETE)
        self._call(
            "DeleteImage",
            self._client.delete_image_with_options,
            ecs.DeleteImageRequest(region_id=self.region, image_id=external_id),
        )

    def modify_image_share_permission(
        self,
        image_id: str,
        *,
        add_accounts: Sequence[int | str] = (),
        remove_accounts: Sequence[int | str] = (),
        is_public: bool | None = None,
    ) -> None:
        """Share an image with accounts (or stop sharing), ten accounts per call."""
        adds = [str(a) for a in add_accounts]
        removes = [str(a) for a in remove_accounts]
        first = True
        while first or adds or removes:
            first = False
            self._call(
                "ModifyImageSharePermission",
                self._client.modify_image_share_permission_with_options,
                ecs.ModifyImageSharePermissionRequest(
                    region_id=self.region,
                    image_id=image_id,
                    add_account=adds[:SHARE_BATCH] or None,
                    remove_account=removes[:SHARE_BATCH] or None,
                    is_public=is_public,
                ),
            )
            adds, removes = adds[SHARE_BATCH:], removes[SHARE_BATCH:]

    # -- pipelines --

    def pipeline_fingerprint(self, build: PipelineBuild) -> str:
        return template_hash(pipeline_template(build))

    def pipeline_client_token(self, purpose: str, key: str) -> str:
        return client_token(purpose, key)

    def create_pipeline(self, build: PipelineBuild, *, client_token: str) -> str:
        """CreateImagePipeline for the template `build` makes."""
        return self.create_pipeline_from_template(
            pipeline_template(build), client_token=client_token
        )

    def create_pipeline_from_template(
        self, template: PipelineTemplate, *, client_token: str
    ) -> str:
        """CreateImagePipeline; the same `client_token` with the same template returns the
        same ID, with a different template raises Conflict."""
        request = _pipeline_request(self.region, template, client_token)
        body = self._call(
            "CreateImagePipeline", self._client.create_image_pipeline_with_options, request
        )
        return str(body.image_pipeline_id)

    def start_pipeline_execution(
        self,
        pipeline_id: str,
        *,
        client_token: str | None = None,
        tags: Iterable[tuple[str, str]] = (),
    ) -> str:
        request = ecs.StartImagePipelineExecutionRequest(
            region_id=self.region,
            image_pipeline_id=pipeline_id,
            client_token=client_token,
            tag=_tags(ecs.StartImagePipelineExecutionRequestTag, tags) or None,
        )
        body = self._call(
            "StartImagePipelineExecution",
            self._client.start_image_pipeline_execution_with_options,
            request,
        )
        return str(body.execution_id)

    def describe_pipeline_executions(
        self,
        *,
        pipeline_id: str | None = None,
        execution_id: str | None = None,
        statuses: Iterable[str] = (),
    ) -> list[PipelineExecution]:
        request = ecs.DescribeImagePipelineExecutionsRequest(
            region_id=self.region,
            image_pipeline_id=pipeline_id,
            execution_id=execution_id,
            status=",".join(statuses) or None,
            max_results=500,
        )

        def page(body: Any) -> list[Any]:
            container = body.image_pipeline_execution
            return list((container.image_pipeline_execution_set if container else None) or [])

        rows = self._pages(
            "DescribeImagePipelineExecutions",
            self._client.describe_image_pipeline_executions_with_options,
            request,
            page,
        )
        return [
            PipelineExecution(
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
            for row in rows
        ]

    def get_pipeline_execution(self, execution_id: str) -> PipelineExecution:
        found = self.describe_pipeline_executions(execution_id=execution_id)
        if not found:
            raise NotFound(f"aliyun ECS has no pipeline execution {execution_id!r}")
        return found[0]

    def cancel_pipeline_execution(self, execution_id: str) -> None:
        self._call(
            "CancelImagePipelineExecution",
            self._client.cancel_image_pipeline_execution_with_options,
            ecs.CancelImagePipelineExecutionRequest(
                region_id=self.region, execution_id=execution_id
            ),
        )

    def delete_pipeline(self, pipeline_id: str) -> None:
        self._call(
            "DeleteImagePipeline",
            self._client.delete_image_pipeline_with_options,
            ecs.DeleteImagePipelineRequest(region_id=self.region, image_pipeline_id=pipeline_id),
        )

    def describe_pipelines(
        self, pipeline_ids: Sequence[str] = (), *, name: str | None = None
    ) -> list[PipelineInfo]:
        """Templates by ID (any number: ECS takes 100 per call) or name, or all of them."""
        ids = list(pipeline_ids)
        batches = [ids[i : i + DESCRIBE_BATCH] for i in range(0, len(ids), DESCRIBE_BATCH)]

        def page(body: Any) -> list[Any]:
            container = body.image_pipeline
            return list((container.image_pipeline_set if container else None) or [])

        rows: list[Any] = []
        for batch in batches or [[]]:
            request = ecs.DescribeImagePipelinesRequest(
                region_id=self.region, image_pipeline_id=batch or None, name=name, max_results=500
            )
            rows += self._pages(
                "DescribeImagePipelines",
                self._client.describe_image_pipelines_with_options,
                request,
                page,
            )
        return [
            PipelineInfo(
                pipeline_id=str(row.image_pipeline_id),
                name=row.name,
                base_image_type=row.base_image_type,
                base_image=row.base_image,
                to_region_ids=list(
                    (row.to_region_ids.to_region_id if row.to_region_ids else None) or []
                ),
                add_accounts=list(
                    (row.add_accounts.add_account if row.add_accounts else None) or []
                ),
                created_at=row.creation_time,
                raw=row.to_map(),
            )
            for row in rows
        ]

    def _pages(
        self,
        action: str,
        method: Callable[[Any, Any], Any],
        request: Any,
        rows: Callable[[Any], list[T]],
    ) -> list[T]:
        """Every row of a NextToken-paged Describe call."""
        result: list[T] = []
        while True:
            body = self._call(action, method, request)
            result += rows(body)
            if not body.next_token:
                return result
            request.next_token = body.next_token


def build(config: ProviderConfig) -> AliyunProvider:
    """The factory's entry point for type `aliyun`."""
    spec = config.spec
    if not spec.region:
        raise InvalidInput(
            "spec.region (the ECS RegionId, e.g. cn-hangzhou) is required for type aliyun"
        )
    endpoint_host = None
    protocol = "https"
    if spec.endpoint:
        parsed = urlsplit(spec.endpoint)
        if parsed.path not in ("", "/") or parsed.query:
            raise InvalidInput(
                "spec.endpoint must be a base URL without a path for type aliyun, "
                "e.g. https://ecs.cn-hangzhou.aliyuncs.com"
            )
        endpoint_host, protocol = parsed.netloc, parsed.scheme
    sdk_config = Config(
        access_key_id=config.credentials["accessKeyId"],
        access_key_secret=config.credentials["accessKeySecret"],
        region_id=spec.region,
        endpoint=endpoint_host,
        protocol=protocol,
    )
    try:
        client = EcsClient(sdk_config)
    except Exception as exc:
        raise InvalidInput(
            f"cannot configure the ECS client for region {spec.region!r}: {type(exc).__name__}"
        ) from None
    return AliyunProvider(
        client=client,
        region=spec.region,
        endpoint=spec.endpoint.rstrip("/") if spec.endpoint else None,
        limiter=config.limiter,
    )

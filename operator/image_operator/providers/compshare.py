"""The `compshare` provider: UCloud CompShare custom images and their community publication.

Everything goes through `ucloud-sdk-python3`'s `ucompshare` client, which signs, encodes and
sends each call. Its typed methods are used wherever they carry every field; the one that does
not is `publish_comp_share_image`: its request schema silently drops `GroupId`, `VersionName`,
`VersionDesc` and `SupportedGpuTypes` (seed 000 requires `VersionName`) and demands a `Zone`,
so publication goes through the same client's generic `invoke("PublishCompShareImage", ...)`.

How an `Image` maps onto CompShare:

- The source is `spec.source.vm.vmID`: the CompShare instance (`UHostId`) to capture with
  `CreateCompShareCustomImage`. An image made from a container instance is a container image,
  the only kind the community accepts (seed 000); `diskID`/`storageSetType` do not exist here.
- The idempotency key lives in the image `Name`, which CompShare keeps unique per account:
  `<Kubernetes name, at most 41 chars>-<first 8 hex of the UID>`. A repeated create is refused
  as a name clash (`Conflict`) and the reconciler finds the first image by that name.
- `spec.description` is the image's `Description`, the one field pushed by updates
  (`UpdateCompShareImage`). Display name, price, cover and tags of the Argon model have no
  place on a CompShare custom image; the community listing (`publish`) carries its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from ucloud.client import Client  # type: ignore[import-untyped]
from ucloud.core import exc as sdk_errors  # type: ignore[import-untyped]
from ucloud.core.utils.middleware import Middleware  # type: ignore[import-untyped]

from image_operator.providers.base import Provider
from image_operator.providers.capabilities import CopiesWithin
from image_operator.providers.endpoints import EndpointPolicy, HostGuard, origin
from image_operator.providers.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    ProviderError,
    Unsupported,
)
from image_operator.providers.model import CloudImage, CloudState, ImageRequest, Operation
from image_operator.providers.publishing import (
    Listing,
    Publication,
    PublicationState,
    Publishes,
    PublishRequest,
)
from image_operator.providers.ratelimit import TokenBucket
from image_operator.providers.ucloud_errors import rpc_error
from image_operator.providers.ucloud_transport import GuardedTransport

if TYPE_CHECKING:
    from image_operator.providers.factory import ProviderConfig

DEFAULT_ENDPOINT = "https://api.compshare.cn"  # seed 000's base_url
_PAGE = 100  # the largest Limit DescribeCompShareCustomImages accepts
_NAME_PREFIX = 41  # 41 + "-" + 8 hex = 50, CompShare's longest image name

_STATES = {
    "Making": CloudState.CREATING,
    "Available": CloudState.AVAILABLE,
    # Reviewing concerns the community version; the custom image itself stays usable.
    "Reviewing": CloudState.AVAILABLE,
    "UnAvailable": CloudState.FAILED,
    "Offline": CloudState.FAILED,
}

# CompShare's own RetCodes (as the emulator answers them; docs/emulator.md). UCloud's common
# ones (signature, missing or refused parameters, throttling, outages) are ucloud_errors'.
_RET_CODES: dict[int, type[ProviderError]] = {
    8101: NotFound,  # image not found
    8102: InvalidInput,  # the instance (spec.source.vm.vmID) does not exist
    8103: Conflict,  # image name taken: the idempotency key at work
    8104: InvalidInput,  # the image's state forbids it (not Available)
    8105: InvalidInput,  # a VM image cannot be published
    8106: NotFound,  # listing group not found
    8107: Conflict,  # version name taken in the group
    8108: Conflict,  # already in review or published
}


def cloud_name(request: ImageRequest) -> str:
    """The image Name that carries the idempotency key (the UID's first 8 hex digits)."""
    return f"{request.name[:_NAME_PREFIX]}-{request.idempotency_key.replace('-', '')[:8]}"


def _fingerprint(description: str) -> str:
    return hashlib.sha256(description.encode("utf-8")).hexdigest()


_PUBLICATION_STATES = {
    "Reviewing": PublicationState.IN_REVIEW,
    "Available": PublicationState.PUBLISHED,
    "UnAvailable": PublicationState.REJECTED,
    "Offline": PublicationState.OFFLINE,
}


def _publication(group_id: str, item: Mapping[str, Any]) -> Publication:
    status = str(item.get("Status", ""))
    state = _PUBLICATION_STATES.get(status, PublicationState.IN_REVIEW)
    pub_time = item.get("PubTime")
    return Publication(
        image_id=str(item.get("CompShareImageId", "")),
        group_id=str(item.get("GroupId") or group_id),
        version_name=str(item.get("VersionName", "")),
        state=state,
        reason=(item.get("FailedReason") or None) if state is PublicationState.REJECTED else None,
        community_image_name=item.get("Name") or None,
        published_at=datetime.fromtimestamp(int(pub_time), tz=UTC) if pub_time else None,
        raw=dict(item),
    )


def _price(price: float | str | Decimal) -> float:
    try:
        value = Decimal(str(price))
    except InvalidOperation:
        raise InvalidInput(f"price {price!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise InvalidInput(f"price {price!r} must be a number ≥ 0 (0 = free)")
    return float(value)


class CompShareProvider(Provider, CopiesWithin, Publishes):
    type_name = "compshare"
    operations = frozenset(
        {Operation.CREATE_FROM_VM, Operation.COPY, Operation.UPDATE, Operation.DELETE}
    )

    def __init__(
        self,
        *,
        endpoint: str,
        region: str,
        zone: str,
        public_key: str,
        private_key: str,
        project_id: str | None = None,
        limiter: TokenBucket | None = None,
        guard: HostGuard | None = None,
        timeout: int = 30,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.region = region
        self.zone = zone
        self._limiter = limiter
        # Our own middleware: the SDK's default one logs every request and answer in full
        # (covers, readmes); ours only applies the rate limit before each attempt.
        middleware = Middleware()
        middleware.request(self._throttle)
        self._client = Client(
            {
                "region": region,
                "project_id": project_id,
                "public_key": public_key,
                "private_key": private_key,
                "base_url": self.endpoint,
                "timeout": timeout,
                "max_retries": 0,  # the reconciler retries with backoff; the SDK must not
            },
            transport=GuardedTransport(guard or HostGuard.for_endpoint(EndpointPolicy(), endpoint)),
            middleware=middleware,
        ).ucompshare()

    def _throttle(self, request: dict[str, Any]) -> dict[str, Any]:
        if self._limiter is not None:
            self._limiter.acquire()
        return request

    def _call(self, action: str, function: Callable[..., Any], *args: Any) -> dict[str, Any]:
        try:
            result = function(*args)
        except (sdk_errors.UCloudException, OSError) as error:  # requests' errors are OSErrors
            raise rpc_error(
                error, service="compshare", action=action, ret_codes=_RET_CODES
            ) from None
        return dict(result or {})

    # -- describing --

    def _describe(self, **filters: Any) -> dict[str, Any]:
        return self._call(
            "DescribeCompShareCustomImages",
            self._client.describe_comp_share_custom_images,
            {"Zone": self.zone, **filters},
        )

    def _pages(self) -> Iterable[list[dict[str, Any]]]:
        """Every custom image of the zone, one page (one call) at a time."""
        offset = 0
        while True:
            answer = self._describe(Offset=offset, Limit=_PAGE)
            page = [dict(item) for item in answer.get("ImageSet") or []]
            yield page
            offset += len(page)
            if not page or offset >= int(answer.get("TotalCount") or 0):
                return

    def _progress(self, external_id: str) -> int | None:
        answer = self._call(
            "GetCompShareImageCreateProgress",
            self._client.get_comp_share_image_create_progress,
            {"Zone": self.zone, "CompShareImageId": external_id},
        )
        process = answer.get("Process")
        return None if process is None else max(0, min(100, math.floor(float(process))))

    def _cloud_image(self, item: Mapping[str, Any], progress: int | None = None) -> CloudImage:
        status = str(item.get("Status", ""))
        state = _STATES.get(status, CloudState.CREATING)
        message = None
        if state is CloudState.FAILED:
            message = str(item.get("FailedReason") or f"the image is {status}")
        if state is CloudState.AVAILABLE:
            progress = 100
        return CloudImage(
            external_id=str(item["CompShareImageId"]),
            state=state,
            progress=progress,
            message=message,
            fingerprint=_fingerprint(str(item.get("Description") or "")),
            raw=dict(item),
        )

    def _with_progress(self, item: Mapping[str, Any]) -> CloudImage:
        # Describe has no progress field; only images still being made cost a progress call.
        progress = None
        if item.get("Status") == "Making":
            # Deleted since the describe: no progress now; the next poll sees it gone.
            with contextlib.suppress(NotFound):
                progress = self._progress(str(item["CompShareImageId"]))
        return self._cloud_image(item, progress)

    def probe(self) -> str:
        answer = self._describe(Limit=1)
        return (
            f"compshare at {origin(self.endpoint)}, region {self.region}, zone {self.zone}: "
            f"{int(answer.get('TotalCount') or 0)} custom images"
        )

    def get_image(self, external_id: str) -> CloudImage:
        answer = self._describe(CompShareImageId=external_id)
        for item in answer.get("ImageSet") or []:
            if item.get("CompShareImageId") == external_id:
                return self._with_progress(item)
        raise NotFound(f"compshare has no custom image {external_id!r} in zone {self.zone}")

    def get_images(self, external_ids: Iterable[str]) -> dict[str, CloudImage | None]:
        """One describe per 100 images of the zone; when the wanted images are fewer than the
        pages still to read, those not on the first page are described one by one instead."""
        wanted = list(dict.fromkeys(external_ids))
        if not wanted:
            return {}
        wanted_set = set(wanted)
        found: dict[str, Mapping[str, Any]] = {}

        def keep(items: Iterable[Mapping[str, Any]]) -> None:
            found.update(
                (i["CompShareImageId"], i) for i in items if i["CompShareImageId"] in wanted_set
            )

        first = self._describe(Offset=0, Limit=_PAGE)
        items = list(first.get("ImageSet") or [])
        total = int(first.get("TotalCount") or 0)
        keep(items)
        missing = [w for w in wanted if w not in found]
        pages_left = math.ceil(max(0, total - len(items)) / _PAGE)
        if missing and pages_left and pages_left <= len(missing):
            offset = len(items)
            while offset < total:
                page = list(self._describe(Offset=offset, Limit=_PAGE).get("ImageSet") or [])
                if not page:
                    break
                offset += len(page)
                keep(page)
            # Pages are not one snapshot: an image deleted meanwhile shifts the others to
            # earlier offsets, so one may slip between two pages. "Gone" makes the reconciler
            # create the image again, so it is only said after asking for that image itself.
            missing = [w for w in wanted if w not in found]
        if missing and pages_left:
            for external_id in missing:
                keep(self._describe(CompShareImageId=external_id).get("ImageSet") or [])
        return {w: self._with_progress(found[w]) if w in found else None for w in wanted}

    def find_image(self, request: ImageRequest) -> CloudImage | None:
        name = cloud_name(request)
        for page in self._pages():
            for item in page:
                if item.get("Name") == name:
                    return self._with_progress(item)
        return None

    # -- changing --

    def create_image(self, request: ImageRequest) -> CloudImage:
        self.require(Operation.CREATE_FROM_VM)
        source = request.spec.source.vm
        if source is None:
            raise Unsupported(
                f"provider type compshare makes images from an instance (spec.source.vm), "
                f"not from spec.source.{request.spec.source.kind()}"
            )
        for field, value in (
            ("diskID", source.disk_id),
            ("storageSetType", source.storage_set_type),
        ):
            if value:
                raise InvalidInput(
                    f"spec.source.vm.{field} is not supported by compshare: an image captures "
                    "the whole instance; remove it"
                )
        name = cloud_name(request)
        description = request.spec.description or ""
        args: dict[str, Any] = {"Zone": self.zone, "Name": name, "UHostId": source.vm_id}
        if description:
            args["Description"] = description
        answer = self._call(
            "CreateCompShareCustomImage", self._client.create_comp_share_custom_image, args
        )
        external_id = str(answer["CompShareImageId"])
        item = {
            "CompShareImageId": external_id,
            "Name": name,
            "Description": description,
            "Status": "Making",
        }
        return self._cloud_image(item, progress=0)

    def needs_update(self, request: ImageRequest, current: CloudImage) -> bool:
        return _fingerprint(request.spec.description or "") != current.fingerprint

    def update_image(self, external_id: str, request: ImageRequest) -> CloudImage:
        self.require(Operation.UPDATE)
        self._call(
            "UpdateCompShareImage",
            self._client.update_comp_share_image,
            {
                "Zone": self.zone,
                "CompShareImageId": external_id,
                "Description": request.spec.description or "",
            },
        )
        return self.get_image(external_id)

    def delete_image(self, external_id: str) -> None:
        self.require(Operation.DELETE)
        self._call(
            "TerminateCompShareCustomImage",
            self._client.terminate_comp_share_custom_image,
            {"Zone": self.zone, "CompShareImageId": external_id},
        )

    def copy_image(self, external_id: str, target_name: str | None = None) -> str:
        """Copy an Available custom image (CopyCompShareCustomImage); returns the new ID.

        Not idempotent by itself: pass a `target_name` so a retried copy is refused as a name
        clash (`Conflict`) instead of making a second copy.
        """
        args: dict[str, Any] = {"Zone": self.zone, "CompShareImageId": external_id}
        if target_name:
            args["TargetImageName"] = target_name
        answer = self._call(
            "CopyCompShareCustomImage", self._client.copy_comp_share_custom_image, args
        )
        return str(answer["NewCompShareImageId"])

    def copy_within(self, request: ImageRequest, source_external_id: str) -> CloudImage:
        """`spec.source.image` naming an image of this provider. The copy is named as
        `create_image` names images, so `find_image` finds it after a lost answer and a retry
        is refused as a name clash instead of copying twice; the description follows as an
        update once the copy is Available."""
        self.require(Operation.COPY)
        name = cloud_name(request)
        external_id = self.copy_image(source_external_id, name)
        item = {"CompShareImageId": external_id, "Name": name, "Status": "Making"}
        return self._cloud_image(item, progress=0)

    # -- community publication (seed 000) --

    def container_made(self, image: CloudImage) -> bool:
        """Only container images may be published; CompShare marks VM-made ones
        `Container: "False"` in the describe answer (`raw`)."""
        return image.raw.get("Container") != "False"

    def publication_copy_name(self, request: ImageRequest) -> str:
        """A copy made to publish is named like every image: by `cloud_name`."""
        return cloud_name(request)

    def publish(self, image_id: str, request: PublishRequest) -> None:
        """Submit a container image for the community's review (PublishCompShareImage), with
        every field of seed 000."""
        args: dict[str, Any] = {
            "Zone": self.zone,
            "CompShareImageId": image_id,
            "VersionName": request.version_name,
            # Optional in seed 000 (0 = free) but required by the SDK's own model: always sent.
            "Price": _price(request.price if request.price is not None else 0),
        }
        optional: dict[str, Any] = {
            "GroupId": request.group_id,
            "CommunityImageName": request.community_image_name,
            "VersionDesc": request.version_desc,
            "Cover": request.cover,
            "Tags": request.tags,
            "Description": request.description,
            "Readme": request.readme,
            "SupportedGpuTypes": request.supported_gpu_types or None,
            "AutoStart": request.auto_start,
        }
        args.update({key: value for key, value in optional.items() if value is not None})
        # The typed method would drop VersionName, GroupId, VersionDesc and SupportedGpuTypes.
        self._call("PublishCompShareImage", self._client.invoke, "PublishCompShareImage", args)

    def _groups(self, **filters: str) -> list[dict[str, Any]]:
        answer = self._call(
            "DescribeSelfCommunityImages",
            self._client.describe_self_community_images,
            {"Zone": self.zone, **filters},
        )
        return [dict(group) for group in answer.get("ImageSetGroup") or []]

    def describe_publication(self, image_id: str) -> Publication | None:
        """The review state of the version `image_id` was published as; None if never."""
        for group in self._groups(CompShareImageId=image_id):
            for item in group.get("Data") or []:
                if item.get("CompShareImageId") == image_id:
                    return _publication(str(group.get("GroupId", "")), item)
        return None

    def describe_listing(self, group_id: str) -> Listing:
        """A listing group and all its versions. Raises `NotFound`."""
        for group in self._groups(GroupId=group_id):
            if group.get("GroupId") == group_id:
                return Listing(
                    group_id=group_id,
                    name=str(group.get("ImageName") or ""),
                    published=group.get("Status") == "Available",
                    versions=[_publication(group_id, item) for item in group.get("Data") or []],
                )
        raise NotFound(f"compshare has no community listing group {group_id!r}")


def build(config: ProviderConfig) -> CompShareProvider:
    """The factory's entry point for type `compshare`."""
    spec = config.spec
    if not spec.region:
        raise InvalidInput("spec.region is required for type compshare (e.g. cn-wlcb)")
    if not spec.zone:
        raise InvalidInput(
            "spec.zone is required for type compshare: its image calls are per zone "
            "(e.g. cn-wlcb-01)"
        )
    return CompShareProvider(
        endpoint=spec.endpoint or DEFAULT_ENDPOINT,
        region=spec.region,
        zone=spec.zone,
        public_key=config.credentials["publicKey"],
        private_key=config.credentials["privateKey"],
        project_id=spec.project,
        limiter=config.limiter,
        guard=config.guard(spec.endpoint or DEFAULT_ENDPOINT),
    )

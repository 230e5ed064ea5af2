"""The `ucloudstack` provider: a private cloud's IMAGE API (seed 003) through ucloud-sdk-python3.

Every RPC goes through the SDK's generic `Client.invoke(action, params)`, which signs, encodes
and sends exactly as the SDK's typed services do; the IMAGE actions have no typed service.
Local-import parts go to the region's S3-style data route (`<endpoint>/s3/...`) with httpx:
the SDK has no client for that data plane (`ucloudstack_data.DataPlane`). The API's answers
and tag encoding are modelled in `ucloudstack_wire`.

The API has no client token, so the idempotency key is a tag: every image carries
`imageops.io/uid:<Kubernetes UID>` (Base64-encoded on the wire, as TagKeyValuePairs must be),
and `find_image` looks it up again with DescribeImage (Keyword = the image name) filtered by
that tag.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

import httpx
import requests
from ucloud.client import Client  # type: ignore[import-untyped]
from ucloud.core.exc import UCloudException  # type: ignore[import-untyped]
from ucloud.core.utils.middleware import Middleware  # type: ignore[import-untyped]

from image_operator.api.image import ImageFormat, OsInfo
from image_operator.providers.base import Provider
from image_operator.providers.capabilities import (
    BaseImageInfo,
    BaseImages,
    ExportedImage,
    ExportsImages,
    LocalImport,
    MultipartUploads,
    UploadSession,
)
from image_operator.providers.endpoints import EndpointPolicy, HostGuard
from image_operator.providers.errors import InvalidInput, NotFound, ProviderError, Transient
from image_operator.providers.model import (
    CloudImage,
    CloudState,
    ImageMatch,
    ImageRequest,
    ImageSelector,
    Operation,
)
from image_operator.providers.ratelimit import TokenBucket
from image_operator.providers.ucloud_errors import rpc_error
from image_operator.providers.ucloud_transport import GuardedTransport
from image_operator.providers.ucloudstack_data import DataPlane
from image_operator.providers.ucloudstack_wire import (
    SERVICE,
    STATES,
    UID_TAG,
    BaseImageWire,
    DownloadURL,
    ImageInfo,
    OSVersion,
    fingerprint,
    flag_params,
    flags_differ,
    image_tags,
    os_differs,
    os_of,
    os_params,
    tag_pairs,
)

if TYPE_CHECKING:
    from image_operator.providers.factory import ProviderConfig

NAME_MAX: Final = 50
PAGE: Final = 100  # DescribeImage's largest page (Limit)
FORMATS: Final = ("qcow2", "iso")
# The two actions whose parameters (seed) have no CompanyID: the key pair's tenant applies.
WITHOUT_COMPANY: Final = frozenset({"DescribeBaseImage", "GetImageDownloadURL"})

# The service's own RetCodes (the gateway's common ones are in ucloud_errors).
RET_CODES: Final[Mapping[int, type[ProviderError]]] = {
    8010: NotFound,  # image not found
    8011: NotFound,  # upload not found
    8020: Transient,  # the image is busy (making, importing, aborting): its state will move
    8021: InvalidInput,  # the image's type or state never allows the action
    8030: InvalidInput,  # the uploaded parts cannot be completed
}


def cloud_name(request: ImageRequest) -> str:
    """The ImageName: the Kubernetes name (its characters are all allowed), cut to 50."""
    return request.name[:NAME_MAX]


class UCloudStackProvider(Provider, BaseImages, ExportsImages, MultipartUploads):
    type_name = SERVICE
    # IMPORT_UPLOAD: the image is created by `image-operator upload` (import_local and the
    # parts below), never by create_image; the operator finds it by its tag and watches it.
    operations = frozenset(
        {
            Operation.CREATE_FROM_VM,
            Operation.IMPORT_URL,
            Operation.IMPORT_UPLOAD,
            Operation.UPDATE,
            Operation.DELETE,
        }
    )

    def __init__(
        self,
        *,
        endpoint: str,
        region: str,
        company_id: int,
        public_key: str,
        private_key: str,
        project_id: str | None = None,
        limiter: TokenBucket | None = None,
        policy: EndpointPolicy | None = None,
        timeout: float = 30.0,
        image_secret: str | None = None,
    ) -> None:
        policy = policy or EndpointPolicy()
        self.region = region
        # ImportImage's Secret (the image's key): a credential, so it comes from the
        # ImageProvider's Secret (key imageSecret), never from a spec.
        self._image_secret = image_secret
        self.company_id = company_id
        self.project_id = project_id
        self._limiter = limiter
        # An empty Middleware: the SDK's default one logs every request's parameters.
        self._client = Client(
            {
                "base_url": endpoint.rstrip("/"),
                "region": region,
                "public_key": public_key,
                "private_key": private_key,
                "timeout": int(timeout),
                "max_retries": 0,  # the reconcilers retry, with backoff
            },
            # The signed RPCs go to the endpoint's host only, redirects included.
            transport=GuardedTransport(HostGuard.for_endpoint(policy, endpoint)),
            middleware=Middleware(),
        )
        # Download URLs are the cloud's to name (presigned, no key sent): any host the policy
        # accepts.
        data_guard = HostGuard.for_endpoint(policy, endpoint, others=True)
        self._data = DataPlane(endpoint, limiter=limiter, guard=data_guard, timeout=timeout)
        self.data_url = self._data.url

    # -- plumbing --

    def _call(self, action: str, **params: Any) -> dict[str, Any]:
        """One signed RPC; CompanyID is added where the action takes it, None values dropped."""
        if action not in WITHOUT_COMPANY:
            params = {"CompanyID": self.company_id, **params}
        if self._limiter is not None:
            self._limiter.acquire()
        try:
            response: dict[str, Any] = self._client.invoke(
                action, {key: value for key, value in params.items() if value is not None}
            )
        except (UCloudException, requests.RequestException) as exc:
            raise rpc_error(
                exc,
                service=SERVICE,
                action=action,
                ret_codes=RET_CODES,
                secrets=(str(self.company_id),),
            ) from exc
        return response

    def _data_call(self, method: str, url: str, operation: str, **kwargs: Any) -> httpx.Response:
        return self._data.request(method, url, operation, **kwargs)

    def _describe(self, **params: Any) -> Iterable[dict[str, Any]]:
        """Every ImageInfo DescribeImage returns for `params`, page by page."""
        offset = 0
        while True:
            page = self._call("DescribeImage", **params, Limit=PAGE, Offset=offset)
            infos = list(page.get("Infos") or [])
            yield from infos
            offset += len(infos)
            if not infos or offset >= int(page.get("TotalCount") or 0):
                return

    def _cloud_image(self, raw: Mapping[str, Any]) -> CloudImage:
        info = ImageInfo.model_validate(raw)
        percent = info.percent if info.percent is not None and 0 <= info.percent <= 100 else None
        return CloudImage(
            external_id=info.image_id,
            state=STATES.get(info.image_status, CloudState.CREATING),
            progress=percent,
            message=info.reason or None,
            fingerprint=fingerprint(info),
            raw=raw,
        )

    def _info(self, image_id: str) -> dict[str, Any]:
        page = self._call("DescribeImage", ImageIDs=[image_id], Limit=1)
        for raw in page.get("Infos") or []:
            if raw.get("ImageID") == image_id:
                return dict(raw)
        raise NotFound(f"{SERVICE} has no image {image_id!r} in region {self.region}")

    # -- the Provider interface --

    def probe(self) -> str:
        page = self._call("DescribeImage", Limit=1)
        # Not the company ID: it comes from the Secret, and the answer goes to status and events.
        return f"{SERVICE} region {self.region}: {int(page.get('TotalCount') or 0)} images"

    def create_image(self, request: ImageRequest) -> CloudImage:
        spec = request.spec
        self.require_source(spec.source.kind())
        common = {
            "ProjectID": self.project_id,
            "ImageName": cloud_name(request),
            "ImageDescription": spec.description,
            "TagKeyValuePairs": image_tags(request),
        }
        if spec.source.vm is not None:
            vm = spec.source.vm
            response = self._call(
                "CreateCustomImage",
                **common,
                VMID=vm.vm_id,
                DiskID=vm.disk_id,
                StorageSetType=vm.storage_set_type,
            )
        elif spec.source.upload is not None:
            raise InvalidInput(
                "spec.source.upload images are made by `image-operator upload img/NAME FILE`, "
                "which streams the file; the operator only watches them"
            )
        else:
            url = spec.source.url
            assert url is not None  # require() admitted only vm, url and upload
            if url.format.value not in FORMATS:
                raise InvalidInput(
                    f"spec.source.url.format {url.format.value!r} cannot be imported into "
                    f"{SERVICE}; it accepts: {', '.join(FORMATS)}"
                )
            if url.os is None:
                raise InvalidInput(
                    f"spec.source.url.os is required for {SERVICE} imports (ImportImage "
                    "requires OSType, SetArch, OSDistribution and OSVersion)"
                )
            self.check_os(url.os, "spec.source.url.os")
            options = spec.ucloudstack
            response = self._call(
                "ImportImage",
                **common,
                ImageFormat=url.format.value,
                ImportType="Remote",
                LoadURL=url.url,
                ImageSize=options.image_size_gib if options else None,
                Secret=self._image_secret,
                **os_params(url.os),
                **flag_params(options),
            )
        return CloudImage(external_id=str(response["ImageID"]), state=CloudState.PENDING)

    def find_image(self, request: ImageRequest) -> CloudImage | None:
        candidates = [
            raw
            for raw in self._describe(Keyword=cloud_name(request), ImageType="Custom")
            if ImageInfo.model_validate(raw).tag(UID_TAG) == request.idempotency_key
        ]
        if not candidates:
            return None
        # Only one create per key should ever succeed; if several did, the first one wins.
        first = min(candidates, key=lambda raw: (int(raw.get("CreateTime") or 0), raw["ImageID"]))
        return self._cloud_image(first)

    def get_image(self, external_id: str) -> CloudImage:
        return self._cloud_image(self._info(external_id))

    def get_images(self, external_ids: Iterable[str]) -> dict[str, CloudImage | None]:
        wanted = list(dict.fromkeys(external_ids))
        found: dict[str, CloudImage | None] = dict.fromkeys(wanted)
        for start in range(0, len(wanted), PAGE):
            batch = wanted[start : start + PAGE]
            page = self._call("DescribeImage", ImageIDs=batch, Limit=len(batch))
            for raw in page.get("Infos") or []:
                if raw.get("ImageID") in found:
                    found[raw["ImageID"]] = self._cloud_image(raw)
        return found

    def needs_update(self, request: ImageRequest, current: CloudImage) -> bool:
        os = os_of(request.spec)
        info = ImageInfo.model_validate(current.raw)
        return (os is not None and os_differs(os, info)) or bool(
            flags_differ(request.spec.ucloudstack, info)
        )

    def update_image(self, external_id: str, request: ImageRequest) -> CloudImage:
        """UpdateImage with the spec's OS and spec.ucloudstack's flags. UpdateImage requires
        the OS: an image whose spec names none (captured from a VM) sends the OS it has."""
        self.require(Operation.UPDATE)
        flags = flag_params(request.spec.ucloudstack)
        os = os_of(request.spec)
        if os is None and flags:
            os = self._current_os(external_id)
        if os is not None:
            self._call("UpdateImage", ImageID=external_id, **os_params(os), **flags)
        return self.get_image(external_id)

    def _current_os(self, external_id: str) -> OsInfo:
        """The catalogue entry of an image's OS (ImageInfo has no OSVersion: its OSName holds
        it as a word)."""
        info = ImageInfo.model_validate(self._info(external_id))
        for entry in self.describe_os_versions():
            if (entry.os_type, entry.set_arch, entry.os_distribution) == (
                info.os_type,
                info.set_arch,
                info.os_distribution,
            ) and entry.os_version in info.os_name.split():
                return OsInfo(
                    type=entry.os_type,
                    distribution=entry.os_distribution,
                    version=entry.os_version,
                    arch=entry.set_arch,
                )
        raise InvalidInput(
            f"spec.ucloudstack cannot be applied to image {external_id}: UpdateImage needs its "
            f"OS, and {info.os_name!r} is not in {SERVICE}'s OS catalogue"
        )

    def delete_image(self, external_id: str) -> None:
        self.require(Operation.DELETE)
        info = ImageInfo.model_validate(self._info(external_id))
        status = info.image_status
        if status in ("Aborting", "Deleting"):
            return  # already on its way out
        if info.image_type == "Custom" and status in ("WaitMaking", "Making"):
            # An image being made cannot be deleted; aborting it removes it.
            self.abort_custom_image(external_id)
        elif info.import_type == "Local" and status == "Uploading":
            self._call("AbortImageMultipartUpload", ImageID=external_id)
        elif info.image_type == "Base":
            self.delete_base_image(external_id)
        else:
            self._call("DeleteCustomImage", ImageID=external_id)

    def close(self) -> None:
        self._data.close()

    # -- beyond the interface: for the BaseImage and upload controllers --

    def check_os(self, os: OsInfo, field: str) -> OSVersion:
        """The catalogue entry matching `os`; InvalidInput naming `field` and the choices."""
        catalogue = [entry for entry in self.describe_os_versions() if entry.status == "Ready"]
        for entry in catalogue:
            if entry.matches(os):
                return entry
        offered = "; ".join(
            f"{e.os_type}/{e.set_arch}/{e.os_distribution}/{e.os_version}" for e in catalogue
        )
        raise InvalidInput(
            f"{field} ({os.type}/{os.arch}/{os.distribution}/{os.version} as type/arch/"
            f"distribution/version) is not in {SERVICE}'s OS catalogue; it offers: "
            f"{offered or 'nothing'}"
        )

    def update_os(self, image_id: str, os: OsInfo) -> None:
        self._call("UpdateImage", ImageID=image_id, **os_params(os))

    def describe_os_versions(self, image_os_ids: Iterable[str] | None = None) -> list[OSVersion]:
        entries: list[OSVersion] = []
        ids = list(image_os_ids or []) or None
        while True:
            page = self._call(
                "DescribeImageOSVersions", ImageOSIDs=ids, Limit=PAGE, Offset=len(entries)
            )
            infos = page.get("Infos") or []
            entries.extend(OSVersion.model_validate(info) for info in infos)
            if not infos or len(entries) >= int(page.get("TotalCount") or 0):
                return entries

    def abort_custom_image(self, image_id: str) -> None:
        self._call("AbortCustomImage", ImageID=image_id)

    def clone_to_base_image(self, source_image_id: str, name: str) -> str:
        """Clone an Available custom image into a base image; returns the base image's ID."""
        response = self._call(
            "CloneCustomImageToBaseImage", SourceImageID=source_image_id, DestImageName=name
        )
        return str(response["DestImageID"])

    def describe_base_images(self, image_ids: Iterable[str] | None = None) -> list[BaseImageInfo]:
        page = self._call("DescribeBaseImage", ImageIDs=list(image_ids or []) or None)
        wires = [BaseImageWire.model_validate(info) for info in page.get("Infos") or []]
        return [BaseImageInfo(**wire.model_dump()) for wire in wires]

    def delete_base_image(self, image_id: str) -> None:
        self._call("DeleteBaseImage", ImageID=image_id)

    def clone_source(self, image: CloudImage) -> str | None:
        return str(image.raw["ImageFrom"]) if image.raw.get("ImageFrom") else None

    def find_clone(self, name: str, source_id: str) -> CloudImage | None:
        """DescribeBaseImage lists the tenant's base images with their names; DescribeImage (one
        batch for the candidates) tells which custom image each was cloned from (`ImageFrom`)."""
        candidates = [info.image_id for info in self.describe_base_images() if info.name == name]
        if not candidates:
            return None
        matches = [
            image
            for image in self.get_images(candidates).values()
            if image is not None
            and image.raw.get("ImageType") == "Base"
            and image.raw.get("ImageFrom") == source_id
        ]
        if not matches:
            return None
        return min(
            matches, key=lambda image: (int(image.raw.get("CreateTime") or 0), image.external_id)
        )

    def import_local(self, request: LocalImport) -> UploadSession:
        """Start a Local import; its parts then go to `upload_part`, then `complete_upload`."""
        image_format, os = request.image_format, request.os
        if image_format not in FORMATS:
            raise InvalidInput(
                f"format {image_format!r} cannot be imported into {SERVICE}; it accepts: "
                f"{', '.join(FORMATS)}"
            )
        self.check_os(os, "os")
        response = self._call(
            "ImportImage",
            ProjectID=self.project_id,
            ImageName=request.name[:NAME_MAX],
            ImageDescription=request.description,
            TagKeyValuePairs=tag_pairs(request.idempotency_key, request.tags),
            ImageFormat=image_format,
            ImportType="Local",
            ImageSize=request.size_gib,
            Secret=self._image_secret,
            **os_params(os),
            **flag_params(request.ucloudstack),
        )
        return UploadSession(
            image_id=str(response["ImageID"]),
            upload_id=str(response["UploadID"]),
            bucket=str(response["Bucket"]),
        )

    def upload_part(self, upload: UploadSession, part_number: int, data: bytes) -> str:
        """PUT one part (numbered from 1) with its MD5 and SHA-256; returns its ETag."""
        return self._data.put_part(upload, part_number, data)

    def complete_upload(self, upload: UploadSession) -> None:
        self._call(
            "CompleteImageMultipartUpload", ImageID=upload.image_id, UploadID=upload.upload_id
        )

    def abort_upload(self, upload: UploadSession) -> None:
        self._call("AbortImageMultipartUpload", ImageID=upload.image_id, UploadID=upload.upload_id)

    def receiving_upload(self, image: CloudImage) -> bool:
        return image.raw.get("ImageStatus") == "Uploading"

    def export_image(self, external_id: str) -> ExportedImage:
        """A download URL for the image's file, with the format its ImageFormat names (qcow2
        when it names none this provider knows)."""
        url = self.get_download_url(external_id)
        raw = self.get_image(external_id).raw
        try:
            image_format = ImageFormat(str(raw.get("ImageFormat") or "qcow2").lower())
        except ValueError:
            image_format = ImageFormat.QCOW2
        return ExportedImage(url=url.url, format=image_format, expires_at=url.expires_at)

    def get_download_url(self, image_id: str) -> DownloadURL:
        info = self._call("GetImageDownloadURL", ImageID=image_id).get("Info") or {}
        return DownloadURL(
            url=f"{self.data_url}/download?{info['DownloadQuery']}",
            expires_at=int(info["ExpiredTime"]),
        )

    def image_sha256(self, external_id: str) -> str:
        """GetImageDownloadURL, then the file streamed through SHA-256 (1 MiB at a time)."""
        return self._data.sha256(self.get_download_url(external_id).url)

    def download(self, url: DownloadURL) -> bytes:
        """The image file behind a download URL (whole, in memory: for tests and small tools)."""
        return self._data_call("GET", url.url, "download").content

    # -- adoption by selector (spec.adopt) --

    def find_images(self, selector: ImageSelector) -> list[ImageMatch]:
        """Custom images named exactly `selector.name` (DescribeImage's Keyword matches parts
        of names and IDs, so the answer is filtered), or carrying every tag of
        `selector.tags` (DescribeImage has no tag filter: every custom image is read)."""
        params: dict[str, Any] = {"ImageType": "Custom"}
        if selector.name is not None:
            params["Keyword"] = selector.name
        matches = []
        for raw in self._describe(**params):
            info = ImageInfo.model_validate(raw)
            if selector.name is not None and info.image_name != selector.name:
                continue
            if any(info.tag(key) != value for key, value in selector.tags.items()):
                continue
            matches.append(ImageMatch(external_id=info.image_id, name=info.image_name))
        return matches


def build(config: ProviderConfig) -> UCloudStackProvider:
    """The factory's entry point for type `ucloudstack`."""
    spec = config.spec
    if not spec.endpoint:
        raise InvalidInput(
            "spec.endpoint is required for type ucloudstack (a private cloud has no public URL)"
        )
    if not spec.region:
        raise InvalidInput("spec.region (the Region of every call) is required for ucloudstack")
    company = config.credentials.get("companyID", "").strip()
    if not company.isdigit():
        where = spec.credentials_secret_ref.name if spec.credentials_secret_ref else "(none)"
        raise InvalidInput(
            f"Secret {where!r} needs the key companyID (the tenant's numeric CompanyID) for "
            "type ucloudstack"
        )
    return UCloudStackProvider(
        endpoint=spec.endpoint,
        region=spec.region,
        company_id=int(company),
        project_id=spec.project,
        public_key=config.credentials["publicKey"],
        private_key=config.credentials["privateKey"],
        limiter=config.limiter,
        policy=config.endpoints,
        image_secret=config.credentials.get("imageSecret") or None,
    )

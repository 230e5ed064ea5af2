"""The `openstack` provider: any Glance v2 image service (seed 002, Huawei IMS's OpenStack-native
API included), spoken through `openstacksdk`.

Images come from a `url` (Glance's interoperable import, method `web-download`) or an `upload`
(the file is PUT by `upload()`, which the upload CLI calls). Every image is created private,
with container format `bare`, the source's disk format and the idempotency tag
`imageops.io-uid-<Kubernetes UID>`: `find_image` lists by that tag, so a create made before a
crash is found instead of repeated.

Glance has no client token and accepts any number of images with one name, so the tag is the
only key. A create is two calls for a URL source (metadata, then import); `find_image` finishes
one interrupted between them.

The operator owns the image's name, its tag list and a few properties (`MANAGED_PROPERTIES`);
other properties (Glance's own, the SDK's, an admin's) are left alone.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import html
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from enum import StrEnum
from typing import IO, TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

import openstack
import openstack.connection
import requests
from keystoneauth1 import exceptions as ks_exceptions
from openstack import exceptions as sdk_exceptions
from openstack.image.v2 import image as glance_image
from openstack.image.v2 import member as glance_member
from openstack.image.v2._proxy import Proxy as ImageProxy
from pydantic import BaseModel, ConfigDict

from image_operator.api.image import ImageSpec, OsInfo
from image_operator.providers.base import (
    CREATE_OPERATION,
    CloudImage,
    CloudState,
    ImageRequest,
    Operation,
    Provider,
)
from image_operator.providers.capabilities import PlaceholderUploads
from image_operator.providers.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ProviderError,
    Throttled,
    Transient,
)
from image_operator.providers.ratelimit import TokenBucket

if TYPE_CHECKING:
    from image_operator.providers.factory import ProviderConfig

T = TypeVar("T")

#: The tag that carries the idempotency key (the Kubernetes UID).
IDEMPOTENCY_TAG_PREFIX = "imageops.io-uid-"
#: Properties the operator sets from the spec and keeps in line with it (drift is pushed back).
#: OpenStack's common image properties for the OS, so that Nova and Horizon understand them.
MANAGED_PROPERTIES = ("description", "os_type", "os_distro", "os_version", "architecture")
#: Where the expected sha256 of the data is recorded: openstacksdk's own convention (what
#: `openstack image create --sha256` writes), compared with Glance's hash once the image is active.
SHA256_PROPERTY = "owner_specified.openstack.sha256"
#: Huawei IMS accepts data through PUT /v2/images/{id}/file only below 2 GB (seed 002); larger
#: files are staged and imported (`glance-direct`), where the service offers it.
PUT_UPLOAD_LIMIT = 2 * 1024**3
# IDs per list call: Glance's default page size (`limit_param_default`), so one call answers
# them all without a `limit`, which would make openstacksdk ask for one more page to be sure.
_BATCH = 25
_CREDENTIAL_KEYS = (
    "applicationCredentialId",
    "applicationCredentialSecret",
    "username",
    "password",
    "token",
)

# Glance's image statuses that mean "data is on its way".
_IN_FLIGHT = {
    "saving": "Glance is receiving the image data",
    "uploading": "the image data is staged, waiting for its import",
    "importing": "Glance is importing the image data",
}


class UploadMethod(StrEnum):
    """How `upload` sends the data: one PUT of the file, or stage + `glance-direct` import."""

    PUT = "put"
    IMPORT = "import"


class MemberStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class ImageMember(BaseModel):
    """A project an image is shared with, and whether it accepted."""

    model_config = ConfigDict(frozen=True)

    image_id: str
    project_id: str
    status: MemberStatus


def idempotency_tag(request: ImageRequest) -> str:
    return f"{IDEMPOTENCY_TAG_PREFIX}{request.idempotency_key}"


def spec_tags(spec: ImageSpec) -> list[str]:
    """spec.tags as Glance tags: `key.value` (Huawei IMS reads a native tag of that form as a
    key/value pair), or `key` alone for an empty value."""
    return [f"{key}.{value}" if value else key for key, value in sorted((spec.tags or {}).items())]


def desired_tags(request: ImageRequest) -> list[str]:
    return sorted({idempotency_tag(request), *spec_tags(request.spec)})


def _os_properties(os: OsInfo | None) -> dict[str, str]:
    if os is None:
        return {}
    return {
        "os_type": os.type.lower(),
        "os_distro": os.distribution.lower(),
        "os_version": os.version,
        "architecture": os.arch,
    }


def desired_properties(spec: ImageSpec) -> dict[str, str]:
    """The managed properties this spec asks for (a key absent here is removed on update)."""
    source = spec.source.url or spec.source.upload
    properties = _os_properties(source.os if source else None)
    if spec.description:
        properties["description"] = spec.description
    return properties


def managed_properties(image: glance_image.Image) -> dict[str, str]:
    """The managed properties an image has. openstacksdk keeps the ones it models (os_distro,
    architecture, ...) as attributes and only the others in `properties`."""
    extra = image.properties or {}
    found = {}
    for key in MANAGED_PROPERTIES:
        value = extra.get(key, getattr(image, key, None))
        if value is not None:
            found[key] = str(value)
    return found


def _fingerprint(name: str | None, tags: Iterable[str], properties: Mapping[str, Any]) -> str:
    managed = {key: properties[key] for key in MANAGED_PROPERTIES if properties.get(key)}
    canonical = json.dumps(
        {"name": name, "tags": sorted(set(tags)), "properties": managed},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _desired_fingerprint(request: ImageRequest) -> str:
    return _fingerprint(
        request.spec.display_name, desired_tags(request), desired_properties(request.spec)
    )


def _expected_sha256(spec: ImageSpec) -> str | None:
    source = spec.source.url or spec.source.upload
    return source.checksum if source else None


def _untouched(image: glance_image.Image) -> bool:
    """Queued without any import record: nobody has sent data or started an import yet."""
    properties = image.properties or {}
    return image.status == "queued" and not any(
        properties.get(key)
        for key in (
            "os_glance_import_task",
            "os_glance_importing_to_stores",
            "os_glance_failed_import",
        )
    )


def _state(image: glance_image.Image) -> tuple[CloudState, str | None]:
    """Glance's status (and its import bookkeeping properties) as a CloudState + a sentence."""
    status = str(image.status or "")
    properties = image.properties or {}
    if status == "active":
        expected = properties.get(SHA256_PROPERTY)
        if expected and image.hash_algo == "sha256" and image.hash_value != expected:
            return CloudState.FAILED, (
                f"the image data's sha256 is {image.hash_value}, not the expected {expected}"
            )
        return CloudState.AVAILABLE, None
    if status == "queued":
        failed = properties.get("os_glance_failed_import")
        importing = properties.get("os_glance_importing_to_stores")
        if failed and not importing:
            return CloudState.FAILED, (
                f"Glance could not import the image data into store(s) {failed} (the source "
                "URL may be unreachable, refused by the import filter, or not of the declared "
                "disk format); the image's import task says more"
            )
        if importing or properties.get("os_glance_import_task"):
            return CloudState.CREATING, "Glance is importing the image data"
        return CloudState.PENDING, "the image has no data yet: waiting for an upload or import"
    if status in _IN_FLIGHT:
        return CloudState.CREATING, _IN_FLIGHT[status]
    if status == "killed":
        return CloudState.FAILED, "Glance killed the image: storing its data failed"
    if status == "pending_delete":
        return CloudState.DELETING, None
    if status == "deactivated":
        # An administrator's decision, not ours to undo: report it and keep waiting.
        return CloudState.PENDING, "the image is deactivated: an administrator must reactivate it"
    return CloudState.PENDING, f"Glance reports the unknown status {status!r}"


def _detail(exc: sdk_exceptions.HttpException) -> str:
    """Glance's own explanation, as a short plain sentence (its bodies are HTML-escaped)."""
    text = str(exc.details or exc.message or "")
    response = exc.response
    if response is not None and text in ("", response.reason) and response.text:
        # openstacksdk reads JSON and HTML bodies only; Glance answers some errors in plain text.
        text = response.text
    text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    text = re.sub(r"\s+", " ", text).strip()
    return text[:400] or "no details given"


def _safe_url(url: str) -> str:
    """The URL without user info, query or fragment (they may carry credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def map_error(exc: Exception, action: str) -> ProviderError:
    """Every openstacksdk / keystoneauth failure as one of the provider errors."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, sdk_exceptions.HttpException) and exc.status_code is not None:
        code = int(exc.status_code)
        text = f"glance answered {code} to {action}: {_detail(exc)}"
        vendor_code = str(code)
        if code in (401, 403):
            return Forbidden(text, vendor_code=vendor_code)
        if code == 404:
            return NotFound(text, vendor_code=vendor_code)
        if code == 409:
            return Conflict(text, vendor_code=vendor_code)
        if code == 429 or (code == 413 and exc.response is not None and _retry_after(exc)):
            return Throttled(text, vendor_code=vendor_code, retry_after=_retry_after(exc))
        if code in (400, 406, 411, 413, 415, 422):
            return InvalidInput(text, vendor_code=vendor_code)
        return Transient(text, vendor_code=vendor_code)
    if isinstance(exc, ks_exceptions.Unauthorized | ks_exceptions.Forbidden):
        return Forbidden(f"the identity service refused the credentials while trying to {action}")
    if isinstance(exc, ks_exceptions.EndpointNotFound):
        return InvalidInput(
            f"the service catalog has no image (Glance) endpoint for this region: cannot {action}"
        )
    if isinstance(exc, ks_exceptions.DiscoveryFailure):
        return Transient(
            f"glance is unreachable, or the endpoint is not an image service: cannot {action}"
        )
    if isinstance(exc, ks_exceptions.ConnectionError):
        return Transient(f"glance is unreachable: cannot {action} ({type(exc).__name__})")
    if isinstance(exc, ks_exceptions.ClientException):
        return Transient(f"glance client error while trying to {action} ({type(exc).__name__})")
    if isinstance(exc, requests.RequestException):
        return Transient(
            f"the connection to glance failed while trying to {action} ({type(exc).__name__})"
        )
    if isinstance(exc, sdk_exceptions.InvalidRequest):
        return InvalidInput(f"cannot {action}: {exc}")
    if isinstance(exc, sdk_exceptions.SDKException):
        return Transient(f"openstacksdk failed to {action}: {exc}")
    raise exc


def _retry_after(exc: sdk_exceptions.HttpException) -> float | None:
    header = exc.response.headers.get("Retry-After") if exc.response is not None else None
    try:
        return float(header) if header else None
    except ValueError:
        return None


class OpenStackProvider(Provider, PlaceholderUploads):
    type_name = "openstack"
    operations = frozenset(
        {Operation.IMPORT_URL, Operation.IMPORT_UPLOAD, Operation.UPDATE, Operation.DELETE}
    )

    def __init__(
        self,
        connection: openstack.connection.Connection,
        *,
        endpoint: str,
        limiter: TokenBucket | None = None,
    ) -> None:
        self._conn = connection
        self.endpoint = _safe_url(endpoint)
        self._limiter = limiter

    @property
    def _image(self) -> ImageProxy:
        try:  # the first access discovers the API version: a network call that may fail
            proxy = self._conn.image
        except Exception as exc:
            raise map_error(exc, "discover the image API") from exc
        if not isinstance(proxy, ImageProxy):  # discovery settled on the retired v1 API
            raise InvalidInput(f"{self.endpoint} offers only the image API v1; v2 is required")
        return proxy

    def _call(self, action: str, call: Callable[[], T]) -> T:
        """One cloud call: wait for the rate limit, then map whatever fails."""
        if self._limiter is not None:
            self._limiter.acquire()
        try:
            return call()
        except Exception as exc:
            raise map_error(exc, action) from exc

    def _raw(self, external_id: str) -> glance_image.Image:
        image = self._call(f"show image {external_id}", lambda: self._image.get_image(external_id))
        if image.status == "deleted":
            raise NotFound(f"image {external_id} is deleted")
        return image

    def _cloud_image(self, image: glance_image.Image) -> CloudImage:
        state, message = _state(image)
        return CloudImage(
            external_id=str(image.id),
            state=state,
            progress=100 if state is CloudState.AVAILABLE else None,
            message=message,
            fingerprint=_fingerprint(image.name, image.tags or [], managed_properties(image)),
            raw=image.to_dict(computed=False),
        )

    def _list(self, action: str, **query: Any) -> list[glance_image.Image]:
        def fetch() -> list[glance_image.Image]:
            return list(self._image.images(**query))

        return self._call(action, fetch)

    # -- the Provider interface -----------------------------------------------------------------
    def probe(self) -> str:
        first = self._call("list images", lambda: next(iter(self._image.images(limit=1)), None))
        seen = "at least one image visible" if first is not None else "no images visible yet"
        # The image endpoint in use: spec.endpoint itself, or the catalog's with Keystone auth.
        # (Known since the list call's discovery: no request, so no rate-limit token.)
        try:
            endpoint = self._image.get_endpoint()
        except Exception as exc:
            raise map_error(exc, "read the image endpoint") from exc
        return f"glance image API v2 at {_safe_url(str(endpoint or self.endpoint))}: {seen}"

    def create_image(self, request: ImageRequest) -> CloudImage:
        kind = request.spec.source.kind()
        self.require(CREATE_OPERATION[kind])
        source = request.spec.source.url or request.spec.source.upload
        assert source is not None  # require() let only url and upload through
        properties = desired_properties(request.spec)
        properties["imageops.io-object"] = f"{request.namespace}/{request.name}"
        expected = _expected_sha256(request.spec)
        if expected:
            properties[SHA256_PROPERTY] = expected
        # Image.create, not the proxy's create_image: that helper treats a name naming an
        # existing local file as the file to upload, and a display name is user input.
        metadata = glance_image.Image.new(
            name=request.spec.display_name,
            disk_format=source.format.value,
            container_format="bare",
            visibility="private",
            tags=desired_tags(request),
            **properties,
        )
        image = self._call("create the image metadata", lambda: metadata.create(self._image))
        if request.spec.source.url is not None:
            self._start_web_download(image, request.spec.source.url.url, cleanup=True)
            return self.get_image(str(image.id))
        return self._cloud_image(image)

    def _start_web_download(self, image: glance_image.Image, url: str, *, cleanup: bool) -> None:
        # The SDK checks the resource's formats before importing: pass the image, not its ID.
        external_id = str(image.id)

        def start() -> None:
            response = self._image.import_image(image, method="web-download", uri=url)
            sdk_exceptions.raise_from_response(response)

        try:
            self._call(f"import image {external_id} from {_safe_url(url)}", start)
        except (InvalidInput, Forbidden):
            if cleanup:  # the metadata alone is useless: do not leave it behind (best effort;
                # find_image would find a leftover, and deletion of the Image cleans it too)
                with contextlib.suppress(ProviderError):
                    self._call(
                        f"delete image {external_id}",
                        lambda: self._image.delete_image(external_id, ignore_missing=True),
                    )
            raise

    def find_image(self, request: ImageRequest) -> CloudImage | None:
        tag = idempotency_tag(request)
        found = self._list(f"list images tagged {tag}", tag=tag)
        found = [image for image in found if image.status != "deleted"]
        if not found:
            return None
        image = min(found, key=lambda i: (str(i.created_at or ""), str(i.id)))
        url = request.spec.source.url
        if url is not None and _untouched(image):
            # The metadata was created but the import call never went out (a crash in between):
            # finish the create now. Only a queued image without any import record qualifies.
            self._start_web_download(image, url.url, cleanup=False)
            return self.get_image(str(image.id))
        return self._cloud_image(image)

    def get_image(self, external_id: str) -> CloudImage:
        return self._cloud_image(self._raw(external_id))

    def get_images(self, external_ids: Iterable[str]) -> dict[str, CloudImage | None]:
        wanted = list(dict.fromkeys(external_ids))
        found: dict[str, CloudImage | None] = dict.fromkeys(wanted)
        for start in range(0, len(wanted), _BATCH):
            chunk = wanted[start : start + _BATCH]
            images = self._list(f"list {len(chunk)} images by ID", id="in:" + ",".join(chunk))
            for image in images:
                if str(image.id) in found and image.status != "deleted":
                    found[str(image.id)] = self._cloud_image(image)
        return found

    def needs_update(self, request: ImageRequest, current: CloudImage) -> bool:
        return _desired_fingerprint(request) != current.fingerprint

    def update_image(self, external_id: str, request: ImageRequest) -> CloudImage:
        """One JSON patch (via the SDK) setting name, tags and the managed properties."""
        self.require(Operation.UPDATE)
        image = self._raw(external_id)
        patch: list[dict[str, Any]] = []
        if image.name != request.spec.display_name:
            patch.append({"op": "replace", "path": "/name", "value": request.spec.display_name})
        tags = desired_tags(request)
        if sorted(set(image.tags or [])) != tags:
            patch.append({"op": "replace", "path": "/tags", "value": tags})
        current = managed_properties(image)
        wanted = desired_properties(request.spec)
        for key in MANAGED_PROPERTIES:
            if key in wanted and current.get(key) != wanted[key]:
                patch.append({"op": "add", "path": f"/{key}", "value": wanted[key]})
            elif key not in wanted and key in current:
                patch.append({"op": "remove", "path": f"/{key}"})
        if not patch:
            return self._cloud_image(image)
        self._call(f"update image {external_id}", lambda: image.patch(self._image, patch=patch))
        # Read it back: the SDK merges the answer into the resource, so a removed property
        # would still show in it.
        return self.get_image(external_id)

    def delete_image(self, external_id: str) -> None:
        self.require(Operation.DELETE)
        self._call(
            f"delete image {external_id}",
            lambda: self._image.delete_image(external_id, ignore_missing=False),
        )

    def close(self) -> None:
        self._conn.close()

    # -- beyond the interface: data, tags, sharing ----------------------------------------------
    def upload(
        self,
        external_id: str,
        data: IO[bytes] | Iterable[bytes],
        size: int,
        *,
        method: UploadMethod | None = None,
    ) -> CloudImage:
        """Send the image file of an `upload` image, streamed (never read whole into memory).

        `data` is a binary file object or an iterator of chunks; `size` its length in bytes.
        PUT /file below `PUT_UPLOAD_LIMIT` (the seed's limit), stage + `glance-direct` import
        above it; `method` forces one. Raises `Conflict` when the image already has data.
        """
        if size < 1:
            raise InvalidInput(f"the upload for image {external_id} is empty (size {size})")
        method = method or (UploadMethod.PUT if size < PUT_UPLOAD_LIMIT else UploadMethod.IMPORT)
        image = self._raw(external_id)
        if image.status != "queued":
            # Glance would refuse the data only after it was sent; say so before streaming it.
            raise Conflict(
                f"image {external_id} is {image.status}: Glance accepts data only for a queued "
                "image (one without data)"
            )
        if method is UploadMethod.PUT:

            def put() -> None:
                response = image.upload(self._image, data=data, size=size)
                sdk_exceptions.raise_from_response(response)

            self._call(f"upload the data of image {external_id}", put)
        else:
            methods = self.import_methods()
            if "glance-direct" not in methods:
                raise InvalidInput(
                    f"the image file ({size} bytes) is over the {PUT_UPLOAD_LIMIT} byte upload "
                    f"limit and this Glance offers no glance-direct import (only: "
                    f"{', '.join(methods) or 'none'})"
                )
            self._call(
                f"stage the data of image {external_id}",
                lambda: image.stage(self._image, data=data, size=size),
            )

            def direct() -> None:
                response = self._image.import_image(image, method="glance-direct")
                sdk_exceptions.raise_from_response(response)

            self._call(f"import the staged data of image {external_id}", direct)
        return self.get_image(external_id)

    def import_from_url(self, external_id: str, url: str) -> CloudImage:
        """Start a `web-download` import into a queued image (Glance fetches `url` itself)."""
        self._start_web_download(self._raw(external_id), url, cleanup=False)
        return self.get_image(external_id)

    def import_methods(self) -> list[str]:
        """The interoperable import methods this Glance offers (GET /v2/info/import)."""
        info = self._call("read the import methods", self._image.get_import_info)
        methods = (info.import_methods or {}).get("value") or []
        return [str(m) for m in methods]

    def add_tags(self, external_id: str, tags: Iterable[str]) -> None:
        """Add tags (PUT /v2/images/{id}/tags/{tag}); adding a present tag is a no-op."""
        for tag in tags:
            self._call(
                f"tag image {external_id}", functools.partial(self._image.add_tag, external_id, tag)
            )

    def remove_tags(self, external_id: str, tags: Iterable[str]) -> None:
        """Remove tags (DELETE /v2/images/{id}/tags/{tag}); `NotFound` for an absent tag."""
        for tag in tags:
            self._call(
                f"untag image {external_id}",
                functools.partial(self._image.remove_tag, external_id, tag),
            )

    def share(self, external_id: str, project_id: str) -> ImageMember:
        """Share the image with another project (it must accept before it lists the image).

        Members exist only for `shared` images, so a private one is made shared first. Sharing
        again with the same project returns the existing membership.
        """
        image = self._raw(external_id)
        if image.visibility == "private":
            self._call(
                f"make image {external_id} shared",
                lambda: image.patch(
                    self._image, patch=[{"op": "replace", "path": "/visibility", "value": "shared"}]
                ),
            )
        try:
            member = self._call(
                f"share image {external_id} with project {project_id}",
                lambda: self._image.add_member(external_id, member=project_id),
            )
        except Conflict:
            member = self._call(
                f"show member {project_id} of image {external_id}",
                lambda: self._image.get_member(project_id, image=external_id),
            )
        return _member(external_id, member)

    def unshare(self, external_id: str, project_id: str) -> None:
        self._call(
            f"remove member {project_id} from image {external_id}",
            lambda: self._image.remove_member(project_id, image=external_id, ignore_missing=False),
        )

    def set_member_status(
        self,
        external_id: str,
        project_id: str,
        status: Literal["accepted", "rejected", "pending"] | MemberStatus,
    ) -> ImageMember:
        """Accept (or reject) an image shared with `project_id`; only that project may."""
        member = self._call(
            f"set member {project_id} of image {external_id} to {status}",
            lambda: self._image.update_member(project_id, image=external_id, status=str(status)),
        )
        return _member(external_id, member)

    def accept(self, external_id: str, project_id: str) -> ImageMember:
        """Accept, as `project_id` (this provider's own project), an image shared with it."""
        return self.set_member_status(external_id, project_id, MemberStatus.ACCEPTED)

    def members(self, external_id: str) -> list[ImageMember]:
        def fetch() -> list[glance_member.Member]:
            return list(self._image.members(external_id))

        return [
            _member(external_id, m) for m in self._call(f"list members of {external_id}", fetch)
        ]

    def images(self, **query: Any) -> Iterator[CloudImage]:
        """Images visible to this project, filtered by Glance's list query (tag, status, ...)."""
        for image in self._list("list images", **query):
            yield self._cloud_image(image)


def _member(external_id: str, member: glance_member.Member) -> ImageMember:
    return ImageMember(
        image_id=str(member.image_id or external_id),
        project_id=str(member.member_id or member.id),
        status=MemberStatus(str(member.status)),
    )


def connect(
    endpoint: str, credentials: Mapping[str, str], *, region: str | None, project: str | None
) -> openstack.connection.Connection:
    """An openstacksdk connection for the Secret's keys (see docs/providers/openstack.md):

    - application credential (`applicationCredentialId` + `applicationCredentialSecret`) or
      `username` + `password` (project `spec.project`): `endpoint` is Keystone's URL and the
      image endpoint comes from the catalog (region `spec.region`);
    - `token` (e.g. a Huawei IAM token): sent as X-Auth-Token to the image `endpoint`;
    - none: no authentication, `endpoint` is the image service itself.
    """
    keys = {key for key in _CREDENTIAL_KEYS if credentials.get(key)}
    auth: dict[str, str]
    if keys & {"applicationCredentialId", "applicationCredentialSecret"}:
        _require(keys, ("applicationCredentialId", "applicationCredentialSecret"))
        auth_type = "v3applicationcredential"
        auth = {
            "auth_url": endpoint,
            "application_credential_id": credentials["applicationCredentialId"],
            "application_credential_secret": credentials["applicationCredentialSecret"],
        }
    elif keys & {"username", "password"}:
        _require(keys, ("username", "password"))
        if not project:
            raise InvalidInput(
                "spec.project (the OpenStack project name) is required for type openstack "
                "with username/password credentials"
            )
        auth_type = "password"
        auth = {
            "auth_url": endpoint,
            "username": credentials["username"],
            "password": credentials["password"],
            "project_name": project,
            "user_domain_name": credentials.get("userDomainName") or "Default",
            "project_domain_name": credentials.get("projectDomainName") or "Default",
        }
    elif "token" in keys:
        auth_type = "admin_token"
        auth = {"endpoint": endpoint, "token": credentials["token"]}
    else:
        auth_type = "none"
        auth = {"endpoint": endpoint}
    try:
        return openstack.connect(
            auth_type=auth_type,
            auth=auth,
            region_name=region,
            app_name="image-operator",
            # Only what the ImageProvider says: never a clouds.yaml or OS_* variables of the host.
            load_yaml_config=False,
            load_envvars=False,
        )
    except Exception as exc:
        raise map_error(exc, "configure the openstack connection") from exc


def _require(present: set[str], keys: tuple[str, ...]) -> None:
    missing = [key for key in keys if key not in present]
    if missing:
        raise InvalidInput(
            f"the credentials Secret sets {' and '.join(sorted(present))} but lacks "
            f"{', '.join(missing)}, which type openstack needs with it"
        )


def build(config: ProviderConfig) -> OpenStackProvider:
    """The factory's entry point for type `openstack`."""
    spec = config.spec
    if not spec.endpoint:
        raise InvalidInput(
            "spec.endpoint is required for type openstack: the image service (Glance) URL, or "
            "the identity (Keystone) URL when the Secret holds Keystone credentials"
        )
    connection = connect(
        spec.endpoint, config.credentials, region=spec.region, project=spec.project
    )
    return OpenStackProvider(connection, endpoint=spec.endpoint, limiter=config.limiter)

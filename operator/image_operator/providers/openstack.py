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

The operator owns the image's name, its tag list and a few properties (`MANAGED_PROPERTIES`,
and the custom ones of spec.openstack.properties); other properties (Glance's own, the SDK's, an
admin's) are left alone. spec.openstack also sets visibility, min_disk, min_ram and protected
(kept in line when set) and the container format (at create).

With the ImageProvider's spec.openstack.api: ims, only the operations of Huawei IMS's
OpenStack-native index are used (`openstack_ims`): no interoperable import, tags through the
tag calls, and updates of the name, description and custom properties only.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator
from enum import StrEnum
from typing import IO, TYPE_CHECKING, Any, Literal, TypeVar

import openstack
import openstack.connection
from openstack import exceptions as sdk_exceptions
from openstack.image.v2 import image as glance_image
from openstack.image.v2 import member as glance_member
from openstack.image.v2._proxy import Proxy as ImageProxy
from pydantic import BaseModel, ConfigDict

from image_operator.api.provideroptions import OpenStackApi
from image_operator.providers.base import Provider
from image_operator.providers.capabilities import PlaceholderUploads
from image_operator.providers.endpoints import EndpointPolicy, GuardedAdapter, HostGuard
from image_operator.providers.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ProviderError,
)
from image_operator.providers.model import CloudImage, CloudState, ImageRequest, Operation
from image_operator.providers.openstack_connect import connect
from image_operator.providers.openstack_errors import map_error, safe_url
from image_operator.providers.openstack_ims import no_staged_upload, no_url_import
from image_operator.providers.openstack_metadata import (
    SHA256_PROPERTY,
    attribute_differences,
    desired_attributes,
    desired_fingerprint,
    desired_properties,
    desired_tags,
    expected_sha256,
    fingerprint,
    glance_state,
    idempotency_tag,
    managed_properties,
    untouched,
)
from image_operator.providers.openstack_update import update_plan
from image_operator.providers.ratelimit import TokenBucket
from image_operator.providers.urlpaths import path_segment

if TYPE_CHECKING:
    from image_operator.providers.factory import ProviderConfig

T = TypeVar("T")

#: Huawei IMS accepts data through PUT /v2/images/{id}/file only below 2 GB (seed 002); larger
#: files are staged and imported (`glance-direct`), where the service offers it.
PUT_UPLOAD_LIMIT = 2 * 1024**3
# IDs per list call: Glance's default page size (`limit_param_default`), so one call answers
# them all without a `limit`, which would make openstacksdk ask for one more page to be sure.
_BATCH = 25


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
        policy: EndpointPolicy | None = None,
        api: OpenStackApi = OpenStackApi.GLANCE,
    ) -> None:
        self._conn = connection
        self.api = api
        # IMS cannot update the OS properties: they are neither compared nor pushed.
        self._with_os = api is OpenStackApi.GLANCE
        self.endpoint = safe_url(endpoint)
        # Every HTTP request the SDK makes (Keystone's token, version discovery, the image API,
        # each redirect hop) passes the rate limit and the guard: the endpoint's host, or a
        # host of the catalog the policy accepts. keystoneauth re-sends X-Auth-Token to any
        # redirect target, so redirects are not followed at all.
        guard = HostGuard.for_endpoint(policy or EndpointPolicy(), endpoint, others=True)
        GuardedAdapter(guard, limiter=limiter).mount_on(connection.session.session)
        connection.session.redirect = False

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
        """One cloud call (its requests wait for the rate limit), whatever fails mapped."""
        try:
            return call()
        except Exception as exc:
            raise map_error(exc, action) from exc

    def _raw(self, external_id: str) -> glance_image.Image:
        image = self._call(
            f"show image {external_id}", lambda: self._image.get_image(_image_id(external_id))
        )
        if image.status == "deleted":
            raise NotFound(f"image {external_id} is deleted")
        return image

    def _cloud_image(self, image: glance_image.Image) -> CloudImage:
        state, message = glance_state(image)
        return CloudImage(
            external_id=str(image.id),
            state=state,
            progress=100 if state is CloudState.AVAILABLE else None,
            message=message,
            fingerprint=fingerprint(
                image.name, image.tags or [], managed_properties(image, with_os=self._with_os)
            ),
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
        return f"glance image API v2 at {safe_url(str(endpoint or self.endpoint))}: {seen}"

    def create_image(self, request: ImageRequest) -> CloudImage:
        kind = request.spec.source.kind()
        self.require_source(kind)
        source = request.spec.source.url or request.spec.source.upload
        assert source is not None  # require() let only url and upload through
        if request.spec.source.url is not None and self.api is OpenStackApi.IMS:
            raise no_url_import()
        options = request.spec.openstack
        properties = desired_properties(request.spec)
        properties["imageops.io-object"] = f"{request.namespace}/{request.name}"
        expected = expected_sha256(request.spec)
        if expected:
            properties[SHA256_PROPERTY] = expected
        # Image.create, not the proxy's create_image: that helper treats a name naming an
        # existing local file as the file to upload, and a display name is user input.
        attributes: dict[str, Any] = {"visibility": "private", **desired_attributes(request.spec)}
        attributes["is_protected"] = attributes.pop("protected", None)
        container = options.container_format if options else None
        metadata = glance_image.Image.new(
            name=request.spec.display_name,
            disk_format=source.format.value,
            container_format=container.value if container else "bare",
            tags=desired_tags(request),
            **{key: value for key, value in attributes.items() if value is not None},
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
            self._call(f"import image {external_id} from {safe_url(url)}", start)
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
        if url is not None and untouched(image):
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
        return desired_fingerprint(request, with_os=self._with_os) != current.fingerprint or bool(
            attribute_differences(request.spec, current.raw)
        )

    def update_image(self, external_id: str, request: ImageRequest) -> CloudImage:
        """One JSON patch (via the SDK) setting name, tags, spec.openstack's attributes and the
        managed properties. IMS mode: tags through the tag calls, and a differing attribute
        is `Unsupported` naming its field (IMS updates only name, description and properties)."""
        self.require(Operation.UPDATE)
        image = self._raw(external_id)
        plan = update_plan(image, request, ims=self.api is OpenStackApi.IMS)
        self.add_tags(external_id, plan.add_tags)
        self.remove_tags(external_id, plan.remove_tags)
        if plan.patch:
            self._call(f"update image {external_id}", lambda: image.patch(self._image, plan.patch))
        elif not plan.add_tags and not plan.remove_tags:
            return self._cloud_image(image)
        # Read it back: the SDK merges the answer into the resource, so a removed property
        # would still show in it.
        return self.get_image(external_id)

    def delete_image(self, external_id: str) -> None:
        self.require(Operation.DELETE)
        self._call(
            f"delete image {external_id}",
            lambda: self._image.delete_image(_image_id(external_id), ignore_missing=False),
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
        if method is UploadMethod.IMPORT and self.api is OpenStackApi.IMS:
            raise no_staged_upload(size, PUT_UPLOAD_LIMIT)
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
        if self.api is OpenStackApi.IMS:
            raise no_url_import()
        self._start_web_download(self._raw(external_id), url, cleanup=False)
        return self.get_image(external_id)

    def import_methods(self) -> list[str]:
        """The interoperable import methods this Glance offers (GET /v2/info/import); none in
        IMS mode, whose index has no interoperable import (and no such call)."""
        if self.api is OpenStackApi.IMS:
            return []
        info = self._call("read the import methods", self._image.get_import_info)
        methods = (info.import_methods or {}).get("value") or []
        return [str(m) for m in methods]

    def add_tags(self, external_id: str, tags: Iterable[str]) -> None:
        """Add tags (PUT /v2/images/{id}/tags/{tag}); adding a present tag is a no-op."""
        for tag in tags:
            self._call(
                f"tag image {external_id}",
                functools.partial(self._image.add_tag, _image_id(external_id), _tag(tag)),
            )

    def remove_tags(self, external_id: str, tags: Iterable[str]) -> None:
        """Remove tags (DELETE /v2/images/{id}/tags/{tag}); `NotFound` for an absent tag."""
        for tag in tags:
            self._call(
                f"untag image {external_id}",
                functools.partial(self._image.remove_tag, _image_id(external_id), _tag(tag)),
            )

    def share(self, external_id: str, project_id: str) -> ImageMember:
        """Share the image with another project (it must accept before it lists the image).

        Members exist only for `shared` images, so a private one is made shared first. Sharing
        again with the same project returns the existing membership.
        """
        image = self._raw(external_id)
        # IMS shares private images as they are (its update may not change the visibility).
        if image.visibility == "private" and self.api is OpenStackApi.GLANCE:
            self._call(
                f"make image {external_id} shared",
                lambda: image.patch(
                    self._image, patch=[{"op": "replace", "path": "/visibility", "value": "shared"}]
                ),
            )
        try:
            member = self._call(
                f"share image {external_id} with project {project_id}",
                lambda: self._image.add_member(_image_id(external_id), member=project_id),
            )
        except Conflict:
            member = self._call(
                f"show member {project_id} of image {external_id}",
                lambda: self._image.get_member(_project(project_id), image=_image_id(external_id)),
            )
        return _member(external_id, member)

    def unshare(self, external_id: str, project_id: str) -> None:
        self._call(
            f"remove member {project_id} from image {external_id}",
            lambda: self._image.remove_member(
                _project(project_id), image=_image_id(external_id), ignore_missing=False
            ),
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
            lambda: self._image.update_member(
                _project(project_id), image=_image_id(external_id), status=str(status)
            ),
        )
        return _member(external_id, member)

    def accept(self, external_id: str, project_id: str) -> ImageMember:
        """Accept, as `project_id` (this provider's own project), an image shared with it."""
        return self.set_member_status(external_id, project_id, MemberStatus.ACCEPTED)

    def members(self, external_id: str) -> list[ImageMember]:
        def fetch() -> list[glance_member.Member]:
            return list(self._image.members(_image_id(external_id)))

        return [
            _member(external_id, m) for m in self._call(f"list members of {external_id}", fetch)
        ]

    def images(self, **query: Any) -> Iterator[CloudImage]:
        """Images visible to this project, filtered by Glance's list query (tag, status, ...)."""
        for image in self._list("list images", **query):
            yield self._cloud_image(image)


# openstacksdk puts IDs into request paths as they are, and `requests` then resolves `..`:
# every value from a spec or an annotation goes in as one escaped segment.
def _image_id(external_id: str) -> str:
    return path_segment(external_id, what="the image ID")


def _tag(tag: str) -> str:
    return path_segment(tag, what="the image tag")


def _project(project_id: str) -> str:
    return path_segment(project_id, what="the member project ID")


def _member(external_id: str, member: glance_member.Member) -> ImageMember:
    return ImageMember(
        image_id=str(member.image_id or external_id),
        project_id=str(member.member_id or member.id),
        status=MemberStatus(str(member.status)),
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
    return OpenStackProvider(
        connection,
        endpoint=spec.endpoint,
        limiter=config.limiter,
        policy=config.endpoints,
        api=spec.openstack.api if spec.openstack else OpenStackApi.GLANCE,
    )

"""The `argon` provider: Argon's image REST API (seed 001), plain JSON over HTTP with httpx.

Argon has no client token, so the idempotency key lives in the cloud name: every image is
named `<k8s name>-<first 8 hex of the UID>`, and a repeated create answers 409, which the
reconciler resolves by lookup.

A user may choose the name (`spec.argon.name`). The name then no longer carries the key, and
Argon's image model has no labels, so the key goes at the end of the Argon description as an
owner marker (`imageops.io/owner: <UID>`): `find_image` adopts an image of that name only when
it carries this object's marker, and a create that finds the name taken by another image
stalls naming the field.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from image_operator.api.image import ImageSpec
from image_operator.api.parameters import Parameter, ParameterKind
from image_operator.providers.base import Provider
from image_operator.providers.endpoints import EndpointPolicy, EndpointRefused, HostGuard
from image_operator.providers.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    ProviderError,
    Transient,
    from_http_status,
    parse_retry_after,
)
from image_operator.providers.model import (
    CloudImage,
    CloudState,
    ImageMatch,
    ImageRequest,
    ImageSelector,
    Operation,
)
from image_operator.providers.ratelimit import TokenBucket
from image_operator.providers.urlpaths import path_segment

if TYPE_CHECKING:
    from image_operator.providers.factory import ProviderConfig

_STATES = {
    "Pending": CloudState.PENDING,
    "Pulling": CloudState.CREATING,
    "Ready": CloudState.AVAILABLE,
    "Failed": CloudState.FAILED,
    "Deleting": CloudState.DELETING,
}
# The fields the operator owns; anything else Argon returns (metadata, status) is its own.
_MANAGED_FIELDS = (
    "displayName",
    "group",
    "repository",
    "price",
    "cover",
    "description",
    "command",
    "inputs",
    "outputs",
    "configs",
)
_BATCH = 50  # names per list call; keeps the query string short


def chosen_name(spec: ImageSpec) -> str | None:
    """spec.argon.name, when the user chose the Argon name."""
    return spec.argon.name if spec.argon is not None else None


def cloud_name(request: ImageRequest) -> str:
    """The Argon name: spec.argon.name, or deterministically the Kubernetes name plus the UID
    prefix (the idempotency key)."""
    return chosen_name(request.spec) or (
        f"{request.name[:200]}-{request.idempotency_key.replace('-', '')[:8]}"
    )


OWNER_MARKER_PREFIX = "imageops.io/owner: "


def owner_marker(idempotency_key: str) -> str:
    return f"{OWNER_MARKER_PREFIX}{idempotency_key}"


def owner_of(image: Mapping[str, Any]) -> str | None:
    """The UID in an Argon image's owner marker (the description's last line), if any."""
    last = str(image.get("description") or "").rsplit("\n", 1)[-1]
    return last[len(OWNER_MARKER_PREFIX) :] if last.startswith(OWNER_MARKER_PREFIX) else None


def _description(request: ImageRequest) -> str | None:
    """The Argon description: spec.description, with the owner marker as its last line when
    the name is chosen (admission keeps spec.description short enough for both)."""
    description = request.spec.description
    if chosen_name(request.spec) is None:
        return description
    marker = owner_marker(request.idempotency_key)
    return f"{description}\n\n{marker}" if description else marker


def _params(params: list[Parameter] | None, kind: ParameterKind) -> list[dict[str, Any]]:
    out = []
    for param in params or []:
        wire = param.to_wire()
        wire["kind"] = kind.value  # Argon repeats the kind on every parameter
        wire.pop("required", None)  # not part of Argon's model
        out.append(wire)
    return out


def argon_image(name: str, request: ImageRequest) -> dict[str, Any]:
    """The `image` object of an Argon create/update body for this request."""
    spec = request.spec
    if spec.source.repository is None:
        raise ValueError("argon images come from a container repository")
    body: dict[str, Any] = {
        "name": name,
        "displayName": spec.display_name,
        "repository": spec.source.repository.image,
        "group": spec.group,
        "price": spec.price,
        "cover": spec.cover,
        "description": _description(request),
        "command": list(spec.command) if spec.command else None,
        "inputs": _params(spec.inputs, ParameterKind.INPUT) or None,
        "outputs": _params(spec.outputs, ParameterKind.OUTPUT) or None,
        "configs": _params(spec.configs, ParameterKind.CONFIG) or None,
    }
    return {key: value for key, value in body.items() if value is not None}


def _fingerprint(image: Mapping[str, Any]) -> str:
    managed = {key: image.get(key) for key in _MANAGED_FIELDS if image.get(key) is not None}
    if isinstance(managed.get("command"), str):
        managed["command"] = [managed["command"]]
    if "price" in managed:
        managed["price"] = str(managed["price"])
    canonical = json.dumps(managed, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _error(response: httpx.Response) -> ProviderError:
    """Map Argon's Kubernetes-style Status error to the provider error set."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    message = str(body.get("message") or response.reason_phrase or "no message")
    causes = (body.get("details") or {}).get("causes") or []
    if causes:
        fields = "; ".join(f"{c.get('field')}: {c.get('message')}" for c in causes)
        message = f"{message} ({fields})"
    reason = str(body.get("reason") or response.status_code)
    text = f"argon answered {response.status_code} {reason}: {message}"
    return from_http_status(
        response.status_code,
        text,
        vendor_code=reason,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )


class ArgonProvider(Provider):
    type_name = "argon"
    operations = frozenset({Operation.CREATE_FROM_REPOSITORY, Operation.UPDATE, Operation.DELETE})
    create_refuses_duplicates = True  # the name carries the UID, and Argon names are unique

    def __init__(
        self,
        *,
        endpoint: str,
        namespace: str,
        token: str,
        limiter: TokenBucket | None = None,
        guard: HostGuard | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.namespace = namespace
        self._limiter = limiter
        self._guard = guard or HostGuard.for_endpoint(EndpointPolicy(), endpoint)
        # httpx follows no redirect unless asked, and the guard stops any request (the token
        # rides on every one) to a host other than the endpoint's.
        self._client = httpx.Client(
            base_url=endpoint.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            event_hooks={"request": [self._before_send]},
            follow_redirects=False,
        )

    def _before_send(self, request: httpx.Request) -> None:
        self._guard.check(str(request.url))
        if self._limiter is not None:
            self._limiter.acquire()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise Transient(f"argon is unreachable: {type(exc).__name__}: {exc}") from exc
        if response.is_redirect:
            raise EndpointRefused(
                f"argon answered {method} {path} with a redirect ({response.status_code}), "
                "which the operator does not follow: the token goes only to spec.endpoint"
            )
        if response.is_error:
            raise _error(response)
        return response.json()

    @property
    def _images(self) -> str:
        namespace = path_segment(self.namespace, what="spec.project (the Argon namespace)")
        return f"/api/v1/namespaces/{namespace}/images"

    def _image_path(self, external_id: str) -> str:
        return f"{self._images}/{path_segment(external_id, what='the Argon image name')}"

    def _cloud_image(self, image: Mapping[str, Any]) -> CloudImage:
        status = image.get("status") or {}
        return CloudImage(
            external_id=str(image["name"]),
            state=_STATES.get(str(status.get("phase", "Ready")), CloudState.CREATING),
            progress=status.get("progress"),
            message=status.get("message"),
            fingerprint=_fingerprint(image),
            raw=image,
        )

    def probe(self) -> str:
        listing = self._call("GET", self._images)
        return f"argon namespace {self.namespace!r}: {len(listing.get('items', []))} images"

    def create_image(self, request: ImageRequest) -> CloudImage:
        self.require(Operation.CREATE_FROM_REPOSITORY)
        name = cloud_name(request)
        body = {"namespace": self.namespace, "image": argon_image(name, request)}
        try:
            return self._cloud_image(self._call("POST", self._images, json=body))
        except Conflict:
            if chosen_name(request.spec) is None:
                raise  # the derived name carries the key: the reconciler's lookup adopts it
            if self._owned(request) is not False:
                raise  # ours after all (or gone again): the reconciler's lookup decides
            raise InvalidInput(
                f"spec.argon.name {name!r} is taken in Argon namespace {self.namespace!r} by an "
                "image this Image did not make (its description carries no "
                f"'{owner_marker(request.idempotency_key)}' line): choose another name, or "
                "delete or rename that image"
            ) from None

    def _owned(self, request: ImageRequest) -> CloudImage | bool | None:
        """The image of this request's name if this object owns it, False if another does,
        None if there is none."""
        try:
            image = self.get_image(cloud_name(request))
        except NotFound:
            return None
        if chosen_name(request.spec) is None:
            return image
        return image if owner_of(image.raw) == request.idempotency_key else False

    def find_image(self, request: ImageRequest) -> CloudImage | None:
        # A chosen name taken by another image is not this object's: create_image says so.
        found = self._owned(request)
        return found if isinstance(found, CloudImage) else None

    def get_image(self, external_id: str) -> CloudImage:
        return self._cloud_image(self._call("GET", self._image_path(external_id)))

    def get_images(self, external_ids: Iterable[str]) -> dict[str, CloudImage | None]:
        wanted = list(dict.fromkeys(external_ids))
        found: dict[str, CloudImage | None] = dict.fromkeys(wanted)
        for start in range(0, len(wanted), _BATCH):
            names = ",".join(wanted[start : start + _BATCH])
            listing = self._call("GET", self._images, params={"names": names})
            for item in listing.get("items", []):
                image = self._cloud_image(item)
                if image.external_id in found:
                    found[image.external_id] = image
        return found

    def needs_update(self, request: ImageRequest, current: CloudImage) -> bool:
        desired = argon_image(current.external_id, request)
        return _fingerprint(desired) != current.fingerprint

    def update_image(self, external_id: str, request: ImageRequest) -> CloudImage:
        self.require(Operation.UPDATE)
        body = {"namespace": self.namespace, "image": argon_image(external_id, request)}
        return self._cloud_image(self._call("PUT", self._image_path(external_id), json=body))

    def delete_image(self, external_id: str) -> None:
        self.require(Operation.DELETE)
        self._call("DELETE", self._image_path(external_id))

    def close(self) -> None:
        self._client.close()

    # -- adoption by selector (spec.adopt) --

    def find_images(self, selector: ImageSelector) -> list[ImageMatch]:
        """An Argon name is unique in its namespace, so a name is one GET; Argon images carry
        no tags, so tags cannot be matched (the base method says so)."""
        if selector.name is None:
            return super().find_images(selector)
        try:
            image = self.get_image(selector.name)
        except NotFound:
            return []
        return [ImageMatch(external_id=image.external_id, name=image.external_id)]


def build(config: ProviderConfig) -> ArgonProvider:
    """The factory's entry point for type `argon`."""
    spec = config.spec
    if not spec.endpoint:
        raise InvalidInput("spec.endpoint is required for type argon (Argon has no public URL)")
    if not spec.project:
        raise InvalidInput("spec.project (the Argon namespace) is required for type argon")
    return ArgonProvider(
        endpoint=spec.endpoint,
        namespace=spec.project,
        token=config.credentials["token"],
        limiter=config.limiter,
        guard=config.guard(spec.endpoint),
    )

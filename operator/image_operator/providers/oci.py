"""The `registry` provider: any OCI distribution registry, over the distribution spec with httpx.

An `Image` whose source is a container image becomes a copy of that image in the provider's
registry (`spec.endpoint`): the source reference is resolved to a digest once and pinned, its
blobs are copied (cross-repository mount within one registry, a streamed pull+push across
registries), then the manifest is put with its exact bytes, so the copy has the source's digest.

The repository is `[<spec.project>/]<namespace>/<name>`; the manifest is tagged with the
source's tag and with `imageops-<UID>`, the idempotency key `find_image` looks up. The external
ID is the pinned reference `<registry host>/<repository>@sha256:<hex>`.

Why httpx and not `oras` (checked, 0.2.x): see docs/providers/registry.md. In short, oras
re-serialises manifests (the digest changes) and refuses indexes, has no mount, uploads only
from local files, retries every call with sleeps of up to 83 s, and loses HTTP status codes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import ValidationError

from image_operator.providers.base import Provider
from image_operator.providers.endpoints import HostGuard
from image_operator.providers.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    Transient,
    Unsupported,
)
from image_operator.providers.model import CloudImage, CloudState, ImageRequest, Operation
from image_operator.providers.oci_client import (
    CopyStats,
    Descriptor,
    Manifest,
    RegistryClient,
    default_scheme,
)
from image_operator.providers.oci_reference import (
    DOCKER_HUB,
    INDEX_TYPES,
    MANIFEST_TYPES,
    Reference,
    check_repository,
)
from image_operator.providers.ratelimit import TokenBucket

if TYPE_CHECKING:
    from image_operator.api.image import ImageSpec
    from image_operator.providers.factory import ProviderConfig

KEY_TAG_PREFIX = "imageops-"
# Opt-in: copy the source again when its tag moves (spec.tags is otherwise unused here: OCI
# tags are names, not key/value pairs, and annotations would change the digest).
TRACK_SOURCE = "imageops.io/track-source"
_MAX_NESTING = 4  # index -> manifest is 1; deeper trees are not images


def key_tag(uid: str) -> str:
    """The idempotency tag: `imageops-` plus the UID's characters a tag may hold."""
    return (KEY_TAG_PREFIX + re.sub(r"[^A-Za-z0-9_.]", "", uid))[:128]


def user_tag(source: Reference) -> str | None:
    """The tag the copy carries for people: the source's (`latest` when it names none)."""
    if source.tag:
        return source.tag
    return None if source.digest else "latest"


def tracks_source(spec: ImageSpec) -> bool:
    return (spec.tags or {}).get(TRACK_SOURCE, "").lower() == "true"


@dataclass
class _Copied:
    digest: str
    media_type: str
    size: int
    stats: CopyStats = field(default_factory=CopyStats)


class RegistryProvider(Provider):
    type_name = "registry"
    operations = frozenset({Operation.CREATE_FROM_REPOSITORY, Operation.UPDATE, Operation.DELETE})

    def __init__(
        self,
        *,
        endpoint: str,
        project: str | None = None,
        username: str | None = None,
        password: str | None = None,
        limiter: TokenBucket | None = None,
        guard: HostGuard | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.registry = RegistryClient(
            endpoint,
            username=username,
            password=password,
            limiter=limiter,
            guard=guard,
            timeout=timeout,
        )
        self.host = self.registry.host
        self.project = project
        self._limiter = limiter
        self._timeout = timeout
        self._others: dict[str, RegistryClient] = {}
        self._lock = threading.Lock()

    # -- naming ------------------------------------------------------------------------------
    def repository_for(self, request: ImageRequest) -> str:
        """`[project/]namespace/name`: one repository per Image object."""
        parts = [p for p in (self.project, request.namespace, request.name) if p]
        name = "/".join(parts)
        check_repository(name, what=f"Image {request.namespace}/{request.name}")
        return name

    def pinned(self, repository: str, digest: str) -> str:
        return f"{self.host}/{repository}@{digest}"

    def _client_for(self, ref: Reference) -> RegistryClient:
        """The provider's registry (credentials and all), or an anonymous client for another."""
        if ref.host is None or ref.host == self.host:
            return self.registry
        host = "registry-1.docker.io" if ref.host in DOCKER_HUB else ref.host
        with self._lock:
            client = self._others.get(host)
            if client is None:
                # A source on another registry: anonymous, and only where the policy accepts.
                client = RegistryClient(
                    f"{default_scheme(host)}://{host}",
                    limiter=self._limiter,
                    guard=self.registry.guard,
                    timeout=self._timeout,
                )
                self._others[host] = client
            return client

    def _own(self, external_id: str) -> Reference:
        ref = Reference.parse(external_id, what="external ID")
        if ref.host not in (None, self.host):
            raise InvalidInput(
                f"external ID {external_id!r} names registry {ref.host}, but this provider's "
                f"registry is {self.host}"
            )
        if not ref.digest and not ref.tag:
            raise InvalidInput(
                f"external ID {external_id!r} names no image: add @sha256:<digest> or :<tag>"
            )
        return ref

    def _source(self, request: ImageRequest) -> Reference:
        self.require_source(request.spec.source.kind())
        repository = request.spec.source.repository
        if repository is None:  # require() above refuses every other kind
            raise Unsupported(f"provider type {self.type_name!r} copies container images only")
        return Reference.parse(repository.image, what="spec.source.repository.image")

    # -- copying -----------------------------------------------------------------------------
    def _resolve(self, ref: Reference) -> str:
        if ref.digest:
            return ref.digest
        client = self._client_for(ref)
        return client.head_manifest(ref.repository, ref.tag or "latest")[0]

    def _copy(self, source: Reference, repository: str, tags: list[str]) -> _Copied:
        """Copy `source` (pinned to its digest now) into `repository` and tag it, key tag last."""
        client = self._client_for(source)
        digest, media_type, body = client.get_manifest(
            source.repository, source.digest or source.tag or "latest"
        )
        copied = _Copied(digest, media_type, len(body))
        self._copy_tree(client, source.repository, repository, body, media_type, copied, 0)
        for tag in tags:
            put = self.registry.put_manifest(repository, tag, body, media_type)
            if put != digest:
                raise Transient(f"registry {self.host} stored {put} for {digest}; not a copy")
        return copied

    def _copy_tree(
        self,
        client: RegistryClient,
        source_repo: str,
        repository: str,
        body: bytes,
        media_type: str,
        copied: _Copied,
        depth: int,
    ) -> None:
        """Everything a manifest refers to: blobs, and for an index its child manifests."""
        if media_type not in MANIFEST_TYPES:
            raise InvalidInput(
                f"{source_repo}: manifest type {media_type or 'unknown'!r} cannot be copied; "
                f"supported: {', '.join(sorted(MANIFEST_TYPES))}"
            )
        try:
            manifest = Manifest.model_validate_json(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "the document"
            raise InvalidInput(
                f"{source_repo}: its {media_type} manifest is not valid at {where}: {first['msg']}"
            ) from None
        if media_type in INDEX_TYPES:
            if depth >= _MAX_NESTING:
                raise InvalidInput(f"{source_repo}: image indexes nest too deep to copy")
            for child in manifest.manifests:
                _, child_type, child_body = client.get_manifest(source_repo, child.digest)
                self._copy_tree(
                    client,
                    source_repo,
                    repository,
                    child_body,
                    child_type or child.media_type,
                    copied,
                    depth + 1,
                )
                self.registry.put_manifest(
                    repository, child.digest, child_body, child_type or child.media_type
                )
                copied.stats.manifests += 1
            return
        blobs = [manifest.config] if manifest.config else []
        for blob in [*blobs, *manifest.layers]:
            if blob.urls:
                continue  # non-distributable: the registry judges the manifest's URLs
            self._copy_blob(client, source_repo, repository, blob, copied.stats)

    def _copy_blob(
        self,
        client: RegistryClient,
        source_repo: str,
        repository: str,
        blob: Descriptor,
        stats: CopyStats,
    ) -> None:
        if client is self.registry:
            # Same registry: mount (no bytes move); 201 also when the blob is already here.
            session = self.registry.mount_blob(repository, blob.digest, source_repo)
            if session is None:
                stats.mounted += 1
                return
            self.registry.cancel_upload(session)  # could not mount: copy the bytes instead
        elif self.registry.blob_exists(repository, blob.digest):
            stats.present += 1
            return
        self.registry.copy_blob_from(client, source_repo, repository, blob)
        stats.uploaded += 1

    def _image(
        self,
        external_id: str,
        ref: Reference,
        digest: str,
        *,
        media_type: str = "",
        size: int | None = None,
        extra: Mapping[str, Any] | None = None,
        message: str | None = None,
    ) -> CloudImage:
        raw: dict[str, Any] = {
            "registry": self.host,
            "repository": ref.repository,
            "digest": digest,
            "reference": self.pinned(ref.repository, digest),
            "mediaType": media_type,
        }
        if size is not None:
            raw["size"] = size
        raw.update(extra or {})
        return CloudImage(
            external_id=external_id,
            state=CloudState.AVAILABLE,
            progress=100,
            message=message,
            fingerprint=digest,
            raw=raw,
        )

    # -- Provider ----------------------------------------------------------------------------
    def probe(self) -> str:
        response = self.registry.ping()
        version = response.headers.get("Docker-Distribution-API-Version", "v2")
        scope = f", repositories under {self.project}/" if self.project else ""
        return f"OCI registry {self.host} ({version}{scope})"

    def create_image(self, request: ImageRequest) -> CloudImage:
        self.require_source(request.spec.source.kind())
        source = self._source(request)
        repository = self.repository_for(request)
        key = key_tag(request.idempotency_key)
        if self._find(repository, key) is not None:
            raise Conflict(f"{self.host}/{repository}:{key} exists: an earlier create made it")
        tags = list(dict.fromkeys(t for t in (user_tag(source), key) if t))
        copied = self._copy(source, repository, tags)
        return self._created(repository, source, copied, tags)

    def _created(
        self, repository: str, source: Reference, copied: _Copied, tags: list[str]
    ) -> CloudImage:
        ref = Reference(self.host, repository, digest=copied.digest)
        return self._image(
            self.pinned(repository, copied.digest),
            ref,
            copied.digest,
            media_type=copied.media_type,
            size=copied.size,
            extra={
                "source": str(source),
                "sourceDigest": copied.digest,
                "tags": tags,
                "copy": dataclasses.asdict(copied.stats),
            },
            message=f"copied {source} pinned at {copied.digest}",
        )

    def _find(self, repository: str, key: str) -> CloudImage | None:
        try:
            digest, media_type, size = self.registry.head_manifest(repository, key)
        except NotFound:
            return None
        ref = Reference(self.host, repository, digest=digest)
        return self._image(
            self.pinned(repository, digest), ref, digest, media_type=media_type, size=size
        )

    def find_image(self, request: ImageRequest) -> CloudImage | None:
        return self._find(self.repository_for(request), key_tag(request.idempotency_key))

    def get_image(self, external_id: str) -> CloudImage:
        ref = self._own(external_id)
        digest, media_type, size = self.registry.head_manifest(
            ref.repository, ref.digest or str(ref.tag)
        )
        return self._image(external_id, ref, digest, media_type=media_type, size=size)

    def get_images(self, external_ids: Iterable[str]) -> dict[str, CloudImage | None]:
        """Pinned IDs cost one manifest HEAD each (the distribution API has no batch describe,
        and tag lists hold names, not digests); IDs by tag are answered from one tag list per
        repository, since a listed tag always points at a stored manifest."""
        result: dict[str, CloudImage | None] = {}
        by_tag: dict[str, list[tuple[str, Reference]]] = {}
        for external_id in dict.fromkeys(external_ids):
            ref = self._own(external_id)
            if ref.digest:
                try:
                    result[external_id] = self.get_image(external_id)
                except NotFound:
                    result[external_id] = None
            else:
                by_tag.setdefault(ref.repository, []).append((external_id, ref))
        for repository, wanted in by_tag.items():
            listed = set(self.registry.tags(repository))
            for external_id, ref in wanted:
                result[external_id] = (
                    CloudImage(
                        external_id=external_id,
                        state=CloudState.AVAILABLE,
                        progress=100,
                        raw={"registry": self.host, "repository": repository, "tag": ref.tag},
                    )
                    if ref.tag in listed
                    else None
                )
        return result

    def needs_update(self, request: ImageRequest, current: CloudImage) -> bool:
        """Only when spec.tags asks to track the source and its tag now names another digest."""
        if not tracks_source(request.spec):
            return False
        source = self._source(request)
        if source.digest:
            return False  # a pinned source never moves
        have = current.fingerprint or self.get_image(current.external_id).fingerprint
        return self._resolve(source) != have

    def update_image(self, external_id: str, request: ImageRequest) -> CloudImage:
        """Copy the source's new digest into the same repository, move the tags, retire the
        old manifest. A pinned ID changes with the digest; a tag ID stays."""
        self.require(Operation.UPDATE)
        ref = self._own(external_id)
        source = self._source(request)
        key = key_tag(request.idempotency_key)
        tags = list(dict.fromkeys(t for t in (user_tag(source), ref.tag, key) if t))
        copied = self._copy(source, ref.repository, tags)
        old = ref.digest
        if old and old != copied.digest:
            with contextlib.suppress(NotFound):  # already gone is as good
                self.registry.delete_manifest(ref.repository, old)
        image = self._created(ref.repository, source, copied, tags)
        if ref.digest is None:
            return image.model_copy(update={"external_id": external_id})
        return image

    def delete_image(self, external_id: str) -> None:
        """Delete by digest (distribution refuses deletes by tag): a tag ID is resolved first.
        Deleting the manifest removes every tag of it in that repository."""
        self.require(Operation.DELETE)
        ref = self._own(external_id)
        digest = ref.digest or self.registry.head_manifest(ref.repository, str(ref.tag))[0]
        self.registry.delete_manifest(ref.repository, digest)

    def close(self) -> None:
        self.registry.close()
        with self._lock:
            for client in self._others.values():
                client.close()
            self._others.clear()


def build(config: ProviderConfig) -> RegistryProvider:
    """The factory's entry point for type `registry`."""
    spec = config.spec
    if not spec.endpoint:
        raise InvalidInput(
            "spec.endpoint is required for type registry: the registry's base URL, "
            "e.g. https://registry.example.com"
        )
    url = httpx.URL(spec.endpoint)
    if url.userinfo:
        raise InvalidInput(
            "spec.endpoint must not carry credentials: put username and password in the "
            "Secret that spec.credentialsSecretRef names"
        )
    if url.path not in ("", "/") or url.query:
        raise InvalidInput(
            f"spec.endpoint {spec.endpoint!r}: the distribution API lives at /v2/ of the host, "
            "so give scheme://host[:port] without a path"
        )
    if spec.project:
        check_repository(spec.project.strip("/"), what="spec.project (the repository prefix)")
    username = config.credentials.get("username") or None
    password = config.credentials.get("password") or None
    if bool(username) != bool(password):
        raise InvalidInput(
            "the Secret has only one of username and password; a registry needs both or neither"
        )
    return RegistryProvider(
        endpoint=str(url),
        project=spec.project.strip("/") if spec.project else None,
        username=username,
        password=password,
        limiter=config.limiter,
        guard=config.guard(str(url), others=True),
    )

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

import base64
import contextlib
import dataclasses
import hashlib
import ipaddress
import re
import threading
from collections.abc import Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from image_operator.providers.base import (
    CREATE_OPERATION,
    CloudImage,
    CloudState,
    ImageRequest,
    Operation,
    Provider,
)
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
from image_operator.providers.ratelimit import TokenBucket

if TYPE_CHECKING:
    from image_operator.api.image import ImageSpec
    from image_operator.providers.factory import ProviderConfig

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST}) | INDEX_TYPES
# distribution 2.8 answers a manifest HEAD/GET only for media types the client names.
ACCEPT = ", ".join(sorted(MANIFEST_TYPES))

KEY_TAG_PREFIX = "imageops-"
# Opt-in: copy the source again when its tag moves (spec.tags is otherwise unused here: OCI
# tags are names, not key/value pairs, and annotations would change the digest).
TRACK_SOURCE = "imageops.io/track-source"

# The distribution reference grammar (github.com/distribution/reference), anchored pieces.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?$"
)
_MAX_REPOSITORY = 255  # distribution's limit on a repository name
_MAX_NESTING = 4  # index -> manifest is 1; deeper trees are not images
_CHUNK = 1 << 20
_DOCKER_HUB = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


# -- references --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """`[host/]repository[:tag][@digest]`; `host` None means the provider's own registry."""

    host: str | None
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str, *, what: str = "image reference") -> Reference:
        rest, digest = text, None
        if "@" in rest:
            rest, digest = rest.split("@", 1)
            if not _DIGEST.match(digest):
                raise InvalidInput(f"{what} {text!r}: the digest must be sha256:<64 hex digits>")
        first, slash, remainder = rest.partition("/")
        host = None
        # docker's rule: the first component is a registry host when it has a dot or a port,
        # is `localhost`, or has capitals (repository names cannot).
        if slash and (
            any(c in first for c in ".:") or first == "localhost" or first != first.lower()
        ):
            host, rest = first, remainder
            if not _HOST.match(host):
                raise InvalidInput(f"{what} {text!r}: {host!r} is not a registry host[:port]")
        tag = None
        last_colon = rest.rfind(":")
        if last_colon > rest.rfind("/"):
            rest, tag = rest[:last_colon], rest[last_colon + 1 :]
            if not _TAG.match(tag):
                raise InvalidInput(
                    f"{what} {text!r}: tag {tag!r} must be 1-128 of letters, digits, _ . - "
                    "and not start with . or -"
                )
        check_repository(rest, what=f"{what} {text!r}")
        if host in _DOCKER_HUB and "/" not in rest:
            rest = f"library/{rest}"  # Docker Hub's official images live under library/
        return cls(host=host, repository=rest, tag=tag, digest=digest)

    def __str__(self) -> str:
        text = f"{self.host}/{self.repository}" if self.host else self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def check_repository(name: str, *, what: str) -> None:
    if len(name) > _MAX_REPOSITORY:
        raise InvalidInput(f"{what}: the repository name is longer than {_MAX_REPOSITORY} chars")
    if not _REPOSITORY.match(name):
        raise InvalidInput(
            f"{what}: repository {name!r} must be lowercase path components of letters and "
            "digits, separated by '/', joined inside by '.', '_', '__' or dashes"
        )


def sha256_digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


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


# -- wire models -------------------------------------------------------------------------------


class Descriptor(BaseModel):
    """A content descriptor inside a manifest (only what copying needs)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    media_type: str = Field(default="", alias="mediaType")
    digest: str = Field(pattern=_DIGEST.pattern)
    size: int = Field(ge=0)
    urls: list[str] | None = None  # set on non-distributable (foreign) layers


class Manifest(BaseModel):
    """An image manifest (config + layers) or an index (manifests); extra fields are kept in
    the bytes we copy, never re-serialised from this model."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    schema_version: int = Field(alias="schemaVersion")
    media_type: str | None = Field(default=None, alias="mediaType")
    config: Descriptor | None = None
    layers: list[Descriptor] = Field(default_factory=list)
    manifests: list[Descriptor] = Field(default_factory=list)


class _ErrorDetail(BaseModel):
    code: str = "UNKNOWN"
    message: str = ""


class _ErrorBody(BaseModel):
    errors: list[_ErrorDetail] = Field(default_factory=list)


class _TagList(BaseModel):
    name: str = ""
    tags: list[str] | None = None


# -- errors ------------------------------------------------------------------------------------

_INVALID_STATUSES = frozenset({400, 411, 413, 415, 416, 422})


def map_error(response: httpx.Response, host: str, action: str) -> ProviderError:
    """The one place registry answers become provider errors. `action` says what was tried,
    in words (upload URLs carry session state and are never quoted)."""
    detail = _ErrorDetail()
    try:
        body = _ErrorBody.model_validate_json(response.read())
        if body.errors:
            detail = body.errors[0]
    except (ValidationError, ValueError):
        pass
    code = response.status_code
    words = detail.message or response.reason_phrase or "no message"
    text = f"registry {host} answered {code} {detail.code} to {action}: {words}"
    if code == 429 or detail.code == "TOOMANYREQUESTS":
        return Throttled(text, vendor_code=detail.code, retry_after=_retry_after(response))
    if code in (401, 403):
        return Forbidden(text, vendor_code=detail.code)
    if code == 404:
        return NotFound(text, vendor_code=detail.code)
    if code == 405:
        return Unsupported(text, vendor_code=detail.code)
    if code == 409:
        return Conflict(text, vendor_code=detail.code)
    if code in _INVALID_STATUSES:
        return InvalidInput(text, vendor_code=detail.code)
    return Transient(text, vendor_code=detail.code)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None  # an HTTP date: the reconciler's own backoff applies


# -- auth --------------------------------------------------------------------------------------

_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_PATH_REPOSITORY = re.compile(r"^/v2/(.+?)/(?:manifests|blobs|tags)/")


class RegistryAuth(httpx.Auth):
    """Whatever the registry's challenge asks for: Basic with the Secret's keys, or a bearer
    token from the realm it names (distribution's token spec; anonymous when there are no
    keys). Tokens are cached per repository and access kind, because a token only holds the
    scope it was issued for."""

    def __init__(self, username: str | None, password: str | None, timeout: float) -> None:
        self._basic: str | None = None
        if username and password:
            self._basic = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self._use_basic = False
        self._tokens: dict[tuple[str, bool], str] = {}
        self._lock = threading.Lock()
        self._timeout = timeout

    @staticmethod
    def _key(request: httpx.Request) -> tuple[str, bool]:
        match = _PATH_REPOSITORY.match(request.url.path)
        return (match.group(1) if match else "", request.method not in ("GET", "HEAD"))

    def _authorize(self, request: httpx.Request) -> None:
        with self._lock:
            token = self._tokens.get(self._key(request))
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        elif self._use_basic and self._basic is not None:
            request.headers["Authorization"] = self._basic

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        self._authorize(request)
        response = yield request
        if response.status_code != 401:
            return
        # One more try at most: with Basic once the registry asked for it, or with a token for
        # the scope this challenge names. A second 401 goes to the caller (Forbidden).
        scheme, _, params = response.headers.get("WWW-Authenticate", "").partition(" ")
        if scheme.lower() == "basic":
            if self._basic is None or self._use_basic:
                return
            self._use_basic = True
        elif scheme.lower() == "bearer":
            token = self._fetch_token(dict(_CHALLENGE_PARAM.findall(params)))
            if token is None:
                return
            with self._lock:
                self._tokens[self._key(request)] = token
        else:
            return
        self._authorize(request)
        yield request

    def _fetch_token(self, challenge: Mapping[str, str]) -> str | None:
        realm = challenge.get("realm", "")
        if not realm.startswith(("https://", "http://")):
            return None
        params = {k: v for k, v in challenge.items() if k in ("service", "scope")}
        # The realm is the registry's token service: the one place besides the registry the
        # keys go, as the token spec has it.
        headers = {"Authorization": self._basic} if self._basic else {}
        try:
            with httpx.Client(timeout=self._timeout) as client:
                reply = client.get(realm, params=params, headers=headers)
        except httpx.TransportError:
            return None
        if reply.status_code != 200:
            return None
        try:
            body = reply.json()
        except ValueError:
            return None
        token = body.get("token") or body.get("access_token")
        return str(token) if token else None


# -- one registry --------------------------------------------------------------------------


def default_scheme(host: str) -> str:
    """https, except for loopback registries (docker's default insecure registries)."""
    name = httpx.URL(f"http://{host}/").host
    if name == "localhost":
        return "http"
    try:
        return "http" if ipaddress.ip_address(name).is_loopback else "https"
    except ValueError:
        return "https"


@dataclass
class CopyStats:
    """What a copy did: blobs mounted from another repository, uploaded, or already there;
    child manifests of an index copied."""

    mounted: int = 0
    uploaded: int = 0
    present: int = 0
    manifests: int = 0


class RegistryClient:
    """The distribution API of one registry, each answer checked and mapped to provider errors."""

    def __init__(
        self,
        base_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        limiter: TokenBucket | None = None,
        timeout: float = 60.0,
    ) -> None:
        url = httpx.URL(base_url)
        self.host = url.netloc.decode()
        self._limiter = limiter
        self._http = httpx.Client(
            base_url=f"{url.scheme}://{self.host}",
            auth=RegistryAuth(username, password, timeout),
            timeout=timeout,
            follow_redirects=True,  # blob GETs may redirect to storage; httpx drops auth there
            event_hooks={"request": [self._throttle]},
        )

    def _throttle(self, _request: httpx.Request) -> None:
        if self._limiter is not None:
            self._limiter.acquire()

    def close(self) -> None:
        self._http.close()

    def _send(
        self, method: str, url: str | httpx.URL, action: str, *, expect: Iterable[int], **kw: Any
    ) -> httpx.Response:
        try:
            response = self._http.request(method, url, **kw)
        except httpx.TransportError as exc:
            raise Transient(
                f"registry {self.host} is unreachable ({action}): {type(exc).__name__}"
            ) from exc
        except httpx.StreamError as exc:  # a streamed body cannot be sent twice
            raise Transient(f"registry {self.host}: {action} failed: {type(exc).__name__}") from exc
        if response.status_code not in expect:
            raise map_error(response, self.host, action)
        return response

    def ping(self) -> httpx.Response:
        return self._send("GET", "/v2/", "GET /v2/", expect=(200,))

    def head_manifest(self, repository: str, reference: str) -> tuple[str, str, int]:
        """(digest, media type, size) of a manifest, without its body."""
        response = self._send(
            "HEAD",
            f"/v2/{repository}/manifests/{reference}",
            f"HEAD manifest {repository}:{reference}",
            expect=(200,),
            headers={"Accept": ACCEPT},
        )
        digest = response.headers.get("Docker-Content-Digest", "")
        if not _DIGEST.match(digest):
            if not _DIGEST.match(reference):
                # A registry that omits the header: the body's hash is the digest.
                digest, media_type, body = self.get_manifest(repository, reference)
                return digest, media_type, len(body)
            digest = reference
        media_type = response.headers.get("Content-Type", "").split(";")[0]
        return digest, media_type, int(response.headers.get("Content-Length") or 0)

    def get_manifest(self, repository: str, reference: str) -> tuple[str, str, bytes]:
        """(digest, media type, exact bytes); a digest reference is checked against the bytes."""
        action = f"GET manifest {repository}:{reference}"
        response = self._send(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            action,
            expect=(200,),
            headers={"Accept": ACCEPT},
        )
        body = response.content
        digest = sha256_digest(body)
        if _DIGEST.match(reference) and digest != reference:
            raise Transient(f"registry {self.host} sent a manifest that is not {reference}")
        media_type = response.headers.get("Content-Type", "").split(";")[0]
        return digest, media_type, body

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        response = self._send(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            f"PUT manifest {repository}:{reference}",
            expect=(201,),
            content=body,
            headers={"Content-Type": media_type},
        )
        return response.headers.get("Docker-Content-Digest") or sha256_digest(body)

    def delete_manifest(self, repository: str, digest: str) -> None:
        self._send(
            "DELETE",
            f"/v2/{repository}/manifests/{digest}",
            f"DELETE manifest {repository}@{digest}",
            expect=(202, 200),
        )

    def tags(self, repository: str) -> list[str]:
        """All tags of a repository ([] when it is unknown). distribution 2.8 ignores `n`, so
        there is one page; a `Link` to a next page (other registries) is followed."""
        found: list[str] = []
        url: str | httpx.URL = f"/v2/{repository}/tags/list"
        for _ in range(1000):  # a bound, not a retry: pages of a very large repository
            try:
                response = self._send("GET", url, f"GET tags {repository}", expect=(200,))
            except NotFound:
                return found
            found.extend(_TagList.model_validate_json(response.content).tags or [])
            next_link = response.links.get("next", {}).get("url")
            if not next_link:
                break
            url = response.url.join(next_link)
        return found

    def blob_exists(self, repository: str, digest: str) -> bool:
        try:
            self._send(
                "HEAD", f"/v2/{repository}/blobs/{digest}", f"HEAD blob {digest}", expect=(200,)
            )
        except NotFound:
            return False
        return True

    def mount_blob(self, repository: str, digest: str, source: str) -> httpx.URL | None:
        """Cross-repository mount: None when mounted (201), else the upload session the
        registry opened instead (202: it could not mount, e.g. it lacks the blob there)."""
        response = self._send(
            "POST",
            f"/v2/{repository}/blobs/uploads/",
            f"mount blob {digest} from {source} into {repository}",
            expect=(201, 202),
            params={"mount": digest, "from": source},
        )
        return None if response.status_code == 201 else self._location(response)

    def start_upload(self, repository: str) -> httpx.URL:
        response = self._send(
            "POST",
            f"/v2/{repository}/blobs/uploads/",
            f"start blob upload into {repository}",
            expect=(202,),
        )
        return self._location(response)

    def _location(self, response: httpx.Response) -> httpx.URL:
        location = response.headers.get("Location")
        if not location:
            raise Transient(f"registry {self.host} opened an upload without a Location header")
        url = response.url.join(location)
        # Credentials go only to the registry itself, never to a host a Location names.
        if url.netloc.decode() != self.host:
            raise Transient(f"registry {self.host} sent an upload to another host; refused")
        return url

    def finish_upload(self, session: httpx.URL, blob: Descriptor, chunks: Iterator[bytes]) -> None:
        """Monolithic PUT of a streamed body with the size known up front."""
        self._send(
            "PUT",
            session.copy_merge_params({"digest": blob.digest}),
            f"upload blob {blob.digest}",
            expect=(201,),
            content=chunks,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(blob.size)},
        )

    def cancel_upload(self, session: httpx.URL) -> None:
        # Best effort: the registry purges abandoned uploads itself.
        with contextlib.suppress(httpx.TransportError):
            self._http.request("DELETE", session)

    @contextlib.contextmanager
    def stream_blob(self, repository: str, digest: str) -> Iterator[Iterator[bytes]]:
        """The blob's bytes in 1 MiB chunks, read from the network as they are consumed."""
        action = f"GET blob {digest} from {repository}"
        try:
            with self._http.stream("GET", f"/v2/{repository}/blobs/{digest}") as response:
                if response.status_code != 200:
                    raise map_error(response, self.host, action)
                yield response.iter_bytes(_CHUNK)
        except httpx.TransportError as exc:
            raise Transient(
                f"registry {self.host} is unreachable ({action}): {type(exc).__name__}"
            ) from exc

    def copy_blob_from(
        self, source: RegistryClient, source_repo: str, repository: str, blob: Descriptor
    ) -> None:
        """Stream one blob from `source` into an upload session here: never all in memory."""
        with source.stream_blob(source_repo, blob.digest) as chunks:
            session = self.start_upload(repository)
            try:
                self.finish_upload(session, blob, chunks)
            except ProviderError:
                self.cancel_upload(session)
                raise


# -- the provider ------------------------------------------------------------------------------


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
        timeout: float = 60.0,
    ) -> None:
        self.registry = RegistryClient(
            endpoint, username=username, password=password, limiter=limiter, timeout=timeout
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
        host = "registry-1.docker.io" if ref.host in _DOCKER_HUB else ref.host
        with self._lock:
            client = self._others.get(host)
            if client is None:
                client = RegistryClient(
                    f"{default_scheme(host)}://{host}",
                    limiter=self._limiter,
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
        self.require(CREATE_OPERATION[request.spec.source.kind()])
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
        self.require(CREATE_OPERATION[request.spec.source.kind()])
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
    )

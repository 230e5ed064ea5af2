"""The distribution-spec wire client of the `registry` provider: the manifest and error models,
the error mapping (`map_error`), authentication (Basic or a bearer token from the registry's
challenge, `RegistryAuth`) and `RegistryClient`, the distribution API of one registry over
httpx. `RegistryProvider` (`providers.oci`) decides what to copy; this module only speaks HTTP.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import re
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from image_operator.providers.endpoints import EndpointPolicy, HostGuard
from image_operator.providers.errors import (
    NotFound,
    ProviderError,
    Throttled,
    Transient,
    Unsupported,
    from_http_status,
    parse_retry_after,
)
from image_operator.providers.oci_reference import ACCEPT, DIGEST, sha256_digest
from image_operator.providers.ratelimit import TokenBucket

_CHUNK = 1 << 20


# -- wire models -------------------------------------------------------------------------------


class Descriptor(BaseModel):
    """A content descriptor inside a manifest (only what copying needs)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    media_type: str = Field(default="", alias="mediaType")
    digest: str = Field(pattern=DIGEST.pattern)
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
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if detail.code == "TOOMANYREQUESTS":
        return Throttled(text, vendor_code=detail.code, retry_after=retry_after)
    if code == 405:
        return Unsupported(text, vendor_code=detail.code)
    return from_http_status(
        code, text, vendor_code=detail.code, retry_after=retry_after, invalid=_INVALID_STATUSES
    )


# -- auth --------------------------------------------------------------------------------------

_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_PATH_REPOSITORY = re.compile(r"^/v2/(.+?)/(?:manifests|blobs|tags)/")


class RegistryAuth(httpx.Auth):
    """Whatever the registry's challenge asks for: Basic with the Secret's keys, or a bearer
    token from the realm it names (distribution's token spec; anonymous when there are no
    keys). Tokens are cached per repository and access kind, because a token only holds the
    scope it was issued for."""

    def __init__(
        self,
        username: str | None,
        password: str | None,
        timeout: float,
        before_send: Callable[[httpx.Request], None],
    ) -> None:
        self._before_send = before_send
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
        # keys go, as the token spec has it. It is guarded and rate-limited like the registry
        # (a realm at a metadata address is refused), and follows no redirect.
        headers = {"Authorization": self._basic} if self._basic else {}
        try:
            hooks = {"request": [self._before_send]}
            with httpx.Client(timeout=self._timeout, event_hooks=hooks) as client:
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
        guard: HostGuard | None = None,
        timeout: float = 60.0,
    ) -> None:
        url = httpx.URL(base_url)
        self.host = url.netloc.decode()
        self._limiter = limiter
        # Other hosts (token realms, blob storage a redirect names) only where the policy
        # accepts them: the hook runs for every request, each redirect hop included.
        self.guard = guard or HostGuard.for_endpoint(EndpointPolicy(), base_url, others=True)
        self._http = httpx.Client(
            base_url=f"{url.scheme}://{self.host}",
            auth=RegistryAuth(username, password, timeout, self._before_send),
            timeout=timeout,
            follow_redirects=True,  # blob GETs may redirect to storage; httpx drops auth there
            event_hooks={"request": [self._before_send]},
        )

    def _before_send(self, request: httpx.Request) -> None:
        self.guard.check(str(request.url))
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
        if not DIGEST.match(digest):
            if not DIGEST.match(reference):
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
        if DIGEST.match(reference) and digest != reference:
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

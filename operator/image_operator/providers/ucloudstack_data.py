"""The data plane of the `ucloudstack` provider: the region's S3-style route (`<endpoint>/s3/...`)
that takes the parts of a Local import and serves image downloads, spoken with httpx (the SDK
has no client for it). Its errors are mapped by `providers.ucloud_errors`. Used by
`providers.ucloudstack`.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, Final

import httpx

from image_operator.providers.capabilities import UploadSession
from image_operator.providers.endpoints import HostGuard, origin
from image_operator.providers.ratelimit import TokenBucket
from image_operator.providers.ucloud_errors import data_error, transport_error
from image_operator.providers.ucloudstack_wire import SERVICE
from image_operator.providers.urlpaths import path_segment

DATA_SLICE: Final = 1024 * 1024  # bytes per write of an uploaded part


class DataPlane:
    """The `/s3` route of one endpoint: one httpx client, the provider's rate limiter."""

    def __init__(
        self, endpoint: str, *, limiter: TokenBucket | None, guard: HostGuard, timeout: float
    ) -> None:
        self.url = f"{origin(endpoint)}/s3"
        self._limiter = limiter
        self._guard = guard
        self._http = httpx.Client(
            timeout=timeout, trust_env=False, event_hooks={"request": [self._check]}
        )

    def _check(self, request: httpx.Request) -> None:
        self._guard.check(str(request.url))

    def request(self, method: str, url: str, operation: str, **kwargs: Any) -> httpx.Response:
        if self._limiter is not None:
            self._limiter.acquire()
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise transport_error(exc, service=SERVICE, operation=operation) from exc
        if response.is_error:
            raise data_error(response, service=SERVICE, operation=operation)
        return response

    def put_part(self, upload: UploadSession, part_number: int, data: bytes) -> str:
        """PUT one part (numbered from 1) with its MD5 and SHA-256; returns its ETag."""
        md5 = hashlib.md5(data).digest()  # noqa: S324 - S3's Content-MD5, not for security
        response = self.request(
            "PUT",
            f"{self.url}/{path_segment(upload.bucket, what='the upload bucket')}/"
            f"{path_segment(upload.image_id, what='the uploaded image ID')}",
            f"upload part {part_number}",
            params={"uploadId": upload.upload_id, "partNumber": str(part_number)},
            # In 1 MiB slices, not the bytes object: httpx's request/response objects form
            # reference cycles that keep a whole-bytes body alive until the cycle collector
            # runs, so a streamed upload's memory grew by one part per part (bench/README.md).
            content=(data[i : i + DATA_SLICE] for i in range(0, len(data), DATA_SLICE)),
            headers={
                "Content-Length": str(len(data)),
                "Content-MD5": base64.b64encode(md5).decode(),
                "x-amz-content-sha256": hashlib.sha256(data).hexdigest(),
                "Content-Type": "application/octet-stream",
            },
        )
        return str(response.headers.get("ETag", "")).strip('"')

    def sha256(self, url: str) -> str:
        """The file behind a download URL streamed through SHA-256 (1 MiB at a time)."""
        digest = hashlib.sha256()
        if self._limiter is not None:
            self._limiter.acquire()
        try:
            with self._http.stream("GET", url) as response:
                if response.is_error:
                    response.read()
                    raise data_error(response, service=SERVICE, operation="download")
                for chunk in response.iter_bytes(DATA_SLICE):
                    digest.update(chunk)
        except httpx.TransportError as exc:
            raise transport_error(exc, service=SERVICE, operation="download") from exc
        return digest.hexdigest()

    def close(self) -> None:
        self._http.close()

"""How an `Image` maps onto Alibaba Cloud ECS: the image's name, ClientTokens, the UID tag and
the user's tags, the OSS object an import URL names, and ECS's image states, formats and
architectures. Used by `providers.aliyun` (and the pipeline mapping, `providers.aliyun_pipelines`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from image_operator.api.image import ImageFormat
from image_operator.providers.errors import InvalidInput
from image_operator.providers.model import CloudState, ImageRequest

UID_TAG: Final = "imageops.io/uid"
MAX_TAGS: Final = 20
MAX_CLIENT_TOKEN: Final = 64

STATES: Final = {
    "Waiting": CloudState.PENDING,
    "Creating": CloudState.CREATING,
    "Available": CloudState.AVAILABLE,
    "Deprecated": CloudState.AVAILABLE,
    "CreateFailed": CloudState.FAILED,
    "UnAvailable": CloudState.FAILED,
}
FORMATS: Final = {
    ImageFormat.QCOW2: "QCOW2",
    ImageFormat.RAW: "RAW",
    ImageFormat.VHD: "VHD",
    ImageFormat.VMDK: "VMDK",
}
ARCHITECTURES: Final = {
    "amd64": "x86_64",
    "x86_64": "x86_64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "i386": "i386",
    "i686": "i386",
}


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


def uid_tag(request: ImageRequest) -> tuple[str, str]:
    return (UID_TAG, request.idempotency_key)


def image_tags(request: ImageRequest) -> list[tuple[str, str]]:
    user = request.spec.tags or {}
    if len(user) >= MAX_TAGS:
        raise InvalidInput(
            f"spec.tags has {len(user)} tags; ECS images take at most {MAX_TAGS} and the "
            f"operator adds {UID_TAG}, so give at most {MAX_TAGS - 1}"
        )
    return [uid_tag(request), *sorted(user.items())]


def sdk_tags(model: Any, items: Iterable[tuple[str, str]]) -> list[Any]:
    return [model(key=key, value=value) for key, value in items]

"""spec.cover of a CommunityListing: read from where it is kept, checked before any cloud call."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass

from image_operator.api.listing import COVER_INLINE_MAX, CoverSource

_BASE64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")
# The formats `picture_format` knows, as messages name them.
FORMATS = "PNG, JPEG, GIF or WebP"


@dataclass(frozen=True)
class Cover:
    """The cover to send (Base64), or why it cannot be read; both None when there is none."""

    value: str | None = None
    problem: str | None = None


def resolve_cover(
    cover: CoverSource | None,
    read_configmap_key: Callable[[str, str], str | None],
    read_secret_key: Callable[[str, str], str | None],
) -> Cover:
    """spec.cover as Base64 text. A ConfigMap key may hold Base64 text in `data` or the raw
    picture in `binaryData` (the API returns that Base64); a Secret key holds Base64 text."""
    if cover is None:
        return Cover()
    if cover.inline is not None:
        value, where = cover.inline, "spec.cover.inline"
    elif cover.config_map_key_ref is not None:
        ref = cover.config_map_key_ref
        where = f"spec.cover.configMapKeyRef (ConfigMap {ref.name!r}, key {ref.key!r})"
        found = read_configmap_key(ref.name, ref.key)
        if found is None:
            return Cover(problem=f"{where} does not exist: create it or fix the reference")
        value = found
    elif cover.secret_key_ref is not None:
        sref = cover.secret_key_ref
        where = f"spec.cover.secretKeyRef (Secret {sref.name!r}, key {sref.key!r})"
        found = read_secret_key(sref.name, sref.key)
        if found is None:
            return Cover(problem=f"{where} does not exist: create it or fix the reference")
        value = found
    else:
        return Cover()
    value = "".join(value.split())  # Base64 wrapped over lines is still Base64
    if len(value) > COVER_INLINE_MAX:
        return Cover(
            problem=f"{where} holds {len(value)} Base64 characters; at most "
            f"{COVER_INLINE_MAX} are accepted: use a smaller picture"
        )
    try:
        if not value or not _BASE64.fullmatch(value):
            raise ValueError
        picture = base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        return Cover(
            problem=f"{where} is not Base64 image data: put the picture Base64-encoded there "
            "(or raw in a ConfigMap's binaryData)"
        )
    if picture_format(picture) is None:
        return Cover(
            problem=f"{where} is Base64, but what it encodes is not a picture: give a "
            f"{FORMATS} file, Base64-encoded"
        )
    return Cover(value=value)


def picture_format(data: bytes) -> str | None:
    """The picture format `data` starts with (its magic bytes), or None. CompShare documents
    the cover only as a Base64 picture (PublishCompShareImage `Cover`); these are the formats a
    web page shows everywhere."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return None

"""`spec.source.image`: copy another `Image`.

Within one provider the provider's copy API does it (ECS CopyImage, CompShare
CopyCompShareCustomImage): see `Copier`. Across providers the source provider exports (a
download URL for the source's file) and the target provider imports from that URL exactly as for
`spec.source.url`, so a cross-provider copy needs nothing new from the target: any provider that
imports from a URL can receive one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from image_operator.api.image import ImageFormat, ImageSource, ImageSpec, UrlSource
from image_operator.providers.base import CloudImage, ImageRequest
from image_operator.providers.errors import Unsupported


@dataclass(frozen=True)
class CopySource:
    """The source `Image` as the handler found it (the reconciler never reads Kubernetes)."""

    name: str
    provider_name: str = ""
    external_id: str | None = None
    ready: bool = False
    problem: str | None = None  # a sentence: why the source cannot be used
    exporter: object | None = None  # the source's provider client, if usable
    exporter_label: str = ""  # e.g. "ucloudstack provider 'dc1'", for messages


@runtime_checkable
class Copier(Protocol):
    """A provider that copies one of its own images with a copy API. The copy carries the
    request's idempotency mark (tag or name) so `find_image` finds it after a lost answer."""

    def copy_within(self, request: ImageRequest, source_external_id: str) -> CloudImage: ...


class _Download(Protocol):
    url: str


@runtime_checkable
class Exporter(Protocol):
    """A provider that hands out a URL to an image's file (ucloudstack's GetImageDownloadURL)."""

    def get_download_url(self, image_id: str) -> _Download: ...


def export_request(
    request: ImageRequest, exporter: object, source: CopySource, source_label: str
) -> ImageRequest:
    """The request the target provider imports: this Image's spec with the source's download
    URL as a `url` source, the format taken from the source's cloud image."""
    assert source.external_id is not None
    if not isinstance(exporter, Exporter):
        raise Unsupported(
            f"spec.source.image.imageRef names Image {source.name!r}, whose {source_label} "
            "cannot export images (it has no download URL); copies across providers start "
            "from ucloudstack providers"
        )
    url = exporter.get_download_url(source.external_id).url
    image_format = _format_of(exporter, source.external_id)
    spec: ImageSpec = request.spec.model_copy(
        update={"source": ImageSource(url=UrlSource(url=url, format=image_format))}
    )
    return request.model_copy(update={"spec": spec})


def _format_of(exporter: object, external_id: str) -> ImageFormat:
    get_image = getattr(exporter, "get_image", None)
    raw = get_image(external_id).raw if callable(get_image) else {}
    try:
        return ImageFormat(str(raw.get("ImageFormat") or "qcow2").lower())
    except ValueError:
        return ImageFormat.QCOW2

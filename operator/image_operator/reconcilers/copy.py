"""`spec.source.image`: copy another `Image`.

Within one provider the provider's copy API does it (ECS CopyImage, CompShare
CopyCompShareCustomImage): see `CopiesWithin`. Across providers the source provider exports (a
download URL for the source's file) and the target provider imports from that URL exactly as for
`spec.source.url`, so a cross-provider copy needs nothing new from the target: any provider that
imports from a URL can receive one.
"""

from __future__ import annotations

from dataclasses import dataclass

from image_operator.api.image import ImageSource, ImageSpec, UrlSource
from image_operator.providers.capabilities import ExportsImages
from image_operator.providers.errors import Unsupported
from image_operator.providers.model import ImageRequest


@dataclass(frozen=True)
class CopySource:
    """The source `Image` as the handler found it (the reconciler never reads Kubernetes)."""

    name: str
    provider_name: str = ""
    external_id: str | None = None
    ready: bool = False
    problem: str | None = None  # a sentence: why the source cannot be used
    exporter: ExportsImages | None = None  # the source provider's export ability, if any
    exporter_label: str = ""  # e.g. "ucloudstack provider 'dc1'", for messages


def export_request(
    request: ImageRequest, exporter: ExportsImages | None, source: CopySource, source_label: str
) -> ImageRequest:
    """The request the target provider imports: this Image's spec with the source's download
    URL as a `url` source, in the format of the source's cloud image."""
    assert source.external_id is not None
    if exporter is None:
        raise Unsupported(
            f"spec.source.image.imageRef names Image {source.name!r}, whose {source_label} "
            "cannot export images (it has no download URL); copies across providers start "
            "from ucloudstack providers"
        )
    exported = exporter.export_image(source.external_id)
    spec: ImageSpec = request.spec.model_copy(
        update={"source": ImageSource(url=UrlSource(url=exported.url, format=exported.format))}
    )
    return request.model_copy(update={"spec": spec})

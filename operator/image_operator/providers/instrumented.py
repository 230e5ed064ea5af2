"""A provider wrapper that counts and times every cloud call (Prometheus), whatever the vendor."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from image_operator import metrics
from image_operator.providers.base import Provider
from image_operator.providers.capabilities import (
    BaseImages,
    CopiesWithin,
    ExportsImages,
    MeasuredBaseImages,
    MeasuredCopier,
    MeasuredExporter,
    MeasuredMultipartUploads,
    MeasuredPlaceholderUploads,
    MultipartUploads,
    PlaceholderUploads,
)
from image_operator.providers.errors import ProviderError
from image_operator.providers.model import CloudImage, ImageMatch, ImageRequest, ImageSelector
from image_operator.providers.pipelines import BuildsPipelines, MeasuredPipelines
from image_operator.providers.publishing import MeasuredPublishing, Publishes

T = TypeVar("T")


class InstrumentedProvider(Provider):
    """Delegates to `inner`; each call is one `imageops_cloud_requests_total` sample.

    Optional abilities are handed out as the `Measured…` forwarders of their interfaces: each
    call written out, none forwarded by dynamic attribute lookup (such a forwarder is invisible to
    `isinstance` and to mypy, and broke uploads and copies on Python 3.12+).
    """

    def __init__(self, inner: Provider) -> None:
        self.inner = inner
        self.type_name = inner.type_name
        self.operations = inner.operations
        self.create_refuses_duplicates = inner.create_refuses_duplicates

    def _call(self, action: str, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        start = time.perf_counter()
        outcome = "ok"
        try:
            return function(*args, **kwargs)
        except ProviderError as exc:
            outcome = exc.reason
            metrics.CLOUD_ERRORS.labels(self.type_name, action, exc.reason).inc()
            raise
        except Exception:
            outcome = "InternalError"
            metrics.CLOUD_ERRORS.labels(self.type_name, action, outcome).inc()
            raise
        finally:
            metrics.CLOUD_REQUESTS.labels(self.type_name, action, outcome).inc()
            metrics.CLOUD_LATENCY.labels(self.type_name, action).observe(
                time.perf_counter() - start
            )

    def probe(self) -> str:
        return self._call("probe", self.inner.probe)

    def create_image(self, request: ImageRequest) -> CloudImage:
        return self._call("create_image", self.inner.create_image, request)

    def find_image(self, request: ImageRequest) -> CloudImage | None:
        return self._call("find_image", self.inner.find_image, request)

    def get_image(self, external_id: str) -> CloudImage:
        return self._call("get_image", self.inner.get_image, external_id)

    def get_images(self, external_ids: Iterable[str]) -> dict[str, CloudImage | None]:
        return self._call("get_images", self.inner.get_images, list(external_ids))

    def needs_update(self, request: ImageRequest, current: CloudImage) -> bool:
        # A local comparison, not a cloud call: not counted.
        return self.inner.needs_update(request, current)

    def update_image(self, external_id: str, request: ImageRequest) -> CloudImage:
        return self._call("update_image", self.inner.update_image, external_id, request)

    def delete_image(self, external_id: str) -> None:
        self._call("delete_image", self.inner.delete_image, external_id)

    def image_sha256(self, external_id: str) -> str:
        return self._call("image_sha256", self.inner.image_sha256, external_id)

    def find_images(self, selector: ImageSelector) -> list[ImageMatch]:
        return self._call("find_images", self.inner.find_images, selector)

    def close(self) -> None:
        self.inner.close()

    @property
    def copier(self) -> CopiesWithin | None:
        inner = self.inner.copier
        return None if inner is None else MeasuredCopier(inner, self._call)

    @property
    def exporter(self) -> ExportsImages | None:
        inner = self.inner.exporter
        return None if inner is None else MeasuredExporter(inner, self._call)

    @property
    def multipart_uploads(self) -> MultipartUploads | None:
        inner = self.inner.multipart_uploads
        return None if inner is None else MeasuredMultipartUploads(inner, self._call)

    @property
    def placeholder_uploads(self) -> PlaceholderUploads | None:
        inner = self.inner.placeholder_uploads
        return None if inner is None else MeasuredPlaceholderUploads(inner, self._call)

    @property
    def base_images(self) -> BaseImages | None:
        inner = self.inner.base_images
        return None if inner is None else MeasuredBaseImages(inner, self._call)

    @property
    def publisher(self) -> Publishes | None:
        inner = self.inner.publisher
        return None if inner is None else MeasuredPublishing(inner, self._call)

    @property
    def pipelines(self) -> BuildsPipelines | None:
        inner = self.inner.pipelines
        return None if inner is None else MeasuredPipelines(inner, self._call)

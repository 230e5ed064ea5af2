"""The optional abilities a provider may have, each an interface a provider class declares by
name (`class UCloudStackProvider(Provider, ExportsImages, ...)`), and their measured forwarders.

Reconcilers ask a provider for an ability (`provider.copier`, `provider.exporter`, ...) and get
the interface or None; they never import a vendor module, compare type names or cast. Being
nominal (ABCs, not runtime Protocols), the check is a plain `isinstance` on the concrete class,
which behaves the same on every Python: runtime Protocols stopped seeing dynamically forwarded
methods in 3.12, which is how uploads and copies broke behind the instrumenting wrapper.

Each interface has a `Measured…` forwarder that `InstrumentedProvider` hands out instead of the
inner provider: one explicit method per call, each counted and timed like the base calls (mypy
and ABC instantiation prove that no method is left unforwarded).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from image_operator.api.image import ImageFormat, OsInfo
from image_operator.api.provideroptions import UCloudStackImageOptions
from image_operator.providers.model import CloudImage, ImageRequest

T = TypeVar("T")


class Meter(Protocol):
    """Runs one cloud call, counting and timing it under `action` (InstrumentedProvider._call)."""

    def __call__(
        self, action: str, function: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> T: ...


# --- copies within one provider ----------------------------------------------------------------


class CopiesWithin(ABC):
    """Copies one of its own images with a copy API (ECS CopyImage, CopyCompShareCustomImage).
    The copy carries the request's idempotency mark (tag or name), so `find_image` finds it
    after a lost answer."""

    @abstractmethod
    def copy_within(self, request: ImageRequest, source_external_id: str) -> CloudImage: ...


class MeasuredCopier(CopiesWithin):
    def __init__(self, inner: CopiesWithin, meter: Meter) -> None:
        self._inner, self._meter = inner, meter

    def copy_within(self, request: ImageRequest, source_external_id: str) -> CloudImage:
        return self._meter("copy_within", self._inner.copy_within, request, source_external_id)


# --- export, for copies across providers -------------------------------------------------------


class ExportedImage(BaseModel):
    """Where an image's file can be fetched from, and in which format."""

    model_config = ConfigDict(frozen=True)

    url: str
    format: ImageFormat
    expires_at: int | None = None  # Unix seconds, when the cloud says


class ExportsImages(ABC):
    """Hands out a URL to an image's file (UCloudStack's GetImageDownloadURL): the source side of
    a copy across providers; the target imports it as a `url` source."""

    @abstractmethod
    def export_image(self, external_id: str) -> ExportedImage: ...


class MeasuredExporter(ExportsImages):
    def __init__(self, inner: ExportsImages, meter: Meter) -> None:
        self._inner, self._meter = inner, meter

    def export_image(self, external_id: str) -> ExportedImage:
        return self._meter("export_image", self._inner.export_image, external_id)


# --- uploads -----------------------------------------------------------------------------------


class UploadSession(BaseModel):
    """An open multipart import: where its parts go."""

    model_config = ConfigDict(frozen=True)

    image_id: str
    upload_id: str
    bucket: str


class LocalImport(BaseModel):
    """What opening a multipart import needs: the image's name, format and OS, the idempotency
    key it is tagged with, and what else the cloud records."""

    model_config = ConfigDict(frozen=True)

    name: str
    image_format: str
    os: OsInfo
    idempotency_key: str
    description: str | None = None
    size_gib: int | None = None
    tags: Mapping[str, str] | None = None
    ucloudstack: UCloudStackImageOptions | None = None  # spec.ucloudstack's flags (issue 12)


class MultipartUploads(ABC):
    """The uploader opens the import itself and sends the file in parts (UCloudStack's ImportImage
    Local): the cloud image appears when `image-operator upload` starts, so the operator waits
    for it and finds it by its idempotency tag."""

    @abstractmethod
    def import_local(self, request: LocalImport) -> UploadSession: ...

    @abstractmethod
    def upload_part(self, upload: UploadSession, part_number: int, data: bytes) -> str: ...

    @abstractmethod
    def complete_upload(self, upload: UploadSession) -> None: ...

    @abstractmethod
    def abort_upload(self, upload: UploadSession) -> None: ...

    @abstractmethod
    def receiving_upload(self, image: CloudImage) -> bool:
        """Whether `image` is an import still waiting for its parts (a local judgement of an
        answer already fetched: no cloud call)."""


class MeasuredMultipartUploads(MultipartUploads):
    def __init__(self, inner: MultipartUploads, meter: Meter) -> None:
        self._inner, self._meter = inner, meter

    def import_local(self, request: LocalImport) -> UploadSession:
        return self._meter("import_local", self._inner.import_local, request)

    def upload_part(self, upload: UploadSession, part_number: int, data: bytes) -> str:
        return self._meter("upload_part", self._inner.upload_part, upload, part_number, data)

    def complete_upload(self, upload: UploadSession) -> None:
        self._meter("complete_upload", self._inner.complete_upload, upload)

    def abort_upload(self, upload: UploadSession) -> None:
        self._meter("abort_upload", self._inner.abort_upload, upload)

    def receiving_upload(self, image: CloudImage) -> bool:
        return self._inner.receiving_upload(image)  # local: not a cloud call


class PlaceholderUploads(ABC):
    """Uploads fill an image the operator already made (Glance's PUT /file)."""

    @abstractmethod
    def upload(self, external_id: str, data: Iterable[bytes], size: int) -> CloudImage: ...


class MeasuredPlaceholderUploads(PlaceholderUploads):
    def __init__(self, inner: PlaceholderUploads, meter: Meter) -> None:
        self._inner, self._meter = inner, meter

    def upload(self, external_id: str, data: Iterable[bytes], size: int) -> CloudImage:
        return self._meter("upload", self._inner.upload, external_id, data, size)


# --- base images -------------------------------------------------------------------------------


class BaseImageInfo(BaseModel):
    """One base image as the cloud reports it."""

    model_config = ConfigDict(frozen=True)

    image_id: str
    name: str = ""
    description: str = ""
    region: str = ""
    permission: str = ""
    create_time: int = 0
    update_time: int = 0


class BaseImages(ABC):
    """Clones custom images into base images and manages them (UCloudStack's
    CloneCustomImageToBaseImage, DescribeBaseImage, DeleteBaseImage)."""

    @abstractmethod
    def clone_to_base_image(self, source_image_id: str, name: str) -> str:
        """Clone an Available custom image into a base image; returns the base image's ID."""

    @abstractmethod
    def describe_base_images(
        self, image_ids: Iterable[str] | None = None
    ) -> list[BaseImageInfo]: ...

    @abstractmethod
    def delete_base_image(self, image_id: str) -> None: ...

    @abstractmethod
    def clone_source(self, image: CloudImage) -> str | None:
        """The custom image `image` was cloned from, if the cloud says (a local judgement of an
        answer already fetched: no cloud call)."""

    @abstractmethod
    def find_clone(self, name: str, source_id: str) -> CloudImage | None:
        """The base image an earlier clone of `source_id` named `name` made (the oldest if
        several): clone calls take no client token, so a lost answer is recovered this way."""


class MeasuredBaseImages(BaseImages):
    def __init__(self, inner: BaseImages, meter: Meter) -> None:
        self._inner, self._meter = inner, meter

    def clone_to_base_image(self, source_image_id: str, name: str) -> str:
        return self._meter(
            "clone_to_base_image", self._inner.clone_to_base_image, source_image_id, name
        )

    def describe_base_images(self, image_ids: Iterable[str] | None = None) -> list[BaseImageInfo]:
        ids = None if image_ids is None else list(image_ids)
        return self._meter("describe_base_images", self._inner.describe_base_images, ids)

    def delete_base_image(self, image_id: str) -> None:
        self._meter("delete_base_image", self._inner.delete_base_image, image_id)

    def clone_source(self, image: CloudImage) -> str | None:
        return self._inner.clone_source(image)  # local: not a cloud call

    def find_clone(self, name: str, source_id: str) -> CloudImage | None:
        return self._meter("find_clone", self._inner.find_clone, name, source_id)

"""The provider interface the reconcilers program against, and the values it exchanges.

Providers are synchronous (the vendor SDKs are) and know nothing of Kubernetes or kopf.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from image_operator.api.image import ImageSpec
from image_operator.providers.errors import NotFound, Unsupported


class CloudState(StrEnum):
    """Where a cloud image is in its life, reduced to what the reconcilers need."""

    PENDING = "Pending"  # accepted, work not started
    CREATING = "Creating"  # being made / imported / built; `progress` may move
    AVAILABLE = "Available"  # usable
    FAILED = "Failed"  # the cloud gave up; `message` says why
    DELETING = "Deleting"


class CloudImage(BaseModel):
    """What a provider reports about one image."""

    model_config = ConfigDict(frozen=True)

    external_id: str
    state: CloudState
    progress: int | None = Field(default=None, ge=0, le=100)
    message: str | None = None
    # The provider's view of the spec fields it manages, to detect drift and push updates.
    fingerprint: str | None = None
    raw: Mapping[str, Any] = Field(default_factory=dict, repr=False)


class ImageRequest(BaseModel):
    """Everything a provider needs to create or update an image, already validated.

    `idempotency_key` is the Kubernetes UID: providers send it as a client token or encode it
    in the cloud name/tag, so a retried create finds the first one instead of making another.
    """

    model_config = ConfigDict(frozen=True)

    idempotency_key: str
    name: str
    namespace: str
    spec: ImageSpec


class Operation(StrEnum):
    """Operations a provider may support; asking for another one yields `Unsupported`."""

    CREATE_FROM_REPOSITORY = "create from a container repository"
    CREATE_FROM_VM = "capture a VM"
    IMPORT_URL = "import from a URL"
    IMPORT_UPLOAD = "import an upload"
    COPY = "copy an image"
    # Images built by an image pipeline are only ever adopted (the pipeline makes them).
    BUILD_WITH_PIPELINE = "build with an image pipeline"
    UPDATE = "update"
    DELETE = "delete"


CREATE_OPERATION = {
    "repository": Operation.CREATE_FROM_REPOSITORY,
    "vm": Operation.CREATE_FROM_VM,
    "url": Operation.IMPORT_URL,
    "upload": Operation.IMPORT_UPLOAD,
    "image": Operation.COPY,
    "pipeline": Operation.BUILD_WITH_PIPELINE,
}


class Provider(ABC):
    """One cloud account/endpoint. Implementations wrap exactly one vendor SDK or API."""

    type_name: str = ""
    operations: frozenset[Operation] = frozenset()

    def require(self, operation: Operation) -> None:
        if operation not in self.operations:
            supported = ", ".join(sorted(o.value for o in self.operations))
            raise Unsupported(
                f"provider type {self.type_name!r} cannot {operation.value}; "
                f"it supports: {supported}"
            )

    @abstractmethod
    def probe(self) -> str:
        """A cheap authenticated call; returns a short description of the endpoint."""

    @abstractmethod
    def create_image(self, request: ImageRequest) -> CloudImage:
        """Start creating an image. Raises `Conflict` if the idempotency key is taken."""

    @abstractmethod
    def find_image(self, request: ImageRequest) -> CloudImage | None:
        """Look up the image a previous create with this request's key made, if any."""

    @abstractmethod
    def get_image(self, external_id: str) -> CloudImage:
        """Describe one image. Raises `NotFound`."""

    def get_images(self, external_ids: Iterable[str]) -> dict[str, CloudImage | None]:
        """Describe many images; providers with a batch call override this (one call)."""
        result: dict[str, CloudImage | None] = {}
        for external_id in external_ids:
            try:
                result[external_id] = self.get_image(external_id)
            except NotFound:
                result[external_id] = None
        return result

    @abstractmethod
    def needs_update(self, request: ImageRequest, current: CloudImage) -> bool:
        """Whether the cloud image differs from the spec in fields the provider can update."""

    @abstractmethod
    def update_image(self, external_id: str, request: ImageRequest) -> CloudImage:
        """Push spec changes to an existing image."""

    @abstractmethod
    def delete_image(self, external_id: str) -> None:
        """Start deleting an image; `NotFound` means it is already gone."""

    def image_sha256(self, external_id: str) -> str:
        """The SHA-256 of the image file the cloud holds, to check a source's `checksum`.

        Providers that can read the file back (a download URL) override this and stream it;
        the others cannot say, and the reconciler reports the checksum as not verified.
        """
        raise Unsupported(
            f"provider type {self.type_name!r} cannot read an image file back to verify its sha256"
        )

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

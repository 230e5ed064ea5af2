"""The values providers and reconcilers exchange: what a cloud image is, what a create asks for,
which operations exist. No behaviour; imported by the interfaces in `base` and `capabilities`."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from image_operator.api.image import ImageSpec


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


# -- adoption by selector (issue 12 part 4) --------------------------------------------------


class ImageSelector(BaseModel):
    """Which cloud images `Provider.find_images` returns: those named exactly `name`, or those
    carrying every one of `tags` (key and value exactly). One of the two is set."""

    model_config = ConfigDict(frozen=True)

    name: str | None = None
    tags: Mapping[str, str] = Field(default_factory=dict)


class ImageMatch(BaseModel):
    """One cloud image a selector matched: its ID, and its name for messages."""

    model_config = ConfigDict(frozen=True)

    external_id: str
    name: str = ""

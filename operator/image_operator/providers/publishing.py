"""Publishing to a community marketplace (seed 000, CompShare): the values and the interface
the CommunityListing reconciler programs against, and its measured forwarder."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from image_operator.providers.capabilities import Meter
from image_operator.providers.model import CloudImage, ImageRequest


class PublicationState(StrEnum):
    """Where a published version is in the community's review."""

    IN_REVIEW = "InReview"
    PUBLISHED = "Published"
    REJECTED = "Rejected"
    OFFLINE = "Offline"  # its image was deleted


class Publication(BaseModel):
    """One version of a community listing."""

    model_config = ConfigDict(frozen=True)

    image_id: str
    group_id: str
    version_name: str
    state: PublicationState
    reason: str | None = Field(default=None, description="Why the review rejected it.")
    community_image_name: str | None = None
    published_at: datetime | None = None
    raw: Mapping[str, Any] = Field(default_factory=dict, repr=False)


class Listing(BaseModel):
    """A listing group: every version published under one group ID."""

    model_config = ConfigDict(frozen=True)

    group_id: str
    name: str
    published: bool
    versions: list[Publication]


class PublishRequest(BaseModel):
    """One version to submit (every field of seed 000's PublishCompShareImage but the image):
    `group_id` adds it to an existing listing, without it a new listing group is made; `cover`
    is Base64 image data; `price` 0 or unset is free."""

    model_config = ConfigDict(frozen=True)

    version_name: str
    group_id: str | None = None
    community_image_name: str | None = None
    version_desc: str | None = None
    price: Decimal | float | str | None = None
    cover: str | None = None
    tags: list[str] | None = None
    description: str | None = None
    readme: str | None = None
    supported_gpu_types: list[str] | None = None
    auto_start: bool | None = None


class Publishes(ABC):
    """Publishes copies of its images to the community and reports their review."""

    @abstractmethod
    def container_made(self, image: CloudImage) -> bool:
        """Whether `image` was made from a container (only those may be published); a local
        judgement of an answer already fetched."""

    @abstractmethod
    def publication_copy_name(self, request: ImageRequest) -> str:
        """The name a copy made for `request` carries (its idempotency mark)."""

    @abstractmethod
    def copy_image(self, external_id: str, target_name: str | None = None) -> str:
        """Copy an Available image; returns the new ID. A taken `target_name` is a Conflict."""

    @abstractmethod
    def publish(self, image_id: str, request: PublishRequest) -> None:
        """Submit `image_id` for the community's review as `request` describes the version. The
        answer carries nothing: read the outcome with `describe_publication`. Not idempotent:
        an image already in review or published is refused with `Conflict`."""

    @abstractmethod
    def describe_publication(self, image_id: str) -> Publication | None: ...

    @abstractmethod
    def describe_listing(self, group_id: str) -> Listing: ...


class MeasuredPublishing(Publishes):
    def __init__(self, inner: Publishes, meter: Meter) -> None:
        self._inner, self._meter = inner, meter

    def container_made(self, image: CloudImage) -> bool:
        return self._inner.container_made(image)  # local: not a cloud call

    def publication_copy_name(self, request: ImageRequest) -> str:
        return self._inner.publication_copy_name(request)  # local: not a cloud call

    def copy_image(self, external_id: str, target_name: str | None = None) -> str:
        return self._meter("copy_image", self._inner.copy_image, external_id, target_name)

    def publish(self, image_id: str, request: PublishRequest) -> None:
        self._meter("publish", self._inner.publish, image_id, request)

    def describe_publication(self, image_id: str) -> Publication | None:
        return self._meter("describe_publication", self._inner.describe_publication, image_id)

    def describe_listing(self, group_id: str) -> Listing:
        return self._meter("describe_listing", self._inner.describe_listing, group_id)

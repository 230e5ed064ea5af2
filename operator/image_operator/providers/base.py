"""The provider interface the reconcilers program against, and the values it exchanges.

Providers are synchronous (the vendor SDKs are) and know nothing of Kubernetes or kopf. Every
provider has the base calls below; optional abilities are the interfaces in `capabilities`,
`publishing` and `pipelines`, reached through the typed accessors at the end of `Provider`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

from image_operator.api.image import ImageSpec
from image_operator.api.provideroptions import OPTION_FIELDS
from image_operator.providers.capabilities import (
    BaseImages,
    CopiesWithin,
    ExportsImages,
    MultipartUploads,
    PlaceholderUploads,
)
from image_operator.providers.errors import NotFound, Unsupported
from image_operator.providers.model import (
    CREATE_OPERATION,
    CloudImage,
    ImageMatch,
    ImageRequest,
    ImageSelector,
    Operation,
)
from image_operator.providers.pipelines import BuildsPipelines
from image_operator.providers.publishing import Publishes


class Provider(ABC):
    """One cloud account/endpoint. Implementations wrap exactly one vendor SDK or API."""

    type_name: str = ""
    operations: frozenset[Operation] = frozenset()
    #: True when the cloud itself refuses a second create with the same idempotency key
    #: (`Conflict`: the key is a unique name, as Argon's). The reconciler then creates first and
    #: looks up only on that Conflict: one cloud call per new image instead of two.
    create_refuses_duplicates: bool = False

    def require(self, operation: Operation) -> None:
        if operation not in self.operations:
            supported = ", ".join(sorted(o.value for o in self.operations))
            raise Unsupported(
                f"provider type {self.type_name!r} cannot {operation.value}; "
                f"it supports: {supported}"
            )

    def require_source(self, kind: str) -> None:
        """`require` the operation that creates an image from a source of `kind` (`url`, ...)."""
        self.require(CREATE_OPERATION[kind])

    def require_options(self, spec: ImageSpec) -> None:
        """Refuse (`Unsupported`, naming the field) provider options of another provider type:
        `spec.<type>` holds the options of type <type> only (api.provideroptions)."""
        for field in OPTION_FIELDS:
            if field != self.type_name and getattr(spec, field) is not None:
                raise Unsupported(
                    f"spec.{field} holds options for an ImageProvider of type {field}, but "
                    f"this Image's provider is of type {self.type_name!r}: remove spec.{field}"
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

    def find_images(self, selector: ImageSelector) -> list[ImageMatch]:
        """The cloud images `selector` matches (exact name, or every tag), for adoption by
        selector (`spec.adopt`). A read: never changes the cloud. Providers whose API can
        list by name or tags override this; `Unsupported` names what they cannot match."""
        what = "name" if selector.name is not None else "tags"
        raise Unsupported(
            f"provider type {self.type_name!r} cannot find images by {what} "
            f"(spec.adopt.selector.{what}); adopt by ID with the imageops.io/external-id "
            "annotation instead"
        )

    # -- optional abilities: the interface when this provider class declares it, else None. --
    # `InstrumentedProvider` overrides each one to hand out a measured forwarder.

    @property
    def copier(self) -> CopiesWithin | None:
        return self if isinstance(self, CopiesWithin) else None

    @property
    def exporter(self) -> ExportsImages | None:
        return self if isinstance(self, ExportsImages) else None

    @property
    def multipart_uploads(self) -> MultipartUploads | None:
        return self if isinstance(self, MultipartUploads) else None

    @property
    def placeholder_uploads(self) -> PlaceholderUploads | None:
        return self if isinstance(self, PlaceholderUploads) else None

    @property
    def base_images(self) -> BaseImages | None:
        return self if isinstance(self, BaseImages) else None

    @property
    def publisher(self) -> Publishes | None:
        return self if isinstance(self, Publishes) else None

    @property
    def pipelines(self) -> BuildsPipelines | None:
        return self if isinstance(self, BuildsPipelines) else None

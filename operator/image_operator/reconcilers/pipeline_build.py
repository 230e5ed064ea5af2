"""What an ImagePipeline builds from: its spec with `baseImage.imageRef` / `baseImageRef`
resolved to the cloud ID of a Ready object of the same provider."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from image_operator.api.pipeline import ImagePipelineSpec
from image_operator.providers.pipelines import PipelineBuild
from image_operator.reconcilers.managed import ManagedObject, reference

# (plural, name) -> the object's body in the pipeline's namespace, or None.
Lookup = Callable[[str, str], Mapping[str, Any] | None]


class WaitFor(Exception):
    """A prerequisite is not there yet (a referenced image): wait and look again."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class InvalidBuild(Exception):
    """The spec cannot be turned into a template; the message names the field."""


def pipeline_build(
    obj: ManagedObject[ImagePipelineSpec],
    spec: ImagePipelineSpec,
    provider_name: str,
    lookup: Lookup,
) -> PipelineBuild:
    """What to build: the spec, the object's name (the provider makes the template's name from
    it) and, for `baseImage.imageRef` or `baseImageRef`, the referenced object's cloud ID (it
    must be made by the same provider and be Ready). Mapping id, family and oss onto the
    cloud's template is the provider's."""
    base = spec.base_image
    base_id: str | None = None
    if base.id is not None or base.family is not None or base.oss is not None:
        base_id = None  # the provider maps these itself: nothing to resolve
    elif base.image_ref is not None:
        base_id = _referenced_id(
            lookup, "images", "Image", "imageRef", base.image_ref.name, provider_name
        )
    elif base.base_image_ref is not None:
        base_id = _referenced_id(
            lookup,
            "baseimages",
            "BaseImage",
            "baseImageRef",
            base.base_image_ref.name,
            provider_name,
        )
    return PipelineBuild(name=obj.name, spec=spec, base_image_id=base_id)


def _referenced_id(
    lookup: Lookup, plural: str, kind: str, field: str, name: str, provider_name: str
) -> str:
    body = lookup(plural, name)
    where = f"spec.baseImage.{field}"
    if body is None:
        raise WaitFor("WaitingForBaseImage", f"{where} names {kind} {name!r}, which does not exist")
    ref = reference(body)
    if ref.provider_name != provider_name:
        raise InvalidBuild(
            f"{where} names {kind} {name!r} of ImageProvider {ref.provider_name!r}, but the "
            f"pipeline builds with {provider_name!r}: reference a {kind} of the same provider"
        )
    if not ref.ready or not ref.external_id:
        raise WaitFor("WaitingForBaseImage", f"{where} names {kind} {name!r}, not Ready yet")
    return ref.external_id

"""Decide what to do for a `BaseImage`: clone a custom image into a base image, report its
permission, delete it.

Only the `ucloudstack` provider can do this (CloneCustomImageToBaseImage, DescribeBaseImage,
DeleteBaseImage). The clone call takes no client token and cannot tag its result, so an
earlier clone is recognised by what it carries: a Base image whose name is `spec.name` and
whose `ImageFrom` is the source image's ID (the oldest one if several match). Each step makes
at most one mutating cloud call, so the base image's ID reaches the status as soon as the clone
returns.
"""

from __future__ import annotations

from dataclasses import dataclass

from image_operator.api.baseimage import BaseImageSpec, BaseImageStatus
from image_operator.api.common import ANNOTATION_EXTERNAL_ID
from image_operator.providers.capabilities import BaseImages
from image_operator.providers.errors import ProviderError
from image_operator.providers.model import CloudImage, CloudState
from image_operator.providers.observer import ImageObserver
from image_operator.reconcilers.managed import (
    ManagedObject,
    ManagedReconciler,
    ProviderHandle,
    delete_and_wait,
    vanished,
)
from image_operator.reconcilers.outcome import (
    Event,
    Outcome,
)
from image_operator.reconcilers.step import Step

# Named in messages: the provider type whose cloud clones base images today.
SUPPORTED_TYPE = "ucloudstack"


@dataclass(frozen=True)
class SourceImage:
    """What the handler found for `spec.source.imageRef`: the referenced `Image`, or None."""

    provider_name: str
    ready: bool
    external_id: str | None
    message: str = ""


@dataclass(frozen=True)
class BaseImageObject(ManagedObject[BaseImageSpec]):
    """The parts of a `BaseImage` body a reconcile needs."""

    # The referenced Image as the handler read it (None: no imageRef, or no such Image).
    source_image: SourceImage | None = None


_Step = Step[BaseImageObject, BaseImageStatus]


def clone_source(spec: BaseImageSpec, source: SourceImage | None, provider: str) -> str | None:
    """The custom image a clone made now would start from: spec.source.externalID, or the
    referenced Image's once it is Ready in the same provider; None while there is none."""
    if spec.source.external_id:
        return spec.source.external_id
    if source is None or source.provider_name != provider or not source.ready:
        return None
    return source.external_id or None


class BaseImageReconciler(ManagedReconciler):
    # -- create / observe -------------------------------------------------------------------
    def reconcile(self, obj: BaseImageObject, handle: ProviderHandle, attempt: int = 0) -> Outcome:
        step = _Step.start(obj, BaseImageStatus)
        problem = obj.spec_error if obj.spec is None else spec_problem(obj.spec)
        early = self.preamble(
            step,
            handle,
            problem=problem or (None if obj.spec else "spec is invalid"),
            never_ready="paused before the base image was cloned",
        )
        if early is not None:
            return early
        assert obj.spec is not None and handle.provider is not None
        assert handle.observer is not None
        cloud = handle.provider.base_images
        if cloud is None:
            return step.stalled(
                "Unsupported",
                f"spec.providerRef names {handle.label}, but base images can only be cloned "
                f"by a provider of type {SUPPORTED_TYPE!r} (CloneCustomImageToBaseImage): "
                f"point spec.providerRef at a {SUPPORTED_TYPE} ImageProvider",
            )
        try:
            return self._reconcile(step, obj.spec, cloud, handle.observer, handle)
        except ProviderError as exc:
            return self.provider_error(step, exc, attempt)

    def _reconcile(
        self,
        step: _Step,
        spec: BaseImageSpec,
        cloud: BaseImages,
        observer: ImageObserver,
        handle: ProviderHandle,
    ) -> Outcome:
        external_id = step.status.external_id
        adopt = step.obj.annotations.get(ANNOTATION_EXTERNAL_ID)
        if adopt and external_id and adopt != external_id:
            return step.stalled(
                "AdoptionConflict",
                f"annotation {ANNOTATION_EXTERNAL_ID} names {adopt!r}, but this object already "
                f"manages base image {external_id!r}; adopting another would leave that one "
                "unaccounted for: delete this object (spec.deletionPolicy decides the old "
                "image's fate) and adopt in a new one",
            )
        if adopt and adopt != external_id:
            # DescribeBaseImage lists Base images only: a custom image's ID is refused here
            # rather than later by DeleteBaseImage.
            if not any(info.image_id == adopt for info in cloud.describe_base_images([adopt])):
                return step.stalled(
                    "AdoptionFailed",
                    f"annotation {ANNOTATION_EXTERNAL_ID} names {adopt!r}, but {handle.label} "
                    "has no base image with that ID: correct the ID (a base image's, not a "
                    "custom image's) or remove the annotation",
                )
            step.status.external_id = adopt
            step.events.append(Event("Adopted", f"took over existing base image {adopt!r}"))
            external_id = adopt
        elif not external_id:
            return self._clone(step, spec, cloud, observer, handle)

        image = observer.observe(external_id)
        if image is None:
            if not adopt:
                step.status.permission = None
            return vanished(
                step,
                handle,
                external_id,
                adopted=bool(adopt),
                noun="base image",
                anew="clone a new one",
                again="cloning it again",
            )
        source = cloud.clone_source(image)
        if source and step.status.source_external_id is None:
            step.status.source_external_id = source
        return self._observe(step, cloud, image, handle)

    def _source_id(self, step: _Step, spec: BaseImageSpec, handle: ProviderHandle) -> str | Outcome:
        """The custom image to clone, or the outcome that says why there is none yet."""
        if spec.source.external_id:
            return spec.source.external_id
        assert spec.source.image_ref is not None  # spec_problem: exactly one of the two
        ref = spec.source.image_ref.name
        source = step.obj.source_image
        if source is None:
            return step.waiting(
                "WaitingForImage",
                f"Image {ref!r} (spec.source.imageRef.name) does not exist in namespace "
                f"{step.obj.namespace!r}; waiting for it to be created",
                handle.poll_interval,
                phase="Pending",
            )
        if source.provider_name != handle.name:
            return step.stalled(
                "ProviderMismatch",
                f"Image {ref!r} (spec.source.imageRef.name) lives in ImageProvider "
                f"{source.provider_name!r}, but spec.providerRef names {handle.name!r}: a "
                "custom image can only be cloned within its own provider; reference an Image "
                f"of provider {handle.name!r} or use spec.source.externalID",
            )
        source_id = clone_source(spec, source, handle.name)
        if source_id is None:
            detail = f" ({source.message})" if source.message else ""
            return step.waiting(
                "WaitingForImage",
                f"Image {ref!r} (spec.source.imageRef.name) is not Ready yet{detail}; the "
                "clone starts when it is",
                handle.poll_interval,
                phase="Pending",
            )
        return source_id

    def _clone(
        self,
        step: _Step,
        spec: BaseImageSpec,
        cloud: BaseImages,
        observer: ImageObserver,
        handle: ProviderHandle,
    ) -> Outcome:
        source_id = self._source_id(step, spec, handle)
        if isinstance(source_id, Outcome):
            return source_id
        # Look up first: a crash between an earlier clone and its status write left a base
        # image with our name and source, and it must be found, not cloned twice.
        found = cloud.find_clone(spec.name, source_id)
        if found is not None:
            external_id = found.external_id
            step.events.append(
                Event(
                    "Recovered",
                    f"found base image {external_id!r} cloned from {source_id!r} by an earlier "
                    "attempt; not cloning another",
                )
            )
            image: CloudImage = found
        else:
            external_id = cloud.clone_to_base_image(source_id, spec.name)
            step.events.append(
                Event(
                    "Cloning",
                    f"{handle.label} is cloning custom image {source_id!r} into base image "
                    f"{external_id!r}",
                )
            )
            image = CloudImage(external_id=external_id, state=CloudState.PENDING)
        step.status.external_id = external_id
        step.status.source_external_id = source_id
        # Joins the observer's batch: the next poll describes it together with the rest.
        observer.remember(image)
        return self._observe(step, cloud, image, handle)

    def _observe(
        self, step: _Step, cloud: BaseImages, image: CloudImage, handle: ProviderHandle
    ) -> Outcome:
        if image.state is CloudState.FAILED:
            message = (
                f"{handle.label} failed to clone base image {image.external_id!r}: "
                f"{image.message or 'no reason given'}; delete it and create the BaseImage again"
            )
            return step.stalled("CloudFailed", message)
        if image.state is not CloudState.AVAILABLE:
            done = f" ({image.progress}%)" if image.progress is not None else ""
            return step.waiting(
                "Cloning",
                f"{handle.label} is cloning base image {image.external_id!r}{done}",
                handle.poll_interval,
                phase="Cloning",
            )
        info = next(
            (
                i
                for i in cloud.describe_base_images([image.external_id])
                if i.image_id == image.external_id
            ),
            None,
        )
        if info is None:
            # DescribeImage saw it Available but DescribeBaseImage does not list it (yet): ask
            # again at the next poll rather than report a permission we do not know.
            return step.waiting(
                "Cloning",
                f"base image {image.external_id!r} is not listed by DescribeBaseImage yet",
                handle.poll_interval,
                phase="Cloning",
            )
        step.status.permission = info.permission
        message = (
            f"base image {image.external_id!r} is available in {handle.label} "
            f"(permission {info.permission or 'none'!r})"
        )
        if step.status.phase != "Ready":
            step.events.append(Event("Ready", message))
        return step.outcome(phase="Ready", ready=(True, "Available", message))

    def ahead(self, obj: BaseImageObject, handle: ProviderHandle) -> dict[str, str]:
        """`status.sourceExternalID`, before a pass that may clone from it: once it is durable,
        its absence (with no externalID) proves that no clone was ever sent, and a clone whose
        status write was lost is found from exactly the source it was cloned from."""
        if handle.provider is None or handle.provider.base_images is None or obj.paused:
            return {}
        if obj.spec is None or obj.status.get("externalID"):
            return {}
        source_id = clone_source(obj.spec, obj.source_image, handle.name)
        if source_id is None or obj.status.get("sourceExternalID") == source_id:
            return {}
        return {"sourceExternalID": source_id}

    # -- deletion ---------------------------------------------------------------------------
    def finalize(self, obj: BaseImageObject, handle: ProviderHandle, attempt: int = 0) -> Outcome:
        step = _Step.start(obj, BaseImageStatus)
        external_id = step.status.external_id
        early = self.finalize_preamble(
            step,
            handle,
            noun="base image",
            never_sent=not external_id and step.status.source_external_id is None,
        )
        if early is not None:
            return early
        assert handle.provider is not None
        cloud = handle.provider.base_images
        if cloud is None:
            # Nothing can have been cloned through a provider that cannot clone.
            return step.outcome(phase="Deleting", ready=(False, "Deleting", "nothing to delete"))
        try:
            if not external_id:
                external_id = self._unrecorded_clone(step, cloud)
            return delete_and_wait(
                step,
                handle,
                external_id,
                delete=cloud.delete_base_image,
                describe=handle.provider.get_image,
                noun="base image",
            )
        except ProviderError as exc:
            doing = f"cannot delete base image {external_id!r}"
            return self.delete_failed(step, exc, attempt, doing=doing)

    def _unrecorded_clone(self, step: _Step, cloud: BaseImages) -> str | None:
        """A clone whose status write was lost: found by name and source, never leaked."""
        spec = step.obj.spec
        if spec is None:
            return None
        source_id = step.status.source_external_id or spec.source.external_id
        if not source_id and step.obj.source_image is not None:
            source_id = step.obj.source_image.external_id
        if not source_id:
            return None  # the source never had an ID, so nothing was cloned from it
        found = cloud.find_clone(spec.name, source_id)
        return found.external_id if found else None


def spec_problem(spec: BaseImageSpec) -> str | None:
    """What the API server's CEL rule may have let through (objects stored before it)."""
    if (spec.source.image_ref is None) == (spec.source.external_id is None):
        return "spec.source must set exactly one of imageRef (an Image) or externalID"
    return None

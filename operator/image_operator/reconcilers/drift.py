"""Drift: Ready Images whose cloud image changed behind the operator's back.

A Ready Image is settled: nothing reconciles it until its spec changes. The provider's resync
(`spec.resyncIntervalSeconds`) reads the cloud images of all its Ready Images in one batched
describe (the same `ImageObserver` batch polling uses, under the provider's rate limit) and
judges each here. What happens next is the reconciler's ordinary work, by field:

- deleted outside: re-created (an adopted image is not ours to make again: Stalled), or under
  `driftPolicy: Report` only reported;
- modified outside (the fields the provider can update no longer match the spec): the spec is
  pushed again, or under `Report` only reported;
- failed or being deleted in the cloud: reported; the reconciler handles the state it finds.

An Image whose `spec.managementPolicies` forbids the correction (no Create, no Update) gets
the report only: its reconciler never changes the cloud, and a modification stays on record
(reported once per generation) while the Image stays Ready.

Plain code: the handler passes the Image bodies and the provider in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from image_operator.api.common import ANNOTATION_PAUSED
from image_operator.api.image import ImageSpec, ManagementPolicy
from image_operator.providers.base import Provider
from image_operator.providers.model import CloudState, ImageRequest
from image_operator.providers.observer import ImageObserver
from image_operator.reconcilers.managed import ready_condition


@dataclass(frozen=True)
class ReadyImage:
    """An Image that is Ready for its current spec, as the resync reads it."""

    name: str
    namespace: str
    uid: str
    generation: int
    external_id: str
    spec: ImageSpec
    body: Mapping[str, Any]

    def request(self) -> ImageRequest:
        return ImageRequest(
            idempotency_key=self.uid, name=self.name, namespace=self.namespace, spec=self.spec
        )


@dataclass(frozen=True)
class Drift:
    image: ReadyImage
    reason: str  # the event's reason: CloudImageMissing, CloudImageModified, CloudImageState
    message: str


def ready_images(bodies: Iterable[Mapping[str, Any]], provider_name: str) -> list[ReadyImage]:
    """The Images of `provider_name` that are Ready for their current generation, not paused and
    not being deleted: the only ones whose drift is news (the others are being worked on)."""
    ready = []
    for body in bodies:
        meta = body.get("metadata") or {}
        spec = body.get("spec") or {}
        status = body.get("status") or {}
        if (spec.get("providerRef") or {}).get("name") != provider_name:
            continue
        if (
            meta.get("deletionTimestamp")
            or (meta.get("annotations") or {}).get(ANNOTATION_PAUSED, "").lower() == "true"
        ):
            continue
        generation = int(meta.get("generation") or 0)
        condition = ready_condition(status)
        if (
            condition.get("status") != "True"
            or status.get("observedGeneration") != generation
            or not status.get("externalID")
        ):
            continue
        try:
            parsed = ImageSpec.model_validate(spec)
        except ValidationError:
            continue
        ready.append(
            ReadyImage(
                name=str(meta.get("name")),
                namespace=str(meta.get("namespace")),
                uid=str(meta.get("uid")),
                generation=generation,
                external_id=str(status["externalID"]),
                spec=parsed,
                body=body,
            )
        )
    return ready


def detect(
    images: list[ReadyImage], provider: Provider, observer: ImageObserver, label: str
) -> list[Drift]:
    """The drifted ones among `images`, from one batched describe."""
    if not images:
        return []
    clouds = observer.observe_all([image.external_id for image in images])
    drifts = []
    for image in images:
        cloud = clouds.get(image.external_id)
        if cloud is None:
            drifts.append(
                Drift(
                    image,
                    "CloudImageMissing",
                    f"cloud image {image.external_id!r} was deleted outside the operator "
                    f"(it no longer exists in {label})",
                )
            )
        elif cloud.state in (CloudState.FAILED, CloudState.DELETING):
            drifts.append(
                Drift(
                    image,
                    "CloudImageState",
                    f"cloud image {image.external_id!r} is {cloud.state.value} in {label}",
                )
            )
        elif cloud.state is CloudState.AVAILABLE and provider.needs_update(image.request(), cloud):
            message = (
                f"cloud image {image.external_id!r} was modified outside the operator: its "
                "fields no longer match this Image's spec"
            )
            if not _reported(image, message):
                drifts.append(Drift(image, "CloudImageModified", message))
    return drifts


def _reported(image: ReadyImage, message: str) -> bool:
    """Whether this difference is already on record for an Image that may not update: such
    an Image stays Ready with the difference (spec.managementPolicies has no Update), so
    without this every resync would report it again. One that may update has corrected the
    last one, so a new one is news."""
    recorded = (image.body.get("status") or {}).get("drift") or {}
    return (
        not image.spec.allows(ManagementPolicy.UPDATE)
        and recorded.get("generation") == image.generation
        and recorded.get("message") == message
    )

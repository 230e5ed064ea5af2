"""kopf handlers for `Image`: decode the body, call the reconciler, write what it returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import kopf

from image_operator.api.common import ANNOTATION_EXTERNAL_ID
from image_operator.api.image import ImageSpec, ImageStatus
from image_operator.handlers import kinds
from image_operator.handlers.context import context
from image_operator.handlers.status import KopfLogger
from image_operator.reconcilers.copy import CopySource
from image_operator.reconcilers.image import (
    ImageObject,
    ImageReconciler,
    claims,
    owner,
    rival,
)
from image_operator.reconcilers.outcome import Outcome
from image_operator.reconcilers.step import Step

KIND = "Image"


def decode(body: kopf.Body) -> ImageObject:
    meta = body.get("metadata") or {}
    ref = (body.get("spec") or {}).get("providerRef") or {}
    obj = kinds.decode(
        body,
        ImageSpec,
        ImageObject,
        provider_name=str(ref.get("name", "")),
        created=str(meta.get("creationTimestamp") or ""),
    )
    # One owner per cloud image: asked only when this Image is about to adopt one, or to
    # delete the one it holds (one LIST of the namespace's Images then, none otherwise).
    adopt = obj.annotations.get(ANNOTATION_EXTERNAL_ID)
    held = obj.status.get("externalID")
    deleting = bool(meta.get("deletionTimestamp"))
    wanted = held if deleting else (adopt if adopt and adopt != held else None)
    # spec.adopt: the IDs other Images own, asked only while this one still selects.
    selects = not (deleting or adopt or held) and obj.spec is not None and obj.spec.adopt
    if (not wanted and not selects) or (deleting and _delete_issued(obj)):
        return obj  # nothing to adopt or delete, or the delete was asked for: only waiting
    others = context().kube.list_objects("images", obj.namespace)
    if selects:
        return replace(obj, claimed=claims(obj, others), rival=rival(obj, others))
    return replace(obj, owned_by=owner(obj, str(wanted), others, deleting=deleting))


def _delete_issued(obj: ImageObject) -> bool:
    """Whether an earlier finalize pass sent the delete (it was judged then: no second LIST)."""
    return Step.start(obj, ImageStatus).delete_issued(str(obj.status.get("externalID")))


def copy_source(obj: ImageObject) -> CopySource | None:
    """The Image a copy starts from, and its provider; looked up only until the copy exists."""
    if obj.spec is None or obj.spec.source.image is None or obj.status.get("externalID"):
        return None
    ctx = context()
    name = obj.spec.source.image.image_ref.name
    source = kinds.reference(ctx.kube.get_object("images", obj.namespace, name))
    if not source.found:
        return CopySource(
            name,
            problem=f"spec.source.image.imageRef names Image {name!r}, which does not exist in "
            f"namespace {obj.namespace!r}",
        )
    handle = ctx.providers.handle(obj.namespace, source.provider_name)
    problem = None
    if handle.provider is None:
        problem = f"the provider of source Image {name!r} is not usable: {handle.problem}"
    return CopySource(
        name,
        provider_name=source.provider_name,
        external_id=source.external_id,
        ready=source.ready,
        problem=problem,
        exporter=handle.provider.exporter if handle.provider else None,
        exporter_label=handle.label,
    )


def reconcile_image(body: kopf.Body, patch: kopf.Patch, logger: KopfLogger, **_: Any) -> None:
    obj = decode(body)
    handle = kinds.provider_handle(obj, body)

    def step(attempt: int) -> Outcome:
        reconciler = kinds.reconciler(ImageReconciler)
        current = kinds.write_ahead("images", obj, reconciler, handle)
        return reconciler.reconcile(current, handle, attempt, copy_source(current))

    kinds.run(KIND, obj, step, body=body, patch=patch, logger=logger)


def finalize_image(body: kopf.Body, patch: kopf.Patch, logger: KopfLogger, **_: Any) -> None:
    obj = decode(body)
    handle = kinds.provider_handle(obj, body)

    def step(attempt: int) -> Outcome:
        return kinds.reconciler(ImageReconciler).finalize(obj, handle, attempt)

    kinds.run(KIND, obj, step, deleting=True, body=body, patch=patch, logger=logger)


def resume_image(body: kopf.Body, patch: kopf.Patch, logger: KopfLogger, **kw: Any) -> None:
    """At operator start: an Image Ready for its spec is left alone. Re-reading each one was a
    storm after a restart (7 cloud calls per Ready Image in two minutes); its cloud image is
    checked by its provider's drift resync instead, in batches (handlers/drift.py)."""
    if kinds.settled(body):
        return
    reconcile_image(body=body, patch=patch, logger=logger, **kw)


def claim_image(body: Mapping[str, Any]) -> str | None:
    """The write-ahead marker written with a new Image's finalizer (kinds.claim_patch): the
    provider's type when the first pass will reach it, so that pass writes no marker of its
    own (ImageReconciler.ahead); None when it will not (paused, provider not usable yet)."""
    obj = kinds.decode(body, ImageSpec, ImageObject)  # no owner lookup: nothing is adopted yet
    handle = kinds.provider_handle(obj, body)
    if handle.provider is None or not kinds.reconciler(ImageReconciler).ahead(obj, handle):
        return None
    return handle.provider.type_name


kinds.install("images", reconcile_image, finalize_image, resume=resume_image, claim=claim_image)

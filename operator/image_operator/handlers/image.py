"""kopf handlers for `Image`: decode the body, call the reconciler, write what it returns."""

from __future__ import annotations

from typing import Any

import kopf
from pydantic import ValidationError

from image_operator import metrics
from image_operator.api.common import GROUP, VERSION, DeletionPolicy
from image_operator.api.image import ImageSpec
from image_operator.handlers.context import context
from image_operator.handlers.status import KopfLogger, apply_outcome
from image_operator.reconcilers.copy import CopySource
from image_operator.reconcilers.image import ImageObject
from image_operator.validation import describe_validation_error

IMAGES: dict[str, Any] = {"group": GROUP, "version": VERSION, "plural": "images"}


def decode(body: kopf.Body) -> ImageObject:
    raw_spec = dict(body.get("spec") or {})
    spec: ImageSpec | None = None
    error: str | None = None
    try:
        spec = ImageSpec.model_validate(raw_spec)
    except ValidationError as exc:
        error = describe_validation_error(exc, "spec")
    try:
        policy = DeletionPolicy(raw_spec.get("deletionPolicy", DeletionPolicy.DELETE.value))
    except ValueError:
        policy = DeletionPolicy.DELETE
    meta = body.get("metadata") or {}
    return ImageObject(
        name=str(meta.get("name")),
        namespace=str(meta.get("namespace")),
        uid=str(meta.get("uid")),
        generation=int(meta.get("generation") or 0),
        annotations=dict(meta.get("annotations") or {}),
        spec=spec,
        spec_error=error,
        status=dict(body.get("status") or {}),
        deletion_policy=policy,
    )


def copy_source(obj: ImageObject) -> CopySource | None:
    """The Image a copy starts from, and its provider; looked up only until the copy exists."""
    if obj.spec is None or obj.spec.source.image is None or obj.status.get("externalID"):
        return None
    ctx = context()
    name = obj.spec.source.image.image_ref.name
    body = ctx.kube.get_object("images", obj.namespace, name)
    if body is None:
        return CopySource(
            name,
            problem=f"spec.source.image.imageRef names Image {name!r}, which does not exist in "
            f"namespace {obj.namespace!r}",
        )
    status = body.get("status") or {}
    conditions = status.get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    provider_name = str(((body.get("spec") or {}).get("providerRef") or {}).get("name", ""))
    handle = ctx.providers.handle(obj.namespace, provider_name)
    problem = None
    if handle.provider is None:
        problem = f"the provider of source Image {name!r} is not usable: {handle.problem}"
    return CopySource(
        name,
        provider_name=provider_name,
        external_id=status.get("externalID"),
        ready=ready,
        problem=problem,
        exporter=handle.provider.exporter if handle.provider else None,
        exporter_label=handle.label,
    )


@kopf.on.resume(**IMAGES)
@kopf.on.create(**IMAGES)
@kopf.on.update(**IMAGES)
def reconcile_image(body: kopf.Body, patch: kopf.Patch, logger: KopfLogger, **_: Any) -> None:
    ctx = context()
    obj = decode(body)
    ref = (body.get("spec") or {}).get("providerRef") or {}
    handle = ctx.providers.handle(obj.namespace, str(ref.get("name", "")))
    attempt = ctx.errors.get(obj.uid, 0)
    with metrics.timed_reconcile("Image"):
        outcome = ctx.image_reconciler.reconcile(obj, handle, attempt, copy_source(obj))
    ctx.errors.record(obj.uid, outcome.retrying)
    apply_outcome(
        outcome, kind="Image", body=body, old_status=obj.status, patch=patch, logger=logger
    )


@kopf.on.delete(**IMAGES)
def finalize_image(body: kopf.Body, patch: kopf.Patch, logger: KopfLogger, **_: Any) -> None:
    ctx = context()
    obj = decode(body)
    ref = (body.get("spec") or {}).get("providerRef") or {}
    handle = ctx.providers.handle(obj.namespace, str(ref.get("name", "")))
    attempt = ctx.errors.get(obj.uid, 0)
    with metrics.timed_reconcile("Image"):
        outcome = ctx.image_reconciler.finalize(obj, handle, attempt)
    ctx.errors.record(obj.uid, outcome.retrying)
    if outcome.done:
        outcome.requeue_after = None
        ctx.errors.forget(obj.uid)
    elif outcome.requeue_after is None:
        outcome.requeue_after = ctx.backoff.provider_wait
    apply_outcome(
        outcome, kind="Image", body=body, old_status=obj.status, patch=patch, logger=logger
    )

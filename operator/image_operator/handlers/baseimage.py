"""kopf handlers for `BaseImage`: decode the body (and the `Image` it references), call the
reconciler, write what it returns."""

from __future__ import annotations

from typing import Any

import kopf
from pydantic import ValidationError

from image_operator import metrics
from image_operator.api.baseimage import BaseImageSpec
from image_operator.api.common import GROUP, VERSION, DeletionPolicy
from image_operator.handlers.context import Context, context
from image_operator.handlers.status import KopfLogger, apply_outcome
from image_operator.reconcilers.baseimage import BaseImageObject, BaseImageReconciler, SourceImage
from image_operator.reconcilers.outcome import Outcome
from image_operator.validation import describe_validation_error

BASEIMAGES: dict[str, Any] = {"group": GROUP, "version": VERSION, "plural": "baseimages"}
KIND = "BaseImage"


def source_image(body: dict[str, Any]) -> SourceImage:
    """The parts of a referenced `Image` the clone waits on."""
    status = body.get("status") or {}
    ready: dict[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {}
    )
    generation = int((body.get("metadata") or {}).get("generation") or 0)
    # A Ready that describes an older spec is not Ready yet.
    current = ready.get("observedGeneration") in (None, generation)
    return SourceImage(
        provider_name=str(((body.get("spec") or {}).get("providerRef") or {}).get("name", "")),
        ready=ready.get("status") == "True" and current,
        external_id=status.get("externalID") or None,
        message=str(ready.get("message") or ""),
    )


def decode(body: kopf.Body, ctx: Context) -> BaseImageObject:
    raw_spec = dict(body.get("spec") or {})
    spec: BaseImageSpec | None = None
    error: str | None = None
    try:
        spec = BaseImageSpec.model_validate(raw_spec)
    except ValidationError as exc:
        error = describe_validation_error(exc, "spec")
    try:
        policy = DeletionPolicy(raw_spec.get("deletionPolicy", DeletionPolicy.DELETE.value))
    except ValueError:
        policy = DeletionPolicy.DELETE
    meta = body.get("metadata") or {}
    namespace = str(meta.get("namespace"))
    source: SourceImage | None = None
    if spec is not None and spec.source.image_ref is not None:
        image = ctx.kube.get_object("images", namespace, spec.source.image_ref.name)
        source = source_image(image) if image is not None else None
    return BaseImageObject(
        name=str(meta.get("name")),
        namespace=namespace,
        uid=str(meta.get("uid")),
        generation=int(meta.get("generation") or 0),
        annotations=dict(meta.get("annotations") or {}),
        spec=spec,
        spec_error=error,
        status=dict(body.get("status") or {}),
        deletion_policy=policy,
        source_image=source,
    )


def _run(body: kopf.Body, *, finalize: bool) -> tuple[Context, BaseImageObject, Outcome]:
    ctx = context()
    obj = decode(body, ctx)
    ref = (body.get("spec") or {}).get("providerRef") or {}
    handle = ctx.providers.handle(obj.namespace, str(ref.get("name", "")))
    attempt = ctx.errors.get(obj.uid, 0)
    reconciler = BaseImageReconciler(ctx.backoff)  # stateless: cheap to make per call
    with metrics.timed_reconcile(KIND):
        if finalize:
            outcome = reconciler.finalize(obj, handle, attempt)
        else:
            outcome = reconciler.reconcile(obj, handle, attempt)
    ctx.errors.record(obj.uid, outcome.retrying)
    return ctx, obj, outcome


@kopf.on.resume(**BASEIMAGES)
@kopf.on.create(**BASEIMAGES)
@kopf.on.update(**BASEIMAGES)
def reconcile_baseimage(body: kopf.Body, patch: kopf.Patch, logger: KopfLogger, **_: Any) -> None:
    _ctx, obj, outcome = _run(body, finalize=False)
    apply_outcome(outcome, kind=KIND, body=body, old_status=obj.status, patch=patch, logger=logger)


@kopf.on.delete(**BASEIMAGES)
def finalize_baseimage(body: kopf.Body, patch: kopf.Patch, logger: KopfLogger, **_: Any) -> None:
    ctx, obj, outcome = _run(body, finalize=True)
    if outcome.done:
        outcome.requeue_after = None
        ctx.errors.forget(obj.uid)
    elif outcome.requeue_after is None:
        outcome.requeue_after = ctx.backoff.provider_wait
    apply_outcome(outcome, kind=KIND, body=body, old_status=obj.status, patch=patch, logger=logger)

"""kopf handlers for `ImagePipeline`: decode the body, call the reconciler, write the result.

The reconciler asks to be called again (a `Requeue`) while a run is in flight and, with a
`spec.schedule`, at the next schedule time; a new value of the `imageops.io/run` annotation
is a change kopf reports as an update.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import kopf
from pydantic import ValidationError

from image_operator import metrics
from image_operator.api.common import GROUP, VERSION, DeletionPolicy
from image_operator.api.pipeline import ImagePipelineSpec
from image_operator.handlers.context import context
from image_operator.handlers.status import KopfLogger, apply_outcome
from image_operator.reconcilers.pipeline import PipelineObject, PipelineReconciler
from image_operator.validation import describe_validation_error

PIPELINES: dict[str, Any] = {"group": GROUP, "version": VERSION, "plural": "imagepipelines"}
KIND = "ImagePipeline"


@lru_cache(maxsize=1)
def reconciler() -> PipelineReconciler:
    return PipelineReconciler(context().backoff)


def decode(body: kopf.Body) -> PipelineObject:
    raw_spec = dict(body.get("spec") or {})
    spec: ImagePipelineSpec | None = None
    error: str | None = None
    try:
        spec = ImagePipelineSpec.model_validate(raw_spec)
    except ValidationError as exc:
        error = describe_validation_error(exc, "spec")
    try:
        policy = DeletionPolicy(raw_spec.get("deletionPolicy", DeletionPolicy.DELETE.value))
    except ValueError:
        policy = DeletionPolicy.DELETE
    meta = body.get("metadata") or {}
    return PipelineObject(
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


@kopf.on.resume(**PIPELINES)
@kopf.on.create(**PIPELINES)
@kopf.on.update(**PIPELINES)
def reconcile_pipeline(body: kopf.Body, patch: kopf.Patch, logger: KopfLogger, **_: Any) -> None:
    ctx = context()
    obj = decode(body)
    ref = (body.get("spec") or {}).get("providerRef") or {}
    handle = ctx.providers.handle(obj.namespace, str(ref.get("name", "")))
    attempt = ctx.errors.get(obj.uid, 0)

    def lookup(plural: str, name: str) -> dict[str, Any] | None:
        return ctx.kube.get_object(plural, obj.namespace, name)

    with metrics.timed_reconcile(KIND):
        outcome = reconciler().reconcile(obj, handle, lookup, datetime.now(UTC), attempt)
    ctx.errors.record(obj.uid, outcome.retrying)
    apply_outcome(outcome, kind=KIND, body=body, old_status=obj.status, patch=patch, logger=logger)


@kopf.on.delete(**PIPELINES)
def finalize_pipeline(body: kopf.Body, patch: kopf.Patch, logger: KopfLogger, **_: Any) -> None:
    ctx = context()
    obj = decode(body)
    ref = (body.get("spec") or {}).get("providerRef") or {}
    handle = ctx.providers.handle(obj.namespace, str(ref.get("name", "")))
    attempt = ctx.errors.get(obj.uid, 0)
    with metrics.timed_reconcile(KIND):
        outcome = reconciler().finalize(obj, handle, datetime.now(UTC), attempt)
    ctx.errors.record(obj.uid, outcome.retrying)
    if outcome.done:
        outcome.requeue_after = None
        ctx.errors.forget(obj.uid)
    elif outcome.requeue_after is None:
        outcome.requeue_after = ctx.backoff.provider_wait
    apply_outcome(outcome, kind=KIND, body=body, old_status=obj.status, patch=patch, logger=logger)

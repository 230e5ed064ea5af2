"""kopf handlers for `ImagePipeline`: decode the body, call the reconciler, write the result.

The reconciler asks to be called again (a `Requeue`) while a run is in flight and, with a
`spec.schedule`, at the next schedule time; a new value of the `imageops.io/run` annotation
is a change kopf reports as an update.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kopf

from image_operator.api.pipeline import ImagePipelineSpec
from image_operator.handlers import kinds
from image_operator.handlers.context import context
from image_operator.handlers.status import KopfLogger
from image_operator.reconcilers.outcome import Outcome
from image_operator.reconcilers.pipeline import PipelineObject, PipelineReconciler

KIND = "ImagePipeline"


def decode(body: kopf.Body) -> PipelineObject:
    return kinds.decode(body, ImagePipelineSpec, PipelineObject)


def reconcile_pipeline(body: kopf.Body, patch: kopf.Patch, logger: KopfLogger, **_: Any) -> None:
    ctx = context()
    obj = decode(body)
    handle = kinds.provider_handle(obj, body)

    def lookup(plural: str, name: str) -> dict[str, Any] | None:
        return ctx.kube.get_object(plural, obj.namespace, name)

    def step(attempt: int) -> Outcome:
        return kinds.reconciler(PipelineReconciler).reconcile(
            obj, handle, lookup, datetime.now(UTC), attempt
        )

    kinds.run(KIND, obj, step, body=body, patch=patch, logger=logger)


def finalize_pipeline(body: kopf.Body, patch: kopf.Patch, logger: KopfLogger, **_: Any) -> None:
    obj = decode(body)
    handle = kinds.provider_handle(obj, body)

    def step(attempt: int) -> Outcome:
        return kinds.reconciler(PipelineReconciler).finalize(
            obj, handle, datetime.now(UTC), attempt
        )

    kinds.run(KIND, obj, step, deleting=True, body=body, patch=patch, logger=logger)


kinds.install("imagepipelines", reconcile_pipeline, finalize_pipeline)

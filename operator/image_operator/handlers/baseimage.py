"""kopf handlers for `BaseImage`: decode the body (and the `Image` it references), call the
reconciler, write what it returns."""

from __future__ import annotations

from typing import Any

import kopf

from image_operator.api.baseimage import BaseImageSpec
from image_operator.handlers import kinds
from image_operator.handlers.context import Context, context
from image_operator.handlers.status import KopfLogger
from image_operator.reconcilers.baseimage import BaseImageObject, BaseImageReconciler, SourceImage
from image_operator.reconcilers.outcome import Outcome

KIND = "BaseImage"


def decode(body: kopf.Body, ctx: Context) -> BaseImageObject:
    source: SourceImage | None = None
    ref = ((body.get("spec") or {}).get("source") or {}).get("imageRef") or {}
    if ref.get("name"):
        meta = body.get("metadata") or {}
        image = kinds.reference(
            ctx.kube.get_object("images", str(meta.get("namespace")), str(ref["name"]))
        )
        if image.found:
            source = SourceImage(
                provider_name=image.provider_name,
                ready=image.ready,
                external_id=image.external_id,
                message=image.message,
            )
    return kinds.decode(body, BaseImageSpec, BaseImageObject, source_image=source)


def reconcile_baseimage(body: kopf.Body, patch: kopf.Patch, logger: KopfLogger, **_: Any) -> None:
    ctx = context()
    obj = decode(body, ctx)
    handle = kinds.provider_handle(obj, body)

    def step(attempt: int) -> Outcome:
        reconciler = kinds.reconciler(BaseImageReconciler)
        current = kinds.write_ahead("baseimages", obj, reconciler, handle)
        return reconciler.reconcile(current, handle, attempt)

    kinds.run(KIND, obj, step, body=body, patch=patch, logger=logger)


def finalize_baseimage(body: kopf.Body, patch: kopf.Patch, logger: KopfLogger, **_: Any) -> None:
    ctx = context()
    obj = decode(body, ctx)
    handle = kinds.provider_handle(obj, body)

    def step(attempt: int) -> Outcome:
        return kinds.reconciler(BaseImageReconciler).finalize(obj, handle, attempt)

    kinds.run(KIND, obj, step, deleting=True, body=body, patch=patch, logger=logger)


kinds.install("baseimages", reconcile_baseimage, finalize_baseimage)

"""kopf handlers for `CommunityListing`: decode the body, read the referenced Image and the
cover, call the reconciler, write what it returns."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import kopf
from pydantic import ValidationError

from image_operator import metrics
from image_operator.api.common import GROUP, VERSION, DeletionPolicy
from image_operator.api.image import ImageSpec
from image_operator.api.listing import CommunityListingSpec
from image_operator.handlers.context import Context, context
from image_operator.handlers.status import KopfLogger, apply_outcome
from image_operator.reconcilers.image import ProviderHandle
from image_operator.reconcilers.listing import (
    Cover,
    ListingObject,
    ListingReconciler,
    SourceImage,
    resolve_cover,
)
from image_operator.validation import describe_validation_error

LISTINGS: dict[str, Any] = {"group": GROUP, "version": VERSION, "plural": "communitylistings"}
KIND = "CommunityListing"


@lru_cache(maxsize=1)
def reconciler() -> ListingReconciler:
    return ListingReconciler(context().backoff)


def decode(body: kopf.Body) -> ListingObject:
    raw_spec = dict(body.get("spec") or {})
    spec: CommunityListingSpec | None = None
    error: str | None = None
    try:
        spec = CommunityListingSpec.model_validate(raw_spec)
    except ValidationError as exc:
        error = describe_validation_error(exc, "spec")
    try:
        policy = DeletionPolicy(raw_spec.get("deletionPolicy", DeletionPolicy.DELETE.value))
    except ValueError:
        policy = DeletionPolicy.DELETE
    meta = body.get("metadata") or {}
    return ListingObject(
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


def source_image(ctx: Context, namespace: str, name: str) -> SourceImage:
    body = ctx.kube.get_object("images", namespace, name)
    if body is None:
        return SourceImage(name=name, found=False)
    try:
        spec: ImageSpec | None = ImageSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        spec = None  # the Image's own status says what is wrong; it will not be Ready
    status = body.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    ref = (body.get("spec") or {}).get("providerRef") or {}
    return SourceImage(
        name=name,
        found=True,
        ready=ready and spec is not None,
        external_id=status.get("externalID"),
        spec=spec,
        provider_name=str(ref.get("name", "")) or None,
    )


def provider_handle(ctx: Context, obj: ListingObject, source: SourceImage | None) -> ProviderHandle:
    # The Image names the provider; once it is gone (deletion), the status remembers it.
    name = (source.provider_name if source else None) or obj.status.get("providerName")
    if not name:
        return ProviderHandle(
            "", problem="the Image named by spec.imageRef does not name an ImageProvider"
        )
    return ctx.providers.handle(obj.namespace, str(name))


def read_cover(ctx: Context, obj: ListingObject) -> Cover:
    assert obj.spec is not None

    def configmap_key(name: str, key: str) -> str | None:
        return ctx.kube.read_configmap_key(obj.namespace, name, key)

    def secret_key(name: str, key: str) -> str | None:
        secret = ctx.kube.read_secret(obj.namespace, name)
        return None if secret is None else secret.data.get(key)

    return resolve_cover(obj.spec.cover, configmap_key, secret_key)


@kopf.on.resume(**LISTINGS)
@kopf.on.create(**LISTINGS)
@kopf.on.update(**LISTINGS)
def reconcile_listing(body: kopf.Body, patch: kopf.Patch, logger: KopfLogger, **_: Any) -> None:
    ctx = context()
    obj = decode(body)
    if obj.spec is None:
        source = SourceImage(name="", found=False)
        cover = Cover()
    else:
        source = source_image(ctx, obj.namespace, obj.spec.image_ref.name)
        cover = read_cover(ctx, obj)
    handle = provider_handle(ctx, obj, source)
    attempt = ctx.errors.get(obj.uid, 0)
    with metrics.timed_reconcile(KIND):
        outcome = reconciler().reconcile(obj, source, cover, handle, attempt)
    ctx.errors.record(obj.uid, outcome.retrying)
    apply_outcome(outcome, kind=KIND, body=body, old_status=obj.status, patch=patch, logger=logger)


@kopf.on.delete(**LISTINGS)
def finalize_listing(body: kopf.Body, patch: kopf.Patch, logger: KopfLogger, **_: Any) -> None:
    ctx = context()
    obj = decode(body)
    source = source_image(ctx, obj.namespace, obj.spec.image_ref.name) if obj.spec else None
    if source is not None and not source.found:
        source = None
    handle = provider_handle(ctx, obj, source)
    attempt = ctx.errors.get(obj.uid, 0)
    with metrics.timed_reconcile(KIND):
        outcome = reconciler().finalize(obj, source, handle, attempt)
    ctx.errors.record(obj.uid, outcome.retrying)
    if outcome.done:
        outcome.requeue_after = None
        ctx.errors.forget(obj.uid)
    elif outcome.requeue_after is None:
        outcome.requeue_after = ctx.backoff.provider_wait
    apply_outcome(outcome, kind=KIND, body=body, old_status=obj.status, patch=patch, logger=logger)

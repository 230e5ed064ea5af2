"""kopf handlers for `CommunityListing`: decode the body, read the referenced Image and the
cover, call the reconciler, write what it returns."""

from __future__ import annotations

from typing import Any

import kopf
from pydantic import ValidationError

from image_operator.api.image import ImageSpec
from image_operator.api.listing import CommunityListingSpec
from image_operator.handlers import kinds
from image_operator.handlers.context import Context, context
from image_operator.handlers.status import KopfLogger
from image_operator.reconcilers.cover import Cover, resolve_cover
from image_operator.reconcilers.listing import ListingObject, ListingReconciler, SourceImage
from image_operator.reconcilers.managed import ProviderHandle
from image_operator.reconcilers.outcome import Outcome

KIND = "CommunityListing"


def decode(body: kopf.Body) -> ListingObject:
    return kinds.decode(body, CommunityListingSpec, ListingObject)


def source_image(ctx: Context, namespace: str, name: str) -> SourceImage:
    body = ctx.kube.get_object("images", namespace, name)
    if body is None:
        return SourceImage(name=name, found=False)
    try:
        spec: ImageSpec | None = ImageSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        spec = None  # the Image's own status says what is wrong; it will not be Ready
    ref = kinds.reference(body)
    return SourceImage(
        name=name,
        found=True,
        ready=ref.ready and spec is not None,
        external_id=ref.external_id,
        spec=spec,
        provider_name=ref.provider_name or None,
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

    def step(attempt: int) -> Outcome:
        return kinds.reconciler(ListingReconciler).reconcile(obj, source, cover, handle, attempt)

    kinds.run(KIND, obj, step, body=body, patch=patch, logger=logger)


def finalize_listing(body: kopf.Body, patch: kopf.Patch, logger: KopfLogger, **_: Any) -> None:
    ctx = context()
    obj = decode(body)
    source = source_image(ctx, obj.namespace, obj.spec.image_ref.name) if obj.spec else None
    if source is not None and not source.found:
        source = None
    handle = provider_handle(ctx, obj, source)

    def step(attempt: int) -> Outcome:
        return kinds.reconciler(ListingReconciler).finalize(obj, source, handle, attempt)

    kinds.run(KIND, obj, step, deleting=True, body=body, patch=patch, logger=logger)


kinds.install("communitylistings", reconcile_listing, finalize_listing)

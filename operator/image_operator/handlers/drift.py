"""The drift resync: per ImageProvider, every `spec.resyncIntervalSeconds`, the provider's Ready
Images are judged against one batched describe (reconcilers/drift.py). A drifted Image gets a
Warning event and `status.drift`, which asks kopf for a reconcile (handlers/diffbase.py); the
reconciler then re-creates, pushes the spec, or reports, by the provider's `driftPolicy`.

Idle cost: one LIST of the namespace's Images from the API server and one batched describe per
provider per interval; no write unless something drifted.
"""

from __future__ import annotations

import time
from typing import Any, cast

import kopf
from kopf._cogs.structs.bodies import RawBody
from pydantic import ValidationError

from image_operator.api.common import GROUP, VERSION
from image_operator.api.provider import ImageProviderSpec
from image_operator.handlers.context import context
from image_operator.handlers.sharding import handles_providers
from image_operator.handlers.status import KopfLogger
from image_operator.providers.errors import ProviderError
from image_operator.reconcilers import drift
from image_operator.reconcilers.outcome import now_rfc3339

PROVIDERS: dict[str, Any] = {"group": GROUP, "version": VERSION, "plural": "imageproviders"}
# How often each provider's timer wakes to see whether its resync is due; the resync interval
# itself is the provider's spec.resyncIntervalSeconds.
TICK_SECONDS = 5.0
_last_resync: dict[str, float] = {}


def due(uid: str, interval: float, now: float) -> bool:
    """Whether a provider's resync is due; the first one comes an interval after the operator
    first sees the provider (a restart re-reads everything anyway: no second storm)."""
    last = _last_resync.setdefault(uid, now)
    if interval <= 0 or now - last < interval:
        return False
    _last_resync[uid] = now
    return True


@kopf.timer(**PROVIDERS, interval=TICK_SECONDS, initial_delay=TICK_SECONDS, when=handles_providers)
def resync_ready_images(body: kopf.Body, logger: KopfLogger, **_: Any) -> None:
    try:
        spec = ImageProviderSpec.model_validate(dict(body.get("spec") or {}))
    except ValidationError:
        return  # the provider's own status says what is wrong
    meta = body.get("metadata") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    if not due(str(meta.get("uid")), float(spec.resync_interval_seconds), time.monotonic()):
        return
    ctx = context()
    handle = ctx.providers.handle(namespace, name)
    if handle.provider is None or handle.observer is None:
        return
    images = drift.ready_images(ctx.kube.list_objects("images", namespace), name)
    try:
        drifts = drift.detect(images, handle.provider, handle.observer, handle.label)
    except ProviderError as exc:
        logger.info("resync of %d Ready Images postponed: %s", len(images), exc.message)
        return
    for found in drifts:
        image = found.image
        kopf.event(
            kopf.Body(cast(RawBody, dict(image.body))),
            type="Warning",
            reason=found.reason,
            message=found.message,
        )
        record = {
            "detectedAt": now_rfc3339(),
            "generation": image.generation,
            "message": found.message,
        }
        ctx.kube.patch_status("images", namespace, image.name, {"drift": record})
    if images:
        logger.debug("resync: %d Ready Images, %d drifted", len(images), len(drifts))

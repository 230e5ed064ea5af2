"""kopf handlers for `ImageProvider`: build the client from spec + Secret, probe, report Ready."""

from __future__ import annotations

from typing import Any

import kopf

from image_operator import metrics
from image_operator.api.common import ANNOTATION_PAUSED, GROUP, VERSION
from image_operator.api.provider import ImageProviderSpec
from image_operator.handlers import kinds
from image_operator.handlers.context import context
from image_operator.handlers.sharding import handles_providers
from image_operator.handlers.status import KopfLogger, apply_outcome
from image_operator.reconcilers.managed import ManagedObject, internal_error
from image_operator.reconcilers.provider import ProbeRetry, reconcile_provider
from image_operator.settings import Settings

PROVIDERS: dict[str, Any] = {"group": GROUP, "version": VERSION, "plural": "imageproviders"}
_PROBE_INTERVAL = Settings().provider_probe_interval_seconds


def _probe(body: kopf.Body, patch: kopf.Patch, logger: KopfLogger, retry: int) -> None:
    """One probe. kopf's `retry` counts this handler's consecutive requeues (its temporary
    errors): the repeated probes of a Ready provider, then the backoff of an unreachable one.
    A probe that succeeds, or a failure that will not pass by itself, ends the series; the
    timer's interval takes over again."""
    ctx = context()
    meta = body.get("metadata") or {}
    settings = ctx.settings
    probe_retry = ProbeRetry(settings.provider_probe_retries, settings.provider_probe_retry_seconds)
    annotations = meta.get("annotations") or {}
    obj = kinds.decode(body, ImageProviderSpec, ManagedObject)
    try:
        with metrics.timed_reconcile("ImageProvider"):
            # Inside the boundary: building the client is where a spec the schema admits can
            # still fail in a way no rule foresaw, and that must end in a status, not only a
            # traceback.
            resolved = ctx.providers.resolve(
                str(meta.get("namespace")), str(meta.get("name")), recheck=True
            )
            outcome = reconcile_provider(
                generation=int(meta.get("generation") or 0),
                status=dict(body.get("status") or {}),
                provider=resolved.handle.provider,
                problem=resolved.handle.problem,
                build_error=resolved.error,
                attempt=retry,
                retry=probe_retry,
                retry_after=ctx.backoff.delay(max(retry - probe_retry.attempts, 0)),
                paused=str(annotations.get(ANNOTATION_PAUSED, "")).lower() == "true",
                spec=obj.spec,
                secret_missing=resolved.secret_missing,
            )
    except Exception as error:  # the handler boundary, as for every kind (handlers/kinds.py)
        logger.exception(
            "ImageProvider %s/%s: internal error", meta.get("namespace"), meta.get("name")
        )
        outcome = internal_error(obj, error, retry, ctx.backoff)
    apply_outcome(
        outcome,
        kind="ImageProvider",
        body=body,
        old_status=dict(body.get("status") or {}),
        patch=patch,
        logger=logger,
    )


@kopf.on.resume(**PROVIDERS, when=handles_providers)
@kopf.on.create(**PROVIDERS, when=handles_providers)
@kopf.on.update(**PROVIDERS, when=handles_providers)
def provider_changed(body: kopf.Body, patch: kopf.Patch, logger: KopfLogger, **kw: Any) -> None:
    _probe(body, patch, logger, int(kw.get("retry") or 0))


@kopf.timer(
    **PROVIDERS, interval=_PROBE_INTERVAL, initial_delay=_PROBE_INTERVAL, when=handles_providers
)
def provider_probe(body: kopf.Body, patch: kopf.Patch, logger: KopfLogger, **kw: Any) -> None:
    _probe(body, patch, logger, int(kw.get("retry") or 0))


@kopf.on.event(**PROVIDERS)
def provider_seen(event: kopf.RawEvent, **_: Any) -> None:
    """Keep the registry's copy of every ImageProvider current from the watch."""
    body = event.get("object")
    if isinstance(body, dict):
        context().providers.seen(body, deleted=event.get("type") == "DELETED")

"""kopf handlers for `ImageProvider`: build the client from spec + Secret, probe, report Ready."""

from __future__ import annotations

from typing import Any

import kopf

from image_operator import metrics
from image_operator.api.common import GROUP, VERSION
from image_operator.handlers.context import context
from image_operator.handlers.status import KopfLogger, apply_outcome
from image_operator.reconcilers.provider import reconcile_provider
from image_operator.settings import Settings

PROVIDERS: dict[str, Any] = {"group": GROUP, "version": VERSION, "plural": "imageproviders"}
_PROBE_INTERVAL = Settings().provider_probe_interval_seconds


def _probe(body: kopf.Body, patch: kopf.Patch, logger: KopfLogger) -> None:
    ctx = context()
    meta = body.get("metadata") or {}
    handle = ctx.providers.handle(str(meta.get("namespace")), str(meta.get("name")))
    with metrics.timed_reconcile("ImageProvider"):
        outcome = reconcile_provider(
            generation=int(meta.get("generation") or 0),
            status=dict(body.get("status") or {}),
            provider=handle.provider,
            problem=handle.problem,
            retry_after=ctx.backoff.provider_wait,
        )
    # Periodic probes re-check; a failed probe is reported in status, not retried in a loop.
    outcome.requeue_after = None
    apply_outcome(
        outcome,
        kind="ImageProvider",
        body=body,
        old_status=dict(body.get("status") or {}),
        patch=patch,
        logger=logger,
    )


@kopf.on.resume(**PROVIDERS)
@kopf.on.create(**PROVIDERS)
@kopf.on.update(**PROVIDERS)
def provider_changed(body: kopf.Body, patch: kopf.Patch, logger: KopfLogger, **_: Any) -> None:
    _probe(body, patch, logger)


@kopf.timer(**PROVIDERS, interval=_PROBE_INTERVAL, initial_delay=_PROBE_INTERVAL)
def provider_probe(body: kopf.Body, patch: kopf.Patch, logger: KopfLogger, **_: Any) -> None:
    _probe(body, patch, logger)

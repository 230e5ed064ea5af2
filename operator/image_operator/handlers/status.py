"""Write a reconcile outcome back: status patch, Kubernetes events, and kopf's requeue."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf

from image_operator import metrics
from image_operator.handlers.context import context
from image_operator.reconcilers.outcome import Outcome

REQUEUE_MARK = "requeue in"
# kopf's own part of the status (handlers/diffbase.py): kopf writes it, never the reconcilers.
KOPF_STATUS = "kopf"


KopfLogger = logging.Logger | logging.LoggerAdapter[Any]


class Requeue(kopf.TemporaryError):
    """Ask kopf to run the handler again later: polling, not a failure."""


class QuietRequeues(logging.Filter):
    """kopf logs every TemporaryError at ERROR; polling is normal, so demote ours to DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and f"failed temporarily: {REQUEUE_MARK}" in str(
            record.msg
        ):
            record.levelno = logging.DEBUG
            record.levelname = "DEBUG"
        return True


class QuietSuccesses(logging.Filter):
    """kopf logs, per object and pass, "Handler '...' succeeded." and "Creation is processed:
    ...", at INFO: four lines per Image to Ready beside the one the operator writes for the
    transition ("Ready: ..."), and a twentieth of the operator's CPU at 1,000 Images (issue
    14). Kept for --verbose (DEBUG), dropped otherwise; failures and retries are not touched."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not isinstance(record.msg, str):
            return True
        message = record.msg
        routine = (message.startswith("Handler ") and message.endswith(" succeeded.")) or (
            " is processed: " in message
        )
        if not routine:
            return True
        record.levelno = logging.DEBUG
        record.levelname = "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def _record(kind: str, uid: str, outcome: Outcome) -> None:
    conditions = {c.get("type"): c for c in outcome.status.get("conditions") or []}
    stalled = conditions.get("Stalled", {}).get("status") == "True"
    reconciling = conditions.get("Reconciling", {}).get("status") == "True"
    if stalled:
        result = "stalled"
        metrics.RECONCILE_ERRORS.labels(kind, conditions["Stalled"].get("reason", "")).inc()
    elif outcome.retrying:
        result = "error"
        reason = conditions.get("Reconciling", {}).get("reason", "")
        metrics.RECONCILE_ERRORS.labels(kind, reason).inc()
    elif outcome.requeue_after is not None:
        result = "requeued"
    else:
        result = "settled"
    metrics.RECONCILES.labels(kind, result).inc()
    metrics.set_in_flight(kind, uid, reconciling)


def apply_outcome(
    outcome: Outcome,
    *,
    kind: str,
    body: kopf.Body,
    old_status: Mapping[str, Any],
    patch: kopf.Patch,
    logger: KopfLogger,
) -> None:
    """Make or delete owned objects, merge-patch the status (removed keys become null), post
    events, raise to requeue."""
    meta = body.get("metadata") or {}
    if outcome.children:
        # Before the status: if this fails, kopf retries the step and it asks again.
        context().kube.apply_children(str(meta.get("namespace")), outcome.children)
    _record(kind, str(meta.get("uid")), outcome)
    for key, value in outcome.status.items():
        if key != KOPF_STATUS and old_status.get(key) != value:
            patch.status[key] = value
    for key in old_status:
        if key not in outcome.status and key != KOPF_STATUS:
            patch.status[key] = None
    for event in outcome.events:
        log = logger.warning if event.type == "Warning" else logger.info
        log("%s: %s", event.reason, event.message)
        if event.type == "Normal" and not context().events.take():
            metrics.EVENTS_DROPPED.labels(kind, event.reason).inc()
            continue
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
    if outcome.requeue_after is not None:
        phase = outcome.status.get("phase", "")
        raise Requeue(
            f"{REQUEUE_MARK} {outcome.requeue_after:.0f}s ({phase})", delay=outcome.requeue_after
        )

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


class QuietRoutine(logging.Filter):
    """kopf's lines for what is routine here, demoted to DEBUG:

    - every TemporaryError is logged at ERROR, and our polling requeues are one (`Requeue`):
      demoted, still printed;
    - per object and pass, "Handler '...' succeeded." and "Creation is processed: ..." at INFO:
      four lines per Image to Ready beside the one the operator writes for the transition
      ("Ready: ..."), and a twentieth of the operator's CPU at 1,000 Images (issue 14):
      demoted and printed only with --verbose (DEBUG).

    Failures and real retries keep their level."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if record.levelno >= logging.ERROR and f"failed temporarily: {REQUEUE_MARK}" in message:
            _demote(record)
            return True
        routine = (message.startswith("Handler ") and message.endswith(" succeeded.")) or (
            " is processed: " in message
        )
        if record.levelno == logging.INFO and isinstance(record.msg, str) and routine:
            _demote(record)
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def _demote(record: logging.LogRecord) -> None:
    record.levelno = logging.DEBUG
    record.levelname = "DEBUG"


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
        # A burst of Normal events (thousands of Images applied at once) is not a write per
        # Image to the API server and etcd: over the budget they are dropped, as client-go's
        # event correlator and the API server's EventRateLimit drop them, and counted; the
        # transition stays in the conditions (what kstatus, Argo CD and Flux read) and in the
        # log line above. Warnings are what a user acts on: always posted. (Issue 14: the Ready
        # event was a third of the writes and ~5 ms of operator and API server CPU per Image.)
        budget = context().events
        if event.type == "Normal" and (budget is None or not budget.try_acquire()):
            metrics.EVENTS_DROPPED.labels(kind, event.reason).inc()
            continue
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
    if outcome.requeue_after is not None:
        phase = outcome.status.get("phase", "")
        raise Requeue(
            f"{REQUEUE_MARK} {outcome.requeue_after:.0f}s ({phase})", delay=outcome.requeue_after
        )

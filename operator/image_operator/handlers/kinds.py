"""What every kind's kopf handlers share: decoding a body into its reconciler's object, running a
reconcile or a finalize with the error counter and metrics, installing the handlers, and reading
a referenced object's readiness with one rule."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol, TypeVar

import kopf
from pydantic import BaseModel, ValidationError

from image_operator import metrics
from image_operator.api.common import (
    ANNOTATION_PROVIDER_TYPE,
    FINALIZER,
    GROUP,
    VERSION,
    DeletionPolicy,
)
from image_operator.handlers.context import context
from image_operator.handlers.status import KopfLogger, apply_outcome
from image_operator.reconcilers.managed import (
    ManagedObject,
    ManagedReconciler,
    ProviderHandle,
    Reference,
    internal_error,
    ready_condition,
    reference,
)

__all__ = [
    "Reference",
    "decode",
    "install",
    "provider_handle",
    "reconciler",
    "reference",
    "run",
    "settled",
]
from image_operator.reconcilers.outcome import Outcome
from image_operator.validation import describe_validation_error

SpecT = TypeVar("SpecT", bound=BaseModel)
ObjT = TypeVar("ObjT", bound=ManagedObject[Any])


def decode(
    body: Mapping[str, Any],
    spec_model: type[SpecT],
    make: Callable[..., ObjT],
    **extra: Any,
) -> ObjT:
    """The reconciler's object for `body`: the spec validated (an invalid one is None, with
    `spec_error` naming the field), `extra` passed to `make` as the kind's own parts."""
    raw_spec = dict(body.get("spec") or {})
    spec: SpecT | None = None
    error: str | None = None
    try:
        spec = spec_model.model_validate(raw_spec)
    except ValidationError as exc:
        error = describe_validation_error(exc, "spec")
    try:
        policy = DeletionPolicy(raw_spec.get("deletionPolicy", DeletionPolicy.DELETE.value))
    except ValueError:
        policy = DeletionPolicy.DELETE
    meta = body.get("metadata") or {}
    return make(
        name=str(meta.get("name")),
        namespace=str(meta.get("namespace")),
        uid=str(meta.get("uid")),
        generation=int(meta.get("generation") or 0),
        annotations=dict(meta.get("annotations") or {}),
        spec=spec,
        spec_error=error,
        status=dict(body.get("status") or {}),
        deletion_policy=policy,
        **extra,
    )


def run(
    kind: str,
    obj: ManagedObject[Any],
    step: Callable[[int], Outcome],
    *,
    deleting: bool = False,
    body: kopf.Body,
    patch: kopf.Patch,
    logger: KopfLogger,
) -> None:
    """One reconcile step (`step(attempt)`), timed, its retry counted, its outcome written. While
    `deleting`, a done step lets the finalizer go (no requeue); any other is asked again (after
    the provider wait when the step named no time)."""
    ctx = context()
    attempt = ctx.errors.get(obj.uid, 0)
    try:
        with metrics.timed_reconcile(kind):
            outcome = step(attempt)
    except Exception as error:  # the handler boundary: a status is written whatever happened
        logger.exception("%s %s/%s: internal error", kind, obj.namespace, obj.name)
        outcome = internal_error(obj, error, attempt, ctx.backoff)
    ctx.errors.record(obj.uid, outcome.retrying)
    if deleting and outcome.done:
        outcome.requeue_after = None
        ctx.errors.forget(obj.uid)
    elif deleting and outcome.requeue_after is None:
        outcome.requeue_after = ctx.backoff.provider_wait
    apply_outcome(outcome, kind=kind, body=body, old_status=obj.status, patch=patch, logger=logger)


def write_ahead(
    plural: str, obj: ObjT, reconciler: ManagedReconciler, handle: ProviderHandle
) -> ObjT:
    """Make durable the status fields the reconciler needs written before this pass may call
    the cloud (`ManagedReconciler.ahead`), and return the object as it now is. A failure
    raises before any cloud call (the handler boundary reports it and it is tried again)."""
    fields = reconciler.ahead(obj, handle)
    if not fields:
        return obj
    context().kube.patch_status(plural, obj.namespace, obj.name, dict(fields))
    return replace(obj, status={**obj.status, **fields})


ReconcilerT = TypeVar("ReconcilerT", bound=ManagedReconciler)
_RECONCILERS: dict[type[ManagedReconciler], ManagedReconciler] = {}


def reconciler(kind: type[ReconcilerT]) -> ReconcilerT:
    """The one reconciler of a kind in this process, made with the settings' backoff on first
    use (reconcilers hold nothing but it, so one serves every object)."""
    made = _RECONCILERS.get(kind)
    if made is None:
        made = _RECONCILERS[kind] = kind(context().backoff)
    assert isinstance(made, kind)
    return made


def provider_handle(obj: ManagedObject[Any], body: Mapping[str, Any]) -> ProviderHandle:
    """The provider `spec.providerRef` names, resolved in the object's namespace."""
    ref = (body.get("spec") or {}).get("providerRef") or {}
    return context().providers.handle(obj.namespace, str(ref.get("name", "")))


class Handler(Protocol):
    def __call__(
        self, body: kopf.Body, patch: kopf.Patch, logger: KopfLogger, **kwargs: Any
    ) -> None: ...


def settled(body: Mapping[str, Any]) -> bool:
    """Ready for its current generation, with nothing asked of it (no drift record newer than
    that): the state in which a reconcile would only re-read the cloud."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    generation = meta.get("generation")
    ready = ready_condition(status)
    drift = status.get("drift") or {}
    return (
        not meta.get("deletionTimestamp")
        and ready.get("status") == "True"
        and status.get("observedGeneration") == generation
        and ready.get("observedGeneration") in (None, generation)
        and drift.get("generation") != generation
    )


Claim = Callable[[Mapping[str, Any]], str | None]


def unclaimed(body: Mapping[str, Any]) -> bool:
    """An object kopf is about to add its finalizer to (none yet, not being deleted)."""
    meta = body.get("metadata") or {}
    return not meta.get("deletionTimestamp") and FINALIZER not in (meta.get("finalizers") or [])


def claim_patch(marker: str | None) -> Callable[[Any], None]:
    """The patch function that adds the finalizer and, when `marker` is given, the write-ahead
    annotation (`ANNOTATION_PROVIDER_TYPE`), as one JSON patch.

    kopf adds its finalizer in a cycle of its own, as a JSON patch guarded by the object's
    resourceVersion, and runs no handler in that cycle; the first handler pass would then have
    to write its write-ahead marker in a second PATCH before calling the cloud. Added to the same
    patch, both are durable before any handler runs, and kopf's own addition finds the finalizer
    there and adds nothing: one write where there were two."""

    def claim(raw: Any) -> None:
        meta = raw.setdefault("metadata", {})
        finalizers = meta.setdefault("finalizers", [])
        if FINALIZER not in finalizers:
            finalizers.append(FINALIZER)
        if marker:
            meta.setdefault("annotations", {})[ANNOTATION_PROVIDER_TYPE] = marker

    return claim


def install(
    plural: str,
    reconcile: Handler,
    finalize: Handler,
    *,
    resume: Handler | None = None,
    claim: Claim | None = None,
) -> None:
    """Register a kind's handlers: `reconcile` on create and update, `resume` (default:
    `reconcile`) when the operator starts; `finalize` on delete (kopf adds the finalizer).
    `claim(body)` is the write-ahead marker for an object that has no finalizer yet (None: no
    marker), written with the finalizer (`claim_patch`)."""
    resource: dict[str, Any] = {"group": GROUP, "version": VERSION, "plural": plural}
    kopf.on.resume(**resource)(resume or reconcile)
    kopf.on.create(**resource)(reconcile)
    kopf.on.update(**resource)(reconcile)
    kopf.on.delete(**resource)(finalize)
    if claim is not None:
        marker_of = claim

        # A low-level handler: kopf runs it in every cycle before deciding about the finalizer,
        # with the patch that cycle will write.
        @kopf.on.event(**resource)
        def claim_object(body: kopf.Body, patch: kopf.Patch, type: str | None, **_: Any) -> None:
            if type != "DELETED" and unclaimed(body):
                patch.fns.append(claim_patch(marker_of(body)))

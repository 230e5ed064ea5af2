"""What every managed kind shares (think Crossplane's managed reconciler): the object's common
parts, and the rules written once — an invalid spec stalls, a paused object makes no cloud
call and keeps its Ready, a missing provider is waited for, a cloud error becomes a retry with
backoff or a stall, deletion honours Orphan and pause and waits for its provider.

Each kind's reconciler supplies only its own steps and messages: it calls `preamble` before its
observe → create/update steps, `finalize_preamble` before its delete steps, and maps a
`ProviderError` with `provider_error` (or `delete_failed` while deleting).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from image_operator.api.common import (
    ANNOTATION_EXTERNAL_ID,
    ANNOTATION_PAUSED,
    DeletionPolicy,
    ObjectStatus,
)
from image_operator.api.provider import DriftPolicy
from image_operator.providers.base import Provider
from image_operator.providers.errors import NotFound, ProviderError
from image_operator.providers.model import CloudImage
from image_operator.providers.observer import ImageObserver
from image_operator.reconcilers.fields import with_field_names
from image_operator.reconcilers.outcome import Event, Outcome
from image_operator.reconcilers.step import Step

SpecT = TypeVar("SpecT")


@dataclass(frozen=True)
class ProviderHandle:
    """The provider an object uses, as the handler resolved it, or why it could not."""

    name: str
    provider: Provider | None = None
    observer: ImageObserver | None = None
    poll_interval: float = 10.0
    problem: str | None = None  # a sentence: why the provider cannot be used now
    drift_policy: DriftPolicy = DriftPolicy.CORRECT

    @property
    def label(self) -> str:
        kind = self.provider.type_name if self.provider else "unknown"
        return f"{kind} provider {self.name!r}"


@dataclass(frozen=True)
class Backoff:
    """Retry delays. A transient error's delay doubles per consecutive failure of the object
    up to `maximum`, with "equal jitter" (half the delay fixed, half random) so that objects
    that failed together do not retry together. The cap is low on purpose: under a cloud that
    fails 30 % of calls, consecutive failures of one object are common, and an uncapped
    doubling left objects waiting minutes for a cloud that answers most calls at once.
    `stalled_recheck` is how often a deletion the cloud refused is tried again (the fix, e.g.
    new keys, lives outside the object)."""

    base: float = 1.0
    maximum: float = 10.0
    provider_wait: float = 15.0
    stalled_recheck: float = 300.0
    spread: Callable[[], float] = random.random  # in [0, 1); tests pin it

    def ceiling(self, attempt: int) -> float:
        """The delay before jitter: base doubled per earlier failure, at most `maximum`."""
        return float(min(self.base * 2 ** min(attempt, 16), self.maximum))

    def delay(self, attempt: int) -> float:
        ceiling = self.ceiling(attempt)
        return ceiling / 2 + ceiling / 2 * self.spread()


@dataclass(frozen=True)
class ManagedObject(Generic[SpecT]):
    """The parts of a managed object's body every reconcile needs; kinds add their own."""

    name: str
    namespace: str
    uid: str
    generation: int
    annotations: Mapping[str, str]
    spec: SpecT | None
    status: Mapping[str, Any]
    spec_error: str | None = None
    deletion_policy: DeletionPolicy = DeletionPolicy.DELETE

    @property
    def paused(self) -> bool:
        return self.annotations.get(ANNOTATION_PAUSED, "").lower() == "true"


def delete_and_wait(
    step: Step[Any, Any],
    handle: ProviderHandle,
    external_id: str | None,
    *,
    delete: Callable[[str], None],
    describe: Callable[[str], CloudImage],
    noun: str,
    waiting_noun: str | None = None,
) -> Outcome:
    """Delete `external_id` once (an earlier pass may have asked already: `delete_issued`), then
    wait until describing it says NotFound. `noun` names it in messages ("cloud image")."""
    if not external_id:
        return step.outcome(phase="Deleting", ready=(False, "Deleting", "nothing to delete"))
    if not step.delete_issued(external_id):
        try:
            delete(external_id)
        except NotFound:
            return _deleted(step, external_id, noun)
        step.status.external_id = external_id
        step.events.append(Event("Deleting", f"deleting {noun} {external_id!r}"))
    try:
        cloud = describe(external_id)
    except NotFound:
        return _deleted(step, external_id, noun)
    return step.waiting(
        "Deleting",
        f"waiting for {handle.label} to delete {waiting_noun or noun} {external_id!r} "
        f"(state {cloud.state.value})",
        handle.poll_interval,
        phase="Deleting",
    )


def vanished(
    step: Step[Any, Any],
    handle: ProviderHandle,
    external_id: str,
    *,
    adopted: bool,
    noun: str,
    anew: str,
    again: str,
) -> Outcome:
    """The cloud object this status names is gone (deleted behind the operator's back). An
    adopted one is not ours to make again: stall; otherwise forget its ID and make it again
    (`again` says how, `anew` what removing the adoption annotation would do)."""
    if adopted:
        return step.stalled(
            "AdoptedImageGone",
            f"the adopted {noun} {external_id!r} no longer exists in {handle.label}: "
            f"remove the {ANNOTATION_EXTERNAL_ID} annotation to {anew}",
        )
    step.status.external_id = None
    step.events.append(
        Event("CloudImageMissing", f"{noun} {external_id!r} no longer exists; {again}", "Warning")
    )
    return step.waiting("Recreating", f"the {noun} is gone", 1.0, phase="Pending")


def _deleted(step: Step[Any, Any], external_id: str, noun: str) -> Outcome:
    step.events.append(Event("Deleted", f"{noun} {external_id!r} is gone"))
    return step.outcome(phase="Deleted", ready=(False, "Deleted", f"the {noun} is gone"))


def internal_error(
    obj: ManagedObject[Any], error: Exception, attempt: int, backoff: Backoff
) -> Outcome:
    """The outcome for a step that raised where nothing should (a bug, or an input no rule
    judged): `Reconciling/InternalError`, retried with the same backoff as cloud errors, so the
    object never stays without a status that kstatus would read as done. The message names the
    error's type only (its text may quote anything) and points at the operator's log."""
    step: Step[Any, ObjectStatus] = Step.start(obj, ObjectStatus)
    what = (
        f"the operator failed on this object ({type(error).__name__}; the operator's log has "
        "the details)"
    )
    return _retrying(step, "InternalError", what, backoff.delay(attempt), attempt)


@dataclass(frozen=True)
class Reference:
    """A referenced object as its status describes it. `ready` is True only for a Ready that
    describes the object's current spec: a Ready left from an older generation is not Ready
    (its spec changed and the change is not applied yet)."""

    found: bool
    ready: bool = False
    external_id: str | None = None
    provider_name: str = ""
    message: str = ""


def ready_condition(status: Mapping[str, Any]) -> Mapping[str, Any]:
    """The Ready condition of a status read as plain data ({} when there is none)."""
    return next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})


def reference(body: Mapping[str, Any] | None) -> Reference:
    # Read as plain data, not through the status models: the referenced object may be another
    # kind, and only these few fields matter here.
    if body is None:
        return Reference(found=False)
    status = body.get("status") or {}
    ready = ready_condition(status)
    generation = int((body.get("metadata") or {}).get("generation") or 0)
    current = ready.get("observedGeneration") in (None, generation)
    return Reference(
        found=True,
        ready=ready.get("status") == "True" and current,
        external_id=status.get("externalID") or None,
        provider_name=str(((body.get("spec") or {}).get("providerRef") or {}).get("name", "")),
        message=str(ready.get("message") or ""),
    )


def _retrying(step: Step[Any, Any], reason: str, what: str, delay: float, attempt: int) -> Outcome:
    """Wait `delay` seconds and try again, counted as a failure (the backoff grows with
    consecutive ones); one Warning for the first."""
    message = f"{what}; retrying in {delay:.0f}s"
    if attempt == 0:
        step.events.append(Event(reason, message, "Warning"))
    outcome = step.waiting(reason, message, delay, phase=step.status.phase or "Pending")
    outcome.retrying = True
    return outcome


class ManagedReconciler:
    """What every kind's reconciler holds and the rules they share, bound to its backoff: a
    kind's reconciler subclasses this and writes only its own steps."""

    def __init__(self, backoff: Backoff | None = None) -> None:
        self.backoff = backoff or Backoff()

    def preamble(
        self,
        step: Step[Any, Any],
        handle: ProviderHandle | None,
        *,
        problem: str | None,
        never_ready: str,
    ) -> Outcome | None:
        """The outcome that ends a reconcile before any cloud call, or None to go on: a spec
        `problem` stalls; a paused object keeps its Ready (`never_ready` says why there is none
        yet); a provider that is not usable is waited for (skipped when `handle` is None, for
        kinds that check their own prerequisites first)."""
        if problem:
            return step.stalled("InvalidSpec", problem)
        if step.obj.paused:
            message = f"{ANNOTATION_PAUSED} is true: no calls to the cloud until it is removed"
            # Nothing of a spec changed while paused is applied: observedGeneration stays
            # behind, so kstatus reads InProgress and `kubectl wait` does not succeed on it (one
            # rule for every kind; the Ready condition is kept as it was).
            return step.outcome(
                phase="Paused",
                ready=step.kept_ready(never_ready),
                reconciling=(False, "Paused", message),
                applied=False,
            )
        if handle is not None and (handle.provider is None or handle.observer is None):
            return self.wait_for_provider(step, handle)
        return None

    def wait_for_provider(
        self, step: Step[Any, Any], handle: ProviderHandle, *, via: str = "spec.providerRef"
    ) -> Outcome:
        """Wait for a provider that cannot be used yet (missing, its Secret missing, ...): it
        may be applied after this object. `via` is the field that leads to it, so the message
        says where to look."""
        problem = handle.problem or f"ImageProvider {handle.name!r} is not usable yet"
        return step.waiting(
            "WaitingForProvider",
            f"{via}: {problem}; work starts when it can be used",
            self.backoff.provider_wait,
            phase="Pending",
        )

    def ahead(self, obj: Any, handle: ProviderHandle) -> dict[str, str]:
        """Status fields the handler makes durable before this pass runs, because the pass may
        send a create (none by default). A deletion whose provider cannot be used reads them
        to tell an object that never sent anything to its cloud (nothing to delete, let go)
        from one whose create may have been sent and its status write lost (wait: only the
        provider can find it). A status written with the create is not enough for that."""
        return {}

    def provider_error(self, step: Step[Any, Any], exc: ProviderError, attempt: int) -> Outcome:
        """A retryable error waits (exponential backoff per consecutive failure, never shorter
        than the cloud's Retry-After); any other stalls."""
        if exc.retryable:
            delay = self.backoff.delay(attempt)
            retry_after = getattr(exc, "retry_after", None)
            if retry_after:
                delay = max(delay, float(retry_after))
            return _retrying(step, exc.reason, exc.message, delay, attempt)
        return step.stalled(exc.reason, with_field_names(exc.message, step.obj.spec))

    def finalize_preamble(
        self,
        step: Step[Any, Any],
        handle: ProviderHandle,
        *,
        noun: str,
        what: str | None = None,
        orphaned: str | None = None,
        verb: str = "deleted",
        needs_provider: bool = True,
        never_sent: bool = False,
    ) -> Outcome | None:
        """The outcome that ends a deletion before any cloud call, or None to go on. The cloud
        object is `noun` ("cloud image"); `what` names what deletion removes (default "the
        <noun>") and `verb` how ("deleted", "withdrawn"); `orphaned` is the event text when
        Orphan leaves something in place (default: names `status.externalID` if there is one).
        Kinds for which a missing provider may still mean "nothing was made" pass
        `needs_provider=False` and judge that themselves, or `never_sent` when the status
        written ahead (`ahead`) proves that no create was ever sent: then a provider that
        cannot be used is not waited for."""
        obj, what = step.obj, what or f"the {noun}"
        if obj.deletion_policy is DeletionPolicy.ORPHAN:
            external_id = step.status.external_id
            if orphaned is None and external_id:
                orphaned = f"left {noun} {external_id!r} in place (Orphan)"
            if orphaned:
                step.events.append(Event("Orphaned", orphaned))
            return step.outcome(phase="Deleting", ready=(False, "Deleting", "orphaned"))
        wait = self.backoff.provider_wait
        if obj.paused:
            message = (
                f"deletion waits: {ANNOTATION_PAUSED} is true, so {what} cannot be "
                f"{verb}; remove the annotation or set spec.deletionPolicy: Orphan"
            )
            return step.waiting("Paused", message, wait, phase="Deleting")
        if needs_provider and handle.provider is None and never_sent:
            step.events.append(
                Event(
                    "NothingToDelete",
                    f"{what} was never requested: its provider was never usable by this "
                    f"object ({handle.problem or 'provider unavailable'})",
                )
            )
            return step.outcome(phase="Deleting", ready=(False, "Deleting", "nothing was made"))
        if needs_provider and handle.provider is None:
            message = (
                f"cannot delete {what}: {handle.problem or 'provider unavailable'}; "
                "restore the ImageProvider or set spec.deletionPolicy: Orphan"
            )
            return step.waiting("WaitingForProvider", message, wait, phase="Deleting")
        return None

    def delete_failed(
        self, step: Step[Any, Any], exc: ProviderError, attempt: int, *, doing: str
    ) -> Outcome:
        """A cloud error while deleting: retryable ones retry; any other stalls the deletion
        (the finalizer stays) and looks again every `stalled_recheck`, since the provider's
        keys can be fixed without a change to this object.
        `doing` says what failed ("cannot delete cloud image 'x'")."""
        if exc.retryable:
            return self.provider_error(step, exc, attempt)
        message = f"{doing}: {exc.message}; fix the provider or set spec.deletionPolicy: Orphan"
        step.events.append(Event(exc.reason, message, "Warning"))
        return step.outcome(
            phase="Deleting",
            ready=(False, exc.reason, message),
            stalled=(True, exc.reason, message),
            requeue_after=self.backoff.stalled_recheck,
            done=False,
        )

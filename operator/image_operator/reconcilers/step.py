"""The status a reconcile step assembles, shared by every kind's reconciler.

A `Step` starts from the object's current status, collects events, and ends in one `Outcome`
whose kstatus conditions and observedGeneration are set the same way for every kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from image_operator.reconcilers.outcome import (
    Child,
    Event,
    Outcome,
    condition,
    set_conditions,
)


class Generational(Protocol):
    @property
    def generation(self) -> int: ...


ObjectT = TypeVar("ObjectT", bound=Generational)


@dataclass
class Step(Generic[ObjectT]):
    """Status being assembled during one reconcile of `obj`."""

    obj: ObjectT
    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    children: list[Child] = field(default_factory=list)

    def outcome(
        self,
        *,
        phase: str,
        ready: tuple[bool, str, str],
        reconciling: tuple[bool, str, str] | None = None,
        stalled: tuple[bool, str, str] | None = None,
        requeue_after: float | None = None,
        retrying: bool = False,
        done: bool = True,
    ) -> Outcome:
        self.status["phase"] = phase
        self.status["observedGeneration"] = self.obj.generation
        self.status["conditions"] = set_conditions(
            self.status.get("conditions"),
            self.obj.generation,
            ready=ready,
            reconciling=reconciling,
            stalled=stalled,
        )
        return Outcome(
            status=self.status,
            events=self.events,
            children=self.children,
            requeue_after=requeue_after,
            retrying=retrying,
            done=done,
        )

    def stalled(
        self, reason: str, message: str, *, phase: str = "Stalled", recheck: float | None = None
    ) -> Outcome:
        """Nothing improves until the spec changes. `recheck` looks again later anyway, for
        conditions that live outside the object (a referenced Image becoming Ready)."""
        # One Warning per distinct stall, not one per reconcile of an unchanged object.
        before = condition(self.status, "Stalled") or {}
        if (before.get("status"), before.get("reason"), before.get("message")) != (
            "True",
            reason,
            message,
        ):
            self.events.append(Event(reason, message, "Warning"))
        return self.outcome(
            phase=phase,
            ready=(False, reason, message),
            stalled=(True, reason, message),
            requeue_after=recheck,
        )

    def kept_ready(self, never_ready: str) -> tuple[bool, str, str]:
        """The Ready condition as it stands (while paused nothing new is known), or False
        with `never_ready` as the message if there is none yet."""
        ready = condition(self.status, "Ready")
        if ready is None:
            return (False, "Paused", never_ready)
        return (
            ready.get("status") == "True",
            str(ready.get("reason") or "Paused"),
            str(ready.get("message") or ""),
        )

    def delete_issued(self, external_id: str) -> bool:
        """Whether an earlier finalize pass already asked the cloud to delete this object: only
        the wait after a delete call reports Reconciling/Deleting (phase `Deleting` alone is
        also set while paused, waiting for the provider or stalled, before any delete)."""
        reconciling = condition(self.status, "Reconciling") or {}
        return (
            self.status.get("externalID") == external_id and reconciling.get("reason") == "Deleting"
        )

    def waiting(self, reason: str, message: str, after: float, *, phase: str) -> Outcome:
        return self.outcome(
            phase=phase,
            ready=(False, reason, message),
            reconciling=(True, reason, message),
            requeue_after=after,
            done=False,
        )

"""The status a reconcile step assembles, shared by every kind's reconciler.

A `Step` starts from the object's current status, parsed into the kind's typed status model
from `api/` (so a misspelt field is a type error, not a silently new key), collects events, and
ends in one `Outcome` whose kstatus conditions and observedGeneration are set the same way for
every kind. The outcome carries the status in its wire form (camelCase, unset fields absent).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from pydantic import ValidationError

from image_operator.api.common import Condition, ConditionStatus, ObjectStatus
from image_operator.reconcilers.outcome import Child, Event, Outcome, set_conditions


class Generational(Protocol):
    @property
    def generation(self) -> int: ...

    @property
    def status(self) -> Mapping[str, Any]: ...


ObjectT = TypeVar("ObjectT", bound=Generational)
StatusT = TypeVar("StatusT", bound=ObjectStatus)


def load_status(model: type[StatusT], raw: Mapping[str, Any]) -> tuple[StatusT, dict[str, Any]]:
    """The typed status of `raw`, and the fields it does not hold (kept as they are: kopf's own,
    or a field from another version of the operator). The API server prunes what the CRD
    schema, generated from the same models, does not hold, so this parses; a field it still
    cannot read joins the kept ones, never a crash."""
    known = {field.alias or name for name, field in model.model_fields.items()}
    data = {key: value for key, value in raw.items() if key in known}
    kept = {key: value for key, value in raw.items() if key not in known}
    for _ in range(len(data) + 1):
        try:
            return model.model_validate(data), kept
        except ValidationError as exc:
            bad = {str(error["loc"][0]) for error in exc.errors() if error["loc"]} & data.keys()
            if not bad:
                raise
            kept.update({key: data.pop(key) for key in bad})
    return model(), kept


@dataclass
class Step(Generic[ObjectT, StatusT]):
    """Status being assembled during one reconcile of `obj`."""

    obj: ObjectT
    status: StatusT
    # Status fields the model does not hold, written back untouched (see `load_status`).
    kept: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    children: list[Child] = field(default_factory=list)

    @classmethod
    def start(cls, obj: ObjectT, model: type[StatusT]) -> Step[ObjectT, StatusT]:
        status, kept = load_status(model, obj.status)
        return cls(obj, status, kept)

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.status.conditions or [] if c.type == type_), None)

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
        applied: bool = True,
    ) -> Outcome:
        """The outcome with kstatus conditions. `applied=False` (paused) leaves
        `observedGeneration` where it was, in status and conditions: the current spec has not
        been acted on, and kstatus and `kubectl wait` must not read it as done."""
        self.status.phase = phase
        if applied:
            self.status.observed_generation = self.obj.generation
        generation = self.status.observed_generation
        wire = set_conditions(
            [c.to_wire() for c in self.status.conditions or []],
            generation,
            ready=ready,
            reconciling=reconciling,
            stalled=stalled,
        )
        self.status.conditions = [Condition.model_validate(c) for c in wire]
        return Outcome(
            status={**self.kept, **self.status.to_wire()},
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
        before = self.condition("Stalled")
        if before is None or (before.status, before.reason, before.message) != (
            ConditionStatus.TRUE,
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
        ready = self.condition("Ready")
        if ready is None:
            return (False, "Paused", never_ready)
        return (ready.status is ConditionStatus.TRUE, ready.reason or "Paused", ready.message)

    def delete_issued(self, external_id: str) -> bool:
        """Whether an earlier finalize pass already asked the cloud to delete this object: only
        the wait after a delete call reports Reconciling/Deleting (phase `Deleting` alone is
        also set while paused, waiting for the provider or stalled, before any delete)."""
        reconciling = self.condition("Reconciling")
        return (
            self.status.external_id == external_id
            and reconciling is not None
            and reconciling.reason == "Deleting"
        )

    def waiting(self, reason: str, message: str, after: float, *, phase: str) -> Outcome:
        return self.outcome(
            phase=phase,
            ready=(False, reason, message),
            reconciling=(True, reason, message),
            requeue_after=after,
            done=False,
        )

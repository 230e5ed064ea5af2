"""What a reconcile step returns: the status to write, events to post, when to look again."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from image_operator.api.common import Condition, ConditionStatus

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"


def now_rfc3339() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Event:
    reason: str
    message: str
    type: Literal["Normal", "Warning"] = "Normal"


@dataclass(frozen=True)
class Child:
    """An object of this group the reconciled object owns: to make (`body` given; an existing
    one is left alone) or to delete (`body` None; an absent one is fine). Applied by the
    handler before the status is written, so a failure repeats the step."""

    plural: str
    name: str
    body: dict[str, Any] | None = None


@dataclass
class Outcome:
    """The result of one reconcile step.

    `status` is the complete new status (camelCase wire form). `requeue_after` asks to run
    again after that many seconds (polling or retrying); None means settled until the object
    changes. `done` is used by deletion: True lets the finalizer go. `children` are owned
    objects to make or delete.
    """

    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    children: list[Child] = field(default_factory=list)
    requeue_after: float | None = None
    retrying: bool = False
    done: bool = True


def set_conditions(
    previous: list[dict[str, Any]] | None,
    generation: int | None,
    *,
    ready: tuple[bool, str, str],
    reconciling: tuple[bool, str, str] | None = None,
    stalled: tuple[bool, str, str] | None = None,
) -> list[dict[str, Any]]:
    """kstatus conditions. Ready is always present (True/False); Reconciling and Stalled are
    present only while True, as kstatus recommends (absent == False). lastTransitionTime is kept
    when a condition's status does not change."""
    old = {c.get("type"): c for c in previous or []}
    wanted: list[tuple[str, tuple[bool, str, str]]] = [(READY, ready)]
    if reconciling is not None and reconciling[0]:
        wanted.append((RECONCILING, reconciling))
    if stalled is not None and stalled[0]:
        wanted.append((STALLED, stalled))
    now = now_rfc3339()
    conditions = []
    for type_, (flag, reason, message) in wanted:
        status = ConditionStatus.TRUE if flag else ConditionStatus.FALSE
        before = old.get(type_)
        transition = (
            before["lastTransitionTime"]
            if before and before.get("status") == status.value and before.get("lastTransitionTime")
            else now
        )
        condition = Condition(
            type=type_,
            status=status,
            reason=reason,
            message=message,
            last_transition_time=transition,
            observed_generation=generation,
        )
        conditions.append(condition.to_wire())
    return conditions


def condition(status: dict[str, Any], type_: str) -> dict[str, Any] | None:
    """A condition of a status in its wire form (an `Outcome.status`), or None."""
    for cond in status.get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None

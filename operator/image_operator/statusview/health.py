"""One verdict per object or sub-item: the symbol and word the tree shows for it.

Objects are judged as kstatus judges them (docs/troubleshooting.md), with two states of ours
on top: deleting and paused. Sub-items (a pipeline run, its targets, a listing's version) are
judged from the words the operator writes into their status.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeGuard

from image_operator.api.common import ANNOTATION_PAUSED

Obj = dict[str, Any]


class Health(Enum):
    READY = "ready"
    IN_PROGRESS = "in progress"
    STALLED = "stalled"  # the Stalled condition: nothing improves until a change
    FAILED = "failed"  # ended without success, nothing in flight (a run, a review, Ready False)
    PAUSED = "paused"
    DELETING = "deleting"
    INACTIVE = "inactive"  # over and harmless: a cancelled run, a withdrawn version
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Verdict:
    health: Health
    word: str  # the reason or phase shown beside the symbol
    message: str = ""
    progress: int | None = None
    eta_seconds: int | None = None


def conditions(obj: Obj) -> dict[str, Obj]:
    status = obj.get("status") or {}
    return {c.get("type", ""): c for c in status.get("conditions") or [] if isinstance(c, dict)}


def _true(condition: Obj | None) -> TypeGuard[Obj]:
    return condition is not None and condition.get("status") == "True"


_ETA = re.compile(r"\bETA (\d+)s\b")


def eta_in(message: str) -> int | None:
    """The seconds of an `ETA Ns` the operator wrote into a condition message."""
    found = _ETA.search(message)
    return int(found.group(1)) if found else None


def object_verdict(obj: Obj) -> Verdict:
    """An imageops object's state from its metadata and status."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    conds = conditions(obj)
    ready, reconciling, stalled = conds.get("Ready"), conds.get("Reconciling"), conds.get("Stalled")
    progress = status.get("progress") if isinstance(status.get("progress"), int) else None
    if meta.get("deletionTimestamp"):
        doing = reconciling if _true(reconciling) else stalled if _true(stalled) else None
        word = "Deleting"
        if doing and doing.get("reason") not in (None, "Deleting"):
            word = f"Deleting ({doing['reason']})"
        return Verdict(Health.DELETING, word, (doing or {}).get("message", ""))
    if (meta.get("annotations") or {}).get(ANNOTATION_PAUSED) == "true":
        was = " (Ready)" if _true(ready) else ""
        message = (reconciling or {}).get("message", "") if reconciling else ""
        return Verdict(Health.PAUSED, f"Paused{was}", message)
    generation = meta.get("generation")
    observed = status.get("observedGeneration")
    if (
        not isinstance(observed, int)
        or observed < 0
        or (isinstance(generation, int) and observed < generation)
    ):
        seen = "not yet seen" if not isinstance(observed, int) or observed < 0 else "not yet"
        message = f"generation {generation} {seen} by the operator"
        if seen == "not yet":
            message = f"generation {generation} not yet applied (status is of {observed})"
        return Verdict(Health.IN_PROGRESS, "Pending", message, progress)
    if _true(stalled):
        return Verdict(Health.STALLED, stalled.get("reason", "Stalled"), _msg(stalled))
    if _true(reconciling):
        message = _msg(reconciling)
        return Verdict(
            Health.IN_PROGRESS,
            reconciling.get("reason", "Reconciling"),
            message,
            progress,
            eta_in(message),
        )
    if _true(ready):
        return Verdict(Health.READY, status.get("phase") or "Ready", _msg(ready))
    if ready:
        return Verdict(Health.FAILED, ready.get("reason") or "NotReady", _msg(ready))
    return Verdict(Health.UNKNOWN, status.get("phase") or "Unknown")


def _msg(condition: Obj | None) -> str:
    return str((condition or {}).get("message") or "")


#: ImagePipeline run phases (the seed's execution statuses) that are over.
_RUN_OVER = {
    "SUCCESS": Health.READY,
    "PARTITION_SUCCESS": Health.FAILED,
    "FAILED": Health.FAILED,
    "TEST_FAILED": Health.FAILED,
    "CANCELLED": Health.INACTIVE,
}


def run_health(phase: str) -> Health:
    return _RUN_OVER.get(phase, Health.IN_PROGRESS)


def run_over(phase: str) -> bool:
    return phase in _RUN_OVER


def target_health(status: str) -> Health:
    return {"Succeeded": Health.READY, "Failed": Health.FAILED}.get(status, Health.IN_PROGRESS)


def version_health(state: str) -> Health:
    """A CommunityListing version's state (CompShare's review, then our withdrawal)."""
    return {
        "Published": Health.READY,
        "Rejected": Health.FAILED,
        "Offline": Health.INACTIVE,
        "Withdrawn": Health.INACTIVE,
    }.get(state, Health.IN_PROGRESS)

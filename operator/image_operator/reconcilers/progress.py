"""How far a create or import has come, in words and percent: the cloud's own progress, an
ETA from the time spent so far, and for uploads the bytes the CLI reports sending."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from image_operator.api.common import ANNOTATION_UPLOAD_PROGRESS, Condition, ConditionStatus
from image_operator.api.image import ImageSpec, ImageStatus
from image_operator.providers.model import CloudImage
from image_operator.reconcilers import outcome as outcome_module
from image_operator.reconcilers.managed import ManagedObject
from image_operator.reconcilers.outcome import RECONCILING
from image_operator.reconcilers.step import Step

TRANSFER_SHARE = 50  # percent of an import the transfer accounts for
MIB = 1024 * 1024


ObjT = TypeVar("ObjT", bound=ManagedObject[ImageSpec])


def report(
    step: Step[ObjT, ImageStatus],
    cloud: CloudImage,
    label: str,
    *,
    updating: bool = False,
) -> tuple[str, str]:
    """The Reconciling reason and message for an image on its way, updating `step.status`'s
    cloud state and progress."""
    step.status.cloud_state = cloud.state.value
    if cloud.progress is not None:
        step.status.progress = cloud.progress
    reason = "Updating" if updating else "Creating"
    done = f" ({cloud.progress}%)" if cloud.progress is not None else ""
    eta = _eta(step.condition(RECONCILING), cloud.progress)
    if eta is not None:
        done = f" ({cloud.progress}%), ETA {eta:.0f}s"
    message = f"{label} is {reason.lower()} image {cloud.external_id!r}{done}"
    uploaded = _upload_progress(step.obj)
    if uploaded is not None and not updating:
        sent, total, rate = uploaded
        # The transfer is the first half of an import, as the clouds' own percentages
        # count it (the import after it is the second); the cloud cannot count bytes it
        # has not been told the total of, the CLI can.
        share = TRANSFER_SHARE * sent // total if total else TRANSFER_SHARE
        if share > (cloud.progress or 0):
            step.status.progress = share
        percent = step.status.progress or 0
        if sent < total:
            left = f", ETA {(total - sent) / rate:.0f}s" if rate > 0 else ""
            reason = "Uploading"
            message = (
                f"{label} is receiving image {cloud.external_id!r}: "
                f"{sent / MIB:.1f} of {total / MIB:.1f} MiB uploaded{left} ({percent}%)"
            )
        else:
            reason = "Importing"
            message = (
                f"{label} is importing image {cloud.external_id!r}: all "
                f"{total / MIB:.1f} MiB uploaded ({percent}%)"
            )
    return reason, message


def _eta(reconciling: Condition | None, progress: int | None) -> float | None:
    """Seconds left, extrapolated from the time spent so far: since Reconciling turned True
    (its lastTransitionTime), `progress` percent were done. None until there is a rate."""
    if progress is None or not 0 < progress < 100:
        return None
    if reconciling is None or reconciling.status is not ConditionStatus.TRUE:
        return None
    since = reconciling.last_transition_time
    if not since:
        return None
    try:
        started = datetime.fromisoformat(since)
        now = datetime.fromisoformat(outcome_module.now_rfc3339())
    except ValueError:
        return None
    elapsed = (now - started).total_seconds()
    if elapsed <= 0:
        return None
    return elapsed * (100 - progress) / progress


def _upload_progress(obj: ManagedObject[ImageSpec]) -> tuple[int, int, float] | None:
    """(bytes sent, total bytes, bytes per second) the upload CLI last noted, if any."""
    if obj.spec is None or obj.spec.source.upload is None:
        return None
    value = obj.annotations.get(ANNOTATION_UPLOAD_PROGRESS)
    if not value:
        return None
    parts = value.split("/")
    try:
        sent, total, rate = int(parts[0]), int(parts[1]), float(parts[2])
    except (ValueError, IndexError):
        return None  # not ours to judge: someone else's edit; show the cloud's view only
    if len(parts) != 3 or total < 0 or not 0 <= sent <= total or rate < 0:
        return None
    return sent, total, rate

"""Decide what to do for an `ImagePipeline`: keep its ECS image template current and run it.

Design (see docs/imagepipeline.md):

- An ECS image template is immutable, so a spec change that alters the template means a new
  template: the old one is deleted once no run uses it, and the new one is created with the
  ClientToken `pipeline-<UID>-g<generation>`. A lost answer is recovered by sending the same
  token again (ECS returns the same ID), and a later spec gets a fresh token, so going back to
  an earlier spec never resurrects a deleted template's ID.
- Runs are triggered by creation, by a new template (spec change), by a new value of the
  annotation `imageops.io/run`, and by `spec.schedule`. One run at a time: a trigger that
  arrives while a run is in flight is kept in `status.pendingTrigger` (policy Wait) or cancels
  the running execution first (policy Replace). Every start carries the ClientToken
  `run-<UID>-<n>`, n from `status.runSequence`, so a retried start returns the same execution.
- Each step makes at most one mutating cloud call and returns, so every ID reaches the status
  as soon as the cloud hands it out.

Plain code: the handler passes the object, the provider, a lookup for referenced objects and
the time; tests drive it with an in-memory provider and a hand-turned clock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from image_operator.api.common import (
    ANNOTATION_EXTERNAL_ID,
    ANNOTATION_PAUSED,
    GROUP,
    VERSION,
)
from image_operator.api.pipeline import ImagePipelineSpec
from image_operator.providers.errors import InvalidInput, NotFound, ProviderError
from image_operator.providers.pipelines import (
    FINISHED_STATUSES,
    BuildsPipelines,
    PipelineBuild,
    PipelineExecution,
)
from image_operator.reconcilers.managed import (
    Backoff,
    ManagedObject,
    ProviderHandle,
    delete_failed,
    finalize_preamble,
    provider_error,
    reference,
)
from image_operator.reconcilers.outcome import Child, Event, Outcome
from image_operator.reconcilers.schedule import Schedule, ScheduleError, format_time, parse_time
from image_operator.reconcilers.step import Step

ANNOTATION_RUN = f"{GROUP}/run"
# Named in the message for a provider without `BuildsPipelines` (the types whose providers
# declare it); the check itself is `provider.pipelines`.
PIPELINE_PROVIDER_TYPES = ("aliyun",)

# Labels on the Image objects spec.outputImages makes (the pipeline also owns them).
LABEL_PIPELINE = f"{GROUP}/pipeline"
LABEL_RUN = f"{GROUP}/pipeline-run"
MAX_LABEL_VALUE = 63
MAX_DISPLAY_NAME = 128
MAX_NAME = 253
OUTPUT_PHASES = ("SUCCESS", "PARTITION_SUCCESS")  # runs that may have built an image

# Why a run was started, as recorded in status.runs[].trigger.
TRIGGER_CREATED = "Created"
TRIGGER_SPEC = "SpecChanged"
TRIGGER_MANUAL = "Manual"
TRIGGER_SCHEDULE = "Schedule"


# (plural, name) -> the object's body in the pipeline's namespace, or None.
Lookup = Callable[[str, str], Mapping[str, Any] | None]


@dataclass(frozen=True)
class PipelineObject(ManagedObject[ImagePipelineSpec]):
    """The parts of an `ImagePipeline` body a reconcile needs."""


_Step = Step[PipelineObject]


class _Wait(Exception):
    """A prerequisite is not there yet (a referenced image): wait and look again."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class _Invalid(Exception):
    """The spec cannot be turned into a template; the message names the field."""


def _active(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    if runs and runs[-1].get("phase") not in FINISHED_STATUSES:
        return runs[-1]
    return None


class PipelineReconciler:
    def __init__(self, backoff: Backoff | None = None) -> None:
        self.backoff = backoff or Backoff()

    # -- create / update -------------------------------------------------------------------
    def reconcile(
        self,
        obj: PipelineObject,
        handle: ProviderHandle,
        lookup: Lookup,
        now: datetime,
        attempt: int = 0,
    ) -> Outcome:
        step = _Step(obj, dict(obj.status))
        if obj.spec is None:
            return step.stalled("InvalidSpec", obj.spec_error or "spec is missing")
        schedule: Schedule | None = None
        if obj.spec.schedule is not None:
            try:
                schedule = Schedule.parse(obj.spec.schedule.cron, obj.spec.schedule.time_zone)
            except ScheduleError as exc:
                return step.stalled("InvalidSpec", str(exc))
        if obj.paused:
            message = f"{ANNOTATION_PAUSED} is true: no calls to the cloud until it is removed"
            return step.outcome(
                phase="Paused",
                ready=(False, "Paused", message),
                reconciling=(False, "Paused", message),
            )
        if handle.provider is None:
            return step.waiting(
                "WaitingForProvider",
                handle.problem or f"ImageProvider {handle.name!r} is not usable yet",
                self.backoff.provider_wait,
                phase="Pending",
            )
        pipelines = handle.provider.pipelines
        if pipelines is None:
            return step.stalled(
                "Unsupported",
                f"spec.providerRef names {handle.label}, but image pipelines are built only by "
                f"providers of type {', '.join(PIPELINE_PROVIDER_TYPES)}: reference one of those",
            )
        try:
            build = pipeline_build(obj, obj.spec, handle.name, lookup)
            fingerprint = pipelines.pipeline_fingerprint(build)
        except _Invalid as exc:
            return step.stalled("InvalidSpec", str(exc))
        except InvalidInput as exc:
            return step.stalled("InvalidSpec", exc.message)
        except _Wait as exc:
            return step.waiting(
                exc.reason, exc.message, self.backoff.provider_wait, phase="Pending"
            )
        try:
            return self._reconcile(
                step, obj, obj.spec, pipelines, build, fingerprint, schedule, handle, now
            )
        except ProviderError as exc:
            return provider_error(step, exc, attempt, self.backoff)

    def _reconcile(
        self,
        step: _Step,
        obj: PipelineObject,
        spec: ImagePipelineSpec,
        pipelines: BuildsPipelines,
        build: PipelineBuild,
        wanted_hash: str,
        schedule: Schedule | None,
        handle: ProviderHandle,
        now: datetime,
    ) -> Outcome:
        status = step.status
        runs = [dict(run) for run in status.get("runs") or []]
        status["runs"] = runs
        self._note_triggers(step, obj, schedule, now)

        active = _active(runs)
        if active is not None:
            execution = pipelines.get_pipeline_execution(str(active["id"]))
            self._record(step, active, execution, now)
            if execution.finished and execution.image_id and execution.status in OUTPUT_PHASES:
                self._materialise(step, obj, spec, active, execution.image_id)
            active = _active(runs)
        self._retain(step, spec)

        stale_template = status.get("externalID") and status.get("templateHash") != wanted_hash
        if active is not None:
            waiting_for = status.get("pendingTrigger") or (TRIGGER_SPEC if stale_template else None)
            replace = spec.concurrency_policy.value == "Replace"
            if waiting_for and replace and active.get("phase") != "CANCELLING":
                pipelines.cancel_pipeline_execution(str(active["id"]))
                active["phase"] = "CANCELLING"
                step.events.append(
                    Event(
                        "Cancelling",
                        f"cancelling run {active['id']!r} for a newer trigger "
                        f"({waiting_for}; spec.concurrencyPolicy is Replace)",
                    )
                )
            message = f"run {active['id']!r} is {str(active.get('phase')).lower()}"
            if waiting_for:
                message += f"; the {waiting_for} trigger starts a run when it has finished"
            return step.waiting("Running", message, handle.poll_interval, phase="Running")

        if stale_template:
            old = str(status["externalID"])
            with contextlib.suppress(NotFound):  # already gone is just as good
                pipelines.delete_pipeline(old)
            for key in ("externalID", "templateHash", "templateGeneration"):
                status.pop(key, None)
            step.events.append(
                Event("TemplateReplaced", f"deleted template {old!r}: the spec changed")
            )
            return step.waiting(
                "Creating", "creating the template for the new spec", 1.0, phase="Pending"
            )

        if not status.get("externalID"):
            first = not runs and status.get("runSequence") is None
            token = pipelines.pipeline_client_token("pipeline", f"{obj.uid}-g{obj.generation}")
            pipeline_id = pipelines.create_pipeline(build, client_token=token)
            status["externalID"] = pipeline_id
            status["templateHash"] = wanted_hash
            status["templateGeneration"] = obj.generation
            status["pendingTrigger"] = TRIGGER_CREATED if first else TRIGGER_SPEC
            step.events.append(
                Event("TemplateCreated", f"{handle.label} created image template {pipeline_id!r}")
            )
            return step.waiting("Starting", "starting a run", 0.5, phase="Pending")

        trigger = status.get("pendingTrigger")
        if trigger:
            sequence = int(status.get("runSequence") or 0) + 1
            execution_id = pipelines.start_pipeline_execution(
                str(status["externalID"]),
                client_token=pipelines.pipeline_client_token("run", f"{obj.uid}-{sequence}"),
            )
            status["runSequence"] = sequence
            status["lastRunID"] = execution_id
            status.pop("pendingTrigger", None)
            runs.append(
                {
                    "id": execution_id,
                    "sequence": sequence,
                    "phase": "PREPARING",
                    "trigger": trigger,
                    "startedAt": format_time(now),
                }
            )
            del runs[: max(0, len(runs) - spec.runs_history_limit)]
            step.events.append(
                Event("RunStarted", f"started run {execution_id!r} (trigger {trigger})")
            )
            return step.waiting(
                "Running",
                f"run {execution_id!r} is preparing",
                handle.poll_interval,
                phase="Running",
            )
        return self._settled(step, runs, schedule, now)

    def _note_triggers(
        self, step: _Step, obj: PipelineObject, schedule: Schedule | None, now: datetime
    ) -> None:
        """Fold new manual and scheduled triggers into status.pendingTrigger (one slot: a run
        not yet started serves every trigger that arrived before it)."""
        status = step.status
        manual = obj.annotations.get(ANNOTATION_RUN)
        if manual and manual != status.get("lastManualTrigger"):
            status["lastManualTrigger"] = manual
            # At creation the first run already serves the annotation.
            if status.get("runSequence") is not None or status.get("externalID"):
                status["pendingTrigger"] = TRIGGER_MANUAL
                step.events.append(Event("RunRequested", f"{ANNOTATION_RUN} changed to {manual!r}"))
        if schedule is None:
            status.pop("nextScheduleTime", None)
            status.pop("lastScheduleTime", None)
            return
        last = parse_time(status.get("lastScheduleTime"))
        if last is None:
            # The schedule starts counting when first seen: creation runs once anyway.
            last = now
        else:
            due = schedule.due(last, now)
            if due is not None:
                last = due
                status["pendingTrigger"] = TRIGGER_SCHEDULE
                step.events.append(
                    Event("RunScheduled", f"spec.schedule was due at {format_time(due)}")
                )
        status["lastScheduleTime"] = format_time(last)
        status["nextScheduleTime"] = format_time(schedule.next_after(last))

    def _record(
        self, step: _Step, run: dict[str, Any], execution: PipelineExecution, now: datetime
    ) -> None:
        before = run.get("phase")
        run["phase"] = execution.status
        if execution.image_id:
            run["imageID"] = execution.image_id
        if execution.targets:
            run["targets"] = [
                _target_wire(
                    target.region_id,
                    target.account_id,
                    target.image_id,
                    target.succeeded,
                    target.message,
                )
                for target in execution.targets
            ]
        if not execution.finished:
            return
        run["finishedAt"] = format_time(now)
        reason = _failure_reason(execution)
        if reason:
            run["reason"] = reason
        if before == execution.status:
            return
        if execution.status == "SUCCESS":
            step.events.append(Event("RunSucceeded", f"run {run['id']!r} succeeded"))
        else:
            step.events.append(
                Event(
                    "RunFailed" if execution.status != "CANCELLED" else "RunCancelled",
                    f"run {run['id']!r} ended {execution.status}: {reason or 'no reason given'}",
                    "Warning" if execution.status != "CANCELLED" else "Normal",
                )
            )

    def _materialise(
        self,
        step: _Step,
        obj: PipelineObject,
        spec: ImagePipelineSpec,
        run: dict[str, Any],
        image_id: str,
    ) -> None:
        """spec.outputImages: an `Image` that adopts the run's image, owned by the pipeline.
        Recorded in status.outputImages at once, so each run makes its Image exactly once."""
        outputs = spec.output_images
        if outputs is None or not outputs.enabled:
            return
        made = [dict(entry) for entry in step.status.get("outputImages") or []]
        if any(entry.get("runID") == run["id"] for entry in made):
            return
        body = output_image(obj, spec, run, image_id)
        name = body["metadata"]["name"]
        step.children.append(Child("images", name, body))
        made.append({"name": name, "imageID": image_id, "runID": run["id"]})
        step.status["outputImages"] = made
        run["outputImage"] = name
        message = f"Image {name!r} adopts image {image_id!r} built by run {run['id']!r}"
        step.events.append(Event("OutputImageCreated", message))

    def _retain(self, step: _Step, spec: ImagePipelineSpec) -> None:
        """spec.outputImages.retention: delete the Image objects of older runs beyond the newest
        N (their finalizers delete the cloud images per the Image's deletionPolicy)."""
        outputs = spec.output_images
        made = list(step.status.get("outputImages") or [])
        if outputs is None or not outputs.enabled or len(made) <= outputs.retention:
            return
        excess = len(made) - outputs.retention
        for entry in made[:excess]:
            step.children.append(Child("images", str(entry["name"])))
            step.events.append(
                Event(
                    "OutputImageRetired",
                    f"deleting Image {entry['name']!r} (image {entry.get('imageID')!r}): "
                    f"spec.outputImages.retention keeps the newest {outputs.retention}",
                )
            )
        step.status["outputImages"] = made[excess:]

    def _settled(
        self,
        step: _Step,
        runs: list[dict[str, Any]],
        schedule: Schedule | None,
        now: datetime,
    ) -> Outcome:
        template = step.status.get("externalID")
        after: float | None = None
        if schedule is not None:
            due = parse_time(step.status.get("nextScheduleTime"))
            if due is not None:
                after = max(1.0, (due - now).total_seconds())
        last = runs[-1] if runs else None
        if last is None or last.get("phase") == "SUCCESS":
            message = f"image template {template!r} matches the spec"
            if last is not None:
                message += f"; run {last['id']!r} succeeded"
            outcome = step.outcome(phase="Succeeded", ready=(True, "Succeeded", message))
        else:
            phase = str(last.get("phase"))
            reason, word = {
                "PARTITION_SUCCESS": ("PartiallySucceeded", "PartiallySucceeded"),
                "CANCELLED": ("RunCancelled", "Cancelled"),
            }.get(phase, ("RunFailed", "Failed"))
            message = (
                f"run {last['id']!r} ended {phase}: {last.get('reason') or 'no reason given'}; "
                f"set the annotation {ANNOTATION_RUN} to a new value to run again"
            )
            outcome = step.outcome(phase=word, ready=(False, reason, message))
        outcome.requeue_after = after
        return outcome

    # -- deletion ---------------------------------------------------------------------------
    def finalize(
        self, obj: PipelineObject, handle: ProviderHandle, now: datetime, attempt: int = 0
    ) -> Outcome:
        step = _Step(obj, dict(obj.status))
        template = step.status.get("externalID")
        runs = [dict(run) for run in step.status.get("runs") or []]
        step.status["runs"] = runs
        early = finalize_preamble(
            step,
            handle,
            self.backoff,
            what="the template",
            orphaned=template and f"left image template {template!r} in place (Orphan)",
            needs_provider=False,
        )
        if early is not None:
            return early
        pipelines = handle.provider.pipelines if handle.provider is not None else None
        if pipelines is None:
            if not template:
                return step.outcome(phase="Deleting", ready=(False, "Deleting", "nothing made"))
            message = (
                f"cannot delete image template {template!r}: "
                f"{handle.problem or 'its provider cannot be used'}; restore the ImageProvider "
                "or set spec.deletionPolicy: Orphan"
            )
            return step.waiting(
                "WaitingForProvider", message, self.backoff.provider_wait, phase="Deleting"
            )
        try:
            active = _active(runs)
            if active is not None:
                # A template cannot be deleted while it runs: cancel first, then wait.
                if active.get("phase") != "CANCELLING":
                    # InvalidInput: it finished meanwhile; the next describe records how.
                    with contextlib.suppress(InvalidInput):
                        pipelines.cancel_pipeline_execution(str(active["id"]))
                    active["phase"] = "CANCELLING"
                    step.events.append(
                        Event("Cancelling", f"cancelling run {active['id']!r}: deleting")
                    )
                    return step.waiting(
                        "Cancelling",
                        f"cancelling run {active['id']!r} before deleting the template",
                        handle.poll_interval,
                        phase="Deleting",
                    )
                try:
                    execution = pipelines.get_pipeline_execution(str(active["id"]))
                except NotFound:
                    active["phase"] = "CANCELLED"
                else:
                    self._record(step, active, execution, now)
                if _active(runs) is not None:
                    return step.waiting(
                        "Cancelling",
                        f"waiting for run {active['id']!r} to be cancelled",
                        handle.poll_interval,
                        phase="Deleting",
                    )
            if template:
                with contextlib.suppress(NotFound):  # already gone is just as good
                    pipelines.delete_pipeline(str(template))
                step.events.append(Event("Deleted", f"image template {template!r} is gone"))
            return step.outcome(phase="Deleted", ready=(False, "Deleted", "the template is gone"))
        except ProviderError as exc:
            doing = f"cannot delete image template {template!r}"
            return delete_failed(step, exc, attempt, self.backoff, doing=doing)


def pipeline_build(
    obj: PipelineObject, spec: ImagePipelineSpec, provider_name: str, lookup: Lookup
) -> PipelineBuild:
    """What to build: the spec, the object's name (the provider makes the template's name from
    it) and, for `baseImage.imageRef` or `baseImageRef`, the referenced object's cloud ID (it
    must be made by the same provider and be Ready). Mapping id, family and oss onto the
    cloud's template is the provider's."""
    base = spec.base_image
    base_id: str | None = None
    if base.id is not None or base.family is not None or base.oss is not None:
        base_id = None  # the provider maps these itself: nothing to resolve
    elif base.image_ref is not None:
        base_id = _referenced_id(
            lookup, "images", "Image", "imageRef", base.image_ref.name, provider_name
        )
    elif base.base_image_ref is not None:
        base_id = _referenced_id(
            lookup,
            "baseimages",
            "BaseImage",
            "baseImageRef",
            base.base_image_ref.name,
            provider_name,
        )
    return PipelineBuild(name=obj.name, spec=spec, base_image_id=base_id)


def _referenced_id(
    lookup: Lookup, plural: str, kind: str, field: str, name: str, provider_name: str
) -> str:
    body = lookup(plural, name)
    where = f"spec.baseImage.{field}"
    if body is None:
        raise _Wait("WaitingForBaseImage", f"{where} names {kind} {name!r}, which does not exist")
    ref = reference(body)
    if ref.provider_name != provider_name:
        raise _Invalid(
            f"{where} names {kind} {name!r} of ImageProvider {ref.provider_name!r}, but the "
            f"pipeline builds with {provider_name!r}: reference a {kind} of the same provider"
        )
    if not ref.ready or not ref.external_id:
        raise _Wait("WaitingForBaseImage", f"{where} names {kind} {name!r}, not Ready yet")
    return ref.external_id


def output_image_name(pipeline: str, run: Mapping[str, Any]) -> str:
    """`<pipeline>-<n>` for the pipeline's n-th run (the execution ID for runs recorded before
    runs carried their number), shortened to fit a Kubernetes name."""
    suffix = str(run.get("sequence") or run["id"]).lower()
    suffix = "".join(c if c.isalnum() or c == "-" else "-" for c in suffix).strip("-")
    return f"{pipeline[: MAX_NAME - len(suffix) - 1].rstrip('-.')}-{suffix}"


def output_image(
    obj: PipelineObject, spec: ImagePipelineSpec, run: Mapping[str, Any], image_id: str
) -> dict[str, Any]:
    """The `Image` manifest for a run's image: adopted by annotation, owned by the pipeline."""
    run_id = str(run["id"])
    labels = {}
    if len(obj.name) <= MAX_LABEL_VALUE:
        labels[LABEL_PIPELINE] = obj.name
    if run.get("sequence"):  # runs recorded before runs carried their number have none
        labels[LABEL_RUN] = str(run["sequence"])
    display = f"{spec.name or obj.name} run {run.get('sequence') or run_id}"
    assert spec.output_images is not None
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Image",
        "metadata": {
            "name": output_image_name(obj.name, run),
            "namespace": obj.namespace,
            "labels": labels,
            "annotations": {ANNOTATION_EXTERNAL_ID: image_id},
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "ImagePipeline",
                    "name": obj.name,
                    "uid": obj.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "providerRef": {"name": spec.provider_ref.name},
            "source": {"pipeline": {"pipelineRef": {"name": obj.name}, "runID": run_id}},
            "displayName": display[:MAX_DISPLAY_NAME],
            "description": f"Built by ImagePipeline {obj.name} (execution {run_id}).",
            "deletionPolicy": spec.output_images.deletion_policy.value,
        },
    }


def _target_wire(
    region: str | None, account: str | None, image: str | None, ok: bool, message: str | None
) -> dict[str, Any]:
    wire: dict[str, Any] = {"status": "Succeeded" if ok else "Failed"}
    if region:
        wire["regionID"] = region
    if account:
        wire["accountID"] = int(account)
    if image:
        wire["imageID"] = image
    if message:
        wire["message"] = message
    return wire


def _failure_reason(execution: PipelineExecution) -> str | None:
    """ECS's error code and text, plus which targets a partial success missed."""
    if execution.status == "SUCCESS":
        return None
    parts = []
    head = ": ".join(p for p in (execution.error_code, execution.error_info) if p)
    if head:
        parts.append(head)
    failed = execution.failed_targets
    if failed:
        names = ", ".join(
            f"region {t.region_id}" if t.region_id else f"account {t.account_id}" for t in failed
        )
        parts.append(f"failed targets: {names}")
    return "; ".join(parts) or None

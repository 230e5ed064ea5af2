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
from dataclasses import dataclass
from datetime import datetime

from image_operator.api.common import (
    GROUP,
)
from image_operator.api.pipeline import (
    ImagePipelineSpec,
    ImagePipelineStatus,
    OutputImageStatus,
    PipelineRun,
)
from image_operator.providers.errors import InvalidInput, NotFound, ProviderError
from image_operator.providers.pipelines import (
    FINISHED_STATUSES,
    BuildsPipelines,
    PipelineBuild,
    PipelineExecution,
)
from image_operator.reconcilers.fields import with_field_names
from image_operator.reconcilers.managed import (
    ManagedObject,
    ManagedReconciler,
    ProviderHandle,
)
from image_operator.reconcilers.outcome import Child, Event, Outcome
from image_operator.reconcilers.pipeline_build import (
    InvalidBuild,
    Lookup,
    WaitFor,
    pipeline_build,
)
from image_operator.reconcilers.pipeline_outputs import (
    failure_reason,
    output_image,
    output_image_name,
    target_result,
)
from image_operator.reconcilers.schedule import Schedule, ScheduleError, format_time, parse_time
from image_operator.reconcilers.step import Step

__all__ = [
    "ANNOTATION_RUN",
    "PipelineObject",
    "PipelineReconciler",
    "output_image",
    "output_image_name",
]

ANNOTATION_RUN = f"{GROUP}/run"
# Named in the message for a provider without `BuildsPipelines` (the types whose providers
# declare it); the check itself is `provider.pipelines`.
PIPELINE_PROVIDER_TYPES = ("aliyun",)

OUTPUT_PHASES = ("SUCCESS", "PARTITION_SUCCESS")  # runs that may have built an image

# Why a run was started, as recorded in status.runs[].trigger.
TRIGGER_CREATED = "Created"
TRIGGER_SPEC = "SpecChanged"
TRIGGER_MANUAL = "Manual"
TRIGGER_SCHEDULE = "Schedule"


@dataclass(frozen=True)
class PipelineObject(ManagedObject[ImagePipelineSpec]):
    """The parts of an `ImagePipeline` body a reconcile needs."""


_Step = Step[PipelineObject, ImagePipelineStatus]


def _active(runs: list[PipelineRun]) -> PipelineRun | None:
    if runs and runs[-1].phase not in FINISHED_STATUSES:
        return runs[-1]
    return None


class PipelineReconciler(ManagedReconciler):
    # -- create / update -------------------------------------------------------------------
    def reconcile(
        self,
        obj: PipelineObject,
        handle: ProviderHandle,
        lookup: Lookup,
        now: datetime,
        attempt: int = 0,
    ) -> Outcome:
        step = _Step.start(obj, ImagePipelineStatus)
        if obj.spec is None:
            return step.stalled("InvalidSpec", obj.spec_error or "spec is missing")
        schedule: Schedule | None = None
        if obj.spec.schedule is not None:
            try:
                schedule = Schedule.parse(obj.spec.schedule.cron, obj.spec.schedule.time_zone)
            except ScheduleError as exc:
                return step.stalled("InvalidSpec", str(exc))
        early = self.preamble(
            step, None, problem=None, never_ready="paused before the template was made"
        )
        if early is not None:
            return early
        if handle.provider is None:
            return self.wait_for_provider(step, handle)
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
        except InvalidBuild as exc:
            return step.stalled("InvalidSpec", str(exc))
        except InvalidInput as exc:
            return step.stalled("InvalidSpec", exc.message)
        except WaitFor as exc:
            return step.waiting(
                exc.reason, exc.message, self.backoff.provider_wait, phase="Pending"
            )
        try:
            return self._reconcile(
                step, obj, obj.spec, pipelines, build, fingerprint, schedule, handle, now
            )
        except ProviderError as exc:
            return self.provider_error(step, exc, attempt)

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
        runs = status.runs or []
        status.runs = runs
        self._note_triggers(step, obj, schedule, now)

        active = _active(runs)
        if active is not None:
            execution = pipelines.get_pipeline_execution(active.id)
            self._record(step, active, execution, now)
            if execution.finished and execution.image_id and execution.status in OUTPUT_PHASES:
                self._materialise(step, obj, spec, active, execution.image_id)
            active = _active(runs)
        self._retain(step, spec)

        stale_template = bool(status.external_id) and status.template_hash != wanted_hash
        if active is not None:
            waiting_for = status.pending_trigger or (TRIGGER_SPEC if stale_template else None)
            replace = spec.concurrency_policy.value == "Replace"
            if waiting_for and replace and active.phase != "CANCELLING":
                pipelines.cancel_pipeline_execution(active.id)
                active.phase = "CANCELLING"
                step.events.append(
                    Event(
                        "Cancelling",
                        f"cancelling run {active.id!r} for a newer trigger "
                        f"({waiting_for}; spec.concurrencyPolicy is Replace)",
                    )
                )
            message = f"run {active.id!r} is {active.phase.lower()}"
            if waiting_for:
                message += f"; the {waiting_for} trigger starts a run when it has finished"
            return step.waiting("Running", message, handle.poll_interval, phase="Running")

        if stale_template:
            old = str(status.external_id)
            with contextlib.suppress(NotFound):  # already gone is just as good
                pipelines.delete_pipeline(old)
            status.external_id = None
            status.template_hash = None
            status.template_generation = None
            step.events.append(
                Event("TemplateReplaced", f"deleted template {old!r}: the spec changed")
            )
            return step.waiting(
                "Creating", "creating the template for the new spec", 1.0, phase="Pending"
            )

        if not status.external_id:
            first = not runs and status.run_sequence is None
            token = pipelines.pipeline_client_token("pipeline", f"{obj.uid}-g{obj.generation}")
            pipeline_id = pipelines.create_pipeline(build, client_token=token)
            status.external_id = pipeline_id
            status.template_hash = wanted_hash
            status.template_generation = obj.generation
            status.pending_trigger = TRIGGER_CREATED if first else TRIGGER_SPEC
            step.events.append(
                Event("TemplateCreated", f"{handle.label} created image template {pipeline_id!r}")
            )
            return step.waiting("Starting", "starting a run", 0.5, phase="Pending")

        trigger = status.pending_trigger
        if trigger:
            sequence = (status.run_sequence or 0) + 1
            execution_id = pipelines.start_pipeline_execution(
                status.external_id,
                client_token=pipelines.pipeline_client_token("run", f"{obj.uid}-{sequence}"),
            )
            status.run_sequence = sequence
            status.last_run_id = execution_id
            status.pending_trigger = None
            runs.append(
                PipelineRun(
                    id=execution_id,
                    sequence=sequence,
                    phase="PREPARING",
                    trigger=trigger,
                    started_at=format_time(now),
                )
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
        if manual and manual != status.last_manual_trigger:
            status.last_manual_trigger = manual
            # At creation the first run already serves the annotation.
            if status.run_sequence is not None or status.external_id:
                status.pending_trigger = TRIGGER_MANUAL
                step.events.append(Event("RunRequested", f"{ANNOTATION_RUN} changed to {manual!r}"))
        if schedule is None:
            status.next_schedule_time = None
            status.last_schedule_time = None
            return
        last = parse_time(status.last_schedule_time)
        if last is None:
            # The schedule starts counting when first seen: creation runs once anyway.
            last = now
        else:
            due = schedule.due(last, now)
            if due is not None:
                last = due
                status.pending_trigger = TRIGGER_SCHEDULE
                step.events.append(
                    Event("RunScheduled", f"spec.schedule was due at {format_time(due)}")
                )
        status.last_schedule_time = format_time(last)
        status.next_schedule_time = format_time(schedule.next_after(last))

    def _record(
        self, step: _Step, run: PipelineRun, execution: PipelineExecution, now: datetime
    ) -> None:
        before = run.phase
        run.phase = execution.status
        if execution.image_id:
            run.image_id = execution.image_id
        if execution.targets:
            run.targets = [target_result(target) for target in execution.targets]
        if not execution.finished:
            return
        run.finished_at = format_time(now)
        reason = failure_reason(execution)
        if reason:
            run.reason = reason
        if before == execution.status:
            return
        if execution.status == "SUCCESS":
            step.events.append(Event("RunSucceeded", f"run {run.id!r} succeeded"))
        else:
            step.events.append(
                Event(
                    "RunFailed" if execution.status != "CANCELLED" else "RunCancelled",
                    f"run {run.id!r} ended {execution.status}: {reason or 'no reason given'}",
                    "Warning" if execution.status != "CANCELLED" else "Normal",
                )
            )

    def _materialise(
        self,
        step: _Step,
        obj: PipelineObject,
        spec: ImagePipelineSpec,
        run: PipelineRun,
        image_id: str,
    ) -> None:
        """spec.outputImages: an `Image` that adopts the run's image, owned by the pipeline.
        Recorded in status.outputImages at once, so each run makes its Image exactly once."""
        outputs = spec.output_images
        if outputs is None or not outputs.enabled:
            return
        made = step.status.output_images or []
        if any(entry.run_id == run.id for entry in made):
            return
        body = output_image(obj, spec, run, image_id)
        name = body["metadata"]["name"]
        step.children.append(Child("images", name, body))
        made.append(OutputImageStatus(name=name, image_id=image_id, run_id=run.id))
        step.status.output_images = made
        run.output_image = name
        message = f"Image {name!r} adopts image {image_id!r} built by run {run.id!r}"
        step.events.append(Event("OutputImageCreated", message))

    def _retain(self, step: _Step, spec: ImagePipelineSpec) -> None:
        """spec.outputImages.retention: delete the Image objects of older runs beyond the newest
        N (their finalizers delete the cloud images per the Image's deletionPolicy)."""
        outputs = spec.output_images
        made = step.status.output_images or []
        if outputs is None or not outputs.enabled or len(made) <= outputs.retention:
            return
        excess = len(made) - outputs.retention
        for entry in made[:excess]:
            step.children.append(Child("images", entry.name))
            step.events.append(
                Event(
                    "OutputImageRetired",
                    f"deleting Image {entry.name!r} (image {entry.image_id!r}): "
                    f"spec.outputImages.retention keeps the newest {outputs.retention}",
                )
            )
        step.status.output_images = made[excess:]

    def _settled(
        self,
        step: _Step,
        runs: list[PipelineRun],
        schedule: Schedule | None,
        now: datetime,
    ) -> Outcome:
        template = step.status.external_id
        after: float | None = None
        if schedule is not None:
            due = parse_time(step.status.next_schedule_time)
            if due is not None:
                after = max(1.0, (due - now).total_seconds())
        last = runs[-1] if runs else None
        if last is None or last.phase == "SUCCESS":
            message = f"image template {template!r} matches the spec"
            if last is not None:
                message += f"; run {last.id!r} succeeded"
            outcome = step.outcome(phase="Succeeded", ready=(True, "Succeeded", message))
        else:
            # Stalled (kstatus: Failed), not a bare Ready=False, which kstatus reads as Current:
            # nothing runs again until the annotation, the spec or the schedule says so.
            phase = last.phase
            if phase == "PARTITION_SUCCESS":
                reason, word = "PartiallySucceeded", "PartiallySucceeded"
            elif phase == "CANCELLED":
                reason, word = "RunCancelled", "Cancelled"
            else:
                reason, word = "RunFailed", "Failed"
            ended = f"run {last.id!r} ended {phase}: {last.reason or 'no reason given'}"
            message = (
                f"{with_field_names(ended, step.obj.spec)}; set the annotation {ANNOTATION_RUN} "
                "to a new value (after fixing what it names, if it is the spec) to run again"
            )
            outcome = step.outcome(
                phase=word, ready=(False, reason, message), stalled=(True, reason, message)
            )
        outcome.requeue_after = after
        return outcome

    # -- deletion ---------------------------------------------------------------------------
    def finalize(
        self, obj: PipelineObject, handle: ProviderHandle, now: datetime, attempt: int = 0
    ) -> Outcome:
        step = _Step.start(obj, ImagePipelineStatus)
        template = step.status.external_id
        runs = step.status.runs or []
        step.status.runs = runs
        early = self.finalize_preamble(
            step,
            handle,
            noun="image template",
            what="the template",
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
                if active.phase != "CANCELLING":
                    # InvalidInput: it finished meanwhile; the next describe records how.
                    with contextlib.suppress(InvalidInput):
                        pipelines.cancel_pipeline_execution(active.id)
                    active.phase = "CANCELLING"
                    step.events.append(
                        Event("Cancelling", f"cancelling run {active.id!r}: deleting")
                    )
                    return step.waiting(
                        "Cancelling",
                        f"cancelling run {active.id!r} before deleting the template",
                        handle.poll_interval,
                        phase="Deleting",
                    )
                try:
                    execution = pipelines.get_pipeline_execution(active.id)
                except NotFound:
                    active.phase = "CANCELLED"
                else:
                    self._record(step, active, execution, now)
                if _active(runs) is not None:
                    return step.waiting(
                        "Cancelling",
                        f"waiting for run {active.id!r} to be cancelled",
                        handle.poll_interval,
                        phase="Deleting",
                    )
            if template:
                with contextlib.suppress(NotFound):  # already gone is just as good
                    pipelines.delete_pipeline(template)
                step.events.append(Event("Deleted", f"image template {template!r} is gone"))
            return step.outcome(phase="Deleted", ready=(False, "Deleted", "the template is gone"))
        except ProviderError as exc:
            doing = f"cannot delete image template {template!r}"
            return self.delete_failed(step, exc, attempt, doing=doing)

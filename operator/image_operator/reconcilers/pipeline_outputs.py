"""What an ImagePipeline's runs leave: each run's per-target results and failure reason as
status shows them, and the `Image` objects `spec.outputImages` makes (one per successful run,
adopting the run's image, owned by the pipeline)."""

from __future__ import annotations

from typing import Any

from image_operator.api.common import ANNOTATION_EXTERNAL_ID, GROUP, VERSION
from image_operator.api.pipeline import ImagePipelineSpec, PipelineRun, TargetResult
from image_operator.providers.pipelines import PipelineExecution
from image_operator.providers.pipelines import TargetResult as ExecutionTarget
from image_operator.reconcilers.managed import ManagedObject

# Labels on the Image objects spec.outputImages makes (the pipeline also owns them).
LABEL_PIPELINE = f"{GROUP}/pipeline"
LABEL_RUN = f"{GROUP}/pipeline-run"
MAX_LABEL_VALUE = 63
MAX_DISPLAY_NAME = 128
MAX_NAME = 253


def output_image_name(pipeline: str, run: PipelineRun) -> str:
    """`<pipeline>-<n>` for the pipeline's n-th run (the execution ID for runs recorded before
    runs carried their number), shortened to fit a Kubernetes name."""
    suffix = str(run.sequence or run.id).lower()
    suffix = "".join(c if c.isalnum() or c == "-" else "-" for c in suffix).strip("-")
    return f"{pipeline[: MAX_NAME - len(suffix) - 1].rstrip('-.')}-{suffix}"


def output_image(
    obj: ManagedObject[ImagePipelineSpec], spec: ImagePipelineSpec, run: PipelineRun, image_id: str
) -> dict[str, Any]:
    """The `Image` manifest for a run's image: adopted by annotation, owned by the pipeline."""
    run_id = run.id
    labels = {}
    if len(obj.name) <= MAX_LABEL_VALUE:
        labels[LABEL_PIPELINE] = obj.name
    if run.sequence:  # runs recorded before runs carried their number have none
        labels[LABEL_RUN] = str(run.sequence)
    display = f"{spec.name or obj.name} run {run.sequence or run_id}"
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


def target_result(target: ExecutionTarget) -> TargetResult:
    """status.runs[].targets[]: one of the execution's regions or accounts (empty values the
    cloud reports are left out)."""
    return TargetResult(
        status="Succeeded" if target.succeeded else "Failed",
        region_id=target.region_id or None,
        account_id=int(target.account_id) if target.account_id else None,
        image_id=target.image_id or None,
        message=target.message or None,
    )


def failure_reason(execution: PipelineExecution) -> str | None:
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

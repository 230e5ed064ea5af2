"""Image build pipelines (seed 004, ECS image pipelines): the values and the interface the
ImagePipeline reconciler programs against, and its measured forwarder.

The reconciler hands over the validated spec with its references resolved (`PipelineBuild`);
the provider turns it into its own template (the ECS request stays inside `providers.aliyun`).
Execution phases use the seed's vocabulary (`SUCCESS`, `PARTITION_SUCCESS`, ...), which is also
what `status.runs[].phase` shows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from image_operator.api.pipeline import ImagePipelineSpec
from image_operator.providers.capabilities import Meter

FINISHED_STATUSES: Final = frozenset(
    {"SUCCESS", "PARTITION_SUCCESS", "FAILED", "TEST_FAILED", "CANCELLED"}
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PipelineBuild(_Model):
    """What to build: the spec, the template's name, and the base image a `baseImage.imageRef`
    or `baseImage.baseImageRef` resolved to (the cloud ID of a Ready object)."""

    name: str
    spec: ImagePipelineSpec
    base_image_id: str | None = None


class TargetResult(_Model):
    """One distribution region or sharing account of an execution."""

    region_id: str | None = None
    account_id: str | None = None
    image_id: str | None = None
    succeeded: bool
    message: str | None = None


class PipelineExecution(_Model):
    execution_id: str
    pipeline_id: str
    status: str
    image_id: str | None = None
    message: str | None = None
    error_code: str | None = None
    error_info: str | None = None
    created_at: str | None = None
    modified_at: str | None = None
    targets: list[TargetResult] = Field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def failed_targets(self) -> list[TargetResult]:
        return [target for target in self.targets if not target.succeeded]


class PipelineInfo(_Model):
    pipeline_id: str
    name: str | None = None
    base_image_type: str | None = None
    base_image: str | None = None
    to_region_ids: list[str] = Field(default_factory=list)
    add_accounts: list[str] = Field(default_factory=list)
    created_at: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)


class BuildsPipelines(ABC):
    """Builds images from templates in runs (ECS CreateImagePipeline and its executions)."""

    @abstractmethod
    def pipeline_fingerprint(self, build: PipelineBuild) -> str:
        """A short digest of the template `build` makes (a changed digest means a new template).
        Local; raises `InvalidInput`, naming the field, for a build the cloud cannot make."""

    @abstractmethod
    def pipeline_client_token(self, purpose: str, key: str) -> str:
        """An idempotency token the cloud accepts, for one purpose of one object. Local."""

    @abstractmethod
    def create_pipeline(self, build: PipelineBuild, *, client_token: str) -> str: ...

    @abstractmethod
    def start_pipeline_execution(
        self,
        pipeline_id: str,
        *,
        client_token: str | None = None,
        tags: Iterable[tuple[str, str]] = (),
    ) -> str: ...

    @abstractmethod
    def describe_pipeline_executions(
        self,
        *,
        pipeline_id: str | None = None,
        execution_id: str | None = None,
        statuses: Iterable[str] = (),
    ) -> list[PipelineExecution]: ...

    @abstractmethod
    def get_pipeline_execution(self, execution_id: str) -> PipelineExecution: ...

    @abstractmethod
    def cancel_pipeline_execution(self, execution_id: str) -> None: ...

    @abstractmethod
    def delete_pipeline(self, pipeline_id: str) -> None: ...

    @abstractmethod
    def describe_pipelines(
        self, pipeline_ids: Sequence[str] = (), *, name: str | None = None
    ) -> list[PipelineInfo]: ...


class MeasuredPipelines(BuildsPipelines):
    def __init__(self, inner: BuildsPipelines, meter: Meter) -> None:
        self._inner, self._meter = inner, meter

    def pipeline_fingerprint(self, build: PipelineBuild) -> str:
        return self._inner.pipeline_fingerprint(build)  # local: not a cloud call

    def pipeline_client_token(self, purpose: str, key: str) -> str:
        return self._inner.pipeline_client_token(purpose, key)  # local: not a cloud call

    def create_pipeline(self, build: PipelineBuild, *, client_token: str) -> str:
        return self._meter(
            "create_pipeline", self._inner.create_pipeline, build, client_token=client_token
        )

    def start_pipeline_execution(
        self,
        pipeline_id: str,
        *,
        client_token: str | None = None,
        tags: Iterable[tuple[str, str]] = (),
    ) -> str:
        return self._meter(
            "start_pipeline_execution",
            self._inner.start_pipeline_execution,
            pipeline_id,
            client_token=client_token,
            tags=list(tags),
        )

    def describe_pipeline_executions(
        self,
        *,
        pipeline_id: str | None = None,
        execution_id: str | None = None,
        statuses: Iterable[str] = (),
    ) -> list[PipelineExecution]:
        return self._meter(
            "describe_pipeline_executions",
            self._inner.describe_pipeline_executions,
            pipeline_id=pipeline_id,
            execution_id=execution_id,
            statuses=list(statuses),
        )

    def get_pipeline_execution(self, execution_id: str) -> PipelineExecution:
        return self._meter(
            "get_pipeline_execution", self._inner.get_pipeline_execution, execution_id
        )

    def cancel_pipeline_execution(self, execution_id: str) -> None:
        self._meter(
            "cancel_pipeline_execution", self._inner.cancel_pipeline_execution, execution_id
        )

    def delete_pipeline(self, pipeline_id: str) -> None:
        self._meter("delete_pipeline", self._inner.delete_pipeline, pipeline_id)

    def describe_pipelines(
        self, pipeline_ids: Sequence[str] = (), *, name: str | None = None
    ) -> list[PipelineInfo]:
        return self._meter(
            "describe_pipelines", self._inner.describe_pipelines, list(pipeline_ids), name=name
        )

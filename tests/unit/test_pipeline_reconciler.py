"""The ImagePipeline reconciler against an in-memory ECS image-template service and a clock
turned by hand: templates, runs and their triggers, concurrency, history, schedule, deletion."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from image_operator.api.common import ANNOTATION_PAUSED, DeletionPolicy
from image_operator.api.image import ImageSpec
from image_operator.api.pipeline import ImagePipelineSpec, PipelineRun
from image_operator.providers.aliyun_images import client_token
from image_operator.providers.aliyun_pipelines import (
    PipelineTemplate,
    pipeline_template,
    template_hash,
)
from image_operator.providers.errors import Conflict, InvalidInput, NotFound, Transient
from image_operator.providers.instrumented import InstrumentedProvider
from image_operator.providers.pipelines import (
    BuildsPipelines,
    PipelineBuild,
    PipelineExecution,
    PipelineInfo,
    TargetResult,
)
from image_operator.reconcilers.managed import Backoff, ProviderHandle
from image_operator.reconcilers.outcome import Outcome, condition
from image_operator.reconcilers.pipeline import (
    ANNOTATION_RUN,
    PipelineObject,
    PipelineReconciler,
    output_image,
    output_image_name,
)
from image_operator.reconcilers.schedule import Schedule, ScheduleError
from tests.unit.fakes import FakeProvider

UID = "5f0c2a8e-1111-2222-3333-444455556666"
POLL = 2.0
START = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)  # a Monday


class FakePipelines(FakeProvider, BuildsPipelines):
    """ECS image templates and executions in dicts. ClientTokens behave as ECS documents: the
    same token and parameters return the first answer, other parameters are a Conflict. A
    build becomes its template as the aliyun provider makes it (`pipeline_template`), and
    `create_pipeline` is logged with that template."""

    type_name = "aliyun"

    def __init__(self) -> None:
        super().__init__()
        self.templates: dict[str, PipelineTemplate] = {}
        self.executions: dict[str, PipelineExecution] = {}
        self.tokens: dict[str, tuple[Any, str]] = {}
        self._pipeline_ids = itertools.count(1)
        self._execution_ids = itertools.count(1)

    def _idempotent(self, token: str | None, params: Any, make: Any) -> str:
        if token is not None and token in self.tokens:
            seen, answer = self.tokens[token]
            if seen != params:
                raise Conflict(f"token {token!r} was used with other parameters")
            return answer
        answer = str(make())
        if token is not None:
            self.tokens[token] = (params, answer)
        return answer

    def pipeline_fingerprint(self, build: PipelineBuild) -> str:
        return template_hash(pipeline_template(build))

    def pipeline_client_token(self, purpose: str, key: str) -> str:
        return client_token(purpose, key)

    def create_pipeline(self, build: PipelineBuild, *, client_token: str) -> str:
        template = pipeline_template(build)
        self._enter("create_pipeline", template, client_token)

        def make() -> str:
            pipeline_id = f"ip-{next(self._pipeline_ids):04d}"
            self.templates[pipeline_id] = template
            return pipeline_id

        return self._idempotent(client_token, template, make)

    def start_pipeline_execution(
        self,
        pipeline_id: str,
        *,
        client_token: str | None = None,
        tags: Iterable[tuple[str, str]] = (),
    ) -> str:
        self._enter("start_pipeline_execution", pipeline_id, client_token)
        if pipeline_id not in self.templates:
            raise NotFound(f"no template {pipeline_id!r}")

        def make() -> str:
            if any(
                e.pipeline_id == pipeline_id and not e.finished for e in self.executions.values()
            ):
                raise Transient("OperationDenied.ImagePipelineExecutionRunning")
            execution_id = f"exec-{next(self._execution_ids):04d}"
            self.executions[execution_id] = PipelineExecution(
                execution_id=execution_id, pipeline_id=pipeline_id, status="PREPARING"
            )
            return execution_id

        return self._idempotent(client_token, pipeline_id, make)

    def get_pipeline_execution(self, execution_id: str) -> PipelineExecution:
        self._enter("get_pipeline_execution", execution_id)
        if execution_id not in self.executions:
            raise NotFound(f"no execution {execution_id!r}")
        return self.executions[execution_id]

    def cancel_pipeline_execution(self, execution_id: str) -> None:
        self._enter("cancel_pipeline_execution", execution_id)
        execution = self.executions[execution_id]
        if execution.finished:
            raise InvalidInput("OperationDenied.ImagePipelineExecutionFinished")
        self.executions[execution_id] = execution.model_copy(update={"status": "CANCELLING"})

    def delete_pipeline(self, pipeline_id: str) -> None:
        self._enter("delete_pipeline", pipeline_id)
        if pipeline_id not in self.templates:
            raise NotFound(f"no template {pipeline_id!r}")
        if any(e.pipeline_id == pipeline_id and not e.finished for e in self.executions.values()):
            raise Transient("OperationDenied.ImagePipelineExecutionRunning")
        del self.templates[pipeline_id]

    def describe_pipeline_executions(
        self,
        *,
        pipeline_id: str | None = None,
        execution_id: str | None = None,
        statuses: Iterable[str] = (),
    ) -> list[PipelineExecution]:
        wanted = set(statuses)
        self._enter("describe_pipeline_executions", pipeline_id, execution_id, tuple(wanted))
        return [
            e
            for e in self.executions.values()
            if (pipeline_id is None or e.pipeline_id == pipeline_id)
            and (execution_id is None or e.execution_id == execution_id)
            and (not wanted or e.status in wanted)
        ]

    def describe_pipelines(
        self, pipeline_ids: Sequence[str] = (), *, name: str | None = None
    ) -> list[PipelineInfo]:
        self._enter("describe_pipelines", tuple(pipeline_ids), name)
        return [PipelineInfo(pipeline_id=pid) for pid in self.templates if pid in pipeline_ids]

    # -- test controls --
    def move(self, execution_id: str, status: str, **fields: Any) -> None:
        """The cloud moves a run along (or ends it)."""
        current = self.executions[execution_id]
        self.executions[execution_id] = current.model_copy(update={"status": status, **fields})


def spec(**overrides: Any) -> ImagePipelineSpec:
    base: dict[str, Any] = {
        "providerRef": {"name": "ali"},
        "baseImage": {"id": "m-base"},
        "buildContent": "RUN echo hi",
        "toRegionIDs": ["cn-beijing", "cn-shanghai"],
        "addAccounts": [1122334455],
    }
    base.update(overrides)
    return ImagePipelineSpec.model_validate(base)


@dataclass
class Harness:
    provider: FakePipelines = field(default_factory=FakePipelines)
    reconciler: PipelineReconciler = field(
        default_factory=lambda: PipelineReconciler(
            Backoff(base=1, maximum=60, provider_wait=7, spread=lambda: 1.0)
        )
    )
    objects: dict[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)
    now: datetime = START

    @property
    def handle(self) -> ProviderHandle:
        return ProviderHandle("ali", self.provider, poll_interval=POLL)

    def lookup(self, plural: str, name: str) -> Mapping[str, Any] | None:
        return self.objects.get((plural, name))

    def reconcile(self, obj: PipelineObject, attempt: int = 0) -> Outcome:
        return self.reconciler.reconcile(obj, self.handle, self.lookup, self.now, attempt)

    def finalize(self, obj: PipelineObject) -> Outcome:
        return self.reconciler.finalize(obj, self.handle, self.now)

    def settle(self, obj: PipelineObject, steps: int = 6) -> tuple[PipelineObject, Outcome]:
        """Reconcile until a step asks to poll (run in flight) or settles; the short requeues
        between template creation and the start are part of one logical step."""
        for _ in range(steps):
            outcome = self.reconcile(obj)
            obj = after(obj, outcome)
            if outcome.requeue_after is None or outcome.requeue_after >= POLL:
                return obj, outcome
        raise AssertionError("did not settle")


def make_obj(s: ImagePipelineSpec | None = None, **changes: Any) -> PipelineObject:
    obj = PipelineObject(
        name="nightly",
        namespace="ns",
        uid=UID,
        generation=1,
        annotations={},
        spec=s or spec(),
        status={},
    )
    return replace(obj, **changes)


def after(obj: PipelineObject, outcome: Outcome, **changes: Any) -> PipelineObject:
    return replace(obj, status=outcome.status, **changes)


def ready(outcome: Outcome) -> dict[str, Any]:
    found = condition(outcome.status, "Ready")
    assert found is not None
    return found


def reasons(outcome: Outcome) -> list[str]:
    return [event.reason for event in outcome.events]


def targets(*clauses: tuple[str | None, str | None, str | None, bool]) -> list[TargetResult]:
    return [
        TargetResult(region_id=r, account_id=a, image_id=i, succeeded=ok) for r, a, i, ok in clauses
    ]


@pytest.fixture
def h() -> Harness:
    return Harness()


def test_creation_makes_the_template_runs_it_and_records_per_target_results(h: Harness) -> None:
    first = h.reconcile(make_obj())
    assert reasons(first) == ["TemplateCreated"]
    assert h.provider.calls_to("start_pipeline_execution") == []  # one mutating call a step
    obj, outcome = h.settle(after(make_obj(), first))

    ((template, token),) = h.provider.calls_to("create_pipeline")
    assert token == f"pipeline-{UID}-g1"
    assert template.base_image_type == "IMAGE"
    assert template.base_image == "m-base"
    assert template.name == "nightly"
    assert template.to_region_ids == ["cn-beijing", "cn-shanghai"]
    assert template.add_accounts == [1122334455]
    ((pipeline_id, run_token),) = h.provider.calls_to("start_pipeline_execution")
    assert run_token == f"run-{UID}-1"
    status = outcome.status
    assert status["externalID"] == pipeline_id
    assert status["lastRunID"] == "exec-0001"
    assert status["runs"] == [
        {
            "id": "exec-0001",
            "sequence": 1,
            "phase": "PREPARING",
            "trigger": "Created",
            "startedAt": "2026-03-02T10:00:00Z",
        }
    ]
    assert outcome.requeue_after == POLL
    assert condition(status, "Reconciling") is not None
    assert reasons(outcome) == ["RunStarted"]

    h.provider.move("exec-0001", "BUILDING")
    outcome = h.reconcile(obj)
    obj = after(obj, outcome)
    assert outcome.status["runs"][0]["phase"] == "BUILDING"
    assert outcome.requeue_after == POLL

    h.now += timedelta(minutes=5)
    h.provider.move(
        "exec-0001",
        "SUCCESS",
        image_id="m-built",
        targets=targets(
            ("cn-hangzhou", None, "m-built", True),
            ("cn-beijing", None, "m-bj", True),
            ("cn-shanghai", None, "m-sh", True),
            (None, "1122334455", None, True),
        ),
    )
    outcome = h.reconcile(obj)

    run = outcome.status["runs"][0]
    assert run["phase"] == "SUCCESS"
    assert run["imageID"] == "m-built"
    assert "outputImage" not in run  # spec.outputImages is off
    assert outcome.children == []
    assert run["finishedAt"] == "2026-03-02T10:05:00Z"
    assert "reason" not in run
    assert run["targets"] == [
        {"status": "Succeeded", "regionID": "cn-hangzhou", "imageID": "m-built"},
        {"status": "Succeeded", "regionID": "cn-beijing", "imageID": "m-bj"},
        {"status": "Succeeded", "regionID": "cn-shanghai", "imageID": "m-sh"},
        {"status": "Succeeded", "accountID": 1122334455},
    ]
    assert ready(outcome)["status"] == "True"
    assert outcome.status["phase"] == "Succeeded"
    assert condition(outcome.status, "Reconciling") is None
    assert outcome.requeue_after is None  # no schedule: nothing to wait for
    assert reasons(outcome) == ["RunSucceeded"]
    # Settled: another pass calls nothing that changes the cloud.
    h.provider.reset_calls()
    again = h.reconcile(after(obj, outcome))
    assert h.provider.names() == []
    assert again.events == []


def test_partition_success_names_the_failed_region(h: Harness) -> None:
    obj, _ = h.settle(make_obj())
    h.provider.move(
        "exec-0001",
        "PARTITION_SUCCESS",
        error_code="DistributionPartiallyFailed",
        error_info="distribution to cn-shanghai failed",
        targets=[
            TargetResult(region_id="cn-beijing", image_id="m-bj", succeeded=True),
            TargetResult(region_id="cn-shanghai", succeeded=False, message="quota exceeded"),
        ],
    )
    outcome = h.reconcile(obj)

    run = outcome.status["runs"][0]
    assert run["targets"][1] == {
        "status": "Failed",
        "regionID": "cn-shanghai",
        "message": "quota exceeded",
    }
    assert "failed targets: region cn-shanghai" in run["reason"]
    assert run["reason"].startswith("DistributionPartiallyFailed")
    cond = ready(outcome)
    assert (cond["status"], cond["reason"]) == ("False", "PartiallySucceeded")
    assert ANNOTATION_RUN in cond["message"]
    assert outcome.status["phase"] == "PartiallySucceeded"
    assert [(e.reason, e.type) for e in outcome.events] == [("RunFailed", "Warning")]


def test_a_failed_run_is_stalled_naming_the_field_and_calls_nothing_more(h: Harness) -> None:
    # ECS checks the OSS object only when a run starts: the template is made, the run fails.
    # Ready=False alone would read as Current to kstatus; it is Stalled, naming the field, and
    # nothing new is made until something changes.
    oss = {"oss": {"bucket": "images", "object": "base/ubuntu.qcow2"}}
    obj, _ = h.settle(make_obj(spec(baseImage=oss)))
    h.provider.move(
        "exec-0001",
        "FAILED",
        error_code="InvalidOSSObject.NotFound",
        error_info="The OSS object 'base/ubuntu.qcow2' in bucket 'images' does not exist.",
    )
    outcome = h.reconcile(obj)

    stalled = condition(outcome.status, "Stalled")
    assert stalled is not None
    assert (stalled["status"], stalled["reason"]) == ("True", "RunFailed")
    assert "base/ubuntu.qcow2 is spec.baseImage.oss.object" in stalled["message"]
    assert ANNOTATION_RUN in stalled["message"]
    assert condition(outcome.status, "Reconciling") is None
    assert (ready(outcome)["status"], outcome.status["phase"]) == ("False", "Failed")
    assert [(e.reason, e.type) for e in outcome.events] == [("RunFailed", "Warning")]

    h.provider.reset_calls()
    obj = after(obj, outcome)
    for _ in range(3):
        h.now += timedelta(hours=1)
        again = h.reconcile(obj)
        obj = after(obj, again)
    assert h.provider.names() == []
    assert again.events == []
    assert condition(again.status, "Stalled") == stalled


@pytest.mark.parametrize(
    ("phase", "reason", "word"),
    [
        ("PARTITION_SUCCESS", "PartiallySucceeded", "PartiallySucceeded"),
        ("CANCELLED", "RunCancelled", "Cancelled"),
        ("TEST_FAILED", "RunFailed", "Failed"),
    ],
)
def test_every_unsuccessful_run_is_stalled(h: Harness, phase: str, reason: str, word: str) -> None:
    obj, _ = h.settle(make_obj())
    h.provider.move("exec-0001", phase)
    outcome = h.reconcile(obj)

    stalled = condition(outcome.status, "Stalled")
    assert stalled is not None and (stalled["status"], stalled["reason"]) == ("True", reason)
    assert outcome.status["phase"] == word


def test_a_new_run_annotation_value_starts_a_run_once(h: Harness) -> None:
    obj, _ = h.settle(make_obj())
    h.provider.move("exec-0001", "SUCCESS")
    obj, _ = h.settle(obj)

    obj = replace(obj, annotations={ANNOTATION_RUN: "2026-03-02"})
    obj, outcome = h.settle(obj)
    assert outcome.status["runs"][-1]["trigger"] == "Manual"
    assert outcome.status["runSequence"] == 2
    assert h.provider.calls_to("start_pipeline_execution")[-1][1] == f"run-{UID}-2"

    h.provider.move("exec-0002", "SUCCESS")
    obj, _ = h.settle(obj)
    obj, _ = h.settle(obj)  # the same value again is not a new trigger
    assert len(h.provider.calls_to("start_pipeline_execution")) == 2


def test_the_annotation_present_at_creation_is_served_by_the_first_run(h: Harness) -> None:
    _, outcome = h.settle(make_obj(annotations={ANNOTATION_RUN: "now"}))
    assert len(h.provider.calls_to("start_pipeline_execution")) == 1
    assert outcome.status["lastManualTrigger"] == "now"
    assert "pendingTrigger" not in outcome.status


def test_wait_policy_queues_a_trigger_until_the_run_finishes(h: Harness) -> None:
    obj, _ = h.settle(make_obj())
    obj = replace(obj, annotations={ANNOTATION_RUN: "1"})
    outcome = h.reconcile(obj)
    obj = after(obj, outcome)

    assert h.provider.calls_to("cancel_pipeline_execution") == []
    assert len(h.provider.calls_to("start_pipeline_execution")) == 1
    assert outcome.status["pendingTrigger"] == "Manual"
    assert "Manual trigger starts a run when it has finished" in ready(outcome)["message"]

    h.provider.move("exec-0001", "SUCCESS")
    obj, outcome = h.settle(obj)
    assert [run["id"] for run in outcome.status["runs"]] == ["exec-0001", "exec-0002"]
    assert "pendingTrigger" not in outcome.status


def test_replace_policy_cancels_the_running_execution_first(h: Harness) -> None:
    obj, _ = h.settle(make_obj(spec(concurrencyPolicy="Replace")))
    obj = replace(obj, annotations={ANNOTATION_RUN: "1"})
    outcome = h.reconcile(obj)
    obj = after(obj, outcome)
    assert h.provider.calls_to("cancel_pipeline_execution") == [("exec-0001",)]
    assert outcome.status["runs"][0]["phase"] == "CANCELLING"
    assert "Cancelling" in reasons(outcome)

    outcome = h.reconcile(obj)  # still cancelling: no second cancel
    obj = after(obj, outcome)
    assert len(h.provider.calls_to("cancel_pipeline_execution")) == 1

    h.provider.move("exec-0001", "CANCELLED")
    obj, outcome = h.settle(obj)
    phases = [(run["id"], run["phase"], run["trigger"]) for run in outcome.status["runs"]]
    assert phases == [("exec-0001", "CANCELLED", "Created"), ("exec-0002", "PREPARING", "Manual")]


def test_a_template_change_replaces_the_template_after_the_run(h: Harness) -> None:
    obj, _ = h.settle(make_obj())
    old = obj.status["externalID"]
    obj = replace(obj, spec=spec(buildContent="RUN echo changed"), generation=2)

    outcome = h.reconcile(obj)  # Wait: the running execution keeps the old template
    obj = after(obj, outcome)
    assert h.provider.calls_to("delete_pipeline") == []
    assert "SpecChanged trigger" in ready(outcome)["message"]

    h.provider.move("exec-0001", "SUCCESS")
    obj, outcome = h.settle(obj)

    assert h.provider.calls_to("delete_pipeline") == [(old,)]
    assert old not in h.provider.templates
    template, token = h.provider.calls_to("create_pipeline")[-1]
    assert token == f"pipeline-{UID}-g2"
    assert template.build_content == "RUN echo changed"
    assert outcome.status["externalID"] != old
    assert outcome.status["templateGeneration"] == 2
    assert outcome.status["runs"][-1]["trigger"] == "SpecChanged"


def test_a_change_outside_the_template_keeps_it_and_starts_nothing(h: Harness) -> None:
    obj, _ = h.settle(make_obj())
    h.provider.move("exec-0001", "SUCCESS")
    obj, _ = h.settle(obj)
    obj = replace(obj, spec=spec(runsHistoryLimit=3), generation=2)
    obj, outcome = h.settle(obj)
    assert len(h.provider.calls_to("create_pipeline")) == 1
    assert len(h.provider.calls_to("start_pipeline_execution")) == 1
    assert outcome.status["observedGeneration"] == 2


def test_history_keeps_the_newest_runs(h: Harness) -> None:
    obj = make_obj(spec(runsHistoryLimit=2))
    obj, _ = h.settle(obj)
    for n in range(2, 5):
        h.provider.move(f"exec-{n - 1:04d}", "SUCCESS")
        obj = replace(obj, annotations={ANNOTATION_RUN: str(n)})
        obj, outcome = h.settle(obj)
    assert [run["id"] for run in outcome.status["runs"]] == ["exec-0003", "exec-0004"]


def test_a_lost_create_answer_is_recovered_by_the_same_token(h: Harness) -> None:
    h.provider.fail_next("start_pipeline_execution", Transient("connection reset"))
    obj = make_obj()
    outcome = h.reconcile(obj)
    pipeline_id = outcome.status["externalID"]
    # The status write is lost (the operator crashed): the next pass starts from scratch.
    outcome = h.reconcile(obj)
    assert outcome.status["externalID"] == pipeline_id
    assert len(h.provider.templates) == 1

    obj = after(obj, outcome)
    outcome = h.reconcile(obj)  # start fails transiently: retried with backoff
    assert outcome.retrying
    assert outcome.requeue_after == 1
    assert reasons(outcome) == ["CloudUnavailable"]
    obj = after(obj, outcome)
    outcome = h.reconcile(obj, attempt=1)
    assert outcome.status["runs"][0]["id"] == "exec-0001"


def test_a_referenced_image_is_waited_for_then_used(h: Harness) -> None:
    obj = make_obj(spec(baseImage={"imageRef": {"name": "golden"}}))
    outcome = h.reconcile(obj)
    assert ready(outcome)["reason"] == "WaitingForBaseImage"
    assert "spec.baseImage.imageRef names Image 'golden'" in ready(outcome)["message"]
    assert h.provider.calls == []

    h.objects[("images", "golden")] = {
        "spec": {"providerRef": {"name": "ali"}},
        "status": {"externalID": "m-golden", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    h.settle(obj)
    ((template, _),) = h.provider.calls_to("create_pipeline")
    assert (template.base_image_type, template.base_image) == ("IMAGE", "m-golden")


def test_a_referenced_image_of_another_provider_stalls(h: Harness) -> None:
    h.objects[("baseimages", "b")] = {"spec": {"providerRef": {"name": "other"}}, "status": {}}
    outcome = h.reconcile(make_obj(spec(baseImage={"baseImageRef": {"name": "b"}})))
    stalled = condition(outcome.status, "Stalled")
    assert stalled is not None
    assert "spec.baseImage.baseImageRef" in stalled["message"]
    assert "same provider" in stalled["message"]


def test_an_oss_base_becomes_import_options(h: Harness) -> None:
    oss = {"bucket": "images", "object": "u/22.qcow2", "format": "qcow2"}
    h.settle(make_obj(spec(baseImage={"oss": oss})))
    ((template, _),) = h.provider.calls_to("create_pipeline")
    assert template.base_image_type == "OSS"
    assert template.import_image_options is not None
    disk = template.import_image_options.disks[0]
    assert (disk.bucket, disk.object, disk.format) == ("images", "u/22.qcow2", "QCOW2")


def test_an_unbuildable_oss_format_stalls_naming_the_field(h: Harness) -> None:
    oss = {"bucket": "images", "object": "u.iso", "format": "iso"}
    outcome = h.reconcile(make_obj(spec(baseImage={"oss": oss})))
    assert outcome.status["phase"] == "Stalled"
    assert "spec.baseImage.oss.format 'iso'" in ready(outcome)["message"]
    assert "qcow2" in ready(outcome)["message"]


def test_other_provider_types_are_unsupported(h: Harness) -> None:
    class Argon(FakeProvider):
        type_name = "argon"

    handle = ProviderHandle("ali", Argon())
    outcome = h.reconciler.reconcile(make_obj(), handle, h.lookup, h.now)
    stalled = condition(outcome.status, "Stalled")
    assert stalled is not None
    assert stalled["reason"] == "Unsupported"
    assert "type aliyun" in stalled["message"]


def test_through_the_instrumenting_wrapper_runs_start_and_calls_are_counted(h: Harness) -> None:
    def requests(action: str) -> float:
        labels = {"provider": "aliyun", "action": action, "outcome": "ok"}
        return REGISTRY.get_sample_value("imageops_cloud_requests_total", labels) or 0.0

    before = {a: requests(a) for a in ("create_pipeline", "start_pipeline_execution")}
    handle = ProviderHandle("ali", InstrumentedProvider(h.provider), poll_interval=POLL)
    obj = make_obj()
    outcome = h.reconciler.reconcile(obj, handle, h.lookup, h.now)
    assert reasons(outcome) == ["TemplateCreated"]
    obj = after(obj, outcome)
    outcome = h.reconciler.reconcile(obj, handle, h.lookup, h.now)
    assert reasons(outcome) == ["RunStarted"]
    assert outcome.status["runs"][0]["id"] == "exec-0001"
    assert outcome.status["templateHash"] == "54150005a2c80a66"  # as before BuildsPipelines

    assert requests("create_pipeline") == before["create_pipeline"] + 1
    assert requests("start_pipeline_execution") == before["start_pipeline_execution"] + 1


def test_paused_makes_no_calls(h: Harness) -> None:
    outcome = h.reconcile(make_obj(annotations={ANNOTATION_PAUSED: "true"}))
    assert h.provider.calls == []
    assert outcome.status["phase"] == "Paused"


def test_an_invalid_schedule_stalls_naming_the_field(h: Harness) -> None:
    outcome = h.reconcile(make_obj(spec(schedule={"cron": "every monday", "timeZone": "UTC"})))
    assert "spec.schedule.cron 'every monday'" in ready(outcome)["message"]
    outcome = h.reconcile(make_obj(spec(schedule={"cron": "0 3 * * 1", "timeZone": "Mars/Base"})))
    assert "spec.schedule.timeZone 'Mars/Base'" in ready(outcome)["message"]
    assert h.provider.calls == []


def test_the_schedule_starts_runs_when_due_in_its_time_zone(h: Harness) -> None:
    # 03:00 in Shanghai is 19:00 UTC the day before.
    obj = make_obj(spec(schedule={"cron": "0 3 * * *", "timeZone": "Asia/Shanghai"}))
    obj, _ = h.settle(obj)
    assert obj.status["nextScheduleTime"] == "2026-03-02T19:00:00Z"
    h.provider.move("exec-0001", "SUCCESS")
    obj, outcome = h.settle(obj)
    assert outcome.requeue_after == 9 * 3600  # sleeps until the schedule is due

    h.now = datetime(2026, 3, 2, 18, 59, 59, tzinfo=UTC)
    outcome = h.reconcile(obj)
    obj = after(obj, outcome)
    assert len(h.provider.calls_to("start_pipeline_execution")) == 1
    assert outcome.requeue_after == 1

    h.now = datetime(2026, 3, 2, 19, 0, 5, tzinfo=UTC)
    obj, outcome = h.settle(obj)
    assert outcome.status["runs"][-1]["trigger"] == "Schedule"
    assert obj.status["nextScheduleTime"] == "2026-03-03T19:00:00Z"
    assert "RunScheduled" in reasons(outcome)


def test_missed_schedule_times_collapse_into_one_run(h: Harness) -> None:
    obj, _ = h.settle(make_obj(spec(schedule={"cron": "*/10 * * * *", "timeZone": "UTC"})))
    h.provider.move("exec-0001", "SUCCESS")
    h.now += timedelta(hours=3, minutes=5)  # 18 fire times passed while the operator was down
    obj, _ = h.settle(obj)
    assert len(h.provider.calls_to("start_pipeline_execution")) == 2
    assert obj.status["lastScheduleTime"] == "2026-03-02T13:00:00Z"
    assert obj.status["nextScheduleTime"] == "2026-03-02T13:10:00Z"


def test_schedule_math_handles_six_fields_and_long_gaps() -> None:
    every_five_seconds = Schedule.parse("* * * * * */5", "UTC")
    assert every_five_seconds.next_after(START) == START + timedelta(seconds=5)
    hourly = Schedule.parse("0 * * * *", "Europe/Berlin")
    due = hourly.due(START, START + timedelta(days=30, minutes=1))
    assert due == START + timedelta(days=30)
    assert hourly.due(START, START + timedelta(minutes=59)) is None
    with pytest.raises(ScheduleError):
        Schedule.parse("0 3 * *", "UTC")


def test_deletion_cancels_the_running_execution_then_deletes_the_template(h: Harness) -> None:
    obj, _ = h.settle(make_obj())
    template = obj.status["externalID"]
    h.provider.move("exec-0001", "BUILDING")

    outcome = h.finalize(obj)
    obj = after(obj, outcome)
    assert h.provider.calls_to("cancel_pipeline_execution") == [("exec-0001",)]
    assert not outcome.done
    assert template in h.provider.templates

    outcome = h.finalize(obj)  # CANCELLING: wait
    obj = after(obj, outcome)
    assert not outcome.done
    assert h.provider.calls_to("delete_pipeline") == []

    h.provider.move("exec-0001", "CANCELLED")
    outcome = h.finalize(obj)
    assert outcome.done
    assert h.provider.calls_to("delete_pipeline") == [(template,)]
    assert h.provider.templates == {}
    assert outcome.status["runs"][0]["phase"] == "CANCELLED"


def test_deletion_of_a_finished_run_deletes_the_template_at_once(h: Harness) -> None:
    obj, _ = h.settle(make_obj())
    h.provider.move("exec-0001", "SUCCESS")
    obj, _ = h.settle(obj)
    outcome = h.finalize(obj)
    assert outcome.done
    assert h.provider.calls_to("cancel_pipeline_execution") == []
    assert h.provider.templates == {}


def test_orphan_leaves_the_template(h: Harness) -> None:
    obj, _ = h.settle(make_obj())
    obj = replace(obj, deletion_policy=DeletionPolicy.ORPHAN)
    outcome = h.finalize(obj)
    assert outcome.done
    assert "delete_pipeline" not in h.provider.names()
    assert "cancel_pipeline_execution" not in h.provider.names()
    assert reasons(outcome) == ["Orphaned"]


def _succeed(h: Harness, obj: PipelineObject, image_id: str) -> tuple[PipelineObject, Outcome]:
    """The running execution succeeds with `image_id`; one reconcile records it."""
    run_id = obj.status["runs"][-1]["id"]
    h.provider.move(run_id, "SUCCESS", image_id=image_id)
    outcome = h.reconcile(obj)
    return after(obj, outcome), outcome


def _run_again(h: Harness, obj: PipelineObject, value: str) -> PipelineObject:
    annotations = {**obj.annotations, ANNOTATION_RUN: value}
    obj, _ = h.settle(replace(obj, annotations=annotations))
    return obj


def test_output_images_adopt_each_run_image_and_retention_retires_the_oldest(h: Harness) -> None:
    outputs = {"enabled": True, "retention": 2}
    obj, _ = h.settle(make_obj(spec(outputImages=outputs)))

    obj, outcome = _succeed(h, obj, "m-1")
    ((child,),) = [outcome.children]
    assert child.plural == "images" and child.name == "nightly-1"
    body = child.body
    assert body is not None
    assert body["metadata"]["annotations"] == {"imageops.io/external-id": "m-1"}
    assert body["metadata"]["labels"] == {
        "imageops.io/pipeline": "nightly",
        "imageops.io/pipeline-run": "1",
    }
    (owner,) = body["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "ImagePipeline",
        "nightly",
        UID,
        True,
    )
    assert body["spec"]["providerRef"] == {"name": "ali"}
    assert body["spec"]["source"] == {
        "pipeline": {"pipelineRef": {"name": "nightly"}, "runID": "exec-0001"}
    }
    assert body["spec"]["deletionPolicy"] == "Delete"
    # What the pipeline writes is an Image the API accepts (the CRD is generated from this).
    ImageSpec.model_validate(body["spec"])
    assert obj.status["outputImages"] == [
        {"name": "nightly-1", "imageID": "m-1", "runID": "exec-0001"}
    ]
    assert obj.status["runs"][-1]["outputImage"] == "nightly-1"
    assert "OutputImageCreated" in reasons(outcome)

    # Settled: no second Image for the same run.
    assert h.reconcile(obj).children == []

    obj = _run_again(h, obj, "2")
    obj, outcome = _succeed(h, obj, "m-2")
    assert [(c.name, c.body is not None) for c in outcome.children] == [("nightly-2", True)]

    obj = _run_again(h, obj, "3")
    obj, outcome = _succeed(h, obj, "m-3")
    # The third Image is made and the first retired, in one step.
    assert [(c.name, c.body is not None) for c in outcome.children] == [
        ("nightly-3", True),
        ("nightly-1", False),
    ]
    assert [e["name"] for e in obj.status["outputImages"]] == ["nightly-2", "nightly-3"]
    retired = [e for e in outcome.events if e.reason == "OutputImageRetired"]
    assert len(retired) == 1 and "'m-1'" in retired[0].message


def test_output_images_skip_failed_runs_and_follow_a_lower_retention(h: Harness) -> None:
    obj, _ = h.settle(make_obj(spec(outputImages={"enabled": True, "retention": 3})))
    obj, _ = _succeed(h, obj, "m-1")
    obj = _run_again(h, obj, "2")
    h.provider.move(obj.status["runs"][-1]["id"], "FAILED", error_code="BuildFailed")
    outcome = h.reconcile(obj)
    obj = after(obj, outcome)
    assert outcome.children == []  # a failed run built nothing to keep
    obj = _run_again(h, obj, "3")
    obj, outcome = _succeed(h, obj, "m-3")
    assert [c.name for c in outcome.children] == ["nightly-3"]  # named by run number

    lowered = replace(obj, spec=spec(outputImages={"enabled": True, "retention": 1}))
    outcome = h.reconcile(lowered)
    assert [(c.name, c.body) for c in outcome.children] == [("nightly-1", None)]
    assert [e["name"] for e in outcome.status["outputImages"]] == ["nightly-3"]
    # Turned off: nothing is made or retired any more, the kept ones stay.
    off = replace(after(lowered, outcome), spec=spec(outputImages={"enabled": False}))
    assert h.reconcile(off).children == []


def test_output_image_names_fit_kubernetes_and_orphan_policy_is_passed_on() -> None:
    long_name = "p" * 253
    obj = make_obj(name=long_name)
    run = PipelineRun(id="exec-0042", sequence=42, phase="SUCCESS")
    name = output_image_name(long_name, run)
    assert len(name) <= 253 and name.endswith("-42")
    unnumbered = PipelineRun(id="Exec_0007", phase="SUCCESS")
    assert output_image_name("nightly", unnumbered) == "nightly-exec-0007"
    s = spec(outputImages={"enabled": True, "deletionPolicy": "Orphan"})
    body = output_image(obj, s, run, "m-9")
    assert body["spec"]["deletionPolicy"] == "Orphan"
    assert "imageops.io/pipeline" not in body["metadata"]["labels"]  # over 63 characters
    ImageSpec.model_validate(body["spec"])


def test_a_schedule_that_never_fires_stalls_naming_the_field(h: Harness) -> None:
    # Valid cron syntax, but February has no 31st: croniter raised on every reconcile and the
    # pipeline got no status at all (issue 10).
    outcome = h.reconcile(make_obj(spec(schedule={"cron": "0 0 31 2 *", "timeZone": "UTC"})))
    stalled = condition(outcome.status, "Stalled")
    assert stalled is not None and stalled["reason"] == "InvalidSpec"
    assert "spec.schedule.cron '0 0 31 2 *' never fires" in stalled["message"]
    assert h.provider.calls == []


def test_a_provider_that_cannot_be_used_is_waited_for_naming_spec_provider_ref(h: Harness) -> None:
    missing = ProviderHandle("ali", problem="ImageProvider 'ali' does not exist in namespace 'ns'")

    outcome = h.reconciler.reconcile(make_obj(), missing, h.lookup, h.now)

    reconciling = condition(outcome.status, "Reconciling")
    assert reconciling is not None and reconciling["reason"] == "WaitingForProvider"
    assert reconciling["message"].startswith("spec.providerRef: ImageProvider 'ali' does not")

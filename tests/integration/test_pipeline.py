"""ImagePipeline end to end: real kube-apiserver, the real operator process and the emulator's
ECS vendor (image templates and executions through the official SDK)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kubernetes import client

from tests.integration.conftest import Emulator, Kube, wait_for

pytestmark = pytest.mark.integration

REGION = "cn-hangzhou"
PUBLIC_IMAGE = "aliyun_3_x64_20G_alibase_20240819.vhd"
RUN = "imageops.io/run"


def _state(emulator: Emulator) -> dict[str, Any]:
    """The ECS vendor's objects as the API shows them, from the admin dump (no faults apply)."""
    url = emulator.thread.url("aliyun") + "/_emulator/state"
    return dict(httpx.get(url, timeout=30).raise_for_status().json())


def _templates(emulator: Emulator) -> dict[str, dict[str, Any]]:
    return {p["ImagePipelineId"]: p for p in _state(emulator)["pipelines"]}


def _executions(emulator: Emulator) -> dict[str, dict[str, Any]]:
    return {e["ExecutionId"]: e for e in _state(emulator)["executions"]}


@pytest.fixture
def aliyun(kube: Kube, emulator: Emulator) -> Kube:
    """A Secret with the emulator's keys and a Ready ImageProvider `aliyun`."""
    add_aliyun_provider(kube, emulator)
    return kube


def add_aliyun_provider(kube: Kube, emulator: Emulator) -> None:
    """A Secret `aliyun-keys` with the emulator's keys and a Ready ImageProvider `aliyun`."""
    settings = emulator.thread.emulator.config.aliyun
    key_id, key_secret = next(iter(settings.access_keys.items()))
    kube.core.create_namespaced_secret(
        kube.namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="aliyun-keys"),
            string_data={"accessKeyId": key_id, "accessKeySecret": key_secret},
        ),
    )
    kube.create(
        "imageproviders",
        {
            "kind": "ImageProvider",
            "metadata": {"name": "aliyun"},
            "spec": {
                "type": "aliyun",
                "endpoint": emulator.thread.url("aliyun"),
                "region": REGION,
                "credentialsSecretRef": {"name": "aliyun-keys"},
                "pollIntervalSeconds": 1,
            },
        },
    )
    kube.wait_ready("imageproviders", "aliyun", timeout=60)


@pytest.fixture
def ecs_settings(emulator: Emulator) -> Iterator[Any]:
    """The emulator's live ECS settings (it runs in this process); changes are undone after the
    test. Executions freeze their timings and failures when they start."""
    settings = emulator.thread.emulator.config.aliyun
    saved = settings.model_dump()
    yield settings
    for key in ("fail_distribution_regions", "building_seconds"):
        setattr(settings, key, saved[key])


def _pipeline(name: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "ImagePipeline",
        "metadata": {"name": name},
        "spec": {
            "providerRef": {"name": "aliyun"},
            "baseImage": {"id": PUBLIC_IMAGE},
            "buildContent": "RUN echo built by image-operator",
            "toRegionIDs": ["cn-beijing"],
            "imageOptions": {"imageName": f"it-{uuid.uuid4().hex[:6]}"},
        },
    }
    body["spec"].update(spec)
    body["spec"] = {key: value for key, value in body["spec"].items() if value is not None}
    return body


def _runs(kube: Kube, name: str) -> list[dict[str, Any]]:
    obj = kube.get("imagepipelines", name) or {}
    return list((obj.get("status") or {}).get("runs") or [])


def _finished_run(kube: Kube, name: str, index: int, timeout: float = 90) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        runs = _runs(kube, name)
        if len(runs) > index and runs[index].get("finishedAt"):
            return runs[index]
        return None

    return wait_for(finished, timeout=timeout, what=f"run {index} of {name} to finish")


def test_a_pipeline_runs_on_creation_and_on_the_run_annotation(
    aliyun: Kube, emulator: Emulator
) -> None:
    kube = aliyun
    kube.create("imagepipelines", _pipeline("golden", addAccounts=[1122334455]))

    run = _finished_run(kube, "golden", 0)

    assert (run["phase"], run["trigger"]) == ("SUCCESS", "Created")
    obj = kube.wait_ready("imagepipelines", "golden", timeout=30)
    status = obj["status"]
    template_id = status["externalID"]
    template = _templates(emulator)[template_id]
    assert template["BaseImage"] == PUBLIC_IMAGE
    assert template["Name"] == "golden"
    execution = _executions(emulator)[run["id"]]
    assert execution["Status"] == "SUCCESS"
    assert status["lastRunID"] == run["id"]
    by_region = {t.get("regionID"): t for t in run["targets"] if t.get("regionID")}
    assert set(by_region) == {REGION, "cn-beijing"}
    assert all(
        t["status"] == "Succeeded" and t["imageID"].startswith("m-") for t in by_region.values()
    )
    assert {"status": "Succeeded", "accountID": 1122334455} in run["targets"]
    images = {i["ImageId"]: i for i in _state(emulator)["images"]}
    assert images[by_region["cn-beijing"]["imageID"]]["RegionId"] == "cn-beijing"
    kube.wait_event("golden", "TemplateCreated", "RunStarted", "RunSucceeded")

    kube.patch("imagepipelines", "golden", {"metadata": {"annotations": {RUN: "again"}}})

    second = _finished_run(kube, "golden", 1)
    assert (second["phase"], second["trigger"]) == ("SUCCESS", "Manual")
    assert second["id"] != run["id"]
    assert (kube.get("imagepipelines", "golden") or {})["status"]["externalID"] == template_id

    kube.delete("imagepipelines", "golden")
    wait_for(
        lambda: kube.get("imagepipelines", "golden") is None,
        timeout=60,
        what="the ImagePipeline to be gone (finalizer released)",
    )
    assert template_id not in _templates(emulator)


def test_a_partial_success_names_the_failed_region(
    aliyun: Kube, emulator: Emulator, ecs_settings: Any
) -> None:
    kube = aliyun
    ecs_settings.fail_distribution_regions = ["cn-shenzhen"]
    kube.create("imagepipelines", _pipeline("split", toRegionIDs=["cn-beijing", "cn-shenzhen"]))

    run = _finished_run(kube, "split", 0)

    assert run["phase"] == "PARTITION_SUCCESS"
    by_region = {t.get("regionID"): t for t in run["targets"]}
    assert by_region["cn-beijing"]["status"] == "Succeeded"
    assert by_region["cn-shenzhen"]["status"] == "Failed"
    assert "imageID" not in by_region["cn-shenzhen"]
    assert "cn-shenzhen" in by_region["cn-shenzhen"]["message"]
    assert "failed targets: region cn-shenzhen" in run["reason"]

    def partial() -> dict[str, Any] | None:
        cond = kube.condition("imagepipelines", "split", "Ready")
        return cond if cond and cond["reason"] == "PartiallySucceeded" else None

    cond = wait_for(partial, timeout=30, what="Ready False/PartiallySucceeded")
    assert cond["status"] == "False"
    assert "cn-shenzhen" in cond["message"]


def test_a_seconds_schedule_starts_runs(aliyun: Kube) -> None:
    kube = aliyun
    # A sixth cron field counts seconds: every 10 s keeps the test short.
    kube.create(
        "imagepipelines",
        _pipeline("cron", toRegionIDs=None, schedule={"cron": "* * * * * */10", "timeZone": "UTC"}),
    )

    def scheduled() -> dict[str, Any] | None:
        return next((r for r in _runs(kube, "cron") if r.get("trigger") == "Schedule"), None)

    run = wait_for(scheduled, timeout=90, what="a run started by spec.schedule")
    assert run["id"].startswith("exec-")
    status = (kube.get("imagepipelines", "cron") or {})["status"]
    assert status["nextScheduleTime"] > status["lastScheduleTime"]
    kube.delete("imagepipelines", "cron")
    wait_for(lambda: kube.get("imagepipelines", "cron") is None, timeout=60, what="deleted")


def test_deleting_a_pipeline_cancels_its_running_execution(
    aliyun: Kube, emulator: Emulator, ecs_settings: Any
) -> None:
    kube = aliyun
    ecs_settings.building_seconds = 300.0  # the run is still building when we delete
    kube.create("imagepipelines", _pipeline("slow"))

    def running() -> dict[str, Any] | None:
        runs = _runs(kube, "slow")
        return runs[0] if runs and runs[0]["phase"] in ("PREPARING", "BUILDING") else None

    run = wait_for(running, timeout=60, what="the first run to be in flight")
    template_id = (kube.get("imagepipelines", "slow") or {})["status"]["externalID"]

    kube.delete("imagepipelines", "slow")

    wait_for(
        lambda: kube.get("imagepipelines", "slow") is None,
        timeout=60,
        what="the ImagePipeline to be gone after cancelling its run",
    )
    assert _executions(emulator)[run["id"]]["Status"] == "CANCELLED"
    assert template_id not in _templates(emulator)
    kube.wait_event("slow", "Cancelling")


def test_a_spec_change_replaces_the_immutable_template(aliyun: Kube, emulator: Emulator) -> None:
    kube = aliyun
    kube.create("imagepipelines", _pipeline("evolving", toRegionIDs=None))
    first = _finished_run(kube, "evolving", 0)
    old_template = (kube.get("imagepipelines", "evolving") or {})["status"]["externalID"]

    kube.patch("imagepipelines", "evolving", {"spec": {"buildContent": "RUN echo second"}})

    second = _finished_run(kube, "evolving", 1)
    assert (first["trigger"], second["trigger"]) == ("Created", "SpecChanged")
    assert second["phase"] == "SUCCESS"
    status = (kube.get("imagepipelines", "evolving") or {})["status"]
    assert status["externalID"] != old_template
    assert status["templateGeneration"] == 2
    templates = _templates(emulator)
    assert old_template not in templates
    assert templates[status["externalID"]]["BuildContent"] == "RUN echo second"


def test_output_images_are_made_per_run_and_retention_deletes_the_oldest(
    aliyun: Kube, emulator: Emulator
) -> None:
    kube = aliyun
    kube.create(
        "imagepipelines",
        _pipeline("golden-out", toRegionIDs=None, outputImages={"enabled": True, "retention": 1}),
    )
    first = _finished_run(kube, "golden-out", 0)
    assert first["phase"] == "SUCCESS" and first["imageID"].startswith("m-")

    made = kube.wait_ready("images", "golden-out-1", timeout=60)

    pipeline = kube.get("imagepipelines", "golden-out") or {}
    meta = made["metadata"]
    assert meta["annotations"]["imageops.io/external-id"] == first["imageID"]
    assert meta["labels"] == {"imageops.io/pipeline": "golden-out", "imageops.io/pipeline-run": "1"}
    (owner,) = meta["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == (
        "ImagePipeline",
        pipeline["metadata"]["uid"],
        True,
    )
    assert made["spec"]["source"] == {
        "pipeline": {"pipelineRef": {"name": "golden-out"}, "runID": first["id"]}
    }
    assert made["status"]["externalID"] == first["imageID"]
    kube.wait_event("golden-out-1", "Adopted")
    images = {i["ImageId"]: i for i in _state(emulator)["images"]}
    assert images[first["imageID"]]["RegionId"] == REGION

    kube.patch("imagepipelines", "golden-out", {"metadata": {"annotations": {RUN: "second"}}})
    second = _finished_run(kube, "golden-out", 1)
    kube.wait_ready("images", "golden-out-2", timeout=60)

    # retention 1: the first run's Image is deleted, and with it (deletionPolicy Delete) its
    # cloud image; the second run's image stays.
    wait_for(
        lambda: kube.get("images", "golden-out-1") is None,
        timeout=60,
        what="the first run's Image to be retired",
    )
    wait_for(
        lambda: first["imageID"] not in {i["ImageId"] for i in _state(emulator)["images"]},
        timeout=60,
        what="the first run's cloud image to be deleted",
    )
    status = (kube.get("imagepipelines", "golden-out") or {})["status"]
    assert status["outputImages"] == [
        {"name": "golden-out-2", "imageID": second["imageID"], "runID": second["id"]}
    ]
    kube.wait_event("golden-out", "OutputImageCreated", "OutputImageRetired")

    # No garbage collector runs beside this bare kube-apiserver: what kube-controller-manager
    # would do for the ownerReference when the pipeline goes, done by hand.
    kube.delete("images", "golden-out-2")
    kube.delete("imagepipelines", "golden-out")
    wait_for(
        lambda: (
            kube.get("imagepipelines", "golden-out") is None
            and kube.get("images", "golden-out-2") is None
        ),
        timeout=60,
        what="the pipeline and its Image to be gone",
    )
    assert second["imageID"] not in {i["ImageId"] for i in _state(emulator)["images"]}

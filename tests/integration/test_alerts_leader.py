"""`imageops_leader` and `imageops_objects` on two replicas run as the chart runs them (the
`replicas` fixture of test_ha.py): exactly one reports itself active and counts the objects;
the standby counts none; after a kill -9 of the active one, the standby becomes active and
counts them all again (kopf lists them anew). What the ImageOperatorNoActiveReplica and
SeveralActiveReplicas alerts read."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import Kube, OperatorProcess, image_manifest, wait_for
from tests.integration.test_ha import replicas  # noqa: F401  (the fixture)

pytestmark = pytest.mark.integration


def _gauges(process: OperatorProcess) -> tuple[float | None, dict[tuple[str, str], float]]:
    """imageops_leader, and imageops_objects by (kind, condition), of one process."""
    try:
        text = httpx.get(process.metrics_url, timeout=5).text
    except httpx.HTTPError:
        return None, {}
    leader = None
    objects: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "imageops_leader":
                leader = sample.value
            elif sample.name == "imageops_objects":
                key = (sample.labels["kind"], sample.labels["condition"])
                objects[key] = objects.get(key, 0) + sample.value
    return leader, objects


def test_only_the_active_replica_leads_and_counts_objects(
    replicas: tuple[Kube, list[OperatorProcess]],  # noqa: F811
) -> None:
    kube, processes = replicas
    kube.wait_ready("imageproviders", "argon", timeout=90)
    kube.create("images", image_manifest("led"))
    kube.wait_ready("images", "led", timeout=90)
    ready = {("ImageProvider", "ready"): 1.0, ("Image", "ready"): 1.0}

    def one_leader() -> tuple[int, int] | None:
        gauges = [_gauges(p) for p in processes]
        leaders = [i for i, (leader, _) in enumerate(gauges) if leader == 1]
        if len(leaders) != 1 or gauges[1 - leaders[0]][0] != 0:
            return None
        active = leaders[0]
        if gauges[active][1] != ready or gauges[1 - active][1]:
            return None
        return active, 1 - active

    active, standby = wait_for(one_leader, timeout=30, what="one leader that counts the objects")

    processes[active].kill()
    wait_for(
        lambda: _gauges(processes[standby]) == (1.0, ready),
        timeout=60,
        what="the standby leading and counting the objects",
    )

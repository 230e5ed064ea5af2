"""Two replicas as the chart runs them: exactly one works, the other stands by and takes over
within 15 s of a kill -9, and no Image gets a second cloud image.

The processes run with the container's args and `IMAGE_OPERATOR_*` environment taken from the
rendered chart (its defaults: two replicas, peering on), changed only where two processes on
one host must differ from two pods (the metrics and health ports) and to authenticate as the
test's admin. Which replica works is read from each process's own metrics: the standby has
reconciled nothing once the two have seen each other (see the fixture for the start-up window).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from tests.integration.conftest import (
    Emulator,
    Kube,
    OperatorProcess,
    free_port,
    image_manifest,
    kubectl_apply,
    render_chart,
    wait_for,
)
from tests.loopback import LOOPBACK_ENV

pytestmark = pytest.mark.integration

TAKEOVER_LIMIT = 15.0  # seconds from the kill of the active replica to the standby's first step
_RECONCILES = re.compile(r"^imageops_reconciles_total\{[^}]*\} ([0-9.e+]+)$", re.MULTILINE)


def reconciles(process: OperatorProcess) -> float:
    """How many reconcile steps this process has run (every kind), from its /metrics."""
    try:
        text = httpx.get(process.metrics_url, timeout=5).text
    except httpx.HTTPError:
        return 0.0
    return sum(float(value) for value in _RECONCILES.findall(text))


def chart_container(helm: str, namespace: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The chart's operator container (defaults, watching `namespace`) and the other objects."""
    docs = render_chart(helm, f"watchNamespaces={{{namespace}}}")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 2, "the chart's default is two replicas"
    return deployment["spec"]["template"]["spec"]["containers"][0], docs


@pytest.fixture
def replicas(
    helm: str, control_plane: Any, emulator: Emulator, tmp_path: Path
) -> Iterator[tuple[Kube, list[OperatorProcess]]]:
    api = control_plane.api_client()
    namespace = f"ha-{uuid.uuid4().hex[:8]}"  # not it-*: the session's own operator stays out
    client.CoreV1Api(api).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
    )
    container, docs = chart_container(helm, namespace)
    peering = [d for d in docs if d["kind"] == "KopfPeering"]
    kubectl_apply(control_plane, peering)
    processes = []
    for index in range(2):
        env = control_plane.env()
        env.update({e["name"]: str(e["value"]) for e in container["env"]})
        metrics_port = free_port()
        env.update(
            {
                "IMAGE_OPERATOR_METRICS_PORT": str(metrics_port),  # two pods, one host
                "IMAGE_OPERATOR_HEALTH_PORT": "0",
                "PYTHONUNBUFFERED": "1",
                **LOOPBACK_ENV,  # the emulator here; a cloud API there
            }
        )
        process = OperatorProcess(env, tmp_path / f"replica-{index}.log")
        process.args = list(container["args"])
        process.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        processes.append(process)
    for process in processes:
        process.start()
    # Two replicas started in the same second may each read the peering object before the
    # other has written its record, and both handle events until they see each other (kopf
    # peering; creates stay idempotent). Steady state is what this test judges: objects are
    # made once both records are in the peering object and the watchers have had a moment to
    # act on them (a watch event, milliseconds; 2 s of margin).
    peers = client.CustomObjectsApi(api)

    def both_records() -> bool:
        body = peers.get_namespaced_custom_object(
            "kopf.dev", "v1", namespace, "kopfpeerings", peering[0]["metadata"]["name"]
        )
        assert isinstance(body, dict)
        return len(body.get("status") or {}) >= 2

    wait_for(both_records, timeout=60, what="both replicas' peering records")
    time.sleep(2)
    kube = Kube(api, namespace)
    kube.add_argon_provider(emulator)
    try:
        yield kube, processes
    finally:
        for process in processes:
            process.stop()
        for process in processes:
            print(process.log_tail(30))
        api.close()


def test_one_replica_works_the_other_takes_over_after_a_kill(
    replicas: tuple[Kube, list[OperatorProcess]], emulator: Emulator
) -> None:
    kube, processes = replicas
    kube.wait_ready("imageproviders", "argon", timeout=90)
    first = [f"ha-{n}" for n in range(4)]
    for name in first:
        kube.create("images", image_manifest(name))
    for name in first:
        kube.wait_ready("images", name, timeout=90)

    counts = [reconciles(p) for p in processes]
    active, standby = (0, 1) if counts[0] > counts[1] else (1, 0)
    assert counts[active] > 0 and counts[standby] == 0, f"reconciles per replica: {counts}"

    processes[active].kill()
    killed_at = time.monotonic()
    second = [f"ha-after-{n}" for n in range(3)]
    for name in second:
        kube.create("images", image_manifest(name))
    wait_for(
        lambda: reconciles(processes[standby]) > 0 or None,
        timeout=TAKEOVER_LIMIT + 30,
        what="the standby's first reconcile",
    )
    takeover = time.monotonic() - killed_at
    for name in second:
        kube.wait_ready("images", name, timeout=90)

    assert takeover <= TAKEOVER_LIMIT, f"the standby took over after {takeover:.1f}s"
    cloud_names = list(emulator.argon_images())
    for name in first + second:
        made = [n for n in cloud_names if n.startswith(f"{name}-")]
        assert len(made) == 1, f"Image {name} has cloud images {made}"
    print(f"takeover after kill -9: {takeover:.1f}s")

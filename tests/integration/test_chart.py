"""The Helm chart: lint, render, server-side dry run, and RBAC that is enough and no more.

Lint, render and dry run run with Helm 3 (`helm`) and Helm 4 (`helm4`): the chart works on both.

The RBAC test runs a second operator process authenticated as the chart's ServiceAccount (a
token from the TokenRequest API) in namespaced mode, with kopf peering on, and takes an Image
to Ready and back through deletion with nothing but the chart's Role.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.integration.conftest import (
    CHART,
    KUBE_VERSION,
    RELEASE,
    RELEASE_NS,
    Emulator,
    Kube,
    OperatorProcess,
    image_manifest,
    kubectl_apply,
    render_chart,
    run_command,
    wait_for,
)
from tests.loopback import LOOPBACK_ENV

pytestmark = pytest.mark.integration

SA = f"{RELEASE}-image-operator"


@pytest.fixture(params=["helm", "helm4"])
def any_helm(request: pytest.FixtureRequest) -> str:
    """Each Helm major in turn: the `helm` (3) and `helm4` fixtures."""
    return str(request.getfixturevalue(request.param))


@pytest.mark.parametrize("sets", [(), ("watchNamespaces={a,b}", "replicaCount=1")])
def test_helm_lint(any_helm: str, sets: tuple[str, ...]) -> None:
    args = [any_helm, "lint", str(CHART), "--strict", "--kube-version", KUBE_VERSION]
    for item in sets:
        args += ["--set", item]
    assert "0 chart(s) failed" in run_command(*args)


def test_rendered_chart_is_hardened(any_helm: str) -> None:
    docs = render_chart(any_helm, "metrics.serviceMonitor.enabled=true")
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
    assert kinds == [
        "ClusterKopfPeering/image-operator",
        f"ClusterRole/{SA}",
        f"ClusterRole/{SA}-discovery",
        f"ClusterRoleBinding/{SA}",
        f"ClusterRoleBinding/{SA}-discovery",
        f"Deployment/{SA}",
        f"PodDisruptionBudget/{SA}",
        f"Service/{SA}-metrics",
        f"ServiceAccount/{SA}",
        f"ServiceMonitor/{SA}",
    ]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert "--standalone" not in container["args"]  # 2 replicas: peering elects one
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["IMAGE_OPERATOR_LOG_FORMAT"] == "text"
    assert env["IMAGE_OPERATOR_RETRY_BACKOFF_BASE_SECONDS"] == "1"
    cluster_role = next(
        d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == SA
    )
    for rule in cluster_role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
        assert all("/" not in group for group in rule["apiGroups"]), rule  # group names only
    secrets = next(r for r in cluster_role["rules"] if r["resources"] == ["secrets"])
    assert secrets["verbs"] == ["get"]


def test_sharded_chart_runs_one_deployment_and_peering_per_shard(any_helm: str) -> None:
    docs = render_chart(any_helm, "sharding.shards=3")
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    peerings = sorted(d["metadata"]["name"] for d in docs if d["kind"] == "ClusterKopfPeering")

    assert [d["metadata"]["name"] for d in deployments] == [f"{SA}-shard-{i}" for i in range(3)]
    assert peerings == [f"image-operator-shard-{i}" for i in range(3)]
    selectors = []
    for index, deployment in enumerate(deployments):
        env = {
            e["name"]: e["value"]
            for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert (env["IMAGE_OPERATOR_SHARDS"], env["IMAGE_OPERATOR_SHARD_INDEX"]) == (
            "3",
            str(index),
        )
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items()
        selectors.append(tuple(sorted(selector.items())))
    assert len(set(selectors)) == 3  # no Deployment adopts another shard's pods
    budgets = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    assert [tuple(sorted(b["spec"]["selector"]["matchLabels"].items())) for b in budgets] == (
        selectors
    )


def test_rendered_chart_passes_a_server_side_dryrun_command(
    any_helm: str, control_plane: Any
) -> None:
    api = control_plane.api_client()
    _ensure_namespace(api, RELEASE_NS)
    out = kubectl_apply(control_plane, render_chart(any_helm), "--dry-run=server")

    assert "deployment.apps/rel-image-operator serverside-applied (server dry run)" in out
    assert "clusterkopfpeering.kopf.dev/image-operator serverside-applied (server dry run)" in out


def _ensure_namespace(api: Any, name: str) -> None:
    try:
        client.CoreV1Api(api).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
        )
    except ApiException as exc:
        if exc.status != 409:
            raise


@pytest.fixture
def chart_operator(
    helm: str, control_plane: Any, emulator: Emulator, tmp_path: Path
) -> Iterator[tuple[Kube, Any]]:
    """The chart's RBAC applied for one namespace, and an operator running as its SA there."""
    api = control_plane.api_client()
    namespace = f"rbac-{uuid.uuid4().hex[:6]}"
    for name in (RELEASE_NS, namespace):
        _ensure_namespace(api, name)
    docs = render_chart(helm, f"watchNamespaces={{{namespace}}}", "replicaCount=1")
    wanted = {
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "KopfPeering",
    }
    kubectl_apply(control_plane, [d for d in docs if d["kind"] in wanted])
    status = (
        client.CoreV1Api(api)
        .create_namespaced_service_account_token(
            SA,
            RELEASE_NS,
            client.AuthenticationV1TokenRequest(
                spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
            ),
        )
        .status
    )
    assert status is not None
    token = status.token
    kubeconfig = control_plane.cluster.write_kubeconfig(tmp_path / "sa.kubeconfig", token=token)
    sa_api = client.ApiClient(_configuration(kubeconfig))
    env = control_plane.env()
    env.update(
        {
            "KUBECONFIG": str(kubeconfig),
            "IMAGE_OPERATOR_NAMESPACES": namespace,
            "IMAGE_OPERATOR_PEERING_NAME": "image-operator",
            "IMAGE_OPERATOR_METRICS_PORT": "0",
            "IMAGE_OPERATOR_HEALTH_PORT": "0",
            "IMAGE_OPERATOR_PROVIDER_WAIT_SECONDS": "1",
            "IMAGE_OPERATOR_SECRET_CACHE_SECONDS": "0",
            **LOOPBACK_ENV,  # the emulator's endpoint
        }
    )
    process = OperatorProcess(env, tmp_path / "operator-as-sa.log")
    process.args = ["run"]  # no --standalone: peering through the chart's KopfPeering
    process.start()
    kube = Kube(api, namespace)
    kube.add_argon_provider(emulator)
    try:
        yield kube, sa_api
    finally:
        process.stop()
        print(process.log_tail(40))


def _configuration(kubeconfig: Path) -> client.Configuration:
    from kubernetes import config as kube_config

    configuration = client.Configuration()
    kube_config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig), client_configuration=configuration
    )
    return configuration


def test_operator_as_the_chart_service_account_takes_an_image_to_ready(
    chart_operator: tuple[Kube, Any], emulator: Emulator
) -> None:
    kube, _ = chart_operator

    kube.wait_ready("imageproviders", "argon", timeout=90)
    kube.create("images", image_manifest("least-privilege"))
    external_id = kube.wait_ready("images", "least-privilege", timeout=90)["status"]["externalID"]
    assert external_id in emulator.argon_images()

    kube.delete("images", "least-privilege")
    wait_for(lambda: kube.get("images", "least-privilege") is None, timeout=90, what="deletion")
    assert external_id not in emulator.argon_images()


def test_the_service_account_gets_nothing_beyond_the_chart(
    chart_operator: tuple[Kube, Any],
) -> None:
    kube, sa_api = chart_operator
    core = client.CoreV1Api(sa_api)

    core.read_namespaced_secret("argon-credentials", kube.namespace)  # granted: get
    attempts: list[Callable[[], object]] = [
        lambda: core.list_namespaced_secret(kube.namespace),  # list is not granted
        lambda: core.read_namespaced_secret("anything", "default"),  # other namespace
        lambda: core.list_namespaced_pod(kube.namespace),
        # Images may be created (a pipeline's outputImages); nothing else of ours may.
        lambda: client.CustomObjectsApi(sa_api).create_namespaced_custom_object(
            "imageops.io", "v1alpha1", kube.namespace, "imageproviders", {"kind": "ImageProvider"}
        ),
        lambda: client.CustomObjectsApi(sa_api).delete_namespaced_custom_object(
            "imageops.io", "v1alpha1", kube.namespace, "imageproviders", "argon"
        ),
    ]
    for attempt in attempts:
        with pytest.raises(ApiException) as denied:
            attempt()
        assert denied.value.status == 403

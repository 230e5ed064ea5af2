"""The local control plane (etcd + kube-apiserver built from Go modules) really works."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from image_operator_dev.localcluster import (
    LocalCluster,
    LocalClusterError,
    apply_manifests,
    resolve_binaries,
)

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30  # seconds, per API call


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie is dead (its parent just did not reap it)


def _processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains ``text`` (orphans included)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline and _alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def _eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (AssertionError, ApiException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="module")
def bin_dir() -> Path:
    return resolve_binaries(REPO_ROOT)


def test_version_is_the_one_we_built(control_plane: Any) -> None:
    version = client.VersionApi(control_plane.api_client()).get_code(_request_timeout=TIMEOUT)
    if os.environ.get("KUBEBUILDER_ASSETS"):
        assert version.major == "1" and int(version.minor.rstrip("+")) >= 30, version
    else:
        assert version.git_version == "v" + os.environ.get("K8S_VERSION", "1.36.3")


def test_configmap_create_get_delete(control_plane: Any) -> None:
    core = client.CoreV1Api(control_plane.api_client())
    name = f"cm-{uuid.uuid4().hex[:8]}"
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"image": "ubuntu"})
    core.create_namespaced_config_map("default", body, _request_timeout=TIMEOUT)
    got = core.read_namespaced_config_map(name, "default", _request_timeout=TIMEOUT)
    assert got.data == {"image": "ubuntu"}
    assert got.metadata is not None and got.metadata.uid
    core.delete_namespaced_config_map(name, "default", _request_timeout=TIMEOUT)
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map(name, "default", _request_timeout=TIMEOUT)
    assert err.value.status == 404


CEL_CRD = textwrap.dedent(
    """\
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata:
      name: widgets.tests.imageops.io
    spec:
      group: tests.imageops.io
      scope: Namespaced
      names: {plural: widgets, singular: widget, kind: Widget}
      versions:
        - name: v1
          served: true
          storage: true
          schema:
            openAPIV3Schema:
              type: object
              properties:
                spec:
                  type: object
                  required: [minReplicas, maxReplicas]
                  properties:
                    minReplicas: {type: integer}
                    maxReplicas: {type: integer}
                  x-kubernetes-validations:
                    - rule: self.minReplicas <= self.maxReplicas
                      message: minReplicas must not exceed maxReplicas
                      fieldPath: .minReplicas
    ---
    apiVersion: tests.imageops.io/v1
    kind: Widget
    metadata: {name: applied-with-its-crd, namespace: default}
    spec: {minReplicas: 1, maxReplicas: 1}
    """
)


def test_crd_cel_rule_rejects_bad_object(control_plane: Any, tmp_path: Path) -> None:
    manifest = tmp_path / "widgets.yaml"
    manifest.write_text(CEL_CRD)
    api = control_plane.api_client()
    ext = client.ApiextensionsV1Api(api)
    custom = client.CustomObjectsApi(api)
    try:
        # The CRD and an object of it in one file: the CRD is Established before the object.
        apply_manifests(control_plane.kubeconfig_path, [tmp_path])
        applied: Any = custom.get_namespaced_custom_object(
            "tests.imageops.io", "v1", "default", "widgets", "applied-with-its-crd"
        )
        assert applied["spec"] == {"minReplicas": 1, "maxReplicas": 1}

        def widget(name: str, low: int, high: int) -> dict[str, Any]:
            return {
                "apiVersion": "tests.imageops.io/v1",
                "kind": "Widget",
                "metadata": {"name": name},
                "spec": {"minReplicas": low, "maxReplicas": high},
            }

        args = ("tests.imageops.io", "v1", "default", "widgets")
        custom.create_namespaced_custom_object(*args, widget("good", 1, 3))
        with pytest.raises(ApiException) as err:
            custom.create_namespaced_custom_object(*args, widget("bad", 5, 2))
        assert err.value.status == 422
        message = json.loads(err.value.body or "{}")["message"]
        assert "spec.minReplicas" in message, message
        assert "minReplicas must not exceed maxReplicas" in message, message
        # Re-applying is create-or-update, not an error.
        apply_manifests(control_plane.kubeconfig_path, [manifest])
    finally:
        ext.delete_custom_resource_definition("widgets.tests.imageops.io")


def test_apply_failure_names_the_manifest_file(control_plane: Any, tmp_path: Path) -> None:
    manifest = tmp_path / "broken-widget.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Not_A_Valid_Name, namespace: default}\n"
    )
    with pytest.raises(LocalClusterError) as err:
        apply_manifests(control_plane.kubeconfig_path, [manifest], timeout=TIMEOUT)
    message = str(err.value)
    assert "kubectl apply --server-side failed" in message, message
    assert str(manifest) in message, message  # kubectl's temporary file is named by its origin
    assert "Not_A_Valid_Name" in message, message


def test_kubeconfig_points_at_our_loopback_server(control_plane: Any) -> None:
    config = yaml.safe_load(control_plane.kubeconfig_path.read_text())
    (cluster,) = config["clusters"]
    assert cluster["cluster"]["server"] == control_plane.server_url
    assert control_plane.server_url.startswith("https://127.0.0.1:")
    # TLS is verified against the apiserver's own generated CA, not skipped.
    assert "certificate-authority-data" in cluster["cluster"]
    assert "insecure-skip-tls-verify" not in cluster["cluster"]
    # Nothing in the test process points anywhere else.
    assert os.environ["KUBECONFIG"] != str(control_plane.kubeconfig_path)
    assert "KUBERNETES_SERVICE_HOST" not in os.environ
    env = control_plane.env()
    assert env["KUBECONFIG"] == str(control_plane.kubeconfig_path)
    assert "KUBERNETES_SERVICE_HOST" not in env
    kubectl = control_plane.kubectl
    if kubectl.exists():
        out = subprocess.run(
            [str(kubectl), "get", "namespace", "default", "-o", "jsonpath={.metadata.name}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=True,
        )
        assert out.stdout == "default"


def test_second_identity_is_subject_to_rbac(control_plane: Any) -> None:
    (TEST_USER,) = control_plane.users  # the unprivileged identity of the session cluster
    user_api = control_plane.api_client(user=TEST_USER)
    review = client.AuthenticationV1Api(user_api).create_self_subject_review(
        client.V1SelfSubjectReview(), _request_timeout=TIMEOUT
    )
    assert review.status is not None and review.status.user_info is not None
    assert review.status.user_info.username == TEST_USER
    assert "system:masters" not in (review.status.user_info.groups or [])
    core = client.CoreV1Api(user_api)
    with pytest.raises(ApiException) as err:
        core.list_namespaced_config_map("default", _request_timeout=TIMEOUT)
    assert err.value.status == 403

    # A Role of our own: the aggregated ClusterRoles (view, edit, admin) stay empty here, as
    # their rules are filled in by kube-controller-manager, which this cluster does not run.
    rbac = client.RbacAuthorizationV1Api(control_plane.api_client())
    name = f"test-user-read-configmaps-{uuid.uuid4().hex[:6]}"
    rbac.create_namespaced_role(
        "default",
        client.V1Role(
            metadata=client.V1ObjectMeta(name=name),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["list"])],
        ),
    )
    rbac.create_namespaced_role_binding(
        "default",
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name=name),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name=name
            ),
            subjects=[
                client.RbacV1Subject(
                    kind="User", name=TEST_USER, api_group="rbac.authorization.k8s.io"
                )
            ],
        ),
    )
    try:
        _eventually(lambda: core.list_namespaced_config_map("default", _request_timeout=TIMEOUT))
        with pytest.raises(ApiException) as err:  # still nothing beyond what was granted
            core.list_namespaced_secret("default", _request_timeout=TIMEOUT)
        assert err.value.status == 403
    finally:
        rbac.delete_namespaced_role_binding(name, "default")
        rbac.delete_namespaced_role(name, "default")


def test_stop_leaves_no_process_behind(bin_dir: Path, tmp_path: Path) -> None:
    cluster = LocalCluster(bin_dir, tmp_path / "cluster")
    started = time.monotonic()
    with cluster:
        elapsed = time.monotonic() - started
        pids = cluster.pids
        assert set(pids) == {"etcd", "kube-apiserver"}
        assert all(_alive(pid) for pid in pids.values())
        rss = cluster.rss_bytes()
        print(f"start took {elapsed:.2f}s; RSS MiB: { {k: v >> 20 for k, v in rss.items()} }")
        assert cluster.is_running()
    assert not any(_alive(pid) for pid in pids.values())
    assert _processes_mentioning(str(tmp_path)) == []


def test_failed_start_reports_the_log_and_cleans_up(bin_dir: Path, tmp_path: Path) -> None:
    cluster = LocalCluster(bin_dir, tmp_path / "cluster", extra_apiserver_args=["--no-such-flag"])
    with pytest.raises(LocalClusterError) as err:
        cluster.start()
    message = str(err.value)
    assert "kube-apiserver exited with code" in message
    assert "unknown flag: --no-such-flag" in message  # the tail of kube-apiserver.log
    assert set(cluster.pids) == {"etcd", "kube-apiserver"}
    assert not any(_alive(pid) for pid in cluster.pids.values())
    assert _processes_mentioning(str(tmp_path)) == []


def test_cli_runs_until_sigterm(bin_dir: Path, tmp_path: Path) -> None:
    crds = tmp_path / "crds"
    crds.mkdir()
    (crds / "widgets.yaml").write_text(CEL_CRD.split("---")[0])
    kubeconfig = tmp_path / "out" / "kubeconfig"
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["KUBEBUILDER_ASSETS"] = str(bin_dir)
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "image_operator_dev.localcluster"),
            *("--work-dir", str(tmp_path / "w"), "--kubeconfig-out", str(kubeconfig)),
            *("--crds", str(crds)),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        event = json.loads(proc.stdout.readline())
        assert event["event"] == "ready", event
        assert event["kubeconfig"] == str(kubeconfig.resolve())
        assert event["server"].startswith("https://127.0.0.1:")
        api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        crd = client.ApiextensionsV1Api(api).read_custom_resource_definition(
            "widgets.tests.imageops.io", _request_timeout=TIMEOUT
        )
        assert crd.status is not None
        conditions = crd.status.conditions or []
        assert any(c.type == "Established" and c.status == "True" for c in conditions)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert json.loads(proc.stdout.readline()) == {"event": "stopped"}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _processes_mentioning(str(tmp_path)) == []

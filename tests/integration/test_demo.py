"""`make demo` (hack/demo.sh) in both its modes, as a newcomer runs it: on a control plane of its
own, and with DEMO_CLUSTER=existing on the cluster a kubeconfig points at (here the session's
control plane, standing in for kind or a dev cluster). Each run gets its own state folder and
emulator port, so a demo someone runs on this machine is not disturbed."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import ControlPlane
from tests.integration.conftest import ROOT, free_port

pytestmark = pytest.mark.integration

DEMO = ROOT / "hack" / "demo.sh"
NAMESPACE = "image-demo"


@dataclass
class Demo:
    env: dict[str, str]
    folder: Path
    port: int

    def run(self, action: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(DEMO), action],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,  # a first local run may build the control plane (cached here)
            check=False,
        )

    def pid(self, name: str) -> int:
        return int((self.folder / f"{name}.pid").read_text())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _demo(control_plane: ControlPlane, tmp_path: Path, **env: str) -> Demo:
    port = free_port()
    folder = tmp_path / "demo"
    environment = control_plane.env()
    environment.update(
        DEMO_DIR=str(folder),
        DEMO_ARGON_PORT=str(port),
        DEMO_BIN=str(Path(sys.executable).parent),
        # The control plane's own kubectl, whatever else is on PATH here.
        PATH=f"{control_plane.kubectl.parent}{os.pathsep}{environment.get('PATH', '')}",
        PYTHONIOENCODING="utf-8",
        **env,
    )
    return Demo(environment, folder, port)


@pytest.fixture
def existing(control_plane: ControlPlane, tmp_path: Path) -> Iterator[Demo]:
    demo = _demo(control_plane, tmp_path, DEMO_CLUSTER="existing")
    try:
        yield demo
    finally:
        demo.run("down")


def _kubectl(demo: Demo, *args: str) -> str:
    result = subprocess.run(
        ["kubectl", *args], env=demo.env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_demo_on_an_existing_cluster_uses_it_and_cleans_up_after_itself(
    control_plane: ControlPlane, existing: Demo
) -> None:
    context = yaml.safe_load(control_plane.kubeconfig_path.read_text())["current-context"]

    up = existing.run("up")

    assert up.returncode == 0, up.stdout[-3000:] + up.stderr
    assert (
        f"using the existing cluster of your kubeconfig: context {context}, server "
        f"{control_plane.server_url} (DEMO_CLUSTER=existing)"
    ) in up.stdout
    assert "kube-apiserver" not in up.stdout and not (existing.folder / "cluster.pid").exists()
    # The demo's objects are in the session's cluster, Ready, made by the demo's operator
    # through the demo's emulator; that operator watches the demo's namespace only.
    ready = _kubectl(
        existing,
        "get",
        "images",
        "-n",
        NAMESPACE,
        "-o",
        'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")]'
        ".status} {end}",
    )
    assert sorted(ready.split()) == ["notebook=True", "transcode=True"]
    endpoint = _kubectl(
        existing,
        "get",
        "imageprovider",
        "argon",
        "-n",
        NAMESPACE,
        "-o",
        "jsonpath={.spec.endpoint}",
    )
    assert endpoint == f"http://127.0.0.1:{existing.port}"
    operator = existing.pid("operator")
    argv = Path(f"/proc/{operator}/cmdline").read_bytes().split(b"\0")
    assert [b"--namespace", NAMESPACE.encode()] == argv[-3:-1]
    assert "✔ Image transcode  Ready  provider argon" in up.stdout  # image-operator status
    assert f"on the existing cluster, context {context}" in up.stdout
    emulator = existing.pid("emulator")

    down = existing.run("down")

    assert down.returncode == 0, down.stdout + down.stderr
    assert _kubectl(existing, "get", "imageops", "-n", NAMESPACE, "-o", "name") == ""
    assert (
        _kubectl(existing, "get", "namespace", NAMESPACE, "-o", "name")
        == f"namespace/{NAMESPACE}\n"
    )
    assert not _alive(operator) and not _alive(emulator)
    assert "kept: namespace image-demo and the imageops CRDs" in down.stdout


def test_demo_builds_its_own_control_plane_by_default_and_leaves_the_kubeconfig_alone(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    demo = _demo(control_plane, tmp_path)  # KUBECONFIG names the session's cluster
    try:
        up = demo.run("up")

        assert up.returncode == 0, up.stdout[-3000:] + up.stderr
        assert (
            "using a local control plane of our own; the cluster of your kubeconfig is left "
            in (up.stdout)
        )
        kubeconfig = yaml.safe_load((demo.folder / "kubeconfig").read_text())
        server = kubeconfig["clusters"][0]["cluster"]["server"]
        assert server != control_plane.server_url
        assert "✔ Image notebook  Ready" in up.stdout
        assert "on the local control plane" in up.stdout
        # Nothing of the demo reached the cluster of the kubeconfig.
        assert "notebook" not in _kubectl(demo, "get", "images", "-n", NAMESPACE, "-o", "name")
        cluster = demo.pid("cluster")
    finally:
        down = demo.run("down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not _alive(cluster)

"""Helm 4's `helm install --wait` on a chart of our objects, against the session's operator.

Helm 4 waits with kstatus (HIP-0022; `--wait` alone means `--wait=watcher`). Its waiter
(`pkg/kube/statuswait.go` of helm.sh/helm/v4 4.3.x) watches every object of the release with
fluxcd/cli-utils' kstatus status readers and stops when the aggregate of their statuses is
`Current`, leaving out those already `Failed`: a `Failed` object (kstatus' reading of our
`Stalled=True`) does not hold the wait until the timeout. It then fails the install with one line
per object that is not `Current`: `resource Image/<ns>/<name> not ready. status: Failed,
message: <the Stalled condition's message>`. Without the operator's status (observedGeneration
-1 until it writes one) an Image reads `InProgress`, so the wait cannot end early.

The chart is `tests/integration/charts/argon-images`: a Secret, an argon ImageProvider and two
Images, plus (with `stalledImage=true`) an argon Image from a VM, which the operator stalls.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import (
    ARGON_TOKEN,
    TEST_NAMESPACE_PREFIX,
    Emulator,
    Kube,
    OperatorProcess,
)

pytestmark = pytest.mark.integration

CHART = Path(__file__).parent / "charts" / "argon-images"
IMAGES = ("notebook", "transcode")
# Bounds a wait that never ends (a broken waiter); a passing install returns long before.
HELM_TIMEOUT = "3m"


def _helm(
    helm: str, control_plane: Any, home: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """Run helm on the session cluster, with its config, cache and data under `home`."""
    env = control_plane.env()
    for name in ("CACHE", "CONFIG", "DATA"):
        env[f"HELM_{name}_HOME"] = str(home / name.lower())
    return subprocess.run(
        [helm, *args], capture_output=True, text=True, env=env, timeout=240, check=False
    )


def _install(
    helm: str, control_plane: Any, emulator: Emulator, home: Path, *sets: str
) -> tuple[str, subprocess.CompletedProcess[str]]:
    """`helm install --wait` of the chart into a new `it-*` namespace (the operator's)."""
    namespace = f"{TEST_NAMESPACE_PREFIX}helm-{uuid.uuid4().hex[:6]}"
    args = ["install", "imgs", str(CHART), "-n", namespace, "--create-namespace"]
    args += ["--wait", "--timeout", HELM_TIMEOUT]
    for item in (f"provider.endpoint={emulator.argon_url}", f"provider.token={ARGON_TOKEN}", *sets):
        args += ["--set", item]
    return namespace, _helm(helm, control_plane, home, *args)


def _ready(kube: Kube, plural: str, name: str) -> bool:
    obj = kube.get(plural, name) or {}
    status = obj.get("status") or {}
    ready = (kube.condition(plural, name, "Ready") or {}).get("status") == "True"
    return ready and status.get("observedGeneration") == obj["metadata"]["generation"]


def test_install_wait_returns_once_the_images_are_ready(
    helm4: str,
    control_plane: Any,
    emulator: Emulator,
    operator: OperatorProcess,
    tmp_path: Path,
) -> None:
    namespace, result = _install(helm4, control_plane, emulator, tmp_path)
    assert result.returncode == 0, result.stderr

    # Read once, right after helm returned: the wait, not this test, waited for them.
    kube = Kube(control_plane.api_client(), namespace)
    assert _ready(kube, "imageproviders", "imgs-argon")
    external_ids = {}
    for name in IMAGES:
        assert _ready(kube, "images", name), kube.get("images", name)
        external_ids[name] = (kube.get("images", name) or {})["status"]["externalID"]
        assert external_ids[name] in emulator.argon_images()

    # `uninstall --wait` waits until they are gone: the finalizer deletes each cloud image first.
    uninstall = _helm(
        helm4, control_plane, tmp_path, "uninstall", "imgs", "-n", namespace, "--wait"
    )
    assert uninstall.returncode == 0, uninstall.stderr
    for name, external_id in external_ids.items():
        assert kube.get("images", name) is None
        assert external_id not in emulator.argon_images()


def test_install_wait_fails_on_a_stalled_image_with_its_message(
    helm4: str,
    control_plane: Any,
    emulator: Emulator,
    operator: OperatorProcess,
    tmp_path: Path,
) -> None:
    namespace, result = _install(helm4, control_plane, emulator, tmp_path, "stalledImage=true")

    assert result.returncode != 0, result.stdout
    kube = Kube(control_plane.api_client(), namespace)
    stalled = kube.condition("images", "from-a-vm", "Stalled") or {}
    assert stalled.get("status") == "True", kube.get("images", "from-a-vm")
    message = stalled["message"]
    assert (
        f"resource Image/{namespace}/from-a-vm not ready. status: Failed, message: {message}"
        in result.stderr
    ), result.stderr
    # Helm failed on the Stalled Image, not on its timeout: the others were waited for, and
    # are Ready.
    assert "context deadline exceeded" not in result.stderr, result.stderr
    for name in IMAGES:
        assert _ready(kube, "images", name), kube.get("images", name)

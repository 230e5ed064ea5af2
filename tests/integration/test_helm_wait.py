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
from dataclasses import dataclass
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


@dataclass
class Release:
    """The chart as release `imgs` in a new `it-*` namespace (the session operator's), by helm4."""

    helm: str
    control_plane: Any
    emulator: Emulator
    home: Path  # helm's config, cache and data
    namespace: str

    @property
    def kube(self) -> Kube:
        return Kube(self.control_plane.api_client(), self.namespace)

    def helm_run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = self.control_plane.env()
        for name in ("CACHE", "CONFIG", "DATA"):
            env[f"HELM_{name}_HOME"] = str(self.home / name.lower())
        return subprocess.run(
            [self.helm, *args, "-n", self.namespace],
            capture_output=True,
            text=True,
            env=env,
            timeout=240,
            check=False,
        )

    def install(self, *sets: str) -> subprocess.CompletedProcess[str]:
        """`helm install --wait`, pointed at the emulator's argon."""
        args = ["install", "imgs", str(CHART), "--create-namespace"]
        args += ["--wait", "--timeout", HELM_TIMEOUT]
        endpoint = f"provider.endpoint={self.emulator.argon_url}"
        for item in (endpoint, f"provider.token={ARGON_TOKEN}", *sets):
            args += ["--set", item]
        return self.helm_run(*args)


@pytest.fixture
def release(
    helm4: str, control_plane: Any, emulator: Emulator, operator: OperatorProcess, tmp_path: Path
) -> Release:
    return Release(
        helm4,
        control_plane,
        emulator,
        tmp_path,
        f"{TEST_NAMESPACE_PREFIX}helm-{uuid.uuid4().hex[:6]}",
    )


def _ready(kube: Kube, plural: str, name: str) -> bool:
    obj = kube.get(plural, name) or {}
    status = obj.get("status") or {}
    ready = (kube.condition(plural, name, "Ready") or {}).get("status") == "True"
    return ready and status.get("observedGeneration") == obj["metadata"]["generation"]


def test_install_wait_returns_once_the_images_are_ready(
    release: Release, emulator: Emulator
) -> None:
    result = release.install()
    assert result.returncode == 0, result.stderr

    # Read once, right after helm returned: the wait, not this test, waited for them.
    kube = release.kube
    assert _ready(kube, "imageproviders", "imgs-argon")
    external_ids = {}
    for name in IMAGES:
        assert _ready(kube, "images", name), kube.get("images", name)
        external_ids[name] = (kube.get("images", name) or {})["status"]["externalID"]
        assert external_ids[name] in emulator.argon_images()

    # `uninstall --wait` waits until they are gone: the finalizer deletes each cloud image first.
    uninstall = release.helm_run("uninstall", "imgs", "--wait")
    assert uninstall.returncode == 0, uninstall.stderr
    for name, external_id in external_ids.items():
        assert kube.get("images", name) is None
        assert external_id not in emulator.argon_images()


def test_install_wait_fails_on_a_stalled_image_with_its_message(release: Release) -> None:
    result = release.install("stalledImage=true")

    assert result.returncode != 0, result.stdout
    kube = release.kube
    stalled = kube.condition("images", "from-a-vm", "Stalled") or {}
    assert stalled.get("status") == "True", kube.get("images", "from-a-vm")
    message = stalled["message"]
    assert (
        f"resource Image/{release.namespace}/from-a-vm not ready. status: Failed, message: "
        f"{message}" in result.stderr
    ), result.stderr
    # Helm failed on the Stalled Image, not on its timeout: the others were waited for, and
    # are Ready.
    assert "context deadline exceeded" not in result.stderr, result.stderr
    for name in IMAGES:
        assert _ready(kube, "images", name), kube.get("images", name)

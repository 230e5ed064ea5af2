"""`image-operator status` and `kubectl imageops status` as processes against the real API server,
with the operator and the emulator making the objects they show: an Image and a copy of it, a
CommunityListing of it with two versions, an ImagePipeline with two runs and their output
Images; `--watch` following an Image from not found through paused to Ready; and the errors a
user meets (not found, forbidden, no cluster) as sentences with their exit codes."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.conftest import TEST_USER, ControlPlane
from tests.integration.conftest import Emulator, Kube, free_port, provider_image, wait_for
from tests.integration.test_pipeline import REGION, add_aliyun_provider
from tests.integration.test_provider_compshare import _add_compshare_provider

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
PAUSED = "imageops.io/paused"


def _env(control_plane: ControlPlane, user: str | None = None) -> dict[str, str]:
    env = control_plane.env(user)
    # What a user's terminal would carry; the output is piped, so there is no colour.
    env["PYTHONIOENCODING"] = "utf-8"
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("NO_COLOR", None)
    return env


def _argv(*args: str) -> list[str]:
    return [str(BIN / "image-operator"), "status", *args]


def _status(
    control_plane: ControlPlane, *args: str, user: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _argv(*args),
        env=_env(control_plane, user),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _ok(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout.splitlines()


def _line(lines: list[str], pattern: str) -> str:
    found = [line for line in lines if re.search(pattern, line)]
    assert found, f"no line matches {pattern!r} in:\n" + "\n".join(lines)
    return found[0]


def _pipeline(name: str) -> dict[str, Any]:
    return {
        "kind": "ImagePipeline",
        "metadata": {"name": name},
        "spec": {
            "providerRef": {"name": "aliyun"},
            "baseImage": {"id": "aliyun_3_x64_20G_alibase_20240819.vhd"},
            "buildContent": "RUN echo built by image-operator",
            "toRegionIDs": ["cn-beijing"],
            "addAccounts": [1122334455],
            "outputImages": {"enabled": True, "retention": 1},
        },
    }


def _runs_done(kube: Kube, name: str, count: int) -> list[dict[str, Any]] | None:
    runs = ((kube.get("imagepipelines", name) or {}).get("status") or {}).get("runs") or []
    done = [r for r in runs if r.get("finishedAt")]
    return runs if len(done) >= count else None


@pytest.fixture
def shown(kube: Kube, emulator: Emulator) -> Kube:
    """Ready objects of every kind the tree shows: an Image `env` and its copy `env-copy`, a
    listing `env-listing` with v1.0 and v1.1 published, a pipeline `golden` with two runs."""
    instance = _add_compshare_provider(kube, emulator)
    add_aliyun_provider(kube, emulator)
    kube.create("images", provider_image("env", "compshare", {"vm": {"vmID": instance}}))
    kube.create("imagepipelines", _pipeline("golden"))
    kube.wait_ready("images", "env", timeout=90)
    kube.create(
        "images", provider_image("env-copy", "compshare", {"image": {"imageRef": {"name": "env"}}})
    )
    listing = {
        "kind": "CommunityListing",
        "metadata": {"name": "env-listing"},
        "spec": {"imageRef": {"name": "env"}, "versionName": "v1.0", "price": "0"},
    }
    kube.create("communitylistings", listing)
    kube.wait_ready("communitylistings", "env-listing", timeout=90)
    kube.patch("communitylistings", "env-listing", {"spec": {"versionName": "v1.1"}})
    wait_for(lambda: _runs_done(kube, "golden", 1), timeout=90, what="golden's first run")
    kube.patch("imagepipelines", "golden", {"metadata": {"annotations": {"imageops.io/run": "2"}}})
    runs = wait_for(lambda: _runs_done(kube, "golden", 2), timeout=90, what="the second run")
    kube.wait_ready("imagepipelines", "golden", timeout=60)
    kube.wait_ready("images", str(runs[1]["outputImage"]), timeout=60)
    kube.wait_ready("images", "env-copy", timeout=90)

    def two_published() -> bool:
        obj = kube.get("communitylistings", "env-listing") or {}
        states = [v.get("state") for v in (obj.get("status") or {}).get("versions") or []]
        return states == ["Published", "Published"]

    wait_for(two_published, timeout=90, what="v1.0 and v1.1 published")
    kube.wait_ready("communitylistings", "env-listing", timeout=30)
    return kube


def _pipeline_shows_its_runs_targets_and_output_images(
    control_plane: ControlPlane, shown: Kube
) -> None:
    status = shown.get("imagepipelines", "golden") or {}
    first, second = status["status"]["runs"]

    lines = _ok(_status(control_plane, "ipl/golden", "-n", shown.namespace))

    print("\n".join(lines))  # the rendering the closing note of issue 13 quotes
    template = status["status"]["externalID"]
    assert lines[0] == f"✔ ImagePipeline golden  Succeeded  provider aliyun · template {template}"
    assert _line(lines, f"run 1 {first['id']}  SUCCESS  trigger Created").startswith("├── ✔ ")
    assert _line(lines, f"run 2 {second['id']}  SUCCESS  trigger Manual").startswith("└── ✔ ")
    for where in (f"region {REGION}", "region cn-beijing", "account 1122334455"):
        assert len([line for line in lines if f"✔ {where}  Succeeded" in line]) == 2, where
    # retention 1: the first run's Image was retired, the second run's is Ready.
    assert _line(lines, f"Image {first['outputImage']}").endswith(
        "deleted (spec.outputImages.retention)"
    )
    image = _line(lines, f"Image {second['outputImage']} ")
    assert f"✔ Image {second['outputImage']}  Ready  provider aliyun · built by ImagePipeline" in (
        image
    )


def _listing_shows_its_image_and_versions(control_plane: ControlPlane, shown: Kube) -> None:
    listing = (shown.get("communitylistings", "env-listing") or {})["status"]

    lines = _ok(_status(control_plane, "cl", "env-listing", "-n", shown.namespace))

    print("\n".join(lines))
    assert lines[0] == (
        f"✔ CommunityListing env-listing  Published  of Image env · provider compshare · "
        f"group {listing['groupID']}"
    )
    assert lines[1].startswith("├── ✔ Image env  Ready  published from it · id ")
    first, second = listing["versions"]
    assert lines[2].startswith(f"├── ✔ version v1.0  Published  image {first['imageID']} · ")
    assert lines[3].startswith(f"└── ✔ version v1.1  Published  image {second['imageID']} · ")


def _image_shows_its_copies_and_what_shares_it_also_as_a_kubectl_plugin(
    control_plane: ControlPlane, shown: Kube
) -> None:
    env = (shown.get("images", "env") or {})["status"]

    lines = _ok(_status(control_plane, "img/env", "-n", shown.namespace))

    assert lines[0] == (
        f"✔ Image env  Ready  provider compshare · from VM uhost-container1 · "
        f"id {env['externalID']}"
    )
    assert _line(lines, "Image env-copy").startswith(
        f"├── ✔ Image env-copy  Ready  provider compshare · copy of Image env (compshare, "
        f"{env['externalID']}) · id "
    )
    assert _line(lines, "CommunityListing env-listing").startswith(
        "└── ✔ CommunityListing env-listing  Published  publishes it · version v1.1 Published"
    )
    plugin = subprocess.run(
        [str(control_plane.kubectl), "imageops", "status", "img/env", "-n", shown.namespace],
        env=_env(control_plane),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert _ok(plugin) == lines


def _namespace_shows_everything_grouped_each_image_once(
    control_plane: ControlPlane, shown: Kube
) -> None:
    lines = _ok(_status(control_plane, "-n", shown.namespace))

    print("\n".join(lines))
    assert lines[0].startswith(f"• namespace {shown.namespace}  ")
    top = [line[4:] for line in lines if line.startswith(("├── ", "└── "))]
    names = [" ".join(line.split()[1:3]) for line in top]
    assert names[:3] == ["ImageProvider aliyun", "ImageProvider argon", "ImageProvider compshare"]
    assert names[3:5] == ["ImagePipeline golden", "CommunityListing env-listing"]
    assert "Image env" in names
    assert "Image env-copy" not in names  # under env
    assert not any(n.startswith("Image golden-") for n in names)  # under its run
    assert all(line.startswith("✔ ") for line in top), top


def test_trees_of_a_pipeline_a_listing_an_image_and_the_namespace(
    control_plane: ControlPlane, shown: Kube
) -> None:
    """One set of objects (they take a while to make), four views of it."""
    _pipeline_shows_its_runs_targets_and_output_images(control_plane, shown)
    _listing_shows_its_image_and_versions(control_plane, shown)
    _image_shows_its_copies_and_what_shares_it_also_as_a_kubectl_plugin(control_plane, shown)
    _namespace_shows_everything_grouped_each_image_once(control_plane, shown)


def test_errors_are_sentences_with_exit_codes(
    control_plane: ControlPlane, kube: Kube, tmp_path: Path
) -> None:
    missing = _status(control_plane, "img/nope", "-n", kube.namespace)
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == f"error: Image nope not found in namespace {kube.namespace}\n"

    forbidden = _status(control_plane, "img/nope", "-n", kube.namespace, user=TEST_USER)
    assert forbidden.returncode == 4, forbidden.stderr
    assert forbidden.stderr.startswith(
        f"error: forbidden: cannot list images.imageops.io in namespace {kube.namespace}: "
    )
    assert f'User "{TEST_USER}" cannot list resource "images"' in forbidden.stderr

    port = free_port()
    config = yaml.safe_load(control_plane.kubeconfig_path.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{port}"
    nowhere = tmp_path / "nowhere.kubeconfig"
    nowhere.write_text(yaml.safe_dump(config))
    unreachable = _status(control_plane, "--kubeconfig", str(nowhere), "-n", kube.namespace)
    assert unreachable.returncode == 3, unreachable.stderr
    assert unreachable.stderr.startswith(
        f"error: cannot reach the cluster at https://127.0.0.1:{port}"
    )
    assert "Connection refused" in unreachable.stderr

    for result in (missing, forbidden, unreachable):
        assert "Traceback" not in result.stderr


def test_kinds_rbac_hides_are_named_and_the_rest_shown(
    control_plane: ControlPlane, kube: Kube
) -> None:
    rbac = client.RbacAuthorizationV1Api(kube.api)
    rbac.create_namespaced_role(
        kube.namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="images-only"),
            rules=[
                client.V1PolicyRule(
                    api_groups=["imageops.io"],
                    resources=["images", "imageproviders"],
                    verbs=["list", "watch"],
                )
            ],
        ),
    )
    rbac.create_namespaced_role_binding(
        kube.namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="images-only"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="images-only"
            ),
            subjects=[client.RbacV1Subject(kind="User", name=TEST_USER)],
        ),
    )

    lines = _ok(_status(control_plane, "-n", kube.namespace, user=TEST_USER))

    assert lines[0].startswith(f"• namespace {kube.namespace}  1 objects: 1 ready")
    assert lines[1:4] == [
        "│ baseimages not shown: forbidden",
        "│ communitylistings not shown: forbidden",
        "│ imagepipelines not shown: forbidden",
    ]
    assert lines[4].startswith("└── ✔ ImageProvider argon  Ready  argon · http://127.0.0.1:")


class _Lines:
    """A process's stdout, line by line, read in a thread so that waiting can be bounded."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, pattern: str, timeout: float = 90) -> int:
        """Read until a line matches; its index in `seen`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                line = ""
            if line is None or time.monotonic() > deadline:
                raise AssertionError(
                    f"no line matched {pattern!r}; output so far:\n" + "\n".join(self.seen)
                )
            self.seen.append(line)
            if re.search(pattern, line):
                return len(self.seen) - 1


@pytest.fixture
def watcher(control_plane: ControlPlane, kube: Kube) -> Iterator[_Lines]:
    process = subprocess.Popen(
        _argv("img/watched", "-n", kube.namespace, "--watch", "--watch-timeout", "300"),
        env=_env(control_plane),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield _Lines(process)
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
        assert "Traceback" not in err, err


def test_watch_follows_an_image_from_not_found_through_paused_to_ready(
    kube: Kube, watcher: _Lines
) -> None:
    gone = watcher.until(f"^Image watched not found in namespace {kube.namespace}")
    body = provider_image(
        "watched", "argon", {"repository": {"image": "library/busybox:1.36"}}, price="0"
    )
    body["metadata"]["annotations"] = {PAUSED: "true"}
    kube.create("images", body)

    paused = watcher.until(r"^⏸ Image watched  Paused  provider argon")
    kube.patch("images", "watched", {"metadata": {"annotations": {PAUSED: None}}})
    ready = watcher.until(r"^✔ Image watched  Ready  provider argon · from repository ")

    assert gone < paused < ready
    frames = [line for line in watcher.seen if line.startswith("--- ")]
    assert len(frames) >= 3  # one per change: not found, paused, (in progress,) Ready
    assert all(re.fullmatch(r"--- \d\d:\d\d:\d\d", frame) for frame in frames)


def test_watch_timeout_ends_the_watch_with_exit_code_0(
    control_plane: ControlPlane, kube: Kube
) -> None:
    result = subprocess.run(
        _argv("-n", kube.namespace, "-w", "--watch-timeout", "1"),
        env=_env(control_plane),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    lines = _ok(result)
    assert lines[0] == lines[0].strip() and lines[0].startswith("--- ")
    assert lines[1].startswith(f"• namespace {kube.namespace}  1 objects: 1 ready")

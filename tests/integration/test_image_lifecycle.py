"""The Image operator end to end: real kube-apiserver, real operator process, the emulator."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from image_operator.api.common import ANNOTATION_PROVIDER_TYPE
from tests.integration.conftest import Emulator, Kube, OperatorProcess, image_manifest, wait_for

pytestmark = pytest.mark.integration


def _argon_name(kube: Kube, name: str) -> str:
    obj = kube.get("images", name) or {}
    return str((obj.get("status") or {}).get("externalID") or "")


def test_create_becomes_ready_with_the_external_id(kube: Kube, emulator: Emulator) -> None:
    kube.create("images", image_manifest("transcode"))

    obj = kube.wait_ready("images", "transcode")

    status = obj["status"]
    external_id = status["externalID"]
    assert external_id.startswith("transcode-")
    assert status["phase"] == "Ready"
    assert status["progress"] == 100
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert {c["type"] for c in status["conditions"]} == {"Ready"}
    stored = emulator.argon_images()[external_id]
    assert stored["displayName"] == "Image transcode"
    assert stored["repository"] == "nvidia/cuda10.1:tensorflow_mgdc-test-v0.1"
    assert stored["inputs"][0]["kind"] == "input"
    kube.wait_event("transcode", "Creating", "Ready")


def test_spec_update_is_pushed_to_the_cloud(kube: Kube, emulator: Emulator) -> None:
    kube.create("images", image_manifest("update-me"))
    external_id = kube.wait_ready("images", "update-me")["status"]["externalID"]

    kube.patch("images", "update-me", {"spec": {"displayName": "Renamed", "price": "1.5"}})

    def pushed() -> dict[str, Any] | None:
        stored = emulator.argon_images().get(external_id) or {}
        return stored if stored.get("displayName") == "Renamed" else None

    stored = wait_for(pushed, timeout=30, what="the new displayName in the emulator")
    assert str(stored["price"]) == "1.5"
    obj = kube.wait_ready("images", "update-me")

    def settled() -> dict[str, Any] | None:
        current = kube.get("images", "update-me") or {}
        status = current.get("status") or {}
        ready = status.get("phase") == "Ready" and status.get("observedGeneration") == 2
        return current if ready else None

    obj = wait_for(settled, timeout=30, what="Ready at generation 2")
    assert obj["status"]["externalID"] == external_id  # updated in place, not recreated
    assert len([n for n in emulator.argon_images() if n.startswith("update-me-")]) == 1
    kube.wait_event("update-me", "Updated")


def test_cel_rule_refuses_an_undeclared_placeholder(kube: Kube, control_plane: Any) -> None:
    bad = image_manifest("bad-template", command=["run --date={{inputs.date}}"])

    with pytest.raises(ApiException) as refused:
        kube.create("images", bad)

    assert refused.value.status == 422
    body = refused.value.body
    assert body is not None
    assert "spec.command" in body
    assert "{{inputs.NAME}}" in body
    assert "spec.inputs" in body
    assert kube.get("images", "bad-template") is None


def test_kubectl_apply_shows_which_field_is_wrong(kube: Kube, control_plane: Any) -> None:
    manifest = f"""
apiVersion: imageops.io/v1alpha1
kind: Image
metadata: {{name: two-sources, namespace: {kube.namespace}}}
spec:
  providerRef: {{name: argon}}
  displayName: Two sources
  source:
    repository: {{image: "library/busybox:1.36"}}
    url: {{url: "http://127.0.0.1/disk.qcow2", format: qcow2}}
  inputs:
  - {{name: retries, type: integer, default: "three"}}
"""
    result = subprocess.run(
        [str(control_plane.kubectl), "apply", "-f", "-"],
        check=False,
        input=manifest,
        capture_output=True,
        text=True,
        env=control_plane.env(),
        timeout=60,
    )

    assert result.returncode != 0
    assert "spec.source must set exactly one of repository, vm, url, upload, image" in result.stderr
    assert "spec.inputs[0].default" in result.stderr
    assert "must be an integer" in result.stderr


def test_delete_removes_the_cloud_image(kube: Kube, emulator: Emulator) -> None:
    kube.create("images", image_manifest("short-lived"))
    external_id = kube.wait_ready("images", "short-lived")["status"]["externalID"]
    assert external_id in emulator.argon_images()

    kube.delete("images", "short-lived")

    wait_for(
        lambda: kube.get("images", "short-lived") is None,
        timeout=60,
        what="the Image to be gone (finalizer released)",
    )
    assert external_id not in emulator.argon_images()


def test_delete_of_an_image_whose_provider_never_existed_lets_go(kube: Kube) -> None:
    # Nothing was ever sent for it (status.providerType was never written ahead): waiting for
    # the provider, as before, would hold the finalizer forever and protect nothing.
    kube.create("images", image_manifest("nowhere", providerRef={"name": "nope"}))
    wait_for(
        lambda: (
            (kube.condition("images", "nowhere", "Reconciling") or {}).get("reason")
            == "WaitingForProvider"
        ),
        timeout=30,
        what="the Image to wait for its provider",
    )

    kube.delete("images", "nowhere")

    wait_for(lambda: kube.get("images", "nowhere") is None, timeout=60, what="Image gone")


def test_orphan_keeps_the_cloud_image(kube: Kube, emulator: Emulator) -> None:
    kube.create("images", image_manifest("keep-me", deletionPolicy="Orphan"))
    external_id = kube.wait_ready("images", "keep-me")["status"]["externalID"]

    kube.delete("images", "keep-me")

    wait_for(lambda: kube.get("images", "keep-me") is None, timeout=60, what="Image gone")
    stored = emulator.argon_images().get(external_id)
    assert stored is not None
    assert stored["status"]["phase"] != "Deleting"


def test_adoption_takes_over_an_existing_cloud_image(kube: Kube, emulator: Emulator) -> None:
    existing = f"legacy-{kube.namespace}"
    emulator.create_directly(existing)
    posts_before = _posts(emulator)
    manifest = image_manifest("adopted")
    manifest["metadata"]["annotations"] = {"imageops.io/external-id": existing}
    manifest["spec"]["displayName"] = existing  # same as the cloud: no update needed
    manifest["spec"]["source"]["repository"]["image"] = "library/busybox:1.36"

    kube.create("images", manifest)

    obj = kube.wait_ready("images", "adopted")
    assert obj["status"]["externalID"] == existing
    kube.wait_event("adopted", "Adopted")
    assert not [n for n in emulator.argon_images() if n.startswith("adopted-")]
    assert _posts(emulator) == posts_before  # no create call was made


def test_pause_stops_cloud_calls_until_removed(kube: Kube, emulator: Emulator) -> None:
    manifest = image_manifest("paused")
    manifest["metadata"]["annotations"] = {"imageops.io/paused": "true"}
    kube.create("images", manifest)

    wait_for(
        lambda: ((kube.get("images", "paused") or {}).get("status") or {}).get("phase") == "Paused",
        timeout=30,
        what="phase Paused",
    )
    assert not [n for n in emulator.argon_images() if n.startswith("paused-")]

    kube.patch("images", "paused", {"metadata": {"annotations": {"imageops.io/paused": None}}})

    external_id = kube.wait_ready("images", "paused")["status"]["externalID"]
    assert external_id in emulator.argon_images()


CREATE_ROUTE = "POST /api/v1/namespaces/{namespace}/images"


def _posts(emulator: Emulator) -> int:
    """How many create calls the emulator has answered (from its request statistics)."""
    route = emulator.stats()["routes"].get(CREATE_ROUTE) or {}
    return int(route.get("count", 0))


def test_crash_between_create_and_status_write_makes_one_image(
    kube: Kube, emulator: Emulator, operator: OperatorProcess
) -> None:
    # The emulator commits the create, then holds the response: the operator is killed while
    # it waits, so the external ID never reaches the status.
    emulator.set_faults(latency_after_commit_seconds=20)
    try:
        kube.create("images", image_manifest("crashy"))
        wait_for(
            lambda: [n for n in emulator.argon_images() if n.startswith("crashy-")],
            timeout=30,
            what="the create to be committed in the emulator",
        )
        operator.kill()
        obj = kube.get("images", "crashy") or {}
    finally:
        emulator.set_faults()
        operator.start()  # whatever failed above, the next tests need their operator
    assert "externalID" not in (obj.get("status") or {})
    # Written with the finalizer, before the create was sent: a deletion cannot mistake this
    # Image for one that never reached its provider.
    assert obj["metadata"]["annotations"][ANNOTATION_PROVIDER_TYPE] == "argon"

    obj = kube.wait_ready("images", "crashy", timeout=90)

    made = [n for n in emulator.argon_images() if n.startswith("crashy-")]
    assert made == [obj["status"]["externalID"]]
    kube.wait_event("crashy", "Recovered")


def test_converges_while_the_cloud_fails_30_percent_of_calls(
    kube: Kube, emulator: Emulator
) -> None:
    names = [f"flaky-{i}" for i in range(3)]
    emulator.set_faults(error_rate=0.3, seed=7)
    try:
        for name in names:
            kube.create("images", image_manifest(name))
        ids = [
            kube.wait_ready("images", name, timeout=120)["status"]["externalID"] for name in names
        ]
        for name in names:
            kube.delete("images", name)
        for name in names:

            def gone(n: str = name) -> bool:
                return kube.get("images", n) is None

            wait_for(gone, timeout=120, what=f"{name} gone")
        injected = emulator.stats()["faults"]["error"]
    finally:
        emulator.set_faults()

    assert injected > 0  # the faults really happened
    stored = emulator.argon_images()
    for external_id in ids:
        assert external_id not in stored
    for name in names:  # and exactly one image was ever made per object
        assert sum(1 for e in kube.events(name) if e.reason == "Creating") <= 1


def test_a_spec_at_the_documented_maximum_converges(kube: Kube, emulator: Emulator) -> None:
    """A `cover` at its 262,144-character maximum: kopf's diff base used to copy the spec into
    an annotation the API server refuses (over 262,144 bytes), so the object never converged."""
    cover = "data:image/png;base64," + "A" * (262144 - len("data:image/png;base64,"))
    kube.create("images", image_manifest("big-cover", cover=cover, description="d" * 1024))

    obj = kube.wait_ready("images", "big-cover")

    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    stored = emulator.argon_images()[obj["status"]["externalID"]]
    assert len(stored["cover"]) == 262144
    annotations = obj["metadata"].get("annotations") or {}
    assert sum(len(k) + len(v) for k, v in annotations.items()) < 1024  # a digest, not the spec

    kube.patch("images", "big-cover", {"spec": {"displayName": "Bigger"}})

    def pushed() -> bool:
        return bool(emulator.argon_images()[obj["status"]["externalID"]]["displayName"] == "Bigger")

    wait_for(pushed, timeout=30, what="the update of a maximum-size spec pushed")

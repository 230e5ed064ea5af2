"""The compshare provider end to end: real kube-apiserver, the real operator process and the
emulator's CompShare vendor (signed UCloud RPC through the official SDK)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from kubernetes import client

from tests.integration.conftest import Emulator, Kube, provider_image, wait_for

pytestmark = pytest.mark.integration


def _images(emulator: Emulator) -> dict[str, dict[str, Any]]:
    """CompShareImageId -> the image, from the emulator's admin dump (no faults apply)."""
    url = emulator.thread.url("compshare") + "/_emulator/state"
    state = httpx.get(url, timeout=30).raise_for_status().json()
    return {image["CompShareImageId"]: image for image in state["images"]}


def _add_compshare_provider(kube: Kube, emulator: Emulator) -> str:
    """A Secret and an ImageProvider of type compshare; returns a container instance's ID."""
    settings = emulator.thread.emulator.config.compshare
    public_key, private_key = next(iter(settings.keys.items()))
    region, zones = next(iter(settings.regions.items()))
    kube.core.create_namespaced_secret(
        kube.namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="compshare-keys"),
            string_data={"publicKey": public_key, "privateKey": private_key},
        ),
    )
    kube.create(
        "imageproviders",
        {
            "kind": "ImageProvider",
            "metadata": {"name": "compshare"},
            "spec": {
                "type": "compshare",
                "endpoint": emulator.thread.url("compshare"),
                "region": region,
                "zone": zones[0],
                "credentialsSecretRef": {"name": "compshare-keys"},
                "pollIntervalSeconds": 1,
            },
        },
    )
    provider = kube.wait_ready("imageproviders", "compshare", timeout=60)
    assert f"zone {zones[0]}" in provider["status"]["endpointInfo"]
    assert private_key not in str(provider["status"])
    return next(uhost for uhost, kind in settings.instances.items() if kind == "container")


def test_image_from_a_container_instance_is_made_updated_and_deleted(
    kube: Kube, emulator: Emulator
) -> None:
    instance = _add_compshare_provider(kube, emulator)
    kube.create(
        "images",
        {
            "kind": "Image",
            "metadata": {"name": "ai-env"},
            "spec": {
                "providerRef": {"name": "compshare"},
                "source": {"vm": {"vmID": instance}},
                "displayName": "AI environment",
                "description": "PyTorch 2.1",
            },
        },
    )

    obj = kube.wait_ready("images", "ai-env", timeout=90)

    status = obj["status"]
    external_id = status["externalID"]
    assert external_id.startswith("compshareImage-")
    assert (status["phase"], status["progress"], status["providerType"]) == (
        "Ready",
        100,
        "compshare",
    )
    stored = _images(emulator)[external_id]
    assert stored["Name"] == f"ai-env-{obj['metadata']['uid'].replace('-', '')[:8]}"
    assert (stored["Status"], stored["Container"], stored["Description"]) == (
        "Available",
        "True",
        "PyTorch 2.1",
    )
    kube.wait_event("ai-env", "Creating", "Ready")

    kube.patch("images", "ai-env", {"spec": {"description": "PyTorch 2.2"}})
    wait_for(
        lambda: _images(emulator)[external_id]["Description"] == "PyTorch 2.2",
        timeout=60,
        what="the new description in the emulator",
    )

    kube.delete("images", "ai-env")

    wait_for(
        lambda: kube.get("images", "ai-env") is None,
        timeout=60,
        what="the Image to be gone (finalizer released)",
    )
    assert external_id not in _images(emulator)
    kube.wait_event("ai-env", "Deleted")


def test_a_copy_within_compshare_is_made_with_the_copy_api(kube: Kube, emulator: Emulator) -> None:
    instance = _add_compshare_provider(kube, emulator)
    kube.create("images", provider_image("base-env", "compshare", {"vm": {"vmID": instance}}))
    copy_source = {"image": {"imageRef": {"name": "base-env"}}}
    kube.create("images", provider_image("base-env-copy", "compshare", copy_source))

    copy = kube.wait_ready("images", "base-env-copy", timeout=120)
    source_id = kube.wait_ready("images", "base-env", timeout=30)["status"]["externalID"]

    copy_id = copy["status"]["externalID"]
    assert copy_id != source_id
    assert copy["status"]["copiedFrom"]["externalID"] == source_id
    stored = _images(emulator)[copy_id]
    # Named as the operator names its images (so a lost answer is found, not copied twice), a
    # container-made image like its source, and the copy's own description pushed after it.
    assert stored["Name"] == f"base-env-copy-{copy['metadata']['uid'].replace('-', '')[:8]}"
    assert (stored["Status"], stored["Container"]) == ("Available", "True")
    wait_for(
        lambda: _images(emulator)[copy_id]["Description"] == "base-env-copy description",
        timeout=60,
        what="the copy's description in the emulator",
    )

    kube.delete("images", "base-env-copy")
    wait_for(
        lambda: copy_id not in _images(emulator),
        timeout=60,
        what="the copy to be terminated",
    )
    assert source_id in _images(emulator)

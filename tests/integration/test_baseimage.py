"""BaseImage end to end: real kube-apiserver, the operator process, the ucloudstack emulator.

The cloud side is checked with the SDK directly (not through the provider under test).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import Emulator, Kube, image_manifest, wait_for
from tests.integration.test_provider_ucloudstack import _cloud, _describe, _ucloudstack_provider

pytestmark = pytest.mark.integration


def _base_images(emulator: Emulator) -> dict[str, dict[str, Any]]:
    infos = _cloud(emulator).invoke("DescribeBaseImage", {})["Infos"]
    return {info["ImageID"]: dict(info) for info in infos}


def _vm_image(kube: Kube, name: str) -> str:
    kube.create(
        "images",
        image_manifest(name, providerRef={"name": "ucloudstack"}, source={"vm": {"vmID": "vm-b1"}}),
    )
    return str(kube.wait_ready("images", name, timeout=90)["status"]["externalID"])


def _base_manifest(object_name: str, source: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "kind": "BaseImage",
        "metadata": {"name": object_name},
        "spec": {"providerRef": {"name": "ucloudstack"}, "source": source, **spec},
    }


def _reason(kube: Kube, name: str, type_: str) -> str | None:
    cond = kube.condition("baseimages", name, type_) or {}
    return cond.get("reason") if cond.get("status") == "True" else None


def test_base_image_waits_for_its_image_clones_it_and_delete_removes_it(
    kube: Kube, emulator: Emulator
) -> None:
    _ucloudstack_provider(kube, emulator)
    kube.create("baseimages", _base_manifest("golden", {"imageRef": {"name": "web"}}, name="g-1"))
    wait_for(
        lambda: _reason(kube, "golden", "Reconciling") == "WaitingForImage",
        timeout=30,
        what="the BaseImage to wait for Image 'web'",
    )

    source_id = _vm_image(kube, "web")
    obj = kube.wait_ready("baseimages", "golden", timeout=60)

    status = obj["status"]
    base_id = status["externalID"]
    assert status["phase"] == "Ready"
    assert status["sourceExternalID"] == source_id
    assert status["permission"] == "all"  # the emulator's base_image_permission default
    listed = _base_images(emulator)
    assert listed[base_id]["Name"] == "g-1" and listed[base_id]["Permission"] == "all"
    info = _describe(emulator, base_id)
    assert info is not None
    assert (info["ImageType"], info["ImageFrom"]) == ("Base", source_id)
    kube.wait_event("golden", "Cloning", "Ready")

    kube.delete("baseimages", "golden")

    wait_for(
        lambda: kube.get("baseimages", "golden") is None,
        timeout=60,
        what="the BaseImage to be gone (finalizer released)",
    )
    assert _describe(emulator, base_id) is None
    assert base_id not in _base_images(emulator)
    assert _describe(emulator, source_id) is not None  # the custom image is not ours to delete


def test_orphan_keeps_the_base_image_in_the_cloud(kube: Kube, emulator: Emulator) -> None:
    _ucloudstack_provider(kube, emulator)
    source_id = _vm_image(kube, "web")
    kube.create(
        "baseimages",
        _base_manifest("kept", {"externalID": source_id}, name="g-kept", deletionPolicy="Orphan"),
    )
    base_id = kube.wait_ready("baseimages", "kept", timeout=60)["status"]["externalID"]

    kube.delete("baseimages", "kept")

    wait_for(
        lambda: kube.get("baseimages", "kept") is None,
        timeout=60,
        what="the BaseImage to be gone (finalizer released)",
    )
    assert base_id in _base_images(emulator)
    info = _describe(emulator, base_id)
    assert info is not None and info["ImageStatus"] == "Available"


def test_image_of_another_provider_and_provider_of_another_type_stall(
    kube: Kube, emulator: Emulator
) -> None:
    _ucloudstack_provider(kube, emulator)
    # An argon Image (the kube fixture's provider) cannot be cloned by ucloudstack.
    kube.create("images", image_manifest("argon-img"))
    kube.create(
        "baseimages", _base_manifest("mixed", {"imageRef": {"name": "argon-img"}}, name="g-m")
    )
    # And an argon provider cannot clone at all.
    kube.create(
        "baseimages",
        {
            "kind": "BaseImage",
            "metadata": {"name": "on-argon"},
            "spec": {"providerRef": {"name": "argon"}, "source": {"externalID": "x"}, "name": "a"},
        },
    )

    wait_for(
        lambda: _reason(kube, "mixed", "Stalled") == "ProviderMismatch",
        timeout=30,
        what="BaseImage 'mixed' to stall with ProviderMismatch",
    )
    wait_for(
        lambda: _reason(kube, "on-argon", "Stalled") == "Unsupported",
        timeout=30,
        what="BaseImage 'on-argon' to stall with Unsupported",
    )
    message = (kube.condition("baseimages", "on-argon", "Stalled") or {})["message"]
    assert "argon provider 'argon'" in message and "'ucloudstack'" in message


def test_delete_of_a_base_image_whose_provider_never_existed_lets_go(kube: Kube) -> None:
    # No clone was ever sent (status.sourceExternalID was never written ahead): nothing to
    # wait for the provider about.
    source = {"externalID": "img-x"}
    kube.create(
        "baseimages",
        _base_manifest("nowhere", source, providerRef={"name": "nope"}, name="g-nowhere"),
    )
    wait_for(
        lambda: _reason(kube, "nowhere", "Reconciling") == "WaitingForProvider",
        timeout=30,
        what="the BaseImage to wait for its provider",
    )

    kube.delete("baseimages", "nowhere")

    wait_for(lambda: kube.get("baseimages", "nowhere") is None, timeout=60, what="gone")

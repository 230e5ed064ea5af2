"""One owner per cloud image on the real API server: an Image adopting another Image's cloud
image is refused naming the owner, and deleting it leaves that cloud image alone."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import Emulator, Kube, image_manifest, wait_for

pytestmark = pytest.mark.integration


def test_a_second_owner_is_refused_and_its_deletion_deletes_nothing(
    kube: Kube, emulator: Emulator
) -> None:
    kube.create("images", image_manifest("owner"))
    taken = kube.wait_ready("images", "owner")["status"]["externalID"]
    intruder = image_manifest("intruder", displayName="Overwritten")
    intruder["metadata"]["annotations"] = {"imageops.io/external-id": taken}

    kube.create("images", intruder)

    def refused() -> dict[str, Any] | None:
        found = kube.condition("images", "intruder", "Stalled") or {}
        return found if found.get("reason") == "AdoptionConflict" else None

    stalled = wait_for(refused, timeout=30, what="the adoption refused")
    assert "'owner'" in stalled["message"]
    assert emulator.argon_images()[taken]["displayName"] == "Image owner"  # not overwritten

    kube.delete("images", "intruder")
    wait_for(lambda: kube.get("images", "intruder") is None, timeout=30, what="intruder gone")

    assert taken in emulator.argon_images()
    ready = kube.condition("images", "owner", "Ready") or {}
    assert ready.get("status") == "True"

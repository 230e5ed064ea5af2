"""The `registry` provider end to end: kube-apiserver, the operator process, a real registry."""

from __future__ import annotations

from typing import Any

import pytest

from image_operator.providers.oci import TRACK_SOURCE, key_tag
from tests.integration.conftest import Kube, image_manifest, wait_for
from tests.peers.registry import RegistryServer, manifest_status, push_image, tags

pytestmark = pytest.mark.integration


@pytest.fixture
def registry_provider(kube: Kube, oci_registry: RegistryServer) -> str:
    """An anonymous ImageProvider of type registry, Ready, in the test's namespace."""
    kube.create(
        "imageproviders",
        {
            "kind": "ImageProvider",
            "metadata": {"name": "registry"},
            "spec": {"type": "registry", "endpoint": oci_registry.url, "pollIntervalSeconds": 1},
        },
    )
    provider = kube.wait_ready("imageproviders", "registry", timeout=60)
    assert oci_registry.host in provider["status"]["endpointInfo"]
    return "registry"


def test_image_is_copied_pinned_and_deleted(
    kube: Kube, oci_registry: RegistryServer, registry_provider: str
) -> None:
    source = push_image(oci_registry, f"upstream-{kube.namespace}/app", "v1", layers=2)
    manifest = image_manifest("app", providerRef={"name": registry_provider})
    manifest["spec"]["source"] = {"repository": {"image": source.reference}}
    created = kube.create("images", manifest)
    uid = created["metadata"]["uid"]
    repository = f"{kube.namespace}/app"

    obj = kube.wait_ready("images", "app", timeout=60)

    status = obj["status"]
    assert status["externalID"] == f"{oci_registry.host}/{repository}@{source.digest}"
    assert status["providerType"] == "registry"
    assert status["phase"] == "Ready"
    assert manifest_status(oci_registry, repository, source.digest) == 200
    assert tags(oci_registry, repository) == sorted(["v1", key_tag(uid)])
    kube.wait_event("app", "Ready")
    # The copy is complete when its call returns: no pass found it in progress, so there was
    # no `Creating` to report (one event per transition a user can see).
    assert "Creating" not in {event.reason for event in kube.events("app")}

    kube.delete("images", "app")

    wait_for(
        lambda: kube.get("images", "app") is None,
        timeout=60,
        what="the Image to be gone (finalizer released)",
    )
    assert manifest_status(oci_registry, repository, source.digest) == 404
    assert tags(oci_registry, repository) == []
    # The source was only read.
    assert manifest_status(oci_registry, source.repository, source.digest) == 200


def test_tracked_source_is_copied_again_when_its_tag_moves(
    kube: Kube, oci_registry: RegistryServer, registry_provider: str
) -> None:
    upstream = f"upstream-{kube.namespace}/tracked"
    first = push_image(oci_registry, upstream, "stable")
    manifest = image_manifest(
        "tracked",
        providerRef={"name": registry_provider},
        tags={TRACK_SOURCE: "true"},
    )
    manifest["spec"]["source"] = {"repository": {"image": first.reference}}
    kube.create("images", manifest)
    repository = f"{kube.namespace}/tracked"
    pinned = kube.wait_ready("images", "tracked")["status"]["externalID"]
    assert pinned.endswith(f"@{first.digest}")

    second = push_image(oci_registry, upstream, "stable", content=b"rebuilt\n")
    # Nothing watches the registry: a spec change is what makes the operator look again.
    kube.patch("images", "tracked", {"spec": {"displayName": "Tracked, rebuilt"}})

    def repinned() -> dict[str, Any] | None:
        obj = kube.get("images", "tracked") or {}
        status = obj.get("status") or {}
        moved = str(status.get("externalID", "")).endswith(f"@{second.digest}")
        return obj if moved and status.get("phase") == "Ready" else None

    wait_for(repinned, timeout=60, what="the Image Ready with the new digest")
    assert manifest_status(oci_registry, repository, first.digest) == 404
    assert manifest_status(oci_registry, repository, second.digest) == 200
    reasons = kube.wait_event("tracked", "Updated")
    # The update's new identity went straight to status: the old one was never "missing".
    assert "CloudImageMissing" not in reasons

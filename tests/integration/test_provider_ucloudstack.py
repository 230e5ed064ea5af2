"""The ucloudstack provider end to end: real kube-apiserver, the operator process, the emulator.

The cloud side is checked with the SDK directly (not through the provider under test).
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from ucloud.client import Client  # type: ignore[import-untyped]
from ucloud.core.utils.middleware import Middleware  # type: ignore[import-untyped]

from tests.integration.conftest import Emulator, Kube, image_manifest, wait_for

pytestmark = pytest.mark.integration

# The keys the session emulator's ucloudstack section accepts (tests/integration/conftest.py),
# and the CompanyID its account defaults to.
PUBLIC_KEY = "it-ucloudstack-pk"
PRIVATE_KEY = "it-ucloudstack-sk"
COMPANY = "200000236"
REGION = "cn"


def _cloud(emulator: Emulator) -> Client:
    return Client(
        {
            "base_url": emulator.thread.url("ucloudstack"),
            "region": REGION,
            "public_key": PUBLIC_KEY,
            "private_key": PRIVATE_KEY,
            "max_retries": 0,
        },
        middleware=Middleware(),
    )


def _describe(emulator: Emulator, image_id: str) -> dict[str, Any] | None:
    infos = _cloud(emulator).invoke("DescribeImage", {"ImageIDs": [image_id]})["Infos"]
    return dict(infos[0]) if infos else None


def _ucloudstack_provider(kube: Kube, emulator: Emulator) -> None:
    kube.core.create_namespaced_secret(
        kube.namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="ucloudstack-keys"),
            string_data={
                "publicKey": PUBLIC_KEY,
                "privateKey": PRIVATE_KEY,
                "companyID": COMPANY,
            },
        ),
    )
    kube.create(
        "imageproviders",
        {
            "kind": "ImageProvider",
            "metadata": {"name": "ucloudstack"},
            "spec": {
                "type": "ucloudstack",
                "endpoint": emulator.thread.url("ucloudstack"),
                "region": REGION,
                "credentialsSecretRef": {"name": "ucloudstack-keys"},
                "pollIntervalSeconds": 1,
            },
        },
    )
    provider = kube.wait_ready("imageproviders", "ucloudstack", timeout=60)
    assert str(COMPANY) not in provider["status"]["endpointInfo"]  # a Secret key
    assert provider["status"]["endpointInfo"].startswith(f"ucloudstack region {REGION}:")


def test_vm_image_becomes_ready_and_delete_removes_it_from_the_cloud(
    kube: Kube, emulator: Emulator
) -> None:
    _ucloudstack_provider(kube, emulator)
    manifest = image_manifest(
        "vm-web",
        providerRef={"name": "ucloudstack"},
        source={"vm": {"vmID": "vm-it0001"}},
        description="web tier",
        tags={"team": "platform"},
    )

    created = kube.create("images", manifest)
    obj = kube.wait_ready("images", "vm-web", timeout=90)

    status = obj["status"]
    external_id = status["externalID"]
    assert status["phase"] == "Ready" and status["progress"] == 100
    assert status["providerType"] == "ucloudstack"
    info = _describe(emulator, external_id)
    assert info is not None
    assert info["ImageStatus"] == "Available"
    assert info["ImageName"] == "vm-web" and info["ImageDescription"] == "web tier"
    assert info["ImageFrom"] == "vm-it0001-boot"
    tags = {tag["Key"]: tag["Value"] for tag in info["Tags"]}
    assert tags == {"imageops.io/uid": created["metadata"]["uid"], "team": "platform"}
    assert {"Creating", "Ready"} <= {event.reason for event in kube.events("vm-web")}

    kube.delete("images", "vm-web")

    wait_for(
        lambda: kube.get("images", "vm-web") is None,
        timeout=60,
        what="the Image to be gone (finalizer released)",
    )
    assert _describe(emulator, external_id) is None

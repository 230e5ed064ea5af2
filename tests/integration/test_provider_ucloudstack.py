"""The ucloudstack provider end to end: real kube-apiserver, the operator process, the emulator.

The cloud side is checked with the SDK directly (not through the provider under test).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from kubernetes import client
from ucloud.client import Client  # type: ignore[import-untyped]
from ucloud.core.utils.middleware import Middleware  # type: ignore[import-untyped]

from tests.integration.conftest import Emulator, Kube, image_manifest, wait_for
from tests.loopback import LOOPBACK_ENV

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


def _download_url(
    control_plane: Any, namespace: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "image_operator", "download-url", *args, "-n", namespace],
        env={**control_plane.env(), **LOOPBACK_ENV},  # the emulator's endpoint
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_download_url_prints_a_link_that_fetches_the_image_file(
    kube: Kube, emulator: Emulator, control_plane: Any
) -> None:
    _ucloudstack_provider(kube, emulator)
    kube.create(
        "images",
        image_manifest(
            "vm-dl", providerRef={"name": "ucloudstack"}, source={"vm": {"vmID": "vm-it0002"}}
        ),
    )
    kube.create("images", image_manifest("on-argon"))
    kube.wait_ready("images", "vm-dl", timeout=90)
    kube.wait_ready("images", "on-argon", timeout=90)

    run = _download_url(control_plane, kube.namespace, "img/vm-dl")
    assert run.returncode == 0, run.stderr
    url = run.stdout.strip()
    assert url.startswith(emulator.thread.url("ucloudstack"))  # the link alone on stdout
    assert "qcow2 file of cloud image" in run.stderr and "expires at" in run.stderr
    fetched = httpx.get(url, timeout=60)
    assert fetched.status_code == 200
    assert fetched.content[:4] == b"QFI\xfb"  # a qcow2 file

    as_json = _download_url(control_plane, kube.namespace, "img/vm-dl", "-o", "json")
    document = json.loads(as_json.stdout)
    assert document["format"] == "qcow2" and document["expiresAt"] > time.time()

    # A provider whose cloud has no such link, and an Image that does not exist: a sentence.
    refused = _download_url(control_plane, kube.namespace, "img/on-argon")
    assert refused.returncode == 1
    assert "type argon, whose cloud hands out no download links" in refused.stderr
    missing = _download_url(control_plane, kube.namespace, "img/nope")
    assert missing.returncode == 1 and "HTTP 404" in missing.stderr
    assert "Traceback" not in refused.stderr + missing.stderr

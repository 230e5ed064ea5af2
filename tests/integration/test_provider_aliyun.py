"""The aliyun provider end to end: real kube-apiserver, the real operator process and the
emulator's ECS vendor (signed ECS RPC through the official SDK), importing from its OSS."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest
from kubernetes import client

from tests.integration.conftest import Emulator, Kube, provider_image, wait_for

pytestmark = pytest.mark.integration

REGION = "cn-hangzhou"
UID_TAG = "imageops.io/uid"


def _images(emulator: Emulator) -> dict[str, dict[str, Any]]:
    """ImageId -> the image as DescribeImages shows it, from the admin dump (no faults apply)."""
    url = emulator.thread.url("aliyun") + "/_emulator/state"
    state = httpx.get(url, timeout=30).raise_for_status().json()
    return {image["ImageId"]: image for image in state["images"]}


def _add_aliyun_provider(kube: Kube, emulator: Emulator) -> str:
    """A Secret with the emulator's keys and a Ready ImageProvider of type aliyun."""
    settings = emulator.thread.emulator.config.aliyun
    key_id, key_secret = next(iter(settings.access_keys.items()))
    kube.core.create_namespaced_secret(
        kube.namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="aliyun-keys"),
            string_data={"accessKeyId": key_id, "accessKeySecret": key_secret},
        ),
    )
    endpoint = emulator.thread.url("aliyun")
    kube.create(
        "imageproviders",
        {
            "kind": "ImageProvider",
            "metadata": {"name": "aliyun"},
            "spec": {
                "type": "aliyun",
                "endpoint": endpoint,
                "region": REGION,
                "credentialsSecretRef": {"name": "aliyun-keys"},
                "pollIntervalSeconds": 1,
            },
        },
    )
    provider = kube.wait_ready("imageproviders", "aliyun", timeout=60)
    assert f"region {REGION}" in provider["status"]["endpointInfo"]
    assert key_secret not in str(provider["status"])
    return endpoint


def test_url_import_becomes_ready_and_is_deleted(kube: Kube, emulator: Emulator) -> None:
    endpoint = _add_aliyun_provider(kube, emulator)
    key = f"{kube.namespace}/ubuntu-22.04.qcow2"
    url = f"{endpoint}/oss/it-images/{quote(key)}"
    httpx.put(url, content=b"QFI\xfb" + b"\0" * 4096, timeout=30).raise_for_status()
    kube.create(
        "images",
        {
            "kind": "Image",
            "metadata": {"name": "ubuntu"},
            "spec": {
                "providerRef": {"name": "aliyun"},
                "source": {
                    "url": {
                        "url": url,
                        "format": "qcow2",
                        "os": {"type": "linux", "distribution": "Ubuntu", "version": "22.04"},
                    }
                },
                "displayName": "Ubuntu 22.04",
                "description": "Imported from OSS",
                "tags": {"env": "it"},
            },
        },
    )

    obj = kube.wait_ready("images", "ubuntu", timeout=90)

    status = obj["status"]
    external_id = status["externalID"]
    assert external_id.startswith("m-")
    assert (status["phase"], status["progress"], status["providerType"]) == (
        "Ready",
        100,
        "aliyun",
    )
    stored = _images(emulator)[external_id]
    assert stored["RegionId"] == REGION
    assert stored["Status"] == "Available"
    assert stored["ImageName"].startswith("ubuntu-")
    assert stored["Description"] == "Imported from OSS"
    assert stored["Platform"] == "Ubuntu"
    mapping = stored["DiskDeviceMappings"]["DiskDeviceMapping"][0]
    assert (mapping["ImportOSSBucket"], mapping["ImportOSSObject"]) == ("it-images", key)
    tags = {t["TagKey"]: t["TagValue"] for t in stored["Tags"]["Tag"]}
    assert tags == {UID_TAG: obj["metadata"]["uid"], "env": "it"}
    kube.wait_event("ubuntu", "Creating", "Ready")

    kube.delete("images", "ubuntu")

    wait_for(
        lambda: kube.get("images", "ubuntu") is None,
        timeout=60,
        what="the Image to be gone (finalizer released)",
    )
    assert external_id not in _images(emulator)


def test_a_copy_within_aliyun_is_made_with_copy_image(kube: Kube, emulator: Emulator) -> None:
    endpoint = _add_aliyun_provider(kube, emulator)
    url = f"{endpoint}/oss/it-images/{quote(kube.namespace)}/debian.qcow2"
    httpx.put(url, content=b"QFI\xfb" + b"\0" * 4096, timeout=30).raise_for_status()
    os_info = {"type": "linux", "distribution": "Debian", "version": "12"}
    url_source = {"url": {"url": url, "format": "qcow2", "os": os_info}}
    kube.create("images", provider_image("debian", "aliyun", url_source))
    kube.create(
        "images",
        provider_image("debian-copy", "aliyun", {"image": {"imageRef": {"name": "debian"}}}),
    )

    copy = kube.wait_ready("images", "debian-copy", timeout=120)
    original = kube.wait_ready("images", "debian", timeout=30)

    source_id = original["status"]["externalID"]
    copy_id = copy["status"]["externalID"]
    assert copy_id != source_id
    assert copy["status"]["copiedFrom"] == {
        "image": "debian",
        "provider": "aliyun",
        "externalID": source_id,
    }
    stored = _images(emulator)[copy_id]
    assert (stored["IsCopied"], stored["Status"], stored["RegionId"]) == (True, "Available", REGION)
    assert stored["Description"] == "debian-copy description"
    tags = {t["TagKey"]: t["TagValue"] for t in stored["Tags"]["Tag"]}
    assert tags == {UID_TAG: copy["metadata"]["uid"]}
    copying = [e for e in kube.events("debian-copy") if e.reason == "Copying"]
    assert copying and f"copying image '{source_id}'" in (copying[0].message or "")

    kube.delete("images", "debian-copy")
    wait_for(
        lambda: copy_id not in _images(emulator),
        timeout=60,
        what="the copy to be deleted from ECS",
    )
    assert _images(emulator)[source_id]["Status"] == "Available"  # the source is untouched

"""`spec.sharing` end to end on the local control plane: the operator process shares an aliyun
Image (the emulator's ECS) with the accounts the spec lists, narrows the list when the spec
does, unshares when the field is removed, and the API server refuses what the CEL rules judge."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest
from kubernetes.client.exceptions import ApiException

from image_operator.api.provider import ImageProviderSpec
from image_operator.providers.factory import build_provider
from tests.integration.conftest import Emulator, Kube, provider_image, wait_for
from tests.integration.test_provider_aliyun import REGION, _add_aliyun_provider, _images
from tests.loopback import LOOPBACK_ENDPOINTS

pytestmark = pytest.mark.integration

A, B = "1111111111", "2222222222"


def _shared_with(emulator: Emulator, image_id: str) -> list[str]:
    """The accounts ECS (the emulator) shares the image with, asked through the SDK."""
    settings = emulator.thread.emulator.config.aliyun
    key_id, key_secret = next(iter(settings.access_keys.items()))
    spec = ImageProviderSpec.model_validate(
        {
            "type": "aliyun",
            "endpoint": emulator.thread.url("aliyun"),
            "region": REGION,
            "credentialsSecretRef": {"name": "k"},
        }
    )
    keys = {"accessKeyId": key_id, "accessKeySecret": key_secret}
    sharer = build_provider(spec, keys, endpoints=LOOPBACK_ENDPOINTS).sharer
    assert sharer is not None
    return [m.member_id for m in sharer.list_members(image_id)]


def _sharing_at(kube: Kube, generation: int) -> list[dict[str, Any]] | None:
    obj = kube.get("images", "shared") or {}
    status = obj.get("status") or {}
    ready = [c for c in status.get("conditions") or [] if c.get("type") == "Ready"]
    if status.get("observedGeneration") != generation or not ready:
        return None
    if ready[0].get("status") != "True":
        return None
    return list(status.get("sharing") or [])


def test_share_narrow_and_unshare_an_aliyun_image(kube: Kube, emulator: Emulator) -> None:
    endpoint = _add_aliyun_provider(kube, emulator)
    url = f"{endpoint}/oss/it-images/{quote(kube.namespace)}/shared.qcow2"
    httpx.put(url, content=b"QFI\xfb" + b"\0" * 4096, timeout=30).raise_for_status()
    os_info = {"type": "linux", "distribution": "Ubuntu", "version": "22.04"}
    source = {"url": {"url": url, "format": "qcow2", "os": os_info}}
    sharing = {"members": [{"id": A}, {"id": B}]}
    kube.create("images", provider_image("shared", "aliyun", source, sharing=sharing))

    obj = kube.wait_ready("images", "shared", timeout=90)

    image_id = obj["status"]["externalID"]
    assert [(m["id"], m["state"]) for m in obj["status"]["sharing"]] == [
        (A, "Shared"),
        (B, "Shared"),
    ]
    assert _shared_with(emulator, image_id) == [A, B]
    assert _images(emulator)[image_id]["IsSelfShared"] == "True"
    kube.wait_event("shared", "SharingChanged")

    kube.patch("images", "shared", {"spec": {"sharing": {"members": [{"id": B}]}}})
    narrowed = wait_for(lambda: _sharing_at(kube, 2), timeout=60, what="sharing narrowed")
    assert [m["id"] for m in narrowed] == [B]
    assert _shared_with(emulator, image_id) == [B]

    kube.patch("images", "shared", {"spec": {"sharing": None}})
    wait_for(
        lambda: _sharing_at(kube, 3) == [] or None,
        timeout=60,
        what="sharing removed from status",
    )
    assert _shared_with(emulator, image_id) == []
    assert _images(emulator)[image_id]["IsSelfShared"] == "False"


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ({"sharing": {"accept": True}}, "spec.sharing.accept", "set spec.deletionPolicy: Orphan"),
        (
            {"sharing": {"accept": True, "members": [{"id": A}]}, "deletionPolicy": "Orphan"},
            "spec.sharing.accept",
            "exclude each other",
        ),
        (
            {"sharing": {"members": [{"id": A}]}, "openstack": {"visibility": "private"}},
            "spec.openstack.visibility",
            "must be shared",
        ),
    ],
)
def test_the_api_server_refuses_what_cel_judges(
    kube: Kube, spec: dict[str, Any], field: str, words: str
) -> None:
    source = {"repository": {"image": "nvidia/cuda:12"}}
    with pytest.raises(ApiException) as refused:
        kube.create("images", provider_image("refused", "argon", source, **spec))
    assert refused.value.status == 422
    assert field in str(refused.value.body)
    assert words in str(refused.value.body)

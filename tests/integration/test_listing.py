"""CommunityListing end to end: real kube-apiserver, the real operator process, and an emulator
whose CompShare review rejects listings named like `违规…` (seed 000's PublishCompShareImage)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kubernetes import client

from image_operator_dev.emulator.config import CompShareSettings, EmulatorConfig
from image_operator_dev.emulator.server import EmulatorThread
from tests.integration.conftest import Kube, image_manifest, wait_for

pytestmark = pytest.mark.integration

REJECT_REASON = "the listing name breaks the community guidelines (emulated review)"
PUBLIC_KEY, PRIVATE_KEY = "it-listing-pk", "it-listing-sk"
COVER_BYTES = b"\x89PNG\r\n\x1a\n a tiny cover"
COVER_B64 = base64.b64encode(COVER_BYTES).decode()


@pytest.fixture(scope="module")
def compshare() -> Iterator[EmulatorThread]:
    """An emulator of its own: the session's has no review rule, this one rejects names
    containing 违规. Reviews last long enough for a poll to see InReview."""
    config = EmulatorConfig(
        compshare=CompShareSettings(
            enabled=True,
            keys={PUBLIC_KEY: PRIVATE_KEY},
            making_seconds=1.0,
            review_seconds=3.0,
            reject_listing_pattern="违规",
            reject_reason=REJECT_REASON,
        ),
    )
    thread = EmulatorThread(config)
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()


def _state(emulator: EmulatorThread) -> dict[str, Any]:
    url = emulator.url("compshare") + "/_emulator/state"
    return dict(httpx.get(url, timeout=30).raise_for_status().json())


def _group(emulator: EmulatorThread, group_id: str) -> dict[str, Any]:
    return next(g for g in _state(emulator)["groups"] if g["GroupId"] == group_id)


def _ready_compshare_image(kube: Kube, emulator: EmulatorThread, name: str) -> str:
    """A compshare ImageProvider and a container-made Image `name` that is Ready; its ID."""
    kube.core.create_namespaced_secret(
        kube.namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="compshare-keys"),
            string_data={"publicKey": PUBLIC_KEY, "privateKey": PRIVATE_KEY},
        ),
    )
    kube.create(
        "imageproviders",
        {
            "kind": "ImageProvider",
            "metadata": {"name": "compshare"},
            "spec": {
                "type": "compshare",
                "endpoint": emulator.url("compshare"),
                "region": "cn-wlcb",
                "zone": "cn-wlcb-01",
                "credentialsSecretRef": {"name": "compshare-keys"},
                "pollIntervalSeconds": 1,
            },
        },
    )
    kube.wait_ready("imageproviders", "compshare", timeout=60)
    kube.create(
        "images",
        {
            "kind": "Image",
            "metadata": {"name": name},
            "spec": {
                "providerRef": {"name": "compshare"},
                "source": {"vm": {"vmID": "uhost-container1"}},
                "displayName": "AI environment",
                "description": "PyTorch 2.1",
            },
        },
    )
    image = kube.wait_ready("images", name, timeout=90)
    return str(image["status"]["externalID"])


def _listing(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "kind": "CommunityListing",
        "metadata": {"name": name},
        "spec": {
            "imageRef": {"name": "ai-env"},
            "versionName": "v1.0",
            "versionDesc": "首次发布",
            "price": "0",
            "tags": ["深度学习", "PyTorch"],
            "description": "预装PyTorch 2.1和CUDA 12.1",
            "supportedGpuTypes": ["4090", "A100"],
            "autoStart": True,
            **spec,
        },
    }


def _reason(kube: Kube, name: str, type_: str) -> str | None:
    cond = kube.condition("communitylistings", name, type_)
    return str(cond["reason"]) if cond and cond.get("status") == "True" else None


def _versions(kube: Kube, name: str) -> list[tuple[str, str]]:
    status = (kube.get("communitylistings", name) or {}).get("status") or {}
    return [(v["versionName"], v["state"]) for v in status.get("versions") or []]


def test_listing_is_reviewed_published_versioned_and_withdrawn(
    kube: Kube, compshare: EmulatorThread
) -> None:
    source_id = _ready_compshare_image(kube, compshare, "ai-env")
    kube.core.create_namespaced_config_map(
        kube.namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="covers"), binary_data={"ai.png": COVER_B64}
        ),
    )
    kube.create(
        "communitylistings",
        _listing(
            "my-ai-env",
            communityImageName="我的AI环境",
            cover={"configMapKeyRef": {"name": "covers", "key": "ai.png"}},
        ),
    )

    wait_for(
        lambda: _reason(kube, "my-ai-env", "Reconciling") == "InReview",
        timeout=60,
        what="the listing to be in review",
    )
    listing = kube.wait_ready("communitylistings", "my-ai-env", timeout=60)

    status = listing["status"]
    group_id = status["groupID"]
    assert status["phase"] == "Published"
    assert [(v["versionName"], v["state"]) for v in status["versions"]] == [("v1.0", "Published")]
    first_copy = status["versions"][0]["imageID"]
    assert first_copy != source_id  # a copy the listing owns, not the Image itself
    group = _group(compshare, group_id)
    (published,) = group["Data"]
    assert (published["CompShareImageId"], published["Status"], published["Name"]) == (
        first_copy,
        "Available",
        "我的AI环境",
    )
    assert (published["VersionName"], published["VersionDesc"], published["Tags"]) == (
        "v1.0",
        "首次发布",
        ["深度学习", "PyTorch"],
    )
    assert (published["SupportedGpuTypes"], published["AutoStart"]) == (["4090", "A100"], True)
    digest = hashlib.sha256(COVER_B64.encode()).hexdigest()
    assert published["Cover"].endswith(f"/{digest}.png")  # the ConfigMap's picture was sent
    kube.wait_event("my-ai-env", "Copying", "Submitted", "Published")

    # A new versionName: a new copy, published into the same group; history keeps v1.0.
    kube.patch("communitylistings", "my-ai-env", {"spec": {"versionName": "v1.1"}})
    wait_for(
        lambda: _versions(kube, "my-ai-env") == [("v1.0", "Published"), ("v1.1", "Published")],
        timeout=90,
        what="v1.1 published next to v1.0",
    )
    listing = kube.wait_ready("communitylistings", "my-ai-env", timeout=30)
    assert listing["status"]["groupID"] == group_id
    group = _group(compshare, group_id)
    assert [(v["VersionName"], v["Status"]) for v in group["Data"]] == [
        ("v1.0", "Available"),
        ("v1.1", "Available"),
    ]
    copies = {v["imageID"] for v in listing["status"]["versions"]}
    assert len(copies) == 2

    kube.delete("communitylistings", "my-ai-env")

    wait_for(
        lambda: kube.get("communitylistings", "my-ai-env") is None,
        timeout=60,
        what="the listing to be gone (finalizer released)",
    )
    state = _state(compshare)
    images = {i["CompShareImageId"] for i in state["images"]}
    assert source_id in images and not copies & images  # copies terminated, Image untouched
    group = _group(compshare, group_id)
    assert [v["Status"] for v in group["Data"]] == ["Offline", "Offline"]
    kube.wait_event("my-ai-env", "Withdrawn")


def test_rejected_listing_stalls_with_the_reason_and_publishes_once_fixed(
    kube: Kube, compshare: EmulatorThread
) -> None:
    _ready_compshare_image(kube, compshare, "ai-env")
    kube.create("communitylistings", _listing("bad-name", communityImageName="违规镜像"))

    wait_for(
        lambda: _reason(kube, "bad-name", "Stalled") == "Rejected",
        timeout=60,
        what="the review to reject the listing",
    )
    listing = kube.get("communitylistings", "bad-name") or {}
    stalled = kube.condition("communitylistings", "bad-name", "Stalled") or {}
    assert REJECT_REASON in stalled["message"]
    assert listing["status"]["phase"] == "Rejected"
    assert listing["status"]["versions"][0]["reason"] == REJECT_REASON
    kube.wait_event("bad-name", "Rejected")
    assert any(e.reason == "Rejected" and e.type == "Warning" for e in kube.events("bad-name"))

    kube.patch("communitylistings", "bad-name", {"spec": {"communityImageName": "AI环境"}})

    listing = kube.wait_ready("communitylistings", "bad-name", timeout=60)
    assert listing["status"]["phase"] == "Published"
    assert kube.condition("communitylistings", "bad-name", "Stalled") is None
    group = _group(compshare, listing["status"]["groupID"])
    # The rejected submission was withdrawn by the new one: one version, published.
    assert [(v["VersionName"], v["Status"], v["Name"]) for v in group["Data"]] == [
        ("v1.0", "Available", "AI环境")
    ]


def test_an_image_of_another_provider_type_is_unsupported(kube: Kube) -> None:
    kube.create("images", image_manifest("argon-img"))
    kube.wait_ready("images", "argon-img", timeout=60)
    body = _listing("on-argon")
    body["spec"]["imageRef"] = {"name": "argon-img"}
    kube.create("communitylistings", body)

    wait_for(
        lambda: _reason(kube, "on-argon", "Stalled") == "Unsupported",
        timeout=60,
        what="the listing to stall as Unsupported",
    )
    stalled = kube.condition("communitylistings", "on-argon", "Stalled") or {}
    assert "compshare" in stalled["message"] and "spec.imageRef" in stalled["message"]

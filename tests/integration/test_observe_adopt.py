"""Observe-only Images and adoption by selector on the real API server, with the operator
process and the emulator: an observe-only Image mirrors a cloud image it did not make and its
deletion leaves it, with no mutating request at all; an Image adopting by tag takes the one
match; two matches stall naming both; the CEL rules refuse contradictory policies."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.integration.conftest import Emulator, Kube, image_manifest, run_command, wait_for
from tests.integration.test_provider_ucloudstack import _cloud, _describe, _ucloudstack_provider

pytestmark = pytest.mark.integration

MUTATING = ("POST", "PUT", "PATCH", "DELETE")


def argon_mutations(emulator: Emulator) -> dict[str, int]:
    """The session emulator's count of Argon requests that change something, per route."""
    routes = emulator.stats()["routes"]
    return {
        route: int(entry["count"])
        for route, entry in routes.items()
        if route.split()[0] in MUTATING and "/_emulator/" not in route
    }


def condition(kube: Kube, name: str, type_: str, reason: str) -> dict[str, Any]:
    def seen() -> dict[str, Any] | None:
        found = kube.condition("images", name, type_) or {}
        return found if found.get("status") == "True" and found.get("reason") == reason else None

    return wait_for(seen, timeout=60, what=f"{type_}={reason} on images/{name}")


def test_an_observe_only_image_mirrors_the_cloud_and_its_deletion_changes_nothing(
    kube: Kube, emulator: Emulator, control_plane: Any
) -> None:
    made = emulator.create_directly(f"observed-{kube.namespace}")["name"]
    wait_for(
        lambda: (emulator.argon_images().get(made) or {}).get("status", {}).get("phase") == "Ready",
        timeout=30,
        what="the cloud image made outside the operator to be ready",
    )
    before = argon_mutations(emulator)
    manifest = image_manifest("watcher", managementPolicies=["Observe"])
    manifest["metadata"]["annotations"] = {"imageops.io/external-id": made}

    kube.create("images", manifest)
    ready = condition(kube, "watcher", "Ready", "Observed")
    status = (kube.get("images", "watcher") or {})["status"]

    assert status["externalID"] == made and status["phase"] == "Ready"
    assert "spec.managementPolicies: Observe" in ready["message"]
    run_command(
        str(control_plane.kubectl),
        "delete",
        "image",
        "watcher",
        "-n",
        kube.namespace,
        "--wait=true",
        "--timeout=60s",
        env=control_plane.env(),
    )
    assert kube.get("images", "watcher") is None
    assert "Orphaned" in kube.wait_event("watcher", "Orphaned")
    stored = emulator.argon_images()[made]
    assert stored["displayName"] == made  # the spec's "Image watcher" was never pushed
    assert argon_mutations(emulator) == before


def _seed(emulator: Emulator, name: str, tags: dict[str, str]) -> str:
    """A ucloudstack custom image made straight through the SDK (not by the operator)."""

    def encoded(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    answer = _cloud(emulator).invoke(
        "CreateCustomImage",
        {
            "VMID": "vm-it0001",
            "ImageName": name,
            "TagKeyValuePairs": [f"{encoded(k)}:{encoded(v)}" for k, v in tags.items()],
        },
    )
    return str(answer["ImageID"])


def _custom_images(emulator: Emulator) -> int:
    """How many custom images the ucloudstack cloud holds (a create would add one)."""
    page = _cloud(emulator).invoke("DescribeImage", {"ImageType": "Custom", "Limit": 1})
    return int(page["TotalCount"])


def _adopting(name: str, tags: dict[str, str]) -> dict[str, Any]:
    return image_manifest(
        name,
        providerRef={"name": "ucloudstack"},
        source={"vm": {"vmID": "vm-it0002"}},
        adopt={"selector": {"tags": tags}, "policy": "AdoptOrWait"},
    )


def test_an_image_adopting_by_tag_gets_the_one_match(kube: Kube, emulator: Emulator) -> None:
    _ucloudstack_provider(kube, emulator)
    pool = {"pool": f"one-{kube.namespace}"}
    match = _seed(emulator, f"golden-{kube.namespace[-8:]}", pool)
    _seed(emulator, f"other-{kube.namespace[-8:]}", {"pool": "elsewhere"})
    images = _custom_images(emulator)

    kube.create("images", _adopting("adopter", pool))
    obj = kube.wait_ready("images", "adopter", timeout=90)

    assert obj["status"]["externalID"] == match
    assert "Adopted" in kube.wait_event("adopter", "Adopted")
    info = _describe(emulator, match)
    assert info is not None
    # Adopted, not made: the operator's idempotency tag is not on it.
    assert "imageops.io/uid" not in {tag["Key"] for tag in info["Tags"]}
    assert _custom_images(emulator) == images  # nothing was created


def test_two_matches_stall_naming_both(kube: Kube, emulator: Emulator) -> None:
    _ucloudstack_provider(kube, emulator)
    pool = {"pool": f"two-{kube.namespace}"}
    first = _seed(emulator, f"twin-a-{kube.namespace[-8:]}", pool)
    second = _seed(emulator, f"twin-b-{kube.namespace[-8:]}", pool)
    images = _custom_images(emulator)

    kube.create("images", _adopting("undecided", pool))
    stalled = condition(kube, "undecided", "Stalled", "AdoptionAmbiguous")

    assert first in stalled["message"] and second in stalled["message"]
    assert "spec.adopt.selector.tags" in stalled["message"]
    assert "externalID" not in ((kube.get("images", "undecided") or {}).get("status") or {})
    assert _custom_images(emulator) == images


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"managementPolicies": ["*", "Delete"]}, "list it alone"),
        ({"managementPolicies": ["Create", "Delete"]}, "must include Observe"),
        (
            {
                "managementPolicies": ["Observe"],
                "adopt": {"selector": {"name": "a"}, "policy": "AdoptOrCreate"},
            },
            "needs Create",
        ),
        ({"adopt": {"selector": {"name": "a", "tags": {"k": "v"}}}}, "exactly one of name, tags"),
        ({"adopt": {"selector": {}}}, "exactly one of name, tags"),
        ({"managementPolicies": ["Observe", "Observe"]}, "Duplicate value"),
    ],
)
def test_contradictory_policies_are_refused_at_admission(
    kube: Kube, spec: dict[str, Any], words: str
) -> None:
    with pytest.raises(ApiException) as refused:
        kube.create("images", image_manifest("refused", **spec))

    assert refused.value.status == 422
    assert words in str(refused.value.body)
    assert kube.get("images", "refused") is None

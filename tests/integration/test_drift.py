"""Drift of Ready Images on the real API server: a cloud image deleted or modified behind the
operator's back is noticed within one resync interval of its ImageProvider and handled by the
provider's driftPolicy (Correct: re-created / spec pushed again; Report: Stalled, left alone)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import ARGON_TOKEN, Emulator, Kube, image_manifest, wait_for

pytestmark = pytest.mark.integration

RESYNC = 3  # the provider's resyncIntervalSeconds in these tests
# Noticed within one interval, then one reconcile (or two: forget, then create): the bound
# leaves room for the timer's 5 s tick and the test's own polling on a busy 2-core machine.
NOTICED_WITHIN = RESYNC + 5 + 10


def _argon(emulator: Emulator, method: str, name: str, **kwargs: Any) -> dict[str, Any]:
    """A call to the emulator's Argon API as someone other than the operator would make it."""
    response = emulator.http.request(
        method,
        f"/api/v1/namespaces/default/images/{name}",
        headers={"Authorization": f"Bearer {ARGON_TOKEN}"},
        **kwargs,
    )
    response.raise_for_status()
    return dict(response.json()) if response.content else {}


def _ready_image(kube: Kube, name: str, policy: str = "Correct") -> str:
    kube.patch(
        "imageproviders",
        "argon",
        {"spec": {"resyncIntervalSeconds": RESYNC, "driftPolicy": policy}},
    )
    kube.create("images", image_manifest(name))
    return str(kube.wait_ready("images", name)["status"]["externalID"])


def test_a_cloud_image_deleted_outside_is_created_again(kube: Kube, emulator: Emulator) -> None:
    old = _ready_image(kube, "drift-deleted")

    _argon(emulator, "DELETE", old)

    def recreated() -> dict[str, Any] | None:
        # Argon names carry the Image's UID: made again, the cloud image has the same name.
        obj = kube.get("images", "drift-deleted") or {}
        status = obj.get("status") or {}
        ready = kube.condition("images", "drift-deleted", "Ready") or {}
        again = status.get("drift") and status.get("externalID") in emulator.argon_images()
        return obj if again and ready.get("status") == "True" else None

    obj = wait_for(recreated, timeout=NOTICED_WITHIN, what="the cloud image made again, Ready")
    assert "deleted outside the operator" in obj["status"]["drift"]["message"]
    assert obj["status"]["externalID"] == old
    kube.wait_event("drift-deleted", "CloudImageMissing")


def test_a_cloud_image_modified_outside_gets_the_spec_again(kube: Kube, emulator: Emulator) -> None:
    external_id = _ready_image(kube, "drift-modified")
    stored = _argon(emulator, "GET", external_id)
    edited = {k: stored[k] for k in ("name", "displayName", "repository") if k in stored}
    edited["displayName"] = "changed by hand"
    _argon(emulator, "PUT", external_id, json={"namespace": "default", "image": edited})

    def restored() -> bool:
        return bool(emulator.argon_images()[external_id]["displayName"] == "Image drift-modified")

    wait_for(restored, timeout=NOTICED_WITHIN, what="the spec's displayName pushed again")
    kube.wait_event("drift-modified", "CloudImageModified")
    assert (kube.get("images", "drift-modified") or {})["status"]["externalID"] == external_id


def test_report_policy_only_reports(kube: Kube, emulator: Emulator) -> None:
    old = _ready_image(kube, "drift-reported", policy="Report")

    _argon(emulator, "DELETE", old)

    def stalled() -> dict[str, Any] | None:
        found = kube.condition("images", "drift-reported", "Stalled") or {}
        return found if found.get("reason") == "Drifted" else None

    condition = wait_for(stalled, timeout=NOTICED_WITHIN, what="Stalled, reason Drifted")
    assert "driftPolicy: Report" in condition["message"]
    obj = kube.get("images", "drift-reported") or {}
    assert obj["status"]["externalID"] == old  # nothing was made again
    assert not [n for n in emulator.argon_images() if n.startswith("drift-reported-")]

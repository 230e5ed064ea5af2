"""API writes per Image (issue 14): an Image the cloud makes at once reaches Ready in at most
three writes besides the user's create — the finalizer with the write-ahead marker (one PATCH of
the object), the status with kopf's bookkeeping (one PATCH of the status), and one event. Read
off a watch of the namespace (every write that changes an object is one MODIFIED event) and
the namespace's Events, so nothing else on the shared API server counts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch

from image_operator_dev.emulator.config import ArgonSettings, EmulatorConfig
from image_operator_dev.emulator.server import EmulatorThread
from tests.integration.conftest import (
    ARGON_TOKEN,
    GROUP,
    VERSION,
    add_provider,
    add_secret,
    image_manifest,
    namespace_kube,
    namespace_operator,
)

pytestmark = pytest.mark.integration

IMAGES = 12


def _ready(obj: dict[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def test_an_image_made_at_once_is_ready_in_three_writes(control_plane: Any, tmp_path: Path) -> None:
    instant = EmulatorThread(
        EmulatorConfig(
            state_dir=tmp_path / "emulator",
            argon=ArgonSettings(tokens=[ARGON_TOKEN], creation_seconds=0.0),
        )
    )
    instant.start()
    api = control_plane.api_client()
    kube = namespace_kube(api, "writes-")
    operator = namespace_operator(control_plane, kube.namespace, tmp_path / "operator.log")
    try:
        add_secret(kube, "argon-credentials", {"token": ARGON_TOKEN})
        add_provider(
            kube,
            "argon",
            {
                "type": "argon",
                "endpoint": instant.url("argon"),
                "project": "default",
                "credentialsSecretRef": {"name": "argon-credentials"},
            },
        )
        operator.start()
        kube.wait_ready("imageproviders", "argon")  # the operator is up and watching
        custom = client.CustomObjectsApi(api)
        listed: Any = custom.list_namespaced_custom_object(GROUP, VERSION, kube.namespace, "images")
        since = listed["metadata"]["resourceVersion"]
        names = [f"w-{i}" for i in range(IMAGES)]
        for name in names:
            kube.create("images", image_manifest(name))

        writes: Counter[str] = Counter()
        ready_bodies: dict[str, dict[str, Any]] = {}
        stream = watch.Watch()  # type: ignore[no-untyped-call]
        for event in stream.stream(  # type: ignore[no-untyped-call]
            custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            kube.namespace,
            "images",
            resource_version=since,
            timeout_seconds=120,
        ):
            obj = event["object"]
            name = obj["metadata"]["name"]
            if event["type"] == "MODIFIED" and name not in ready_bodies:
                writes[name] += 1
                if _ready(obj):
                    ready_bodies[name] = obj
            if len(ready_bodies) == IMAGES:
                stream.stop()  # type: ignore[no-untyped-call]
        assert sorted(ready_bodies) == sorted(names), operator.log_tail()
        for name in names:  # kopf posts events from a queue, after the status
            kube.wait_event(name, "Ready")
        events = client.CoreV1Api(api).list_namespaced_event(kube.namespace).items
    finally:
        operator.stop()
        instant.stop()
        api.close()

    # Two writes of the object each: the finalizer with the marker, then the Ready status.
    assert set(writes.values()) == {2}, dict(writes)
    for obj in ready_bodies.values():
        # kopf's bookkeeping rode on the Ready status: no later write of its own is needed.
        assert obj["status"]["kopf"]["diffbase"].startswith("sha256-v1:")
        assert obj["metadata"]["annotations"]["imageops.io/provider-type"] == "argon"
    per_image = Counter(e.involved_object.name for e in events if e.involved_object.kind == "Image")
    reasons = {e.reason for e in events if e.involved_object.kind == "Image"}
    assert per_image == dict.fromkeys(names, 1), per_image  # one event each: Ready
    assert reasons == {"Ready"}

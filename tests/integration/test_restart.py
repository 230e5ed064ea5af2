"""A restart does not storm the cloud: Images Ready for their spec are not re-read when the
operator starts (their provider's drift resync reads them, in batches, an interval later)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import (
    ARGON_TOKEN,
    Emulator,
    add_provider,
    add_secret,
    image_manifest,
    namespace_kube,
    namespace_operator,
)

pytestmark = pytest.mark.integration

READY = 20


def test_a_restart_reads_no_ready_image_from_the_cloud(
    control_plane: Any, emulator: Emulator, tmp_path: Path
) -> None:
    api = control_plane.api_client()
    kube = namespace_kube(api, "restart-")
    add_secret(kube, "argon-credentials", {"token": ARGON_TOKEN})
    add_provider(
        kube,
        "argon",
        {
            "type": "argon",
            "endpoint": emulator.argon_url,
            "project": "default",
            "credentialsSecretRef": {"name": "argon-credentials"},
        },
    )
    first = namespace_operator(control_plane, kube.namespace, tmp_path / "first.log")
    first.start()
    try:
        names = [f"settled-{i}" for i in range(READY)]
        for name in names:
            kube.create("images", image_manifest(name))
        ids = [kube.wait_ready("images", name)["status"]["externalID"] for name in names]
    finally:
        first.kill()  # kill -9: nothing is handed over

    second = namespace_operator(control_plane, kube.namespace, tmp_path / "second.log")
    second.start()
    try:
        # A new Image made after the restart is Ready only once the start-up listing (every
        # Ready Image's resume) has been handled: what the restart cost is in the log by then.
        kube.create("images", image_manifest("after-restart"))
        kube.wait_ready("images", "after-restart")
        log = (tmp_path / "second.log").read_text()
    finally:
        second.stop()
        api.close()

    requests = re.findall(r"HTTP Request: \w+ \S+", log)
    about_ready = [r for r in requests if any(i in r for i in ids)]
    assert about_ready == [], f"{len(about_ready)} cloud requests about Ready Images"
    assert any("after-restart" in r for r in requests)  # the log does record cloud requests

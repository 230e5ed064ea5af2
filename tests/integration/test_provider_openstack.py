"""An `Image` in OpenStack Glance end to end: the real kube-apiserver, the operator process and
a real Glance (the `glance` fixture), importing from a loopback HTTP server the test runs."""

from __future__ import annotations

import pytest
from openstack import exceptions as sdk_exceptions

from image_operator.providers.openstack_metadata import IDEMPOTENCY_TAG_PREFIX
from tests.integration.conftest import Kube, wait_for
from tests.peers.glance import Blob, FileServer, GlanceServer, make_qcow2

pytestmark = pytest.mark.integration


def test_url_image_becomes_ready_in_glance_and_delete_removes_it(
    kube: Kube, glance: GlanceServer, file_server: FileServer
) -> None:
    disk = Blob(make_qcow2())
    url = file_server.serve("/images/ubuntu-22.04.qcow2", disk.data)
    kube.create(
        "imageproviders",
        {
            "kind": "ImageProvider",
            "metadata": {"name": "glance"},
            # No Secret: this Glance trusts its identity headers (see tests/peers/glance.py).
            "spec": {"type": "openstack", "endpoint": glance.url, "pollIntervalSeconds": 1},
        },
    )
    provider = kube.wait_ready("imageproviders", "glance", timeout=60)
    assert glance.url in provider["status"]["endpointInfo"]

    created = kube.create(
        "images",
        {
            "kind": "Image",
            "metadata": {"name": "ubuntu"},
            "spec": {
                "providerRef": {"name": "glance"},
                "source": {"url": {"url": url, "format": "qcow2", "checksum": disk.sha256}},
                "displayName": "Ubuntu 22.04 from a URL",
                "description": "imported by web-download",
                "tags": {"team": "ml"},
            },
        },
    )

    obj = kube.wait_ready("images", "ubuntu", timeout=120)
    status = obj["status"]
    external_id = status["externalID"]
    assert status["phase"] == "Ready"
    assert status["providerType"] == "openstack"
    conn = glance.connection()
    try:
        image = conn.image.get_image(external_id)
        assert image.status == "active"
        assert image.name == "Ubuntu 22.04 from a URL"
        assert (image.size, image.hash_algo, image.hash_value) == (
            len(disk.data),
            "sha256",
            disk.sha256,
        )
        assert set(image.tags) == {
            f"{IDEMPOTENCY_TAG_PREFIX}{created['metadata']['uid']}",
            "team.ml",
        }
        assert image.properties["description"] == "imported by web-download"
        assert file_server.requests == {"/images/ubuntu-22.04.qcow2": 1}
        kube.wait_event("ubuntu", "Creating", "Ready")

        kube.delete("images", "ubuntu")

        wait_for(
            lambda: kube.get("images", "ubuntu") is None,
            timeout=60,
            what="the Image to be gone (finalizer released)",
        )
        with pytest.raises(sdk_exceptions.NotFoundException):
            conn.image.get_image(external_id)
    finally:
        conn.close()

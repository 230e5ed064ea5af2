"""The openstack provider's spec.openstack options and its IMS mode against a real Glance
(issue 12 parts 1 and 5). Every request the provider sends is recorded at its HTTP session:
in IMS mode none may leave seed 002's index (`openstack_ims.IMS_ROUTES`), and in either mode
every body parameter must have a row in docs/seed-coverage.md (seed 002)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from image_operator.api.provider import ImageProviderSpec
from image_operator.api.provideroptions import OpenStackApi
from image_operator.providers.errors import Unsupported
from image_operator.providers.factory import build_provider
from image_operator.providers.model import CloudState, ImageRequest
from image_operator.providers.openstack import PUT_UPLOAD_LIMIT, MemberStatus, OpenStackProvider
from image_operator.providers.openstack_ims import in_ims_index
from tests.loopback import LOOPBACK_ENDPOINTS
from tests.peers.glance import FileServer, GlanceServer
from tests.peers.test_openstack_provider import OTHER_PROJECT, QCOW2, _request, _until
from tests.seedcoverage import Recorder, flatten

PROPERTIES = {"hw_disk_bus": "virtio", "hw_qemu_guest_agent": "yes"}
OPENSTACK = {
    "visibility": "shared",
    "containerFormat": "ovf",
    "minDiskGiB": 10,
    "minRamMiB": 512,
    "protected": False,
    "properties": PROPERTIES,
}
# Route templates of docs/seed-coverage.md's seed 002 actions.
_TEMPLATES = (
    (r"/v2/images", "/v2/images"),
    (r"/v2/images/[^/]+", "/v2/images/{image_id}"),
    (r"/v2/images/[^/]+/(file|stage|import)", "/v2/images/{image_id}/\\1"),
    (r"/v2/images/[^/]+/tags/[^/]+", "/v2/images/{image_id}/tags/{tag}"),
)


@dataclass
class Sent:
    """Every request a provider's session sent: (method, path) and the body parameters."""

    routes: list[tuple[str, str]] = field(default_factory=list)
    parameters: Recorder = field(default_factory=lambda: Recorder(custom=set(PROPERTIES)))

    def hook(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        request = response.request
        method, url = str(request.method), urlsplit(str(request.url))
        self.routes.append((method, url.path))
        action = next(
            (
                f"{method} {re.sub(pattern, template, url.path)}"
                for pattern, template in reversed(_TEMPLATES)
                if re.fullmatch(pattern, url.path)
            ),
            None,
        )
        if action is None:
            return
        if method == "GET" and url.query:
            self.parameters.record("002", action, [k for k, _ in parse_qsl(url.query)])
        body = request.body if isinstance(request.body, (bytes, str)) else None
        if body is None or "json" not in str(request.headers.get("Content-Type", "")):
            return
        payload = json.loads(body)
        if method == "PATCH":
            self.parameters.record("002", action, [op["path"] for op in payload])
        else:
            self.parameters.record("002", action, flatten(payload))

    def outside_ims(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p in self.routes if not in_ims_index(m, p)]


def _props(raw: Any) -> dict[str, Any]:
    """Properties from a CloudImage.raw: openstacksdk keeps those it models (hw_disk_bus, ...)
    at the top level and the others under `properties`."""
    return {**raw, **(raw.get("properties") or {})}


def _provider(glance: GlanceServer, api: OpenStackApi, project: str | None = None) -> Any:
    connection = glance.connection(project=project)
    provider = OpenStackProvider(connection, endpoint=glance.url, api=api)
    sent = Sent()
    connection.session.session.hooks["response"].append(sent.hook)
    return provider, sent


@pytest.fixture
def ims(glance: GlanceServer) -> Iterator[tuple[OpenStackProvider, Sent]]:
    provider, sent = _provider(glance, OpenStackApi.IMS)
    yield provider, sent
    provider.close()


def _upload(**overrides: Any) -> ImageRequest:
    source = {
        "upload": {
            "format": "qcow2",
            "os": {"type": "Linux", "distribution": "Ubuntu", "version": "22.04"},
        }
    }
    return _request(source, uid=str(uuid.uuid4()), **overrides)


def _same(request: ImageRequest, **overrides: Any) -> ImageRequest:
    """Another spec for the same object (the same idempotency key)."""
    spec = type(request.spec).model_validate({**request.spec.to_wire(), **overrides})
    return request.model_copy(update={"spec": spec})


def test_ims_mode_uses_only_the_routes_of_the_seed_002_index(
    ims: tuple[OpenStackProvider, Sent], glance: GlanceServer
) -> None:
    provider, sent = ims
    other, other_sent = _provider(glance, OpenStackApi.IMS, project=OTHER_PROJECT)
    request = _upload(tags={"team": "ml"}, description="first", openstack=OPENSTACK)
    provider.probe()
    created = provider.create_image(request)
    provider.upload(created.external_id, iter([QCOW2.data]), len(QCOW2.data))
    _until(provider, created.external_id, CloudState.AVAILABLE)
    assert provider.find_image(request) is not None
    provider.get_images([created.external_id])
    changed = _same(
        request,
        displayName="Renamed",
        tags={"env": "prod"},
        description="second",
        openstack={**OPENSTACK, "properties": {"hw_disk_bus": "scsi"}},
    )
    assert provider.needs_update(changed, provider.get_image(created.external_id))
    updated = provider.update_image(created.external_id, changed)
    provider.share(created.external_id, OTHER_PROJECT)
    assert other.accept(created.external_id, OTHER_PROJECT).status is MemberStatus.ACCEPTED
    provider.members(created.external_id)
    provider.delete_image(created.external_id)
    other.close()

    assert sent.outside_ims() == [] and other_sent.outside_ims() == []
    assert ("PATCH", f"/v2/images/{created.external_id}") in sent.routes
    assert ("PUT", f"/v2/images/{created.external_id}/tags/env.prod") in sent.routes
    assert not provider.needs_update(changed, updated)
    raw = updated.raw
    assert raw["name"] == "Renamed" and set(raw["tags"]) >= {"env.prod"}
    assert _props(raw)["hw_disk_bus"] == "scsi"
    assert _props(raw).get("hw_qemu_guest_agent") is None
    assert _props(raw)["os_distro"] == "ubuntu"  # set at create, never patched
    assert sent.parameters.unaccounted() == []


def test_glance_mode_sets_every_option_and_pushes_changes(glance: GlanceServer) -> None:
    provider, sent = _provider(glance, OpenStackApi.GLANCE)
    request = _upload(openstack=OPENSTACK)
    created = provider.create_image(request)
    raw = created.raw
    assert (raw["visibility"], raw["container_format"]) == ("shared", "ovf")
    assert (raw["min_disk"], raw["min_ram"], raw["is_protected"]) == (10, 512, False)
    assert {k: _props(raw)[k] for k in PROPERTIES} == PROPERTIES
    assert not provider.needs_update(request, created)
    # Someone else's property is not the operator's to remove.
    conn = glance.connection()
    conn.image.update_image(created.external_id, hw_rng_model="virtio")
    conn.close()

    changed_options = {
        **OPENSTACK,
        "visibility": "community",
        "minDiskGiB": 20,
        "protected": True,
        "properties": {"hw_disk_bus": "scsi"},
    }
    changed = _same(request, openstack=changed_options)
    assert provider.needs_update(changed, provider.get_image(created.external_id))
    updated = provider.update_image(created.external_id, changed)

    raw = updated.raw
    assert (raw["visibility"], raw["min_disk"], raw["is_protected"]) == ("community", 20, True)
    assert _props(raw)["hw_disk_bus"] == "scsi"
    assert _props(raw).get("hw_qemu_guest_agent") is None
    assert _props(raw)["hw_rng_model"] == "virtio"
    assert not provider.needs_update(changed, updated)
    provider.update_image(
        created.external_id, _same(request, openstack={**changed_options, "protected": False})
    )
    provider.delete_image(created.external_id)
    provider.close()
    assert sent.parameters.unaccounted() == []


def test_glance_mode_url_import_leaves_the_ims_index_and_is_accounted_for(
    glance: GlanceServer, file_server: FileServer
) -> None:
    provider, sent = _provider(glance, OpenStackApi.GLANCE)
    url = file_server.serve("/ims.qcow2", QCOW2.data)

    created = provider.create_image(_request({"url": {"url": url, "format": "qcow2"}}))
    _until(provider, created.external_id, CloudState.AVAILABLE)
    provider.close()

    assert ("POST", f"/v2/images/{created.external_id}/import") in sent.outside_ims()
    assert sent.parameters.unaccounted() == []


def test_what_ims_cannot_do_is_unsupported_naming_the_field(
    ims: tuple[OpenStackProvider, Sent], file_server: FileServer
) -> None:
    provider, sent = ims
    url = file_server.serve("/never.qcow2", QCOW2.data)
    with pytest.raises(Unsupported) as url_import:
        provider.create_image(_request({"url": {"url": url, "format": "qcow2"}}))
    assert sent.routes == []  # refused before any request
    created = provider.create_image(_upload(openstack={"minDiskGiB": 1}))
    with pytest.raises(Unsupported) as large:
        provider.upload(created.external_id, iter([b""]), PUT_UPLOAD_LIMIT)
    bigger = _upload(openstack={"minDiskGiB": 2}).model_copy(update={"idempotency_key": "x"})
    with pytest.raises(Unsupported) as min_disk:
        provider.update_image(created.external_id, bigger)
    provider.delete_image(created.external_id)

    assert "spec.source.url" in url_import.value.message
    assert "spec.openstack.api is ims" in url_import.value.message
    assert "glance-direct" in large.value.message
    assert "spec.openstack.minDiskGiB" in min_disk.value.message
    assert sent.outside_ims() == []


def test_the_factory_builds_the_api_the_imageprovider_names(glance: GlanceServer) -> None:
    built = {}
    for api in ("glance", "ims", None):
        body: dict[str, Any] = {"type": "openstack", "endpoint": glance.url}
        if api:
            body["openstack"] = {"api": api}
        provider = build_provider(
            ImageProviderSpec.model_validate(body), {}, endpoints=LOOPBACK_ENDPOINTS
        )
        assert isinstance(provider, OpenStackProvider)
        built[api] = provider.api
        provider.close()

    assert built == {"glance": OpenStackApi.GLANCE, "ims": OpenStackApi.IMS, None: "glance"}
